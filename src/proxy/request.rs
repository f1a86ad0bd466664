//! Request normalization done once before routing: the host the router sees
//! and the path both the router and the upstream see (so they cannot
//! disagree, e.g. `/public/../private` must not dodge a protected route).

use std::borrow::Cow;

use http::{Method, Uri, Version};

use super::fields::RequestFields;

/// What the handler reads of a client request before its body.
#[derive(Debug)]
pub struct ClientHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub fields: RequestFields,
}

/// The routing host: `:authority` for HTTP/2, else the Host header (falling
/// back to an absolute-form URI), lower-cased, without port or trailing dot.
/// A Host header that is not ASCII routes as no host.
pub fn routing_host<'a>(uri: &'a Uri, host_header: Option<&'a [u8]>, version: Version) -> Cow<'a, str> {
    let raw = match (version, uri.authority()) {
        (Version::HTTP_2, Some(authority)) => authority.as_str(),
        (_, authority) => match host_header {
            Some(host) if host.is_ascii() => std::str::from_utf8(host).unwrap_or(""),
            Some(_) => "",
            None => authority.map_or("", |a| a.as_str()),
        },
    };
    normalize_host(raw)
}

pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    // Byte searches (the delimiters are ASCII, so every cut is on a char
    // boundary): `str`'s char-pattern searchers cost ten times as much.
    // Userinfo can only come from an absolute URI; it is not part of the host.
    let raw = raw.bytes().rposition(|b| b == b'@').map_or(raw, |at| &raw[at + 1..]);
    let host = if raw.starts_with('[') {
        raw.bytes().position(|b| b == b']').map_or(raw, |end| &raw[..=end])
    } else {
        raw.bytes().position(|b| b == b':').map_or(raw, |colon| &raw[..colon])
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Normalizes a request path: decodes `%XX` of unreserved characters only
/// (RFC 3986 §2.3; anything else stays encoded, so `%2F` never becomes a
/// segment separator), collapses repeated slashes and resolves `.`/`..`
/// segments (never above the root). Borrows when already normal.
pub fn normalize_path(raw: &str) -> Cow<'_, str> {
    if is_normal(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    let decoded = decode_unreserved(raw);
    let mut out = String::with_capacity(decoded.len() + 1);
    // A trailing slash, or a trailing dot segment, leaves a directory path.
    let mut trailing_slash = false;
    for segment in decoded.split('/') {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
                trailing_slash = true;
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Cow::Owned(out)
}

/// True when `normalize_path` would return the input unchanged.
fn is_normal(p: &[u8]) -> bool {
    if p.first() != Some(&b'/') || p.contains(&b'%') {
        return false;
    }
    // Inspect every segment start: empty (`//`), `.` or `..` segments.
    let mut i = 0;
    while i < p.len() {
        // p[i] == b'/'
        let rest = &p[i + 1..];
        let seg_end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let seg = &rest[..seg_end];
        let is_last = seg_end == rest.len();
        if (seg.is_empty() && !is_last) || seg == b"." || seg == b".." {
            return false;
        }
        i += 1 + seg_end;
    }
    true
}

fn decode_unreserved(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex))
        {
            let c = (h << 4) | l;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(c));
                i += 3;
                continue;
            }
        }
        // Everything in a URI path is ASCII (`Uri` validates it), so
        // pushing byte by byte keeps the string valid.
        out.push(char::from(b[i]));
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a///b", "/a/b"),
            ("/public/../private", "/private"),
            ("/public/%2E%2E/private", "/private"),
            ("/public/%2e./private", "/private"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/%41%2F%7e", "/A%2F~"),
            ("/%zz%4", "/%zz%4"),
            ("/a..b/.c", "/a..b/.c"),
            ("", "/"),
            ("*", "/*"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
        assert!(matches!(normalize_path("/a/b.c/d"), Cow::Borrowed(_)));
    }

    #[test]
    fn hosts() {
        for (raw, want) in [
            ("Example.COM:8080", "example.com"),
            ("example.com.", "example.com"),
            ("[::1]:80", "[::1]"),
            ("user@Host", "host"),
            ("", ""),
        ] {
            assert_eq!(normalize_host(raw), want);
        }
    }
}
