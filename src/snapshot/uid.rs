//! `metadata.uid`, kept in 16 bytes when it is a UUID (it nearly always is:
//! the API server's uids and local mode's UUIDv5s) instead of a 36-byte
//! string of its own in every object.

use std::fmt;

use http::HeaderValue;
use http::header::InvalidHeaderValue;
use uuid::Uuid;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    /// A UUID written in the canonical form (lower-case, hyphenated), so it
    /// prints back exactly as it was read.
    Uuid([u8; 16]),
    /// Anything else, as written.
    Text(Box<str>),
}

impl Uid {
    pub fn new(text: &str) -> Self {
        match Uuid::try_parse(text) {
            Ok(u) if u.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == text => Uid::Uuid(u.into_bytes()),
            _ => Uid::Text(text.into()),
        }
    }

    /// Runs `f` on the text (formatted on the stack for a UUID).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Uid::Uuid(bytes) => f(Uuid::from_bytes(*bytes).hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            Uid::Text(text) => f(text),
        }
    }

    /// Whether `header_value` succeeds (a UUID always does).
    pub fn is_header_safe(&self) -> bool {
        match self {
            Uid::Uuid(_) => true,
            Uid::Text(text) => super::consumers::header_safe(text),
        }
    }

    /// As an HTTP header value (X-Consumer-ID, X-Credential-Identifier).
    pub fn header_value(&self) -> Result<HeaderValue, InvalidHeaderValue> {
        self.with_str(HeaderValue::from_str)
    }
}

impl From<Uuid> for Uid {
    fn from(u: Uuid) -> Self {
        Uid::Uuid(u.into_bytes())
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| fmt::Debug::fmt(s, f))
    }
}

impl PartialEq<str> for Uid {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|s| s == other)
    }
}

impl PartialEq<&str> for Uid {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_are_compact_and_everything_prints_back_as_written() {
        for text in ["c97fd9a1-d1c0-5560-9308-9f19b8f50ae4", "C97FD9A1-D1C0-5560-9308-9F19B8F50AE4", "1234", ""] {
            let uid = Uid::new(text);
            assert_eq!(uid.to_string(), text);
            assert_eq!(uid, text);
        }
        assert!(matches!(Uid::new("c97fd9a1-d1c0-5560-9308-9f19b8f50ae4"), Uid::Uuid(_)));
        assert!(matches!(Uid::new("C97FD9A1-D1C0-5560-9308-9F19B8F50AE4"), Uid::Text(_)), "upper case stays text");
        assert!(matches!(Uid::new("c97fd9a1d1c055609308-9f19b8f50ae4"), Uid::Text(_)));
        assert_eq!(Uid::new("bad\nuid").header_value().ok(), None);
        assert!(!Uid::new("bad\nuid").is_header_safe() && Uid::new("1234").is_header_safe());
        assert_eq!(
            Uid::new("c97fd9a1-d1c0-5560-9308-9f19b8f50ae4").header_value().unwrap(),
            "c97fd9a1-d1c0-5560-9308-9f19b8f50ae4"
        );
    }
}
