use std::collections::hash_map::RandomState;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;

use super::KeyDigest;
use super::digest::DigestState;
use super::sharded::{ShardOf, Sharded};

/// A consumer, with its identity headers precomputed.
#[derive(Debug)]
pub struct Consumer {
    /// `metadata.uid` of the KongConsumer (or its UUIDv5): X-Consumer-ID.
    pub id: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    /// `namespace/name` of the KongConsumer.
    pub source: String,
    pub id_header: HeaderValue,
    pub username_header: Option<HeaderValue>,
    pub custom_id_header: Option<HeaderValue>,
}

impl Consumer {
    /// None when a field cannot be sent as a header value (translation
    /// reports it as a Problem).
    pub fn new(id: String, username: Option<String>, custom_id: Option<String>, source: String) -> Option<Self> {
        let header = |v: &Option<String>| match v {
            Some(s) => HeaderValue::from_str(s).map(Some).ok(),
            None => Some(None),
        };
        Some(Self {
            id_header: HeaderValue::from_str(&id).ok()?,
            username_header: header(&username)?,
            custom_id_header: header(&custom_id)?,
            id,
            username,
            custom_id,
            source,
        })
    }
}

/// One key-auth credential.
#[derive(Debug)]
pub struct Credential {
    pub consumer: Arc<Consumer>,
    /// `metadata.uid` of the Secret (or its UUIDv5): X-Credential-Identifier.
    pub id: String,
    pub id_header: HeaderValue,
    /// `namespace/name` of the Secret.
    pub source: String,
    /// creationTimestamp + ttl; the key is rejected from then on.
    pub expires_at: Option<SystemTime>,
}

impl Credential {
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// Credentials by key digest, consumers by id and by username. Sharded
/// (see `Sharded`), so translation can update it in place one object at a
/// time and publish a copy for the cost of a few hundred pointers.
#[derive(Clone, Debug, Default)]
pub struct ConsumerIndex {
    credentials: Sharded<KeyDigest, Arc<Credential>, DigestState>,
    by_id: Sharded<String, Arc<Consumer>, RandomState>,
    by_username: Sharded<String, Arc<Consumer>, RandomState>,
}

impl ShardOf<KeyDigest> for KeyDigest {
    fn shard_of(d: &KeyDigest) -> usize {
        // Not the bytes the in-shard hash uses.
        usize::from(d.0[31])
    }
}

impl ShardOf<str> for String {
    fn shard_of(s: &str) -> usize {
        // Fixed keys: shard choice only needs to be stable and even.
        let mut h = std::hash::DefaultHasher::new();
        s.hash(&mut h);
        h.finish() as usize
    }
}

impl ShardOf<String> for String {
    fn shard_of(s: &String) -> usize {
        <String as ShardOf<str>>::shard_of(s)
    }
}

impl ConsumerIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, by id) a consumer.
    pub fn insert_consumer(&mut self, consumer: Arc<Consumer>) {
        if let Some(u) = &consumer.username {
            self.by_username.insert(u.clone(), consumer.clone());
        }
        self.by_id.insert(consumer.id.clone(), consumer);
    }

    /// Removes this consumer (matched by pointer: a newer consumer holding
    /// the same username stays).
    pub fn remove_consumer(&mut self, consumer: &Arc<Consumer>) {
        if self.by_id.get(consumer.id.as_str()).is_some_and(|c| Arc::ptr_eq(c, consumer)) {
            self.by_id.remove(consumer.id.as_str());
        }
        if let Some(u) = &consumer.username
            && self.by_username.get(u.as_str()).is_some_and(|c| Arc::ptr_eq(c, consumer))
        {
            self.by_username.remove(u.as_str());
        }
    }

    /// Returns false (and keeps the existing one) when the digest is taken.
    pub fn insert_credential(&mut self, digest: KeyDigest, credential: Credential) -> bool {
        if self.credentials.get(&digest).is_some() {
            return false;
        }
        self.credentials.insert(digest, Arc::new(credential));
        true
    }

    /// Sets (or, with None, removes) the credential holding `digest`.
    pub fn set_credential(&mut self, digest: KeyDigest, credential: Option<Credential>) {
        match credential {
            Some(c) => {
                self.credentials.insert(digest, Arc::new(c));
            }
            None => {
                self.credentials.remove(&digest);
            }
        }
    }

    pub fn credential(&self, digest: &KeyDigest) -> Option<&Arc<Credential>> {
        self.credentials.get(digest)
    }

    /// The consumer `anonymous` names: by id, else by username.
    pub fn consumer(&self, name_or_id: &str) -> Option<&Arc<Consumer>> {
        self.by_id.get(name_or_id).or_else(|| self.by_username.get(name_or_id))
    }

    /// Every consumer, in no particular order.
    pub fn consumers(&self) -> impl Iterator<Item = &Arc<Consumer>> {
        self.by_id.values()
    }

    pub fn consumer_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Arc<Credential>> {
        self.credentials.values()
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }
}
