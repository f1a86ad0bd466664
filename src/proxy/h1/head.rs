//! Client request heads (RFC 9112 §2-§3, §6): parsed out of the read
//! buffer, their body framing decided strictly. Pure: bytes in, values out.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use http::{Method, Uri, Version};

use crate::proxy::fields::{Field, RequestFields};
use crate::proxy::headers::Known;
use crate::proxy::wire;

/// Largest request head accepted (request line + fields). nginx's default
/// limit is per line (8 KiB); this is generous on purpose.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// The HTTP/2 connection preface (RFC 9113 §3.4): a client with prior
/// knowledge starts with it instead of an HTTP/1 request.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    Length(u64),
    Chunked,
}

/// A request head ready for the handler.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub fields: RequestFields,
    /// None: no body.
    pub framing: Option<BodyFraming>,
    /// The client lets the connection carry another request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
}

/// Why a request head cannot be served: answered, then the connection closes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    #[error("request head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} fields")]
    TooLarge,
    #[error("invalid body framing: {0}")]
    Framing(&'static str),
}

/// What one parse attempt found at the start of the buffer.
pub enum Parsed {
    Partial,
    /// A complete head of this many bytes; `Pending::head` builds it once
    /// those bytes are split off, so values share them instead of copying.
    Complete(usize, Pending),
}

/// A head parsed into positions, not yet into values.
pub struct Pending {
    method: Method,
    target: Range<usize>,
    version: Version,
    fields: Vec<Field>,
}

/// Parses the request head at the start of `buf`. A complete head's field
/// list is made in `spare`'s storage (taken; the previous request's).
pub fn parse(buf: &[u8], spare: &mut Vec<Field>) -> Result<Parsed, HeadError> {
    // Left uninitialised: filling 100 empty fields (3.2 KB) cost more than
    // parsing a typical head's five.
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut raw) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Complete(_)) => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::Malformed("HTTP version")),
        Err(httparse::Error::Token) => return Err(HeadError::Malformed("request line")),
        Err(_) => return Err(HeadError::Malformed("header field")),
    };
    let method = request.method.ok_or(HeadError::Malformed("method"))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::Malformed("method"))?;
    let version = if request.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let base = buf.as_ptr() as usize;
    let position = |s: &[u8]| -> Result<Range<usize>, HeadError> {
        if s.is_empty() {
            return Ok(0..0);
        }
        let start = (s.as_ptr() as usize).wrapping_sub(base);
        match start.checked_add(s.len()) {
            Some(end) if end <= len => Ok(start..end),
            _ => Err(HeadError::Malformed("header field")),
        }
    };
    let target = position(request.path.ok_or(HeadError::Malformed("request target"))?.as_bytes())?;
    let mut fields = std::mem::take(spare);
    fields.clear();
    fields.reserve(request.headers.len());
    for h in request.headers.iter() {
        fields.push(Field::at(position(h.name.as_bytes())?, position(h.value)?));
    }
    Ok(Parsed::Complete(len, Pending { method, target, version, fields }))
}

impl Pending {
    /// Builds the head from its frozen bytes (those `parse` saw): the
    /// fields stay there, read in place.
    pub fn head(self, bytes: Bytes) -> Result<RequestHead, HeadError> {
        let uri = Uri::from_maybe_shared(bytes.slice(self.target.clone()))
            .map_err(|_| HeadError::Malformed("request target"))?;
        // The head's bytes go to the fields as they are: a clone and a drop
        // would be two atomic updates of their reference count.
        let fields = RequestFields::parsed(bytes, self.fields);
        // RFC 9112 §3.2, as nginx: at most one Host, and HTTP/1.1 must send it.
        let mut hosts = fields.values_of(Known::Host);
        match (hosts.next(), hosts.next()) {
            (_, Some(_)) => return Err(HeadError::Malformed("more than one Host field")),
            (None, _) if self.version == Version::HTTP_11 => {
                return Err(HeadError::Malformed("HTTP/1.1 request without Host"));
            }
            _ => drop(hosts),
        }
        let framing =
            framing(self.version, fields.values_of(Known::TransferEncoding), fields.values_of(Known::ContentLength))?;
        let keep_alive = wire::keeps_alive(self.version, fields.values_of(Known::Connection));
        let expect_continue = framing.is_some()
            && self.version == Version::HTTP_11
            && fields.values_of(Known::Expect).any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
        Ok(RequestHead {
            method: self.method,
            uri,
            version: self.version,
            fields,
            framing,
            keep_alive,
            expect_continue,
        })
    }
}

/// RFC 9112 §6.3 for requests, strictly, as nginx does: both framing
/// fields, a transfer coding that does not end in chunked, chunked on
/// HTTP/1.0, or a Content-Length that is not one number are refused — each
/// is how request smuggling starts.
fn framing<'a>(
    version: Version,
    encodings: impl Iterator<Item = &'a [u8]>,
    lengths: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<BodyFraming>, HeadError> {
    let mut lengths = lengths.peekable();
    if let Some(last) = encodings.last() {
        if lengths.peek().is_some() {
            return Err(HeadError::Framing("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::HTTP_10 {
            return Err(HeadError::Framing("Transfer-Encoding on HTTP/1.0"));
        }
        let coding = last.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
        if !coding.eq_ignore_ascii_case(b"chunked") {
            return Err(HeadError::Framing("Transfer-Encoding does not end in chunked"));
        }
        return Ok(Some(BodyFraming::Chunked));
    }
    let length = wire::content_length(lengths).map_err(|_| HeadError::Framing("invalid Content-Length"))?;
    Ok(length.map(BodyFraming::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> Result<RequestHead, HeadError> {
        match parse(raw, &mut Vec::new())? {
            Parsed::Complete(len, pending) => pending.head(Bytes::copy_from_slice(&raw[..len])),
            Parsed::Partial => Err(HeadError::Malformed("partial")),
        }
    }

    #[test]
    fn a_plain_get_has_no_body_and_keeps_alive() {
        let h = head(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\n").expect("valid");
        assert_eq!(
            (h.method, h.uri.path(), h.uri.query(), h.version),
            (Method::GET, "/a", Some("b=c"), Version::HTTP_11)
        );
        assert_eq!(h.fields.get_all("x-two").count(), 2);
        assert_eq!(h.framing, None);
        assert!(h.keep_alive && !h.expect_continue);
    }

    #[test]
    fn fields_go_upstream_as_lines_runs_copied_whole() {
        let lines = |raw: &[u8], change: &dyn Fn(&mut RequestFields)| {
            let mut h = head(raw).expect("valid");
            change(&mut h.fields);
            let mut out = Vec::new();
            h.fields.write_lines(&mut out, |known| known == Known::ContentLength);
            String::from_utf8(out).expect("ascii")
        };
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nContent-Length: 0\r\nx-two: 2\r\nX-Three: 3\r\n\r\n";
        assert_eq!(lines(raw, &|_| {}), "Host: a\r\nX-One: 1\r\nx-two: 2\r\nX-Three: 3\r\n");
        assert_eq!(
            lines(raw, &|f| {
                f.remove("x-two");
                f.set("host", b"b");
            }),
            "X-One: 1\r\nX-Three: 3\r\nhost: b\r\n"
        );
        // Other spacing, bare LF line ends and empty values come out in the
        // usual form.
        let odd = b"GET / HTTP/1.1\nHost:a\nX-Empty:\r\nX-Pad:   p  \r\nX-Last: l\n\n";
        assert_eq!(lines(odd, &|_| {}), "Host: a\r\nX-Empty: \r\nX-Pad: p\r\nX-Last: l\r\n");
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n", &mut Vec::new()), Ok(Parsed::Partial)));
        assert!(matches!(parse(b"", &mut Vec::new()), Ok(Parsed::Partial)));
    }

    #[test]
    fn framing_is_strict() {
        let body = |raw: &[u8]| head(raw).map(|h| h.framing);
        assert_eq!(body(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"), Ok(Some(BodyFraming::Length(5))));
        assert_eq!(
            body(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"),
            Ok(Some(BodyFraming::Length(5)))
        );
        assert_eq!(
            body(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Ok(Some(BodyFraming::Chunked))
        );
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(matches!(body(bad), Err(HeadError::Framing(_))), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let ka = |raw: &[u8]| head(raw).map(|h| h.keep_alive);
        assert_eq!(ka(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"), Ok(false));
        assert_eq!(ka(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x, close\r\n\r\n"), Ok(false));
        assert_eq!(ka(b"GET / HTTP/1.0\r\n\r\n"), Ok(false));
        assert_eq!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), Ok(true));
    }

    #[test]
    fn expect_continue_only_with_a_body_on_http_11() {
        let ec = |raw: &[u8]| head(raw).map(|h| h.expect_continue);
        assert_eq!(ec(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"), Ok(true));
        assert_eq!(ec(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"), Ok(false));
        assert_eq!(ec(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"), Ok(false));
    }

    #[test]
    fn bad_heads_are_refused_with_a_reason() {
        assert!(matches!(head(b"GARBAGE\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET / HTTP/2.0\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET / HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET http://a/ HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(head(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(head(b"GET / HTTP/1.0\r\n\r\n").is_ok(), "HTTP/1.0 may leave Host out");
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 1, b'a');
        assert!(matches!(parse(&big, &mut Vec::new()), Err(HeadError::TooLarge)));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(
            parse(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(), &mut Vec::new()),
            Err(HeadError::TooLarge)
        ));
    }

    #[test]
    fn absolute_and_asterisk_targets_parse() {
        let h = head(b"GET http://example.com/x HTTP/1.1\r\nHost: x\r\n\r\n").expect("absolute");
        assert_eq!((h.uri.host(), h.uri.path()), (Some("example.com"), "/x"));
        assert!(head(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").is_ok());
    }
}
