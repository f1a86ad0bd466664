//! HTTP/1.1 message heads on the upstream side: the request head we write
//! and the response head we read, with how each body is framed (RFC 9112
//! §6). Pure: bytes in, bytes out, no I/O.
//!
//! Framing is decided here and only here: the client's own
//! `Content-Length`/`Transfer-Encoding` never reach the upstream as sent
//! (the client-facing server checked them on the way in), so the upstream sees exactly
//! one framing header that matches the bytes that follow.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::proxy::fields::RequestFields;
use crate::proxy::headers::Known;
use crate::proxy::lines::Lines;
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

/// Writes `METHOD target HTTP/1.1`, the headers (minus any framing header),
/// the `added` fields and our framing header into `out`.
pub fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    fields: &RequestFields,
    added: &dyn AddedFields,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // Framing is ours to write (and Transfer-Encoding was removed as
    // hop-by-hop already).
    fields.write_lines(out, |known| known == Known::ContentLength || known == Known::TransferEncoding);
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

/// A parsed response head; its fields stay in the head's bytes.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub fields: Fields,
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

/// A final head, parsed into positions, kept until the head bytes are
/// frozen so the fields are shared, not copied.
pub struct Pending {
    status: StatusCode,
    version: Version,
    fields: Vec<Span>,
}

/// Where one field's name and value are in the head.
#[derive(Clone, Debug)]
struct Span {
    name: Range<u32>,
    value: Range<u32>,
    known: Known,
}

/// A response's fields as the upstream sent them, hop-by-hop ones left
/// out: the head's bytes and where each field is. A proxy passes them on
/// as they are (httparse has checked every name is a token and no value
/// holds a control character), so they are never turned into a
/// `HeaderMap` on the way to an HTTP/1 client — only for HTTP/2.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    bytes: Bytes,
    spans: Vec<Span>,
}

impl Fields {
    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|s| (self.slice(&s.name), self.slice(&s.value)))
    }

    /// Every value of the field `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// The Content-Length values, in order (names were matched once, when
    /// the head was parsed).
    pub fn content_lengths(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().filter(|s| s.known == Known::ContentLength).map(|s| self.slice(&s.value))
    }

    pub fn has_date(&self) -> bool {
        self.spans.iter().any(|s| s.known == Known::Date)
    }

    /// Appends the fields as lines, as the upstream wrote them where it
    /// could be (`Lines`), with `via` added to the value of the last Via.
    /// Says whether there was a Via.
    pub fn write_lines(&self, out: &mut Vec<u8>, via: &[u8]) -> bool {
        let last_via = self.spans.iter().rposition(|s| s.known == Known::Via);
        let mut lines = Lines::new(&self.bytes);
        let range = |r: &Range<u32>| r.start as usize..r.end as usize;
        for (i, span) in self.spans.iter().enumerate() {
            lines.field(out, range(&span.name), range(&span.value));
            if Some(i) == last_via {
                lines.end_line(out, via);
            }
        }
        lines.end_line(out, b"");
        last_via.is_some()
    }

    fn slice(&self, range: &Range<u32>) -> &[u8] {
        self.bytes.get(range.start as usize..range.end as usize).unwrap_or_default()
    }

    /// The fields as a map (HTTP/2 responses); values share the head's bytes.
    pub fn to_map(&self, spare: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.spans.len() + spare);
        for span in &self.spans {
            let name = HeaderName::from_bytes(self.slice(&span.name));
            let range = span.value.start as usize..span.value.end as usize;
            let value =
                (range.end <= self.bytes.len()).then(|| HeaderValue::from_maybe_shared(self.bytes.slice(range)));
            // Both were checked by httparse; a field that still fails is left out.
            if let (Ok(name), Some(Ok(value))) = (name, value) {
                map.append(name, value);
            }
        }
        map
    }
}

/// Parses the head at the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Result<Parsed, HeadError> {
    // Left uninitialised, as for requests (h1::head::parse).
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut raw) {
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
    // A name's or value's position in `buf`, of which it is a subslice (an
    // empty value needs no position). Heads are at most 64 KiB: u32 fits.
    let position = |s: &[u8]| -> Option<Range<u32>> {
        if s.is_empty() {
            return Some(0..0);
        }
        let start = (s.as_ptr() as usize).wrapping_sub(base);
        let end = start.checked_add(s.len()).filter(|&end| end <= len)?;
        Some(u32::try_from(start).ok()?..u32::try_from(end).ok()?)
    };
    let mut fields = Vec::with_capacity(response.headers.len());
    for h in response.headers.iter() {
        let invalid = || HeadError::InvalidHeader(h.name.into());
        fields.push(Span {
            name: position(h.name.as_bytes()).ok_or_else(invalid)?,
            value: position(h.value).ok_or_else(invalid)?,
            known: Known::of(h.name.as_bytes()),
        });
    }
    Ok(Parsed::Final(len, Pending { status, version, fields }))
}

impl Pending {
    /// Builds the head from its frozen bytes (those `parse_response` saw).
    /// Hop-by-hop fields (RFC 9110 §7.6.1: `Connection`, the names it
    /// lists, and the fixed list) are read for framing and left out.
    pub fn head(self, bytes: Bytes, head_request: bool) -> Result<ResponseHead, HeadError> {
        let at = |r: &Range<u32>| bytes.get(r.start as usize..r.end as usize).unwrap_or_default();
        let values = |known: Known| self.fields.iter().filter(move |s| s.known == known).map(|s| at(&s.value));
        let framing =
            framing(self.status, head_request, values(Known::TransferEncoding), values(Known::ContentLength))?;
        let keep_alive =
            framing != BodyFraming::UntilClose && wire::keeps_alive(self.version, values(Known::Connection));
        let tokens = || values(Known::Connection).flat_map(|v| v.split(|&b| b == b',')).map(<[u8]>::trim_ascii);
        // Nearly always `Connection: keep-alive` (itself hop-by-hop) or
        // none: then no other field needs looking up in it.
        let listed: Vec<&[u8]> = if tokens().any(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive")) {
            tokens().collect()
        } else {
            Vec::new()
        };
        let mut spans = self.fields;
        // Never forwarded, whatever `Connection` says (RFC 9110 §7.6.1);
        // unlike a request's, a response's Expect is nothing to the proxy.
        spans.retain(|s| match s.known {
            Known::Connection | Known::TransferEncoding | Known::HopByHop => false,
            _ => !listed.iter().any(|t| t.eq_ignore_ascii_case(at(&s.name))),
        });
        drop(listed);
        let fields = Fields { bytes, spans };
        Ok(ResponseHead { status: self.status, version: self.version, fields, framing, keep_alive })
    }
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
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

    use super::*;
    use crate::proxy::lines::put_field;

    fn parse(raw: &[u8], head_request: bool) -> Result<ResponseHead, HeadError> {
        match parse_response(raw)? {
            Parsed::Final(len, pending) => pending.head(Bytes::copy_from_slice(&raw[..len]), head_request),
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
        encode_request(
            &mut out,
            &Method::POST,
            "/p?q=1",
            &(&headers).into(),
            &Ours,
            RequestFraming::Length(1234567890),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-a: 2\r\nx-ours: v\r\ncontent-length: 1234567890\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/", &RequestFields::default(), &(), RequestFraming::None);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        let mut out = Vec::new();
        encode_request(&mut out, &Method::PUT, "/", &RequestFields::default(), &(), RequestFraming::Chunked);
        assert_eq!(out, b"PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        let mut out = Vec::new();
        encode_request(&mut out, &Method::POST, "/", &RequestFields::default(), &(), RequestFraming::Length(0));
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
        let names: Vec<&[u8]> = head.fields.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"X-Kept"[..]]);
    }

    #[test]
    fn fields_the_proxy_reads_are_found_by_kind() {
        let head = parse(
            b"HTTP/1.1 200 OK\r\nVIA: 1.1 a\r\nContent-Length: 2\r\nX: 1\r\nvia: 1.1 b\r\nX-Date: no\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(head.fields.content_lengths().collect::<Vec<_>>(), [b"2"]);
        let mut out = Vec::new();
        assert!(head.fields.write_lines(&mut out, b", 1.1 p"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "VIA: 1.1 a\r\nContent-Length: 2\r\nX: 1\r\nvia: 1.1 b, 1.1 p\r\nX-Date: no\r\n",
            "ours goes on the last Via, the lines as they were sent"
        );
        assert!(!head.fields.has_date(), "X-Date is not Date");
        // A field the Connection header lists is gone, and so is its role.
        let head =
            parse(b"HTTP/1.1 200 OK\r\nDate: d\r\nVia: v\r\nConnection: via\r\nContent-Length: 0\r\n\r\n", false)
                .unwrap();
        let mut out = Vec::new();
        assert_eq!((head.fields.write_lines(&mut out, b", 1.1 p"), head.fields.has_date()), (false, true));
        assert_eq!(String::from_utf8_lossy(&out), "Date: d\r\nContent-Length: 0\r\n");
    }

    #[test]
    fn values_are_shared_and_repeats_kept_in_order() {
        let head =
            parse(b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-Y: z\r\nSet-Cookie: b=2\r\n\r\n", false).unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        let cookies: Vec<_> = head.fields.get_all("set-cookie").collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
        assert_eq!(head.fields.get_all("x-y").collect::<Vec<_>>(), [b"z"]);
        // As a map (HTTP/2), the same fields in the same order.
        let map = head.fields.to_map(0);
        assert_eq!(map.get_all("set-cookie").iter().collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert_eq!(map["x-y"], "z");
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
