//! The immutable Snapshot the proxy serves from: routes (with their backends
//! and resolved auth) and the consumer/credential index. Built by
//! `translate`, swapped in atomically by `publish`, read once per request.
//!
//! Std + http types only: no kube, no tokio. The two halves sit behind their
//! own `Arc`s so a credential change does not rebuild the router and a route
//! change does not rebuild the credential index.

mod backend;
mod consumers;
mod digest;
mod key_auth;
mod route;
mod router;
mod summary;

use std::sync::Arc;

pub use backend::{Backend, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Target, Timeouts};
pub use consumers::{Consumer, ConsumerIndex, Credential};
pub use digest::KeyDigest;
pub use key_auth::{KeyAuthConfig, KeyName};
pub use route::{HeaderMatch, HostMatch, PathMatch, Protocols, Route, RouteAuth};
pub use router::RouteTable;
pub use summary::{BackendSummary, ConsumerSummary, RouteSummary, Summary};

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub routes: Arc<RouteTable>,
    pub consumers: Arc<ConsumerIndex>,
}

impl Snapshot {
    pub fn new(routes: Arc<RouteTable>, consumers: Arc<ConsumerIndex>) -> Self {
        Self { routes, consumers }
    }

    /// A serializable, secret-free view (for `check`, golden tests and the
    /// debug endpoint).
    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }
}
