use std::fmt;
use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};

/// SHA-256 of an API key. The only form in which a key is kept: the proxy
/// digests the presented key once and looks the digest up.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyDigest(pub [u8; 32]);

impl KeyDigest {
    pub fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }
}

impl fmt::Debug for KeyDigest {
    /// Never the full digest: enough to tell two apart in a debug dump,
    /// too little to test guesses against.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl KeyDigest {
    /// A hash of the digest for tables: a SHA-256 output is already
    /// uniformly spread, so eight of its bytes are a good hash and the
    /// request path hashes nothing twice. Lookups of absent keys cannot be
    /// steered into long probe sequences either, since the stored digests
    /// are the operator's.
    pub fn table_hash(&self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(word)
    }
}

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.table_hash());
    }
}
