//! One client connection's socket and buffers: what was read and not yet
//! consumed (heads, body bytes, pipelined requests) and the response bytes
//! waiting to be written.

use std::io;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::proxy::wire::{self, MAX_READ_CHUNK, READ_CHUNK};

pub struct Io<I> {
    pub stream: I,
    /// Bytes read and not consumed yet.
    pub buf: BytesMut,
    /// Response bytes not written yet (reused: no allocation per response).
    pub out: Vec<u8>,
    read_chunk: usize,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Io<I> {
    pub fn new(stream: I) -> Self {
        Io { stream, buf: BytesMut::with_capacity(READ_CHUNK), out: Vec::with_capacity(1024), read_chunk: READ_CHUNK }
    }

    /// Between requests: buffers a large upload or response grew are given
    /// back, so an idle connection holds a few KiB, not hundreds.
    pub fn settle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > MAX_READ_CHUNK {
            self.buf = BytesMut::with_capacity(READ_CHUNK);
            self.read_chunk = READ_CHUNK;
        }
        if self.out.capacity() > MAX_READ_CHUNK {
            self.out = Vec::with_capacity(1024);
        }
    }

    /// Reads what is available into `buf`; 0 at end of stream.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        wire::poll_read(&mut self.stream, &mut self.buf, &mut self.read_chunk, cx)
    }

    pub async fn read(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// Writes out what `out` holds (flushing a TLS stream's records too).
    pub async fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.flush().await
    }

    /// Writes a large piece of body directly, after what `out` holds.
    pub async fn write_direct(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.write_all(data).await
    }
}
