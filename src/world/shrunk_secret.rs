//! Secrets shrink on arrival. A credential Secret (labelled
//! `konghq.com/credential`) becomes its credential facts: the type label, a
//! digest of `key` and the optional `ttl` — the key itself is dropped here.
//! Any other Secret keeps its data, because translation reads it (plugin
//! `configFrom`, Ingress TLS certificates); cluster mode only ever watches
//! the Secrets objects reference. That data is never printed (`SecretData`
//! debug-prints key names only).

use std::borrow::Cow;

use k8s_openapi::api::core::v1::Secret;

use super::{HasMeta, Kind, Meta, ObjectError};
use crate::api;
use crate::snapshot::KeyDigest;

#[derive(Clone, Debug, PartialEq)]
pub struct SecretObj {
    pub meta: Meta,
    /// The key, as a digest (only for labelled Secrets).
    pub key: CredentialKey,
    /// `ttl` in seconds, or why it could not be read.
    pub ttl: Option<Result<u64, InvalidTtl>>,
    /// `type` (`Opaque`, `kubernetes.io/tls`, ...); the usual ones are not
    /// allocated per Secret.
    pub type_: Cow<'static, str>,
    /// Data of a non-credential Secret (empty for credentials).
    pub data: SecretData,
}

/// Secret data that translation reads. Debug shows key names, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(pub std::collections::BTreeMap<String, Vec<u8>>);

impl SecretData {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(Vec::as_slice)
    }
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A `ttl` that is not a whole number of seconds in Kong's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ttl must be a whole number of seconds from 0 to {MAX_TTL}")]
pub struct InvalidTtl;

/// Secret types common enough to share one static string.
const KNOWN_TYPES: [&str; 3] = ["Opaque", "kubernetes.io/tls", "kubernetes.io/service-account-token"];

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
    /// Value of the `konghq.com/credential` label, if labelled.
    pub fn credential_type(&self) -> Option<&str> {
        self.meta.label(api::LABEL_CREDENTIAL)
    }

    pub fn shrink(o: &Secret) -> Result<Self, ObjectError> {
        let meta = Meta::shrink(Kind::Secret, &o.metadata)?;
        let is_credential = meta.label(api::LABEL_CREDENTIAL).is_some();
        // stringData wins over data, as the API server merges them.
        let field = |name: &str| -> Option<Vec<u8>> {
            if let Some(v) = o.string_data.as_ref().and_then(|d| d.get(name)) {
                return Some(v.as_bytes().to_vec());
            }
            o.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.clone())
        };
        let (key, ttl) = if is_credential {
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
                    .ok_or(InvalidTtl)
            });
            (key, ttl)
        } else {
            (CredentialKey::Missing, None)
        };
        let data = if is_credential {
            SecretData::default()
        } else {
            let mut data: std::collections::BTreeMap<String, Vec<u8>> =
                o.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            data.extend(o.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())));
            SecretData(data)
        };
        let type_ = o.type_.as_deref().unwrap_or("Opaque");
        let type_ = match KNOWN_TYPES.iter().find(|known| **known == type_) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(type_.to_string()),
        };
        Ok(Self { meta, key, ttl, type_, data })
    }
}
