//! Body keys for key-auth (`key_in_body`): the buffered body parsed once
//! (form, JSON or multipart), searched for a key and, with
//! `hide_credentials`, rebuilt without it.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::{BodyDataStream, Full};
use serde_json::{Map, Value};

use super::args::{self, Lookup};
use super::fields::RequestFields;
use super::headers::Known;

/// A body format key-auth can read a key from.
#[derive(Clone, Debug)]
pub enum BodyKind {
    Form,
    Json,
    Multipart { boundary: String },
}

impl BodyKind {
    /// Decided as Kong does: a case-insensitive substring match on
    /// Content-Type, form first, then JSON, then multipart.
    pub fn of(fields: &RequestFields) -> Option<Self> {
        let content_type = fields.first_of(Known::ContentType)?;
        if contains_ignore_case(content_type, b"application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else if contains_ignore_case(content_type, b"application/json") {
            Some(BodyKind::Json)
        } else if contains_ignore_case(content_type, b"multipart/form-data") {
            let content_type = std::str::from_utf8(content_type).ok()?;
            multer::parse_boundary(content_type).ok().map(|boundary| BodyKind::Multipart { boundary })
        } else {
            None
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

struct Part {
    name: Option<String>,
    headers: HeaderMap,
    data: Bytes,
}

enum Fields {
    /// Not parsable as its declared format: there is no key in it.
    None,
    Form,
    Json(Map<String, Value>),
    Multipart {
        boundary: String,
        parts: Vec<Part>,
    },
}

/// A buffered body parsed once for all `key_names`.
pub struct ParsedBody {
    bytes: Bytes,
    fields: Fields,
}

impl ParsedBody {
    pub async fn parse(kind: Option<BodyKind>, bytes: Bytes) -> Self {
        let fields = match kind {
            None => Fields::None,
            Some(BodyKind::Form) => Fields::Form,
            Some(BodyKind::Json) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Fields::Json(map),
                _ => Fields::None,
            },
            Some(BodyKind::Multipart { boundary }) => match parse_multipart(bytes.clone(), &boundary).await {
                Some(parts) => Fields::Multipart { boundary, parts },
                None => Fields::None,
            },
        };
        ParsedBody { bytes, fields }
    }

    /// A body with nothing to search (no buffering was needed).
    pub fn none() -> Self {
        ParsedBody { bytes: Bytes::new(), fields: Fields::None }
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        match &self.fields {
            Fields::None => Lookup::Missing,
            Fields::Form => args::lookup(&self.bytes, name),
            Fields::Json(map) => match map.get(name) {
                None => Lookup::Missing,
                Some(Value::String(s)) => Lookup::One(Cow::Borrowed(s.as_bytes())),
                // Kong sees a Lua table for both, and calls it a duplicate.
                Some(Value::Array(_) | Value::Object(_)) => Lookup::Duplicate,
                Some(_) => Lookup::Valueless,
            },
            Fields::Multipart { parts, .. } => {
                let mut named = parts.iter().filter(|p| p.name.as_deref() == Some(name));
                match (named.next(), named.next()) {
                    (None, _) => Lookup::Missing,
                    (Some(part), None) => Lookup::One(Cow::Borrowed(&part.data)),
                    (Some(_), Some(_)) => Lookup::Duplicate,
                }
            }
        }
    }

    /// The body without field `name`, or None when it has no such field.
    /// Form bodies keep the other fields' raw encoding; JSON is
    /// re-serialized; multipart is rebuilt from the remaining parts.
    pub fn remove(&self, name: &str) -> Option<Bytes> {
        match &self.fields {
            Fields::None => None,
            Fields::Form => args::remove(&self.bytes, name).map(Bytes::from),
            Fields::Json(map) => {
                if !map.contains_key(name) {
                    return None;
                }
                let mut map = map.clone();
                map.remove(name);
                serde_json::to_vec(&map).ok().map(Bytes::from)
            }
            Fields::Multipart { boundary, parts } => {
                if !parts.iter().any(|p| p.name.as_deref() == Some(name)) {
                    return None;
                }
                Some(build_multipart(boundary, parts.iter().filter(|p| p.name.as_deref() != Some(name))))
            }
        }
    }
}

async fn parse_multipart(bytes: Bytes, boundary: &str) -> Option<Vec<Part>> {
    let stream = BodyDataStream::new(Full::new(bytes));
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().map(str::to_owned);
        let headers = field.headers().clone();
        let data = field.bytes().await.ok()?;
        parts.push(Part { name, headers, data });
    }
    Some(parts)
}

fn build_multipart<'a>(boundary: &str, parts: impl Iterator<Item = &'a Part>) -> Bytes {
    let mut out = BytesMut::new();
    for part in parts {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in &part.headers {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&part.data);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart_body(fields: &[(&str, &str)]) -> Bytes {
        let mut s = String::new();
        for (n, v) in fields {
            s.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n"));
        }
        s.push_str("--XyZ--\r\n");
        Bytes::from(s)
    }

    fn kind_multipart() -> Option<BodyKind> {
        Some(BodyKind::Multipart { boundary: "XyZ".into() })
    }

    #[tokio::test]
    async fn multipart_lookup_and_remove() {
        let body = ParsedBody::parse(kind_multipart(), multipart_body(&[("a", "1"), ("apikey", "k")])).await;
        assert_eq!(body.lookup("apikey"), Lookup::One(Cow::Borrowed(b"k")));
        let rebuilt = ParsedBody::parse(kind_multipart(), body.remove("apikey").unwrap_or_default()).await;
        assert_eq!(rebuilt.lookup("apikey"), Lookup::Missing);
        assert_eq!(rebuilt.lookup("a"), Lookup::One(Cow::Borrowed(b"1")));

        let dup = ParsedBody::parse(kind_multipart(), multipart_body(&[("apikey", "1"), ("apikey", "2")])).await;
        assert_eq!(dup.lookup("apikey"), Lookup::Duplicate);
        let junk = ParsedBody::parse(kind_multipart(), Bytes::from_static(b"garbage")).await;
        assert_eq!(junk.lookup("apikey"), Lookup::Missing);
    }

    #[tokio::test]
    async fn json_lookup() {
        let body =
            ParsedBody::parse(Some(BodyKind::Json), Bytes::from_static(br#"{"apikey":["a"],"n":1,"s":"v"}"#)).await;
        assert_eq!(body.lookup("apikey"), Lookup::Duplicate);
        assert_eq!(body.lookup("n"), Lookup::Valueless);
        assert_eq!(body.lookup("s"), Lookup::One(Cow::Borrowed(b"v")));
        assert_eq!(body.remove("s").as_deref(), Some(&br#"{"apikey":["a"],"n":1}"#[..]));
    }

    #[test]
    fn kinds() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap_or(http::HeaderValue::from_static("")),
        );
        assert!(matches!(BodyKind::of(&(&h).into()), Some(BodyKind::Json)));
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("multipart/form-data; boundary=abc"));
        assert!(matches!(BodyKind::of(&(&h).into()), Some(BodyKind::Multipart { .. })));
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        assert!(BodyKind::of(&(&h).into()).is_none());
    }
}
