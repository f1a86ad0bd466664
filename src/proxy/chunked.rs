//! Decoding a chunked body (RFC 9112 §7.1) out of a connection's read
//! buffer, one step at a time, without copying the data: upstream responses
//! and client requests alike. Chunk extensions and trailer fields are read
//! and dropped (trailers are not forwarded).

use bytes::{Buf, Bytes, BytesMut};

/// Largest trailer section accepted (as large as a head may be).
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Longest chunk-size line accepted (size plus extensions).
const MAX_SIZE_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk: this many data bytes to go.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields up to an empty line.
    Trailers,
    Done,
}

/// One decoding step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// `buf` holds no complete next piece: read more.
    NeedMore,
    Done,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

impl Chunked {
    /// Decodes from the front of `buf`, consuming what it decodes.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            match *self {
                Chunked::Size => {
                    // httparse would read an empty size as 0: insist on a digit.
                    match buf.first() {
                        None => return Ok(Step::NeedMore),
                        Some(b) if !b.is_ascii_hexdigit() => return Err(ChunkError),
                        Some(_) => {}
                    }
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            *self = if size == 0 { Chunked::Trailers } else { Chunked::Data(size) };
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_SIZE_LINE => return Ok(Step::NeedMore),
                        _ => return Err(ChunkError),
                    }
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
                    let left = left - take as u64;
                    *self = if left == 0 { Chunked::DataEnd } else { Chunked::Data(left) };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                Chunked::DataEnd => match buf.get(..2) {
                    None if buf.first().is_none_or(|&b| b == b'\r') => return Ok(Step::NeedMore),
                    Some(b"\r\n") => {
                        buf.advance(2);
                        *self = Chunked::Size;
                    }
                    _ => return Err(ChunkError),
                },
                Chunked::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                        *self = Chunked::Done;
                    } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.advance(end + 4);
                        *self = Chunked::Done;
                    } else if buf.len() < MAX_TRAILER_BYTES {
                        return Ok(Step::NeedMore);
                    } else {
                        return Err(ChunkError);
                    }
                }
                Chunked::Done => return Ok(Step::Done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `piece` bytes; returns the data and what
    /// is left in the buffer after the end.
    fn decode(input: &[u8], piece: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut state = Chunked::default();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut rest = input.chunks(piece);
        loop {
            match state.step(&mut buf)? {
                Step::Data(b) => data.extend_from_slice(&b),
                Step::Done => return Ok((data, buf.to_vec())),
                Step::NeedMore => match rest.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Err(ChunkError),
                },
            }
        }
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, body.len()] {
            let (data, rest) = decode(body, piece).expect("valid");
            assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
            // What follows the body stays for the next response.
            assert_eq!(rest, &b"NEXT"[..rest.len()]);
        }
    }

    #[test]
    fn trailers_are_skipped() {
        let (data, rest) = decode(b"3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nZ", 1).expect("valid");
        assert_eq!((data.as_slice(), rest.as_slice()), (&b"abc"[..], &b""[..]));
        let (data, _) = decode(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", 64).expect("valid");
        assert_eq!(data, b"abc");
    }

    #[test]
    fn malformed_bodies_fail() {
        for bad in
            [&b"\r\n"[..], b"x\r\n", b"3\r\nabcX\r\n0\r\n\r\n", b"3\nabc\r\n", b"fffffffffffffffff\r\n", b"-1\r\n"]
        {
            assert_eq!(decode(bad, 1), Err(ChunkError), "{}", String::from_utf8_lossy(bad));
        }
        // Truncated: never done.
        assert_eq!(decode(b"5\r\nab", 1), Err(ChunkError));
    }
}
