//! Secrets shrink on arrival. A credential Secret (labelled
//! `konghq.com/credential`) becomes its credential facts: the type label, a
//! digest of `key` and the optional `ttl` — the key itself is dropped here.
//! Any other Secret keeps its data, because translation reads it (plugin
//! `configFrom`, Ingress TLS certificates); cluster mode only ever watches
//! the Secrets objects reference. That data is never printed (`SecretData`
//! debug-prints key names only).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;

use super::{HasMeta, Kind, Meta, ObjectError};
use crate::api;
use crate::snapshot::{CredentialSecret, KeyDigest, Uid};

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

/// The snapshot's credentials read their Secret's fields from the World's
/// object.
impl CredentialSecret for SecretObj {
    fn digest(&self) -> Option<&KeyDigest> {
        match &self.key {
            CredentialKey::Digest(d) => Some(d),
            CredentialKey::Missing | CredentialKey::Empty => None,
        }
    }
    fn name(&self) -> &str {
        self.meta.name()
    }
    fn uid(&self) -> Uid {
        self.meta.uid()
    }
    fn expires_at(&self) -> Option<SystemTime> {
        SecretObj::expires_at(self)
    }
}

impl SecretObj {
    /// Value of the `konghq.com/credential` label, if labelled.
    pub fn credential_type(&self) -> Option<&str> {
        self.meta.label(api::LABEL_CREDENTIAL)
    }

    /// `ttl` in seconds, or why it could not be read.
    pub fn ttl(&self) -> Option<Result<u64, InvalidTtl>> {
        self.ttl.get()
    }

    /// creationTimestamp + ttl, when the ttl is valid and not 0 (no expiry,
    /// as in Kong).
    pub fn expires_at(&self) -> Option<SystemTime> {
        match self.ttl() {
            Some(Ok(ttl)) if ttl > 0 => SystemTime::from(self.meta.created()).checked_add(Duration::from_secs(ttl)),
            _ => None,
        }
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    #[test]
    fn ttl_reads_back_as_written() {
        for ttl in [None, Some(Ok(0)), Some(Ok(MAX_TTL)), Some(Err(InvalidTtl))] {
            assert_eq!(Ttl::new(ttl).get(), ttl);
        }
        assert_eq!(Ttl::new(Some(Ok(MAX_TTL + 1))).get(), Some(Err(InvalidTtl)));
    }

    fn credential_secret(key: Option<&str>, ttl: Option<&str>) -> SecretObj {
        let mut string_data: BTreeMap<String, String> = key.map(|k| ("key".into(), k.into())).into_iter().collect();
        string_data.extend(ttl.map(|t| ("ttl".to_string(), t.to_string())));
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("alice-key".into()),
                namespace: Some("team-a".into()),
                uid: Some("c97fd9a1-d1c0-5560-9308-9f19b8f50ae4".into()),
                labels: Some([(api::LABEL_CREDENTIAL.to_string(), "key-auth".to_string())].into()),
                creation_timestamp: Some(Time("2026-01-01T00:00:00Z".parse().unwrap())),
                ..Default::default()
            },
            string_data: Some(string_data),
            ..Default::default()
        };
        SecretObj::shrink(&secret).unwrap()
    }

    /// The snapshot's credential reads the Secret's digest, name, uid and
    /// expiry from the World's object, without a copy.
    #[test]
    fn a_snapshot_credential_reads_its_secret_from_the_object() {
        let s = credential_secret(Some("k1"), Some("60"));
        let read: &dyn CredentialSecret = &s;
        assert_eq!(read.digest(), Some(&KeyDigest::of(b"k1")));
        assert_eq!(
            (read.name(), read.uid().to_string().as_str()),
            ("alice-key", "c97fd9a1-d1c0-5560-9308-9f19b8f50ae4")
        );
        let created = SystemTime::from(s.meta.created());
        assert_eq!(read.expires_at(), Some(created + Duration::from_secs(60)));
        // ttl 0 is no expiry (Kong); an invalid ttl makes no credential
        // (translation), and no expiry here.
        assert_eq!(credential_secret(Some("k1"), Some("0")).expires_at(), None);
        assert_eq!(credential_secret(Some("k1"), Some("soon")).expires_at(), None);
        assert_eq!(credential_secret(Some("k1"), None).expires_at(), None);
        // No key, no digest: no credential can be made from it.
        assert_eq!(CredentialSecret::digest(&credential_secret(None, None)), None);
        assert_eq!(CredentialSecret::digest(&credential_secret(Some(""), None)), None);
    }
}
