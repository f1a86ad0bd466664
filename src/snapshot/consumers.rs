use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::sharded::ShardedTable;
use super::{KeyDigest, Uid};

/// The names of a consumer (its uid among them), read where they are
/// already kept (the World's KongConsumer) instead of copied into the
/// snapshot: a copy was ~100 bytes and a block per consumer at 100k
/// credentials. The values never change (a changed KongConsumer is a new
/// object, and a new `Consumer`).
pub trait ConsumerNames: Send + Sync {
    /// X-Consumer-ID: `metadata.uid` of the KongConsumer (or its UUIDv5).
    fn uid(&self) -> Uid;
    /// The KongConsumer's namespace (its credential Secrets' too).
    fn namespace(&self) -> &str;
    fn name(&self) -> &str;
    /// None when absent or empty.
    fn username(&self) -> Option<&str>;
    /// None when absent or empty.
    fn custom_id(&self) -> Option<&str>;
}

/// A consumer's names held by the consumer itself (tests, tools).
#[derive(Clone, Debug)]
pub struct OwnedNames {
    pub uid: Uid,
    pub namespace: String,
    pub name: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
}

impl ConsumerNames for OwnedNames {
    fn uid(&self) -> Uid {
        self.uid.clone()
    }
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn username(&self) -> Option<&str> {
        self.username.as_deref().filter(|u| !u.is_empty())
    }
    fn custom_id(&self) -> Option<&str> {
        self.custom_id.as_deref().filter(|c| !c.is_empty())
    }
}

/// An accepted consumer: where its names are. The identity
/// headers are built per request from it (~1.1k instructions, 3 % of a
/// valid request's user-space work) rather than kept ready-made (see
/// docs/benchmarks.md, "Compact index").
#[derive(Clone)]
pub struct Consumer {
    names: Arc<dyn ConsumerNames>,
}

impl Consumer {
    /// None when a field cannot be sent as a header value (translation
    /// reports it as a Problem).
    pub fn new(names: Arc<dyn ConsumerNames>) -> Option<Self> {
        let safe = |v: Option<&str>| v.is_none_or(header_safe);
        (names.uid().is_header_safe() && safe(names.username()) && safe(names.custom_id())).then_some(Self { names })
    }

    /// A consumer holding its own names (tests, tools).
    pub fn owned(
        uid: Uid,
        username: Option<&str>,
        custom_id: Option<&str>,
        namespace: &str,
        name: &str,
    ) -> Option<Self> {
        let names = OwnedNames {
            uid,
            namespace: namespace.into(),
            name: name.into(),
            username: username.map(Into::into),
            custom_id: custom_id.map(Into::into),
        };
        Self::new(Arc::new(names))
    }

    /// `metadata.uid` of the KongConsumer (or its UUIDv5).
    pub fn uid(&self) -> Uid {
        self.names.uid()
    }

    /// Whether both read the same names (the same object).
    pub fn is(&self, other: &Consumer) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.names), Arc::as_ptr(&other.names))
    }

    /// `namespace/name` of the KongConsumer.
    pub fn source(&self) -> String {
        format!("{}/{}", self.names.namespace(), self.names.name())
    }

    /// The KongConsumer's namespace (its credential Secrets' too).
    pub fn namespace(&self) -> &str {
        self.names.namespace()
    }

    pub fn username(&self) -> Option<&str> {
        self.names.username()
    }

    pub fn custom_id(&self) -> Option<&str> {
        self.names.custom_id()
    }
}

impl PartialEq for Consumer {
    fn eq(&self, other: &Self) -> bool {
        fn parts(c: &Consumer) -> (&str, &str, Option<&str>, Option<&str>) {
            (c.names.namespace(), c.names.name(), c.username(), c.custom_id())
        }
        self.uid() == other.uid() && parts(self) == parts(other)
    }
}
impl Eq for Consumer {}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("source", &self.source())
            .field("id", &self.uid())
            .field("username", &self.username())
            .field("custom_id", &self.custom_id())
            .finish()
    }
}

/// Whether `HeaderValue::from_str` accepts `s` (visible ASCII, space, tab
/// and bytes >= 0x80), checked without building one.
pub fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| (b >= 32 && b != 127) || b == b'\t')
}

/// What a credential reads from its Secret, where it is already kept (the
/// World's Secret) instead of copied into the index: the copy (uid, name,
/// expiry) and the digest as a map key were 96 bytes per entry at 100k
/// credentials, now 24. The values never change (a changed Secret is a new
/// object, and a new `Credential`).
pub trait CredentialSecret: Send + Sync {
    /// The key's digest: the index finds the credential by it.
    fn digest(&self) -> Option<&KeyDigest>;
    /// The Secret's name; it is in its consumer's namespace.
    fn name(&self) -> &str;
    /// X-Credential-Identifier: `metadata.uid` of the Secret (or its UUIDv5).
    fn uid(&self) -> Uid;
    /// creationTimestamp + ttl; the key is rejected from then on.
    fn expires_at(&self) -> Option<SystemTime>;
}

/// A credential's Secret held by the credential itself (tests, tools).
#[derive(Clone, Debug)]
pub struct OwnedSecret {
    pub digest: KeyDigest,
    pub name: String,
    pub uid: Uid,
    pub expires_at: Option<SystemTime>,
}

impl CredentialSecret for OwnedSecret {
    fn digest(&self) -> Option<&KeyDigest> {
        Some(&self.digest)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn uid(&self) -> Uid {
        self.uid.clone()
    }
    fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

/// One key-auth credential, kept inline in the index (two pointers: cheap to
/// copy when a change copies its shard).
#[derive(Clone)]
pub struct Credential {
    pub consumer: Consumer,
    secret: Arc<dyn CredentialSecret>,
}

impl Credential {
    /// None when the Secret has no key digest or its uid cannot be sent as
    /// a header value.
    pub fn new(consumer: Consumer, secret: Arc<dyn CredentialSecret>) -> Option<Self> {
        (secret.digest().is_some() && secret.uid().is_header_safe()).then_some(Self { consumer, secret })
    }

    /// A credential holding its own Secret's fields (tests, tools).
    pub fn owned(
        consumer: Consumer,
        digest: KeyDigest,
        uid: Uid,
        name: &str,
        expires_at: Option<SystemTime>,
    ) -> Option<Self> {
        Self::new(consumer, Arc::new(OwnedSecret { digest, name: name.into(), uid, expires_at }))
    }

    /// The key's digest (checked present when the credential was made).
    fn digest(&self) -> Option<&KeyDigest> {
        self.secret.digest()
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        self.secret.expires_at()
    }

    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.expires_at().is_none_or(|t| now < t)
    }

    /// `metadata.uid` of the Secret (or its UUIDv5).
    pub fn uid(&self) -> Uid {
        self.secret.uid()
    }

    /// `namespace/name` of the Secret.
    pub fn source(&self) -> String {
        format!("{}/{}", self.consumer.namespace(), self.secret.name())
    }
}

impl fmt::Debug for Credential {
    /// Names the Secret; the key's digest is the map's, never printed here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("source", &self.source())
            .field("id", &self.uid())
            .field("consumer", &self.consumer.source())
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

/// Credentials by key digest, plus the few consumers key-auth's
/// `anonymous` settings name. Sharded (see `ShardedTable`), so translation
/// can update it in place one object at a time and publish a copy for the
/// cost of a few hundred pointers.
///
/// There is no table of every consumer by id and by username: a request
/// only ever looks a consumer up by the name an `anonymous` setting holds,
/// so translation resolves those names (it knows both the settings and the
/// consumers) and the index keeps the answers. The two tables were 2.4 MB
/// at 100k consumers.
#[derive(Clone, Debug, Default)]
pub struct ConsumerIndex {
    /// Found by the digest their Secret holds.
    credentials: ShardedTable<Credential>,
    /// `anonymous` as written (an id or a username) -> the consumer it
    /// names. A name that names none is absent.
    anonymous: Arc<BTreeMap<Box<str>, Consumer>>,
    /// Accepted consumers, with or without credentials.
    consumer_count: usize,
}

fn credential_hash(c: &Credential) -> u64 {
    c.digest().map_or(0, KeyDigest::table_hash)
}

impl ConsumerIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` credentials (a full translation).
    pub fn reserve(&mut self, n: usize) {
        self.credentials.reserve(n, credential_hash);
    }

    /// Sets (or, with None, clears) the consumer an `anonymous` setting of
    /// `name` stands for.
    pub fn set_anonymous(&mut self, name: &str, consumer: Option<Consumer>) {
        match (self.anonymous.get(name), &consumer) {
            (None, None) => return,
            (Some(now), Some(new)) if now.is(new) => return,
            _ => {}
        }
        let map = Arc::make_mut(&mut self.anonymous);
        match consumer {
            Some(c) => map.insert(name.into(), c),
            None => map.remove(name),
        };
    }

    /// The consumer `anonymous` names (an id, else a username), as
    /// translation resolved it.
    pub fn anonymous(&self, name: &str) -> Option<&Consumer> {
        self.anonymous.get(name)
    }

    /// Counts a consumer accepted (`true`) or no longer accepted.
    pub fn count_consumer(&mut self, accepted: bool) {
        if accepted {
            self.consumer_count += 1;
        } else {
            self.consumer_count = self.consumer_count.saturating_sub(1);
        }
    }

    pub fn consumer_count(&self) -> usize {
        self.consumer_count
    }

    /// Returns false (and keeps the existing one) when the digest is taken.
    pub fn insert_credential(&mut self, credential: Credential) -> bool {
        match credential.digest() {
            Some(digest) if self.credential(digest).is_none() => {
                self.put(credential);
                true
            }
            _ => false,
        }
    }

    /// Sets (or, with None, removes) the credential holding `digest`.
    pub fn set_credential(&mut self, digest: KeyDigest, credential: Option<Credential>) {
        match credential {
            // Replaced in place.
            Some(c) if c.digest() == Some(&digest) => self.put(c),
            other => {
                self.credentials.remove(digest.table_hash(), |c| c.digest() == Some(&digest));
                if let Some(c) = other {
                    self.put(c);
                }
            }
        }
    }

    /// Adds a credential under the digest its Secret holds, replacing the
    /// one there.
    fn put(&mut self, credential: Credential) {
        let Some(digest) = credential.digest().copied() else { return };
        let holds = |c: &Credential| c.digest() == Some(&digest);
        self.credentials.insert(digest.table_hash(), credential, holds, credential_hash);
    }

    pub fn credential(&self, digest: &KeyDigest) -> Option<&Credential> {
        self.credentials.find(digest.table_hash(), |c| c.digest() == Some(digest))
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.values()
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "c97fd9a1-d1c0-5560-9308-9f19b8f50ae4";

    #[test]
    fn a_consumer_reads_back_every_part() {
        let c = Consumer::owned(Uid::new(UUID), Some("alice"), Some("c-1"), "team-a", "alice").unwrap();
        assert_eq!((c.source().as_str(), c.namespace()), ("team-a/alice", "team-a"));
        assert_eq!((c.username(), c.custom_id()), (Some("alice"), Some("c-1")));
        assert_eq!(c.uid().to_string(), UUID);

        let only_custom = Consumer::owned(Uid::new("id-1"), None, Some("c-2"), "ns", "x").unwrap();
        assert_eq!((only_custom.username(), only_custom.custom_id()), (None, Some("c-2")));
        let only_username = Consumer::owned(Uid::new("id-1"), Some("u"), Some(""), "ns", "x").unwrap();
        assert_eq!((only_username.username(), only_username.custom_id()), (Some("u"), None));
    }

    #[test]
    fn fields_that_cannot_be_headers_make_no_consumer_or_credential() {
        assert!(Consumer::owned(Uid::new("id"), Some("bad\nname"), None, "ns", "x").is_none());
        assert!(Consumer::owned(Uid::new("id"), None, Some("bad\u{7f}"), "ns", "x").is_none());
        assert!(Consumer::owned(Uid::new("bad\ruid"), Some("u"), None, "ns", "x").is_none());
        // Tabs and non-ASCII text are valid header bytes, as in `http`.
        let c = Consumer::owned(Uid::new("id"), Some("tab\there"), Some("ünï"), "ns", "x").unwrap();
        assert_eq!((c.username(), c.custom_id()), (Some("tab\there"), Some("ünï")));
        assert!(http::HeaderValue::from_str("tab\there").is_ok() && http::HeaderValue::from_str("ünï").is_ok());
        let digest = KeyDigest::of(b"k");
        assert!(Credential::owned(c.clone(), digest, Uid::new("bad\nuid"), "s", None).is_none());
        let cred = Credential::owned(c, digest, Uid::new(UUID), "key-1", None).unwrap();
        assert_eq!((cred.source(), cred.uid().to_string()), ("ns/key-1".to_string(), UUID.to_string()));
    }

    /// The index keeps no digest of its own: each credential is found by
    /// the digest its Secret holds.
    #[test]
    fn credentials_are_found_by_the_digest_their_secret_holds() {
        let c = Consumer::owned(Uid::new(UUID), Some("alice"), None, "ns", "alice").unwrap();
        let cred = |key: &str, name: &str| {
            Credential::owned(c.clone(), KeyDigest::of(key.as_bytes()), Uid::new(name), name, None).unwrap()
        };
        let source =
            |index: &ConsumerIndex, key: &str| index.credential(&KeyDigest::of(key.as_bytes())).map(Credential::source);
        let mut index = ConsumerIndex::new();
        for i in 0..1000 {
            assert!(index.insert_credential(cred(&format!("key-{i}"), &format!("s-{i}"))));
        }
        assert!(!index.insert_credential(cred("key-7", "other")), "the digest is taken");
        assert_eq!(source(&index, "key-7").as_deref(), Some("ns/s-7"));
        let published = index.clone();

        // Rotated: the old digest's entry goes, the new one holds the Secret.
        index.set_credential(KeyDigest::of(b"key-8"), Some(cred("key-8b", "s-8")));
        index.set_credential(KeyDigest::of(b"key-9"), None);
        index.set_credential(KeyDigest::of(b"key-10"), Some(cred("key-10", "s-10b")));
        assert_eq!((source(&index, "key-8"), source(&index, "key-8b").as_deref()), (None, Some("ns/s-8")));
        assert_eq!(source(&index, "key-9"), None);
        assert_eq!(source(&index, "key-10").as_deref(), Some("ns/s-10b"));
        assert_eq!((index.credential_count(), index.credentials().count()), (999, 999));
        assert_eq!(source(&index, "absent"), None);

        // The published copy is untouched.
        assert_eq!(source(&published, "key-8").as_deref(), Some("ns/s-8"));
        assert_eq!(source(&published, "key-10").as_deref(), Some("ns/s-10"));
        assert_eq!(published.credential_count(), 1000);
    }

    #[test]
    fn anonymous_names_are_kept_as_set_and_published_copies_keep_theirs() {
        let mut index = ConsumerIndex::new();
        let c = Consumer::owned(Uid::new(UUID), Some("anon"), None, "ns", "anon").unwrap();
        index.set_anonymous("anon", Some(c.clone()));
        index.set_anonymous(UUID, Some(c.clone()));
        assert!(index.anonymous(UUID).unwrap().is(&c));
        assert!(index.anonymous("anon").unwrap().is(&c));
        assert!(index.anonymous("other").is_none());
        let published = index.clone();
        index.set_anonymous("anon", None);
        assert!(index.anonymous("anon").is_none() && index.anonymous(UUID).is_some());
        assert!(published.anonymous("anon").is_some(), "the published copy is untouched");
    }

    #[test]
    fn consumers_are_counted() {
        let mut index = ConsumerIndex::new();
        index.count_consumer(true);
        index.count_consumer(true);
        index.count_consumer(false);
        assert_eq!(index.consumer_count(), 1);
    }
}
