//! HTTP/1 pieces both sides of the proxy share (RFC 9112): reading a
//! connection into a buffer that grows with the traffic, and what
//! `Content-Length` and `Connection` say. Chunked bodies are `chunked.rs`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use http::Version;
use tokio::io::AsyncRead;

/// Buffer space made available before each read: this to start with,
/// doubling (up to `MAX_READ_CHUNK`) while reads fill it, as a large body
/// streams through.
pub const READ_CHUNK: usize = 8 * 1024;
pub const MAX_READ_CHUNK: usize = 128 * 1024;

/// Reads what is available from `stream` into `buf`, `chunk` bytes at most
/// (see `READ_CHUNK`); 0 at end of stream.
pub fn poll_read<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    chunk: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    buf.reserve(*chunk);
    let room = buf.capacity() - buf.len();
    let read = ready!(tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf))?;
    if read == room {
        *chunk = (*chunk * 2).min(MAX_READ_CHUNK);
    }
    Poll::Ready(Ok(read))
}

/// A `Content-Length` that is not one decimal number.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidLength;

/// The length the `Content-Length` fields declare, if any. Repeated (or
/// comma-listed) identical values are one length (RFC 9110 §8.6); anything
/// else that is not digits, or differing values, is refused, never guessed.
pub fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, InvalidLength> {
    let mut length: Option<u64> = None;
    for part in values.flat_map(|v| v.split(|&b| b == b',')) {
        let part = part.trim_ascii();
        // 19 digits always fit in a u64.
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(InvalidLength);
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if length.is_some_and(|l| l != n) {
            return Err(InvalidLength);
        }
        length = Some(n);
    }
    Ok(length)
}

/// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only
/// with `Connection: keep-alive`.
pub fn keeps_alive<'a>(version: Version, connection: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut tokens = connection.flat_map(|v| v.split(|&b| b == b',')).map(<[u8]>::trim_ascii);
    if version == Version::HTTP_10 {
        tokens.any(|t| t.eq_ignore_ascii_case(b"keep-alive"))
    } else {
        !tokens.any(|t| t.eq_ignore_ascii_case(b"close"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(values: &[&str]) -> Result<Option<u64>, InvalidLength> {
        content_length(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn lengths_are_one_number_or_refused() {
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&["42"]), Ok(Some(42)));
        assert_eq!(length(&["42", " 42 , 42"]), Ok(Some(42)));
        for bad in [&["4", "5"][..], &["+4"], &[""], &["4 2"], &["99999999999999999999"], &["0x10"]] {
            assert_eq!(length(bad), Err(InvalidLength), "{bad:?}");
        }
    }

    #[test]
    fn persistence_follows_the_version() {
        assert!(keeps_alive(Version::HTTP_11, [&b"keep-alive"[..]].into_iter()));
        assert!(!keeps_alive(Version::HTTP_11, [&b"foo, Close"[..]].into_iter()));
        assert!(!keeps_alive(Version::HTTP_10, std::iter::empty()));
        assert!(keeps_alive(Version::HTTP_10, [&b"Keep-Alive"[..]].into_iter()));
    }
}
