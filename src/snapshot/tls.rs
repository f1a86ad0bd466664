//! Server certificates by host name, from Ingress `spec.tls`. The TLS
//! listener looks the client's SNI up here on every handshake, so a new
//! snapshot (a rotated Secret) is served from the next handshake on.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::HostMatch;

/// One usable certificate: the parsed chain and key, and the Secret it came
/// from (`namespace/name`, the only thing summaries and logs show).
#[derive(Clone)]
pub struct TlsCert {
    pub secret: String,
    pub key: Arc<CertifiedKey>,
}

/// Names the Secret only: no certificate bytes, and nothing of the key.
impl std::fmt::Debug for TlsCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCert").field("secret", &self.secret).field("chain_len", &self.key.cert.len()).finish()
    }
}

/// Certificates by exact host and by wildcard suffix (`*.example.com`
/// stored as `example.com`, matching exactly one extra label, as routes do).
#[derive(Debug, Default)]
pub struct TlsCertificates {
    exact: HashMap<String, TlsCert>,
    wildcard: HashMap<String, TlsCert>,
}

impl TlsCertificates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the certificate for `host`, replacing any earlier one (the
    /// translation decides who wins before inserting).
    pub fn insert(&mut self, host: &HostMatch, cert: TlsCert) {
        match host {
            HostMatch::Exact(h) => self.exact.insert(h.clone(), cert),
            HostMatch::Wildcard(suffix) => self.wildcard.insert(suffix.clone(), cert),
        };
    }

    /// The certificate for a server name (SNI): the exact host first, then
    /// the wildcard covering it. `sni` must be lower-case (rustls hands it
    /// over that way).
    pub fn find(&self, sni: &str) -> Option<&TlsCert> {
        self.exact.get(sni).or_else(|| {
            let (_, suffix) = sni.split_once('.')?;
            self.wildcard.get(suffix)
        })
    }

    /// Every (host, certificate) pair, hosts as written (`*.` for
    /// wildcards), sorted by host.
    pub fn hosts(&self) -> Vec<(String, &TlsCert)> {
        let exact = self.exact.iter().map(|(h, c)| (h.clone(), c));
        let wildcard = self.wildcard.iter().map(|(s, c)| (format!("*.{s}"), c));
        let mut all: Vec<_> = exact.chain(wildcard).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(secret: &str) -> TlsCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec!["x.example.com".to_string()]).unwrap().self_signed(&key).unwrap();
        let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let signing = rustls::crypto::ring::sign::any_supported_type(&private).unwrap();
        TlsCert { secret: secret.into(), key: Arc::new(CertifiedKey::new(vec![der.der().clone()], signing)) }
    }

    #[test]
    fn exact_host_before_wildcard_and_wildcards_cover_one_label() {
        let mut certs = TlsCertificates::new();
        certs.insert(&HostMatch::Exact("a.example.com".into()), cert("ns/exact"));
        certs.insert(&HostMatch::Wildcard("example.com".into()), cert("ns/wild"));
        let found = |sni: &str| certs.find(sni).map(|c| c.secret.as_str());
        assert_eq!(found("a.example.com"), Some("ns/exact"));
        assert_eq!(found("b.example.com"), Some("ns/wild"));
        assert_eq!(found("example.com"), None);
        assert_eq!(found("a.b.example.com"), None);
        assert_eq!(found(""), None);
        let hosts: Vec<String> = certs.hosts().into_iter().map(|(h, _)| h).collect();
        assert_eq!(hosts, ["*.example.com", "a.example.com"]);
        assert!(!format!("{certs:?}").contains("BEGIN"), "{certs:?}");
    }
}
