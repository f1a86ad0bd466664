//! Response heads to the client (RFC 9112 §4, §6): the status line, the
//! response's fields, a Date, and exactly one framing decision. Pure apart
//! from the clock behind `Date`.

use std::cell::RefCell;
use std::time::UNIX_EPOCH;

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, StatusCode, Version};

use crate::proxy::clock;
use crate::proxy::lines::put_field;

/// How the response body goes to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes are written (HEAD, 1xx, 204, 304).
    None,
    /// The body is exactly this long (a Content-Length is in the head).
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 clients, unknown length).
    UntilClose,
}

/// What the head must say about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// An HTTP/1.0 client that asked to keep the connection.
    KeepAlive10,
    Close,
}

/// The request facts a response head depends on.
pub struct Exchange {
    /// The request was a HEAD.
    pub head: bool,
    pub version: Version,
    pub status: StatusCode,
    /// The response's own Content-Length (an upstream's).
    pub declared: Option<u64>,
    /// The body's exact length, when known.
    pub body_len: Option<u64>,
}

/// Decides the framing (RFC 9112 §6.3): statuses and methods without a
/// body first, then the response's own Content-Length (an upstream's, whose
/// body is delimited by it), then the body's known length; else chunked,
/// or close-delimited for an HTTP/1.0 client that cannot read chunks.
pub fn framing(x: &Exchange) -> Framing {
    if x.head
        || x.status.is_informational()
        || x.status == StatusCode::NO_CONTENT
        || x.status == StatusCode::NOT_MODIFIED
    {
        return Framing::None;
    }
    match x.declared.or(x.body_len) {
        Some(n) => Framing::Length(n),
        None if x.version == Version::HTTP_10 => Framing::UntilClose,
        None => Framing::Chunked,
    }
}

/// Writes the head into `out`. A HEAD response keeps the fields a GET
/// would have had, a Content-Length included when known.
pub fn encode<'f>(
    out: &mut Vec<u8>,
    x: &Exchange,
    fields: impl IntoIterator<Item = (&'f HeaderName, &'f HeaderValue)>,
    framing: Framing,
    persistence: Persistence,
) {
    status_line(out, x.status);
    let mut written = Written::default();
    for (name, value) in fields {
        // Framing and connection fields are ours to write; the response's
        // Content-Length stays (it is what `framing` used).
        if name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        written.length |= name == CONTENT_LENGTH;
        written.date |= name == DATE;
        put_field(out, name, value.as_bytes());
    }
    finish(out, x, framing, persistence, written);
}

/// Which of the fields `finish` would add the response's own fields had.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written {
    pub date: bool,
    pub length: bool,
}

/// `HTTP/1.1 <code> <reason>`: the version we speak, whatever the client's.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// After the response's own fields: Date, framing and connection fields,
/// and the blank line that ends the head.
pub fn finish(out: &mut Vec<u8>, x: &Exchange, framing: Framing, persistence: Persistence, written: Written) {
    let has_length = written.length;
    if !written.date {
        DATE_CACHE.with_borrow_mut(|date| put_field(out, &DATE, date.now()));
    }
    match framing {
        Framing::Length(n) if !has_length => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::None if !has_length && x.head => {
            if let Some(n) = x.body_len.filter(|&n| n > 0) {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Length(_) | Framing::None | Framing::UntilClose => {}
    }
    match persistence {
        Persistence::KeepAlive => {}
        Persistence::KeepAlive10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
        Persistence::Close => out.extend_from_slice(b"connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// The IMF-fixdate of the current second, formatted once per second per
/// thread (as nginx and hyper do), not per response.
struct DateCache {
    second: u64,
    text: [u8; 29],
}

thread_local! {
    static DATE_CACHE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, text: [b' '; 29] }) };
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let now = clock::wall();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == self.text.len() {
                self.text.copy_from_slice(text.as_bytes());
                self.second = second;
            }
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn declared_length(headers: &HeaderMap) -> Option<u64> {
        headers.get(CONTENT_LENGTH).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok())
    }

    fn head(x: &(Exchange, &HeaderMap), persistence: Persistence) -> (Framing, String) {
        let framing = framing(&x.0);
        let mut out = Vec::new();
        encode(&mut out, &x.0, x.1, framing, persistence);
        (framing, String::from_utf8(out).expect("ascii"))
    }

    fn exchange(head: bool, status: u16, headers: &HeaderMap, body_len: Option<u64>) -> (Exchange, &HeaderMap) {
        let status = StatusCode::from_u16(status).expect("status");
        let declared = declared_length(headers);
        (Exchange { head, version: Version::HTTP_11, status, declared, body_len }, headers)
    }

    #[test]
    fn known_lengths_are_declared_and_unknown_ones_chunked() {
        let empty = HeaderMap::new();
        let (framing, text) = head(&exchange(false, 401, &empty, Some(52)), Persistence::KeepAlive);
        assert_eq!(framing, Framing::Length(52));
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("\r\ncontent-length: 52\r\n") && text.contains("\r\ndate: "), "{text}");
        assert!(text.ends_with("\r\n\r\n"));

        let (framing, text) = head(&exchange(false, 200, &empty, None), Persistence::KeepAlive);
        assert_eq!(framing, Framing::Chunked);
        assert!(text.contains("\r\ntransfer-encoding: chunked\r\n"), "{text}");

        let mut x = exchange(false, 200, &empty, None);
        x.0.version = Version::HTTP_10;
        let (framing, text) = head(&x, Persistence::Close);
        assert_eq!(framing, Framing::UntilClose);
        assert!(text.contains("\r\nconnection: close\r\n") && !text.contains("chunked"), "{text}");
    }

    #[test]
    fn the_upstreams_length_and_date_are_kept_and_its_framing_fields_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("7"));
        headers.insert(DATE, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let (framing, text) = head(&exchange(false, 200, &headers, Some(7)), Persistence::KeepAlive10);
        assert_eq!(framing, Framing::Length(7));
        assert_eq!(text.matches("content-length").count(), 1, "{text}");
        assert_eq!(text.matches("date: ").count(), 1, "{text}");
        assert!(text.contains("date: Sun, 06 Nov 1994"), "{text}");
        assert!(!text.contains("chunked") && text.contains("\r\nconnection: keep-alive\r\n"), "{text}");
    }

    #[test]
    fn bodiless_responses_write_no_body_framing() {
        let empty = HeaderMap::new();
        for status in [204, 304, 100] {
            let (framing, text) = head(&exchange(false, status, &empty, Some(0)), Persistence::KeepAlive);
            assert_eq!(framing, Framing::None);
            assert!(!text.contains("content-length") && !text.contains("chunked"), "{text}");
        }
        // HEAD says how long the GET body would be, and sends none.
        let (framing, text) = head(&exchange(true, 401, &empty, Some(52)), Persistence::KeepAlive);
        assert_eq!(framing, Framing::None);
        assert!(text.contains("\r\ncontent-length: 52\r\n"), "{text}");
    }

    #[test]
    fn the_date_is_an_imf_fixdate() {
        let date = DATE_CACHE.with_borrow_mut(|d| d.now().to_vec());
        let text = String::from_utf8(date).expect("ascii");
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}
