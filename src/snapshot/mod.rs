//! The immutable Snapshot the proxy serves from: routes (with their backends
//! and resolved auth), the consumer/credential index and the TLS server
//! certificates. Built by `translate`, swapped in atomically by `publish`,
//! read once per request (and once per TLS handshake).
//!
//! Std + http types only (and rustls' certificate types): no kube, no tokio.
//! The parts sit behind their own `Arc`s so a credential change does not
//! rebuild the router, a route change does not rebuild the credential index,
//! and neither re-parses certificates.

mod backend;
mod consumers;
mod digest;
mod key_auth;
mod route;
mod router;
mod sharded;
mod summary;
mod tls;
mod uid;

use std::sync::Arc;

pub use backend::{Backend, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Target, Timeouts};
pub use consumers::{
    Consumer, ConsumerIndex, ConsumerNames, Credential, CredentialSecret, OwnedNames, OwnedSecret, header_safe,
};
pub use digest::KeyDigest;
pub use key_auth::{KeyAuthConfig, KeyName};
pub use route::{HeaderMatch, HostMatch, PathMatch, Protocols, Route, RouteAuth, Scheme};
pub use router::{FieldValues, RouteTable};
pub use summary::{BackendSummary, ConsumerSummary, RouteSummary, Summary, TlsSummary};
pub use tls::{TlsCert, TlsCertificates};
pub use uid::Uid;

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub routes: Arc<RouteTable>,
    pub consumers: Arc<ConsumerIndex>,
    pub tls: Arc<TlsCertificates>,
}

impl Snapshot {
    /// A snapshot without TLS certificates (add them with `with_tls`).
    pub fn new(routes: Arc<RouteTable>, consumers: Arc<ConsumerIndex>) -> Self {
        Self { routes, consumers, tls: Arc::default() }
    }

    pub fn with_tls(self, tls: Arc<TlsCertificates>) -> Self {
        Self { tls, ..self }
    }
}
