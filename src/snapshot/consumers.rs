use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;

use super::KeyDigest;

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

/// Credentials by key digest, consumers by username and id.
#[derive(Debug, Default)]
pub struct ConsumerIndex {
    credentials: HashMap<KeyDigest, Arc<Credential>>,
    consumers: Vec<Arc<Consumer>>,
    by_name_or_id: HashMap<String, Arc<Consumer>>,
}

impl ConsumerIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert_consumer(&mut self, consumer: Arc<Consumer>) {
        self.by_name_or_id.insert(consumer.id.clone(), consumer.clone());
        if let Some(u) = &consumer.username {
            self.by_name_or_id.insert(u.clone(), consumer.clone());
        }
        self.consumers.push(consumer);
    }

    /// Returns false (and keeps the existing one) when the digest is taken.
    pub fn insert_credential(&mut self, digest: KeyDigest, credential: Credential) -> bool {
        if self.credentials.contains_key(&digest) {
            return false;
        }
        self.credentials.insert(digest, Arc::new(credential));
        true
    }

    pub fn credential(&self, digest: &KeyDigest) -> Option<&Arc<Credential>> {
        self.credentials.get(digest)
    }

    /// The consumer `anonymous` names: by username or id.
    pub fn consumer(&self, name_or_id: &str) -> Option<&Arc<Consumer>> {
        self.by_name_or_id.get(name_or_id)
    }

    pub fn consumers(&self) -> &[Arc<Consumer>] {
        &self.consumers
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Arc<Credential>> {
        self.credentials.values()
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }
}
