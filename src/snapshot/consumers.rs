use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::DefaultHashBuilder as RandomState;
use http::HeaderValue;

use super::KeyDigest;
use super::digest::DigestState;
use super::sharded::{ShardOf, Sharded, ShardedTable};

/// A consumer, with its identity headers built once (the proxy clones
/// them: a reference count, no copy). Its id, username and custom_id are
/// read back from those headers rather than kept twice.
#[derive(Debug)]
pub struct Consumer {
    /// X-Consumer-ID: `metadata.uid` of the KongConsumer (or its UUIDv5).
    pub id_header: HeaderValue,
    pub username_header: Option<HeaderValue>,
    pub custom_id_header: Option<HeaderValue>,
    /// `namespace/name` of the KongConsumer.
    pub source: String,
}

impl Consumer {
    /// None when a field cannot be sent as a header value (translation
    /// reports it as a Problem).
    pub fn new(id: &str, username: Option<&str>, custom_id: Option<&str>, source: String) -> Option<Self> {
        let header = |v: Option<&str>| match v {
            Some(s) => HeaderValue::from_str(s).map(Some).ok(),
            None => Some(None),
        };
        Some(Self {
            id_header: HeaderValue::from_str(id).ok()?,
            username_header: header(username)?,
            custom_id_header: header(custom_id)?,
            source,
        })
    }

    /// `metadata.uid` of the KongConsumer (or its UUIDv5).
    pub fn id(&self) -> &str {
        text(&self.id_header)
    }

    pub fn username(&self) -> Option<&str> {
        self.username_header.as_ref().map(text)
    }

    pub fn custom_id(&self) -> Option<&str> {
        self.custom_id_header.as_ref().map(text)
    }
}

/// The text a header value was built from (always a `&str`, so UTF-8).
fn text(v: &HeaderValue) -> &str {
    std::str::from_utf8(v.as_bytes()).unwrap_or_default()
}

/// One key-auth credential.
#[derive(Debug)]
pub struct Credential {
    pub consumer: Arc<Consumer>,
    /// X-Credential-Identifier: `metadata.uid` of the Secret (or its UUIDv5).
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

    /// `metadata.uid` of the Secret (or its UUIDv5).
    pub fn id(&self) -> &str {
        text(&self.id_header)
    }
}

/// Credentials by key digest, consumers by id and by username. Sharded
/// (see `Sharded`), so translation can update it in place one object at a
/// time and publish a copy for the cost of a few hundred pointers. The
/// consumer tables hold only the consumers: the id and username are read
/// from the consumer itself.
#[derive(Clone, Debug, Default)]
pub struct ConsumerIndex {
    credentials: Sharded<KeyDigest, Arc<Credential>, DigestState>,
    by_id: ShardedTable<Arc<Consumer>>,
    by_username: ShardedTable<Arc<Consumer>>,
    hasher: RandomState,
}

impl ShardOf<KeyDigest> for KeyDigest {
    fn shard_of(d: &KeyDigest) -> usize {
        // Not the bytes the in-shard hash uses.
        usize::from(d.0[31])
    }
}

impl ConsumerIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` consumers and credentials (a full translation).
    pub fn reserve(&mut self, n: usize) {
        let hasher = &self.hasher;
        self.credentials.reserve(n);
        self.by_id.reserve(n, |c| hasher.hash_one(c.id()));
        self.by_username.reserve(n, |c| hasher.hash_one(c.username().unwrap_or_default()));
    }

    /// Adds (or replaces, by id) a consumer.
    pub fn insert_consumer(&mut self, consumer: Arc<Consumer>) {
        let hasher = &self.hasher;
        let new = consumer.clone();
        if let Some(u) = new.username() {
            let same = |c: &Arc<Consumer>| c.username() == Some(u);
            let rehash = |c: &Arc<Consumer>| hasher.hash_one(c.username().unwrap_or_default());
            self.by_username.insert(hasher.hash_one(u), consumer.clone(), same, rehash);
        }
        let id = new.id();
        self.by_id.insert(hasher.hash_one(id), consumer, |c| c.id() == id, |c| hasher.hash_one(c.id()));
    }

    /// Removes this consumer (matched by pointer: a newer consumer holding
    /// the same username stays).
    pub fn remove_consumer(&mut self, consumer: &Arc<Consumer>) {
        let hash = self.hasher.hash_one(consumer.id());
        self.by_id.remove(hash, |c| Arc::ptr_eq(c, consumer));
        if let Some(u) = consumer.username() {
            self.by_username.remove(self.hasher.hash_one(u), |c| Arc::ptr_eq(c, consumer));
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
        let hash = self.hasher.hash_one(name_or_id);
        self.by_id
            .find(hash, |c| c.id() == name_or_id)
            .or_else(|| self.by_username.find(hash, |c| c.username() == Some(name_or_id)))
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
