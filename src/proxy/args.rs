//! `name=value&...` argument lists (query strings and form bodies), read the
//! way Kong (ngx.req.get_uri_args) reads them, and edited without touching
//! the other arguments' raw encoding.

use std::borrow::Cow;

/// What one name maps to, in one location.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Missing,
    /// Present without `=` (or, in a JSON body, not a string): no key here,
    /// and — as in Kong — no further location is searched for this name.
    Valueless,
    One(Cow<'a, [u8]>),
    /// Given more than once.
    Duplicate,
}

impl Lookup<'_> {
    pub fn is_missing(&self) -> bool {
        matches!(self, Lookup::Missing)
    }
}

/// Raw `(name, value)` pairs; `None` value for an argument without `=`.
fn pairs(args: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    args.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| match p.iter().position(|&b| b == b'=') {
        Some(i) => (&p[..i], Some(&p[i + 1..])),
        None => (p, None),
    })
}

/// The value(s) of `name` (compared after percent-decoding).
pub fn lookup<'a>(args: &'a [u8], name: &str) -> Lookup<'a> {
    let mut found = Lookup::Missing;
    for (raw_name, raw_value) in pairs(args) {
        if !decoded_eq(raw_name, name.as_bytes()) {
            continue;
        }
        if !found.is_missing() {
            return Lookup::Duplicate;
        }
        found = match raw_value {
            Some(v) => Lookup::One(decode(v)),
            None => Lookup::Valueless,
        };
    }
    found
}

/// `args` without any argument named `name`, others kept byte for byte and
/// in order; None when there was none to remove.
pub fn remove(args: &[u8], name: &str) -> Option<Vec<u8>> {
    if lookup(args, name).is_missing() {
        return None;
    }
    let mut out = Vec::with_capacity(args.len());
    for piece in args.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let raw_name = piece.split(|&b| b == b'=').next().unwrap_or(piece);
        if decoded_eq(raw_name, name.as_bytes()) {
            continue;
        }
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(piece);
    }
    Some(out)
}

/// Form decoding (`+` is a space, `%XX` a byte); malformed escapes are kept
/// literally. Borrows when there is nothing to decode.
pub fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut it = Decoder { raw, i: 0 };
    while let Some(b) = it.next_byte() {
        out.push(b);
    }
    Cow::Owned(out)
}

/// Whether `raw` decodes to exactly `want`, without allocating.
fn decoded_eq(raw: &[u8], want: &[u8]) -> bool {
    let mut it = Decoder { raw, i: 0 };
    for &w in want {
        if it.next_byte() != Some(w) {
            return false;
        }
    }
    it.next_byte().is_none()
}

struct Decoder<'a> {
    raw: &'a [u8],
    i: usize,
}

impl Decoder<'_> {
    fn next_byte(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.i)?;
        self.i += 1;
        match b {
            b'+' => Some(b' '),
            b'%' => {
                let h = self.raw.get(self.i).and_then(hex);
                let l = self.raw.get(self.i + 1).and_then(hex);
                match (h, l) {
                    (Some(h), Some(l)) => {
                        self.i += 2;
                        Some((h << 4) | l)
                    }
                    _ => Some(b'%'),
                }
            }
            b => Some(b),
        }
    }
}

fn hex(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Lookup<'_> {
        Lookup::One(Cow::Borrowed(s.as_bytes()))
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup(b"a=1&apikey=k", "apikey"), one("k"));
        assert_eq!(lookup(b"api%6Bey=k%20x+y", "apikey"), Lookup::One(Cow::Owned(b"k x y".to_vec())));
        assert_eq!(lookup(b"apikey", "apikey"), Lookup::Valueless);
        assert_eq!(lookup(b"apikey=", "apikey"), one(""));
        assert_eq!(lookup(b"apikey=a&apikey=b", "apikey"), Lookup::Duplicate);
        assert_eq!(lookup(b"apikey&apikey=b", "apikey"), Lookup::Duplicate);
        assert_eq!(lookup(b"apikeyx=1&&=&%", "apikey"), Lookup::Missing);
        assert_eq!(lookup(b"apikey=%zz%4", "apikey"), one("%zz%4"));
    }

    #[test]
    fn removal_keeps_others_raw() {
        assert_eq!(remove(b"b=%2f&apikey=k&a=x+y", "apikey").as_deref(), Some(&b"b=%2f&a=x+y"[..]));
        assert_eq!(remove(b"apikey=k", "apikey").as_deref(), Some(&b""[..]));
        assert_eq!(remove(b"a=1", "apikey"), None);
        assert_eq!(remove(b"api%6bey=1&apikey&c", "apikey").as_deref(), Some(&b"c"[..]));
    }
}
