//! A TLS Secret -> a certificate chain and signing key the TLS listener can
//! serve: PEM `tls.crt` (server certificate first, then intermediates) and
//! PEM `tls.key`, which must match that first certificate. Errors say what
//! is wrong and never echo Secret data (PEM parser messages can quote it, so
//! they are not passed on).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;

use crate::snapshot::HostMatch;
use crate::world::SecretObj;

/// Secret types whose `tls.crt` / `tls.key` we read. KIC reads the two keys
/// whatever the type, and many TLS Secrets were created as Opaque.
const TLS_TYPES: [&str; 2] = ["kubernetes.io/tls", "Opaque"];
const CERT_KEY: &str = "tls.crt";
const PRIVATE_KEY: &str = "tls.key";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsSecretError {
    #[error(
        "it is a konghq.com/credential Secret, not a certificate; point secretName at a kubernetes.io/tls Secret with tls.crt and tls.key"
    )]
    Credential,
    #[error("it has type '{0}'; use a Secret of type kubernetes.io/tls with tls.crt and tls.key")]
    WrongType(String),
    #[error(
        "it has no {0}; a kubernetes.io/tls Secret holds the PEM certificate chain in tls.crt and the PEM private key in tls.key"
    )]
    MissingField(&'static str),
    #[error("tls.crt holds no PEM certificate (a BEGIN CERTIFICATE block)")]
    NoCertificate,
    #[error("tls.crt is not valid PEM (an unterminated block or bad base64); re-export the certificate chain")]
    BadCertificatePem,
    #[error(
        "tls.key holds no PEM private key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY; encrypted keys are not supported)"
    )]
    NoKey,
    #[error("tls.key is not valid PEM (an unterminated block or bad base64); re-export the private key")]
    BadKeyPem,
    #[error("tls.key is not a supported private key; use RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519")]
    UnsupportedKey,
    #[error("the first certificate in tls.crt is not a readable X.509 certificate")]
    BadCertificate,
    #[error(
        "tls.key does not belong to the first certificate in tls.crt (the server certificate must come first, then its intermediates)"
    )]
    KeyMismatch,
}

/// Reads a Secret as a certificate and key.
pub fn parse(secret: &SecretObj) -> Result<Arc<CertifiedKey>, TlsSecretError> {
    if secret.credential_type().is_some() {
        return Err(TlsSecretError::Credential);
    }
    if !TLS_TYPES.contains(&secret.type_()) {
        return Err(TlsSecretError::WrongType(super::annotations::printable(secret.type_())));
    }
    let cert_pem = secret.data().get(CERT_KEY).ok_or(TlsSecretError::MissingField(CERT_KEY))?;
    let key_pem = secret.data().get(PRIVATE_KEY).ok_or(TlsSecretError::MissingField(PRIVATE_KEY))?;

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsSecretError::BadCertificatePem)?;
    if chain.is_empty() {
        return Err(TlsSecretError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsSecretError::NoKey,
        _ => TlsSecretError::BadKeyPem,
    })?;
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| TlsSecretError::UnsupportedKey)?;
    // Parse the leaf first so a broken certificate is not reported as a
    // key mismatch.
    ParsedCertificate::try_from(&chain[0]).map_err(|_| TlsSecretError::BadCertificate)?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| TlsSecretError::KeyMismatch)?;
    Ok(Arc::new(certified))
}

/// Whether the server certificate is valid for `host` (its subject
/// alternative names). A wildcard host is checked with one sample label: a
/// `*.example.com` certificate covers it, a certificate naming only some
/// hosts under `example.com` does not.
pub fn covers(key: &CertifiedKey, host: &HostMatch) -> bool {
    let name = match host {
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(suffix) => format!("x.{suffix}"),
    };
    let (Ok(leaf), Ok(name)) = (key.end_entity_cert(), ServerName::try_from(name)) else { return false };
    ParsedCertificate::try_from(leaf).is_ok_and(|cert| rustls::client::verify_server_name(&cert, &name).is_ok())
}

/// Parsed Secrets from the previous translation, so that a change to any
/// Secret (a credential, say) does not re-parse every certificate. Entries
/// are reused only for an equal Secret; unused ones are dropped each run.
#[derive(Default)]
pub struct CertCache {
    entries: HashMap<(String, String), Parsed>,
}

struct Parsed {
    secret: Arc<SecretObj>,
    result: Result<Arc<CertifiedKey>, TlsSecretError>,
}

/// The Secrets read during one translation; becomes the next cache.
pub struct CacheRun<'a> {
    previous: &'a mut CertCache,
    used: HashMap<(String, String), Parsed>,
}

impl CertCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn run(&mut self) -> CacheRun<'_> {
        CacheRun { previous: self, used: HashMap::new() }
    }
}

impl CacheRun<'_> {
    pub fn parse(
        &mut self,
        key: &(String, String),
        secret: &Arc<SecretObj>,
    ) -> Result<Arc<CertifiedKey>, TlsSecretError> {
        if let Some(p) = self.used.get(key) {
            return p.result.clone();
        }
        let parsed = match self.previous.entries.remove(key) {
            Some(p) if Arc::ptr_eq(&p.secret, secret) || *p.secret == **secret => p,
            _ => Parsed { secret: secret.clone(), result: parse(secret) },
        };
        let result = parsed.result.clone();
        self.used.insert(key.clone(), parsed);
        result
    }
}

impl Drop for CacheRun<'_> {
    fn drop(&mut self) {
        self.previous.entries = std::mem::take(&mut self.used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Object, World};

    fn secret_yaml(name: &str, names: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let indent = |s: String| s.trim().lines().map(|l| format!("    {l}\n")).collect::<String>();
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
            indent(cert.pem()),
            indent(key.serialize_pem())
        )
    }

    fn apply(world: &mut World, yaml: &str) {
        for doc in crate::source::manifest::parse(yaml).unwrap() {
            let obj: Object = doc.result.unwrap();
            world.apply(obj).unwrap();
        }
    }

    fn parse_in(cache: &mut CertCache, world: &World) -> Arc<CertifiedKey> {
        let key = ("default".to_string(), "web-tls".to_string());
        cache.run().parse(&key, world.secrets.get(&key).unwrap()).unwrap()
    }

    #[test]
    fn unchanged_secrets_are_not_parsed_again() {
        let web = secret_yaml("web-tls", &["web.example.com"]);
        let mut world = World::new();
        apply(&mut world, &web);
        let mut cache = CertCache::new();
        let first = parse_in(&mut cache, &world);
        // Another Secret changes, and an equal web-tls is re-applied (a new
        // Arc in the World): the parse is reused.
        apply(&mut world, &secret_yaml("other", &["o.example.com"]));
        apply(&mut world, &web);
        assert!(Arc::ptr_eq(&first, &parse_in(&mut cache, &world)));
        apply(&mut world, &secret_yaml("web-tls", &["web.example.com"]));
        assert!(!Arc::ptr_eq(&first, &parse_in(&mut cache, &world)), "new contents are parsed");
    }

    #[test]
    fn unused_entries_are_dropped() {
        let mut world = World::new();
        apply(&mut world, &secret_yaml("web-tls", &["web.example.com"]));
        let mut cache = CertCache::new();
        parse_in(&mut cache, &world);
        assert_eq!(cache.entries.len(), 1);
        drop(cache.run());
        assert!(cache.entries.is_empty());
    }

    #[test]
    fn coverage_by_subject_alternative_names() {
        let mut world = World::new();
        apply(&mut world, &secret_yaml("web-tls", &["web.example.com", "*.apps.example.com"]));
        let key = parse_in(&mut CertCache::new(), &world);
        let exact = |h: &str| HostMatch::Exact(h.into());
        let wildcard = |s: &str| HostMatch::Wildcard(s.into());
        assert!(covers(&key, &exact("web.example.com")));
        assert!(covers(&key, &exact("a.apps.example.com")));
        assert!(covers(&key, &wildcard("apps.example.com")));
        assert!(!covers(&key, &exact("other.example.com")));
        assert!(!covers(&key, &wildcard("example.com")));
    }
}
