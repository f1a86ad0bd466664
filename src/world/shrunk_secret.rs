//! Secrets shrink to credential facts: the credential type label, a digest
//! of `key` and the optional `ttl`. The key itself is dropped here.

use k8s_openapi::api::core::v1::Secret;

use super::{HasMeta, Kind, Meta, ObjectError};
use crate::api;
use crate::snapshot::KeyDigest;

#[derive(Clone, Debug, PartialEq)]
pub struct SecretObj {
    pub meta: Meta,
    /// Value of the `konghq.com/credential` label, if labelled.
    pub credential_type: Option<String>,
    /// The key, as a digest (only for labelled Secrets).
    pub key: CredentialKey,
    /// `ttl` in seconds, or the reason it could not be read.
    pub ttl: Option<Result<u64, String>>,
}

impl HasMeta for SecretObj {
    fn meta(&self) -> &Meta {
        &self.meta
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CredentialKey {
    Missing,
    Empty,
    Digest(KeyDigest),
}

/// Longest accepted ttl, as Kong's schema (0..=100 000 000 s).
const MAX_TTL: u64 = 100_000_000;

impl SecretObj {
    pub fn shrink(o: &Secret) -> Result<Self, ObjectError> {
        let meta = Meta::shrink(Kind::Secret, &o.metadata)?;
        let credential_type = meta.label(api::LABEL_CREDENTIAL).map(str::to_string);
        // stringData wins over data, as the API server merges them.
        let field = |name: &str| -> Option<Vec<u8>> {
            if let Some(v) = o.string_data.as_ref().and_then(|d| d.get(name)) {
                return Some(v.as_bytes().to_vec());
            }
            o.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.clone())
        };
        let (key, ttl) = if credential_type.is_some() {
            let key = match field("key") {
                None => CredentialKey::Missing,
                Some(k) if k.is_empty() => CredentialKey::Empty,
                Some(k) => CredentialKey::Digest(KeyDigest::of(&k)),
            };
            let ttl = field("ttl").map(|raw| {
                std::str::from_utf8(&raw)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .filter(|t| *t <= MAX_TTL)
                    .ok_or_else(|| format!("ttl must be a whole number of seconds from 0 to {MAX_TTL}"))
            });
            (key, ttl)
        } else {
            (CredentialKey::Missing, None)
        };
        Ok(Self { meta, credential_type, key, ttl })
    }
}
