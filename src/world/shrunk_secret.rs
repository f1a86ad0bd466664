//! Secrets shrink on arrival. A credential Secret (labelled
//! `konghq.com/credential`) becomes its credential facts: the type label, a
//! digest of `key` and the optional `ttl` — the key itself is dropped here.
//! Any other Secret keeps its data, because translation reads it (plugin
//! `configFrom`, Ingress TLS certificates); cluster mode only ever watches
//! the Secrets objects reference. That data is never printed (`SecretData`
//! debug-prints key names only).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::{HasMeta, Kind, Meta, ObjectError};
use crate::api;
use crate::snapshot::KeyDigest;

/// 112 bytes for a credential Secret (100k of them at 100k credentials),
/// 248 with `ttl`, `type` and data inline: what only other Secrets have
/// sits behind one pointer, and `ttl` fits in 4 bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretObj {
    pub meta: Meta,
    /// The key, as a digest (only for labelled Secrets).
    pub key: CredentialKey,
    ttl: Ttl,
    /// None for an Opaque Secret without data (every credential Secret).
    body: Option<Box<SecretBody>>,
}

#[derive(Clone, Debug, PartialEq)]
struct SecretBody {
    /// `type` (`Opaque`, `kubernetes.io/tls`, ...).
    type_: Box<str>,
    data: SecretData,
}

/// Secret data that translation reads. Debug shows key names, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(pub BTreeMap<String, Vec<u8>>);

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

static NO_DATA: SecretData = SecretData(BTreeMap::new());

/// A `ttl` that is not a whole number of seconds in Kong's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ttl must be a whole number of seconds from 0 to {MAX_TTL}")]
pub struct InvalidTtl;

/// `ttl` in 4 bytes instead of 16: seconds (at most `MAX_TTL`), or a mark
/// above that range for "none" or "invalid".
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ttl(u32);

impl Ttl {
    const NONE: Ttl = Ttl(u32::MAX);
    const INVALID: Ttl = Ttl(u32::MAX - 1);

    fn new(ttl: Option<Result<u64, InvalidTtl>>) -> Self {
        match ttl {
            None => Ttl::NONE,
            Some(Ok(seconds)) => {
                u32::try_from(seconds).ok().filter(|s| u64::from(*s) <= MAX_TTL).map_or(Ttl::INVALID, Ttl)
            }
            Some(Err(InvalidTtl)) => Ttl::INVALID,
        }
    }

    fn get(self) -> Option<Result<u64, InvalidTtl>> {
        match self {
            Ttl::NONE => None,
            Ttl::INVALID => Some(Err(InvalidTtl)),
            Ttl(seconds) => Some(Ok(u64::from(seconds))),
        }
    }
}

impl std::fmt::Debug for Ttl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
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
    /// Value of the `konghq.com/credential` label, if labelled.
    pub fn credential_type(&self) -> Option<&str> {
        self.meta.label(api::LABEL_CREDENTIAL)
    }

    /// `ttl` in seconds, or why it could not be read.
    pub fn ttl(&self) -> Option<Result<u64, InvalidTtl>> {
        self.ttl.get()
    }

    /// `type` (`Opaque`, `kubernetes.io/tls`, ...).
    pub fn type_(&self) -> &str {
        self.body.as_ref().map_or("Opaque", |b| &b.type_)
    }

    /// Data of a non-credential Secret (empty for credentials).
    pub fn data(&self) -> &SecretData {
        self.body.as_ref().map_or(&NO_DATA, |b| &b.data)
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
            let mut data: BTreeMap<String, Vec<u8>> =
                o.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            data.extend(o.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())));
            SecretData(data)
        };
        let type_ = o.type_.as_deref().unwrap_or("Opaque");
        let body =
            (type_ != "Opaque" || !data.0.is_empty()).then(|| Box::new(SecretBody { type_: type_.into(), data }));
        Ok(Self { meta, key, ttl: Ttl::new(ttl), body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_reads_back_as_written() {
        for ttl in [None, Some(Ok(0)), Some(Ok(MAX_TTL)), Some(Err(InvalidTtl))] {
            assert_eq!(Ttl::new(ttl).get(), ttl);
        }
        assert_eq!(Ttl::new(Some(Ok(MAX_TTL + 1))).get(), Some(Err(InvalidTtl)));
    }
}
