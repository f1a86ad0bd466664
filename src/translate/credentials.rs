//! Credential Secrets of accepted consumers -> the key index. Keys are
//! unique: the oldest credential keeps a key and newer ones are rejected
//! (divergence: KIC drops every consumer involved). Problems name Secrets,
//! never keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderValue;

use crate::snapshot::{Consumer, ConsumerIndex, Credential, KeyDigest};
use crate::world::{CredentialKey, Kind, KongConsumerObj, ObjectRef, SecretObj, World};

use super::annotations::{object_ref, printable};
use super::{Problem, Reason};

/// The only credential type Portcullis implements.
const KEY_AUTH: &str = "key-auth";

/// A usable credential waiting for the duplicate-key check.
struct Pending<'w> {
    secret: &'w SecretObj,
    digest: KeyDigest,
    consumer: Arc<Consumer>,
    owner: ObjectRef,
}

pub struct Credentials<'w> {
    world: &'w World,
    /// Secret (namespace, name) -> the consumer that listed it first.
    claimed: HashMap<(String, String), ObjectRef>,
    pending: Vec<Pending<'w>>,
}

impl<'w> Credentials<'w> {
    pub fn new(world: &'w World) -> Self {
        Self { world, claimed: HashMap::new(), pending: Vec::new() }
    }

    /// Checks the Secrets one consumer lists; call for consumers oldest
    /// first. Problems go on the consumer, at `credentials[i]`.
    pub fn collect(
        &mut self,
        c: &KongConsumerObj,
        object: &ObjectRef,
        consumer: &Arc<Consumer>,
        problems: &mut Vec<Problem>,
    ) {
        let ns = c.meta.namespace.clone().unwrap_or_default();
        for (i, name) in c.credentials.iter().enumerate() {
            let problem = |reason: Reason, message: String| {
                Problem::new(object.clone(), format!("credentials[{i}]"), reason, message)
            };
            let secret_name = format!("Secret {ns}/{}", printable(name));
            let key = (ns.clone(), name.clone());
            let Some(secret) = self.world.secrets.get(&key) else {
                problems.push(problem(
                    Reason::CredentialNotFound,
                    format!(
                        "{secret_name} does not exist; create it with label konghq.com/credential: key-auth and a key"
                    ),
                ));
                continue;
            };
            match self.claimed.get(&key) {
                Some(owner) if owner == object => {
                    problems
                        .push(problem(Reason::InvalidField, format!("{secret_name} is listed twice; list it once")));
                    continue;
                }
                Some(owner) => {
                    problems.push(problem(
                        Reason::Conflict,
                        format!(
                            "{secret_name} is already a credential of the older {owner}; a Secret belongs to one consumer only, so it is not used here"
                        ),
                    ));
                    continue;
                }
                None => {
                    self.claimed.insert(key, object.clone());
                }
            }
            match usable(secret) {
                Ok(digest) => {
                    self.pending.push(Pending { secret, digest, consumer: consumer.clone(), owner: object.clone() })
                }
                Err((reason, why)) => problems.push(problem(reason, format!("{secret_name} {why}"))),
            }
        }
    }

    /// Inserts the credentials oldest Secret first, so the oldest keeps a
    /// duplicated key.
    pub fn insert_into(mut self, index: &mut ConsumerIndex, problems: &mut Vec<Problem>) {
        self.pending.sort_by(|a, b| a.secret.meta.age_key().cmp(&b.secret.meta.age_key()));
        let mut holders: HashMap<KeyDigest, (ObjectRef, ObjectRef)> = HashMap::new();
        for p in self.pending {
            let secret = object_ref(Kind::Secret, &p.secret.meta);
            if let Some((older, older_owner)) = holders.get(&p.digest) {
                problems.push(Problem::new(
                    secret,
                    "key",
                    Reason::DuplicateKey,
                    format!(
                        "has the same key as the older {older} (credential of {older_owner}), which keeps it; this credential of {} is rejected: give it a different key",
                        p.owner
                    ),
                ));
                continue;
            }
            let Some(credential) = credential(p.secret, p.consumer) else {
                problems.push(Problem::new(
                    secret,
                    "metadata.uid",
                    Reason::InvalidCredential,
                    "metadata.uid cannot be sent as X-Credential-Identifier; this credential is not used",
                ));
                continue;
            };
            index.insert_credential(p.digest, credential);
            holders.insert(p.digest, (secret, p.owner));
        }
    }
}

/// The key digest of a usable key-auth Secret, or why it is not usable.
fn usable(secret: &SecretObj) -> Result<KeyDigest, (Reason, String)> {
    let invalid = |why: &str| Err((Reason::InvalidCredential, why.to_string()));
    match secret.credential_type.as_deref() {
        None => return invalid("has no konghq.com/credential label; label it konghq.com/credential: key-auth"),
        Some(KEY_AUTH) => {}
        Some(other) => {
            return Err((
                Reason::UnsupportedCredential,
                format!(
                    "is a credential of type '{}'; Portcullis supports key-auth only, so it is not used",
                    printable(other)
                ),
            ));
        }
    }
    if let Some(Err(why)) = &secret.ttl {
        return invalid(&format!("has an invalid ttl: {why}; this credential is not used"));
    }
    match secret.key {
        CredentialKey::Missing => invalid("has no key; add a non-empty key"),
        CredentialKey::Empty => invalid("has an empty key; set a non-empty key"),
        CredentialKey::Digest(d) => Ok(d),
    }
}

fn credential(secret: &SecretObj, consumer: Arc<Consumer>) -> Option<Credential> {
    let expires_at = match secret.ttl {
        // ttl 0 means no expiry, as in Kong.
        Some(Ok(ttl)) if ttl > 0 => SystemTime::from(secret.meta.created).checked_add(Duration::from_secs(ttl)),
        _ => None,
    };
    Some(Credential {
        consumer,
        id_header: HeaderValue::from_str(&secret.meta.uid).ok()?,
        id: secret.meta.uid.clone(),
        source: format!("{}/{}", secret.meta.namespace.as_deref().unwrap_or_default(), secret.meta.name),
        expires_at,
    })
}
