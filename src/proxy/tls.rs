//! TLS termination: the rustls server configuration of the TLS listener.
//! Its certificate resolver reads the current Snapshot on every handshake,
//! so a rotated Secret is served from the next handshake on, without a
//! restart or a new acceptor.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::snapshot::Snapshot;

/// ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Server configuration: ring crypto (the provider kube already uses),
/// TLS 1.2 and 1.3, no client certificates, certificates by SNI.
pub fn server_config(snapshot: Arc<ArcSwap<Snapshot>>) -> Result<Arc<ServerConfig>, rustls::Error> {
    // An explicit provider: with more than one rustls provider in the build,
    // the process-wide default would be ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SnapshotCerts(snapshot)));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Picks the certificate for the client's SNI from the current Snapshot:
/// exact host, then wildcard. No SNI, or a name without a certificate,
/// aborts the handshake: there is no default certificate.
struct SnapshotCerts(Arc<ArcSwap<Snapshot>>);

impl ResolvesServerCert for SnapshotCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            tracing::debug!("TLS handshake without SNI: no default certificate");
            return None;
        };
        let found = self.0.load().tls.find(name).map(|c| c.key.clone());
        if found.is_none() {
            tracing::debug!(sni = name, "no certificate for this server name");
        }
        found
    }
}

/// Never prints the Snapshot (certificates are public, but the output
/// would be large and useless).
impl std::fmt::Debug for SnapshotCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCerts")
    }
}
