//! The client's request header fields, as the proxy reads and rewrites
//! them on the way upstream.
//!
//! An HTTP/1 head is kept as its own bytes plus the positions of each name
//! and value: no map is built, no name hashed, and no value holds its own
//! reference to the buffer (a `HeaderMap` cost two allocations, a hash per
//! field and two atomic reference-count updates per value, for fields that
//! are mostly only copied upstream). An HTTP/2 head is copied in once.
//! Each name is classified once (`headers::Known`), so lookups of the
//! names the proxy knows and its filters compare one byte per field; other
//! names compare ASCII case-insensitively. Lookups are linear, which for a
//! request's handful of fields is cheaper than hashing each name.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use http::HeaderMap;

use super::headers::Known;
use super::lines::{Lines, put_raw_field};
use crate::snapshot::FieldValues;

/// Where a name or a value is: `head`'s bytes, then `set`'s.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(range: Range<usize>) -> Span {
        // Heads are limited far below 4 GiB (`h1::head::MAX_HEAD_BYTES`).
        let start = u32::try_from(range.start).unwrap_or(u32::MAX);
        let len = u32::try_from(range.len()).unwrap_or(0);
        Span { start, len }
    }

    fn range(self) -> Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// One field line.
#[derive(Clone, Copy)]
pub struct Field {
    name: Span,
    value: Span,
    known: Known,
    removed: bool,
}

impl Field {
    /// A field whose name and value are at these positions of the head.
    pub fn at(name: Range<usize>, value: Range<usize>) -> Field {
        Field { name: Span::of(name), value: Span::of(value), known: Known::Other, removed: false }
    }
}

/// A request's header fields, in the order the client sent them.
#[derive(Default)]
pub struct RequestFields {
    /// The bytes fields point into: an HTTP/1 head, or names and values
    /// copied from an HTTP/2 request.
    head: Bytes,
    /// Names and values the proxy set, addressed after `head`'s bytes.
    set: Vec<u8>,
    fields: Vec<Field>,
}

impl RequestFields {
    /// Fields at positions of `head` (valid names and values, as httparse
    /// checked them).
    pub fn parsed(head: Bytes, mut fields: Vec<Field>) -> RequestFields {
        for field in &mut fields {
            field.known = Known::of(head.get(field.name.range()).unwrap_or_default());
        }
        RequestFields { head, set: Vec::new(), fields }
    }

    /// The field list's storage, emptied, for the connection's next head:
    /// one allocation per connection instead of one per request.
    pub fn into_spare(self) -> Vec<Field> {
        let mut fields = self.fields;
        fields.clear();
        fields
    }

    fn bytes(&self, span: Span) -> &[u8] {
        let range = span.range();
        let split = self.head.len();
        if range.start < split {
            self.head.get(range).unwrap_or_default()
        } else {
            self.set.get(range.start - split..range.end - split).unwrap_or_default()
        }
    }

    fn live(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.removed)
    }

    /// Every field still in the request: name (as sent) and value.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.iter_known().map(|(_, name, value)| (name, value))
    }

    /// `iter`, with each field's kind.
    pub fn iter_known(&self) -> impl Iterator<Item = (Known, &[u8], &[u8])> {
        self.live().map(|f| (f.known, self.bytes(f.name), self.bytes(f.value)))
    }

    /// Whether any field is of a kind that passes `test`.
    pub fn any_known(&self, test: impl Fn(Known) -> bool) -> bool {
        self.live().any(|f| test(f.known))
    }

    /// The values of every field of kind `known`, in order: for a kind that
    /// is one name (`Known::is_one_name`), that name's values.
    pub fn values_of(&self, known: Known) -> impl Iterator<Item = &[u8]> {
        self.live().filter(move |f| f.known == known).map(|f| self.bytes(f.value))
    }

    /// The first value of kind `known`.
    pub fn first_of(&self, known: Known) -> Option<&[u8]> {
        self.values_of(known).next()
    }

    /// Whether a field of kind `known` is there.
    pub fn has(&self, known: Known) -> bool {
        self.any_known(|k| k == known)
    }

    /// The values of every field called `name`, in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        let known = Known::of(name.as_bytes());
        self.live().filter(move |f| self.is(f, known, name)).map(|f| self.bytes(f.value))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).next()
    }

    /// The first value of kind `known`, sharing the head's bytes when it
    /// is there.
    pub fn first_shared(&self, known: Known) -> Option<Bytes> {
        let field = self.live().find(|f| f.known == known)?;
        let range = field.value.range();
        Some(if range.end <= self.head.len() {
            self.head.slice(range)
        } else {
            Bytes::copy_from_slice(self.bytes(field.value))
        })
    }

    /// Whether `field` is called `name` (which is of kind `known`).
    fn is(&self, field: &Field, known: Known, name: &str) -> bool {
        field.known == known && (known.is_one_name() || self.bytes(field.name).eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Appends the fields as `name: value\r\n` lines, but for those of a
    /// kind `skip` passes; lines the client wrote in a row go as one copy
    /// (`Lines`).
    pub fn write_lines(&self, out: &mut Vec<u8>, skip: impl Fn(Known) -> bool) {
        let mut lines = Lines::new(&self.head);
        for field in &self.fields {
            if field.removed || skip(field.known) {
                lines.end_line(out, b"");
            } else if field.name.range().end > self.head.len() {
                // Set by the proxy (`set`): not in the head.
                lines.end_line(out, b"");
                put_raw_field(out, self.bytes(field.name), self.bytes(field.value));
            } else {
                lines.field(out, field.name.range(), field.value.range());
            }
        }
        lines.end_line(out, b"");
    }

    /// Removes every field whose kind and name pass `test`; says whether
    /// any did.
    pub fn remove_where(&mut self, mut test: impl FnMut(Known, &[u8]) -> bool) -> bool {
        let mut removed = false;
        for i in 0..self.fields.len() {
            let field = self.fields[i];
            if !field.removed && test(field.known, self.bytes(field.name)) {
                self.fields[i].removed = true;
                removed = true;
            }
        }
        removed
    }

    /// Removes every field called `name`.
    pub fn remove(&mut self, name: &str) -> bool {
        let known = Known::of(name.as_bytes());
        let one_name = known.is_one_name();
        self.remove_where(|k, n| k == known && (one_name || n.eq_ignore_ascii_case(name.as_bytes())))
    }

    /// Replaces every field called `name` with one of this `value` (a valid
    /// field value), placed last.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        let base = self.head.len() + self.set.len();
        self.set.extend_from_slice(name.as_bytes());
        self.set.extend_from_slice(value);
        let name_end = base + name.len();
        let mut field = Field::at(base..name_end, name_end..name_end + value.len());
        field.known = Known::of(name.as_bytes());
        self.fields.push(field);
    }
}

impl FieldValues for RequestFields {
    fn field_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
    }
}

/// An HTTP/2 request's fields (or a test's), copied into one buffer.
impl From<&HeaderMap> for RequestFields {
    fn from(map: &HeaderMap) -> RequestFields {
        let size = map.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        let mut head = Vec::with_capacity(size);
        let mut fields = Vec::with_capacity(map.len());
        for (name, value) in map {
            let start = head.len();
            head.extend_from_slice(name.as_str().as_bytes());
            let name_end = head.len();
            head.extend_from_slice(value.as_bytes());
            fields.push(Field::at(start..name_end, name_end..head.len()));
        }
        RequestFields::parsed(Bytes::from(head), fields)
    }
}

impl From<HeaderMap> for RequestFields {
    fn from(map: HeaderMap) -> RequestFields {
        RequestFields::from(&map)
    }
}

/// Names only: values may hold a key.
impl fmt::Debug for RequestFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|(name, _)| String::from_utf8_lossy(name))).finish()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> RequestFields {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        RequestFields::from(map)
    }

    #[test]
    fn parsed_positions_read_names_case_insensitively() {
        let head = Bytes::from_static(b"GET / HTTP/1.1\r\nHost: a\r\nX-Two: 1\r\nx-two: 2\r\n\r\n");
        let at = |s: &str| {
            let i = head.windows(s.len()).position(|w| w == s.as_bytes()).unwrap();
            i..i + s.len()
        };
        let f = RequestFields::parsed(
            head.clone(),
            vec![
                Field::at(at("Host"), at("a\r")),
                Field::at(at("X-Two"), at("1\r")),
                Field::at(at("x-two"), at("2\r")),
            ],
        );
        assert_eq!(f.get("host"), Some(&b"a\r"[..]));
        assert_eq!(f.get_all("x-two").collect::<Vec<_>>(), [&b"1\r"[..], b"2\r"]);
        assert!(f.get_all("x-two").next().is_some() && f.get_all("x-three").next().is_none());
        assert!(f.has(Known::Host) && !f.has(Known::Accept));
        assert_eq!(f.iter().map(|(n, _)| n).collect::<Vec<_>>(), [&b"Host"[..], b"X-Two", b"x-two"]);
    }

    #[test]
    fn removed_fields_are_gone_from_every_view() {
        let mut f = fields(&[("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")]);
        assert!(f.remove("A"));
        assert!(!f.remove("a"), "nothing left to remove");
        assert_eq!(f.get("a"), None);
        assert!(!f.iter().any(|(n, _)| n == b"a"));
        assert_eq!(f.iter().collect::<Vec<_>>(), [(&b"b"[..], &b"2"[..]), (b"c", b"4")]);
        assert!(f.remove_where(|_, n| n == b"b" || n == b"c"));
        assert_eq!(f.iter().count(), 0);
    }

    #[test]
    fn set_replaces_every_value_and_goes_last() {
        let mut f = fields(&[("host", "a"), ("x", "1"), ("host", "b")]);
        f.set("host", b"upstream:8080");
        assert_eq!(f.get_all("host").collect::<Vec<_>>(), [&b"upstream:8080"[..]]);
        f.set("content-length", b"12");
        f.set("host", b"c");
        assert_eq!(f.iter().collect::<Vec<_>>(), [(&b"x"[..], &b"1"[..]), (b"content-length", b"12"), (b"host", b"c")]);
        assert_eq!(f.first_shared(Known::Host).as_deref(), Some(&b"c"[..]));
        assert_eq!(f.first_of(Known::ContentLength), Some(&b"12"[..]));
    }

    #[test]
    fn debug_output_names_fields_but_never_shows_values() {
        let f = fields(&[("apikey", "secret-key-value"), ("accept", "*/*")]);
        let shown = format!("{f:?}");
        assert!(shown.contains("apikey") && shown.contains("accept"), "{shown}");
        assert!(!shown.contains("secret-key-value") && !shown.contains("*/*"), "{shown}");
    }
}
