//! HTTP/1.1 message heads on the upstream side: the request head we write
//! and the response head we read, with how each body is framed (RFC 9112
//! §6). Pure: bytes in, bytes out, no I/O.
//!
//! Framing is decided here and only here: the client's own
//! `Content-Length`/`Transfer-Encoding` never reach the upstream as sent
//! (the client-facing server checked them on the way in), so the upstream sees exactly
//! one framing header that matches the bytes that follow.

use std::ops::Range;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::proxy::wire;

/// Largest response head accepted (status line + headers). nginx's default
/// is 4-8 KiB (`proxy_buffer_size`); this is generous on purpose.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most response header fields accepted (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// How the request body goes upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no framing header (GET and friends).
    None,
    Length(u64),
    Chunked,
}

impl RequestFraming {
    /// `known`: the body's exact length when known up front (buffered, or a
    /// client `Content-Length`); `declared`: the client sent a
    /// `Content-Length` (an explicit `0` is kept).
    pub fn choose(known: Option<u64>, declared: bool) -> Self {
        match known {
            Some(0) if !declared => RequestFraming::None,
            Some(n) => RequestFraming::Length(n),
            None => RequestFraming::Chunked,
        }
    }
}

/// Header fields the caller writes into the head itself, after the map's:
/// the proxy's own (identity, forwarding) go from the values they are made
/// of straight into the head, never through a `HeaderMap` (each insert
/// there is a hash, a probe and often a copy of the value).
pub trait AddedFields: Sync {
    /// Appends `name: value\r\n` lines; values must be valid field values.
    fn encode(&self, out: &mut Vec<u8>);
}

/// Nothing added.
impl AddedFields for () {
    fn encode(&self, _: &mut Vec<u8>) {}
}

/// Appends one `name: value\r\n` line.
pub fn put_field(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes `METHOD target HTTP/1.1`, the headers (minus any framing header),
/// the `added` fields and our framing header into `out`.
pub fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    added: &dyn AddedFields,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        put_field(out, name, value.as_bytes());
    }
    added.encode(out);
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa_u64(n, &mut [0; 20]));
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Decimal digits of `n`, written into `buf`.
fn itoa_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: HEAD, 1xx, 204, 304, or `Content-Length: 0`.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection (which then cannot be reused).
    UntilClose,
}

/// Why a response head cannot be used. The upstream gets a 502.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("invalid header {0}")]
    InvalidHeader(String),
    #[error("invalid Content-Length")]
    InvalidLength,
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    #[error("unexpected 101 Switching Protocols (upgrades are not proxied)")]
    Upgrade,
}

/// A parsed response head; header values share the head's bytes.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: BodyFraming,
    /// The upstream lets us send another request on this connection.
    pub keep_alive: bool,
}

/// What one parse attempt found at the start of the buffer.
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// An informational (1xx) head of this many bytes: skip it, read on.
    Informational(usize),
    /// A final head of this many bytes; `head` turns it into a `ResponseHead`
    /// once those bytes are split off.
    Final(usize, Pending),
}

/// A final head, parsed but not yet turned into values: names and value
/// positions, kept until the head bytes are frozen so values are shared,
/// not copied.
pub struct Pending {
    status: StatusCode,
    version: Version,
    fields: Vec<(HeaderName, Range<usize>)>,
}

/// Parses the head at the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Result<Parsed, HeadError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut raw);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e)),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed(httparse::Error::Status))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(HeadError::Upgrade);
    }
    if status.is_informational() {
        return Ok(Parsed::Informational(len));
    }
    let version = if response.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let base = buf.as_ptr() as usize;
    let mut fields = Vec::with_capacity(response.headers.len());
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::InvalidHeader(h.name.into()))?;
        // The value's position in `buf`, of which it is a subslice (an
        // empty value needs no position).
        let start = (h.value.as_ptr() as usize).wrapping_sub(base);
        let range = match start.checked_add(h.value.len()) {
            _ if h.value.is_empty() => 0..0,
            Some(end) if end <= len => start..end,
            _ => return Err(HeadError::InvalidHeader(name.as_str().into())),
        };
        fields.push((name, range));
    }
    Ok(Parsed::Final(len, Pending { status, version, fields }))
}

impl Pending {
    /// Builds the head from its frozen bytes (those `parse_response` saw).
    /// Hop-by-hop fields (RFC 9110 §7.6.1: `Connection`, the names it
    /// lists, and the fixed list) are read for framing and left out; the
    /// map has room for `spare` more fields (ours: Via, latency headers).
    pub fn head(self, bytes: &Bytes, head_request: bool, spare: usize) -> Result<ResponseHead, HeadError> {
        let values = |name: HeaderName| {
            self.fields.iter().filter(move |(n, _)| *n == name).map(|(_, range)| &bytes[range.clone()])
        };
        let framing = framing(self.status, head_request, values(TRANSFER_ENCODING), values(CONTENT_LENGTH))?;
        let keep_alive = framing != BodyFraming::UntilClose && wire::keeps_alive(self.version, values(CONNECTION));
        let tokens = || values(CONNECTION).flat_map(|v| v.split(|&b| b == b',')).map(<[u8]>::trim_ascii);
        // Nearly always `Connection: keep-alive` (itself hop-by-hop) or
        // none: then no other field needs looking up in it.
        let lists_fields = tokens().any(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive"));
        let listed = |name: &HeaderName| lists_fields && tokens().any(|t| t.eq_ignore_ascii_case(name.as_ref()));
        let mut headers = HeaderMap::with_capacity(self.fields.len() + spare);
        for (name, range) in &self.fields {
            if is_hop_by_hop(name) || listed(name) {
                continue;
            }
            let value = HeaderValue::from_maybe_shared(bytes.slice(range.clone()))
                .map_err(|_| HeadError::InvalidHeader(name.as_str().into()))?;
            headers.append(name.clone(), value);
        }
        Ok(ResponseHead { status: self.status, version: self.version, headers, framing, keep_alive })
    }
}

/// Hop-by-hop fields that are never forwarded, whatever `Connection` says.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [CONNECTION, TRANSFER_ENCODING, TE, TRAILER, UPGRADE].contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// RFC 9112 §6.3, strictly: a response with both framing headers, or a
/// Content-Length that is not one number, is refused rather than guessed.
fn framing<'a>(
    status: StatusCode,
    head_request: bool,
    encodings: impl Iterator<Item = &'a [u8]>,
    lengths: impl Iterator<Item = &'a [u8]>,
) -> Result<BodyFraming, HeadError> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(BodyFraming::Empty);
    }
    let mut lengths = lengths.peekable();
    // Chunked only when it is the last coding applied.
    if let Some(last) = encodings.last() {
        if lengths.peek().is_some() {
            return Err(HeadError::LengthAndEncoding);
        }
        let coding = last.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
        return Ok(if coding.eq_ignore_ascii_case(b"chunked") {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        });
    }
    Ok(match wire::content_length(lengths).map_err(|_| HeadError::InvalidLength)? {
        Some(0) => BodyFraming::Empty,
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head_request: bool) -> Result<ResponseHead, HeadError> {
        match parse_response(raw)? {
            Parsed::Final(len, pending) => pending.head(&Bytes::copy_from_slice(&raw[..len]), head_request, 0),
            Parsed::Partial => panic!("partial"),
            Parsed::Informational(_) => panic!("informational"),
        }
    }

    #[test]
    fn request_head_has_exactly_our_framing() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let mut out = Vec::new();
        struct Ours;
        impl AddedFields for Ours {
            fn encode(&self, out: &mut Vec<u8>) {
                put_field(out, &HeaderName::from_static("x-ours"), b"v");
            }
        }
        encode_request(&mut out, &Method::POST, "/p?q=1", &headers, &Ours, RequestFraming::Length(1234567890));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-a: 2\r\nx-ours: v\r\ncontent-length: 1234567890\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/", &HeaderMap::new(), &(), RequestFraming::None);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        let mut out = Vec::new();
        encode_request(&mut out, &Method::PUT, "/", &HeaderMap::new(), &(), RequestFraming::Chunked);
        assert_eq!(out, b"PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        let mut out = Vec::new();
        encode_request(&mut out, &Method::POST, "/", &HeaderMap::new(), &(), RequestFraming::Length(0));
        assert_eq!(out, b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn request_framing_choice() {
        assert_eq!(RequestFraming::choose(Some(0), false), RequestFraming::None);
        assert_eq!(RequestFraming::choose(Some(0), true), RequestFraming::Length(0));
        assert_eq!(RequestFraming::choose(Some(5), false), RequestFraming::Length(5));
        assert_eq!(RequestFraming::choose(None, false), RequestFraming::Chunked);
    }

    #[test]
    fn response_framing_rules() {
        let cases: [(&[u8], bool, Result<BodyFraming, HeadError>); 12] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, Ok(BodyFraming::Length(5))),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, Ok(BodyFraming::Empty)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, Ok(BodyFraming::Empty)),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false, Ok(BodyFraming::Empty)),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, Ok(BodyFraming::Empty)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, Ok(BodyFraming::Chunked)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, Ok(BodyFraming::UntilClose)),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, Ok(BodyFraming::UntilClose)),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\n",
                false,
                Ok(BodyFraming::Length(3)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                false,
                Err(HeadError::InvalidLength),
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n", false, Err(HeadError::InvalidLength)),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Err(HeadError::LengthAndEncoding),
            ),
        ];
        for (raw, head_request, want) in cases {
            let got = parse(raw, head_request).map(|h| h.framing);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let keep = |raw: &[u8]| parse(raw, false).unwrap().keep_alive;
        assert!(keep(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(!keep(b"HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 1\r\n\r\n"));
        assert!(!keep(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(keep(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"));
        // Read until close: never reusable.
        assert!(!keep(b"HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn hop_by_hop_fields_are_left_out() {
        let head = parse(
            b"HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
              Proxy-Connection: x\r\nTrailer: y\r\nUpgrade: z\r\nTE: t\r\nX-Kept: yes\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert_eq!(head.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn values_are_shared_and_repeats_kept_in_order() {
        let head =
            parse(b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-Y: z\r\nSet-Cookie: b=2\r\n\r\n", false).unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(head.headers["x-y"], "z");
    }

    #[test]
    fn partial_informational_oversized_and_malformed() {
        assert!(matches!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le"), Ok(Parsed::Partial)));
        assert!(matches!(parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), Ok(Parsed::Informational(25))));
        assert!(matches!(parse_response(b"HTTP/1.1 101 Switching\r\n\r\n"), Err(HeadError::Upgrade)));
        assert!(matches!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse_response(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), Err(HeadError::Malformed(_))));
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() < MAX_HEAD_BYTES {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert!(matches!(parse_response(&big), Err(HeadError::TooLarge)));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse_response(&many), Err(HeadError::TooLarge)));
    }
}
