use std::fmt;

use sha2::{Digest, Sha256};

/// SHA-256 of an API key. The only form in which a key is kept: the proxy
/// digests the presented key once and looks the digest up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
