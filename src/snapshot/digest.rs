use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

impl Hash for KeyDigest {
    /// A SHA-256 output is already uniformly spread: eight of its bytes are
    /// a good hash. Lookups of absent keys cannot be steered into long probe
    /// sequences either, since the stored digests are the operator's.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// Hashes a `KeyDigest` by taking its bytes as they are (no second hash on
/// the request path).
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by KeyDigest; folds anything else correctly anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
}

pub type DigestState = BuildHasherDefault<DigestHasher>;
