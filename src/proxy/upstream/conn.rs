//! One HTTP/1.1 connection to an upstream target, driven from the request's
//! own task: no connection task, no channels, no wake-ups between tasks.
//! The request head (and a small body) goes out in one write; the response
//! head is parsed from the read buffer, and its body is read by
//! `UpstreamBody` straight from the same buffer and socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::FutureExt;
use http::Method;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::proxy::fields::RequestFields;
use crate::proxy::request_body::ClientBody;
use crate::proxy::wire::{self, READ_CHUNK};

use super::head::{self, AddedFields, HeadError, Parsed, RequestFraming, ResponseHead};
use crate::proxy::clock;
use crate::proxy::socket::Socket;
use crate::snapshot::Target;

/// Request bodies up to this size are sent in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// Boxed for its whole life (made once per connection, then pooled and
/// reused): what a request's response carries to the client is a pointer
/// to it, not its ~150 bytes, moved at every step from the upstream read
/// to the client write.
pub struct UpstreamConn {
    /// Where it is connected, and which pool list it goes back to.
    pub(super) target: Target,
    stream: Socket,
    /// Bytes read and not consumed yet (a response head, body bytes).
    pub(super) buf: BytesMut,
    /// The request head being written (reused: no allocation per request).
    out: Vec<u8>,
    /// How much to read at once (see `READ_CHUNK`).
    read_chunk: usize,
    /// The backend's read timeout, set for each exchange: the response
    /// body reads with it (kept here, not in the body, for the body's size).
    pub(super) read_timeout: Duration,
    /// The response-head deadline's timer: made on the first wait and then
    /// only moved when it fires before the current wait's deadline, so a
    /// request costs a clock read, not a timer registration.
    timer: Option<Pin<Box<Sleep>>>,
}

/// What the upstream request is made of.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// Origin-form request target (path and query).
    pub target: &'a str,
    pub fields: &'a RequestFields,
    pub added: &'a dyn AddedFields,
    pub framing: RequestFraming,
}

/// How sending the request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Upload {
    Complete,
    /// The upstream answered (or began to) before the body was all sent;
    /// the rest is not sent and the connection is not reused.
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection was closed (or reset) by the upstream before any of
    /// the response arrived: typically a pooled connection the upstream had
    /// just timed out. `delivered`: the request head may have reached it.
    #[error("connection closed by the upstream before a response (request written: {delivered})")]
    Closed { delivered: bool },
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Head(#[from] HeadError),
    /// Reading the client's body failed (the client went away mid-upload).
    #[error("client request body failed")]
    ClientBody,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(#[from] io::Error),
    #[error("no address for target")]
    NoAddress,
}

impl UpstreamConn {
    /// Opens a connection (resolving a name target now) within `timeout`.
    pub async fn connect(target: &Target, timeout: Duration) -> Result<Box<Self>, ConnectError> {
        let stream = tokio::time::timeout(timeout, open(target)).await.map_err(|_| ConnectError::Timeout)??;
        // Heads are small writes that must not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok(Box::new(UpstreamConn {
            target: target.clone(),
            stream: Socket::new(stream)?,
            buf: BytesMut::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(1024),
            read_chunk: READ_CHUNK,
            read_timeout: Duration::ZERO,
            timer: None,
        }))
    }

    /// Whether an idle connection can carry a request: the upstream has
    /// neither closed it nor sent anything unasked. Costs no system call
    /// unless the socket was flagged readable.
    pub fn is_idle_usable(&mut self) -> bool {
        self.buf.is_empty() && self.stream.is_quiet()
    }

    /// Writes the head and the body; a buffered body of up to `INLINE_BODY`
    /// bytes shares the head's write. A streamed body is copied frame by
    /// frame while watching for an early response. Each write must make
    /// progress within `write_timeout`.
    pub async fn send(
        &mut self,
        req: Outgoing<'_>,
        body: Body<'_>,
        write_timeout: Duration,
    ) -> Result<Upload, ExchangeError> {
        self.out.clear();
        head::encode_request(&mut self.out, req.method, req.target, req.fields, req.added, req.framing);
        let UpstreamConn { stream, buf, out, .. } = self;
        match body {
            Body::Empty => {
                write_head(stream, out, write_timeout).await?;
                Ok(Upload::Complete)
            }
            Body::Bytes(bytes) if bytes.len() <= INLINE_BODY => {
                out.extend_from_slice(bytes);
                write_head(stream, out, write_timeout).await?;
                Ok(Upload::Complete)
            }
            Body::Bytes(bytes) => {
                write_head(stream, out, write_timeout).await?;
                timed(write_timeout, stream.write_all(bytes)).await?;
                Ok(Upload::Complete)
            }
            Body::Stream(incoming) => {
                write_head(stream, out, write_timeout).await?;
                // Boxed: its state (~1 KB) would otherwise be in every
                // request's future, moved with it, for streamed uploads only.
                let chunked = req.framing == RequestFraming::Chunked;
                Box::pin(upload(stream, buf, out, incoming, chunked, write_timeout)).await
            }
        }
    }

    /// Reads up to the final response head (skipping 1xx heads), waiting
    /// at most `limit` from now.
    pub async fn read_head(&mut self, head_request: bool, limit: Duration) -> Result<ResponseHead, ExchangeError> {
        self.read_timeout = limit;
        let deadline = clock::tokio_now() + limit;
        let mut received = !self.buf.is_empty();
        loop {
            if !self.buf.is_empty() {
                match head::parse_response(&self.buf)? {
                    Parsed::Partial => {}
                    Parsed::Informational(len) => {
                        self.buf.advance(len);
                        continue;
                    }
                    Parsed::Final(len, pending) => {
                        let bytes = self.buf.split_to(len).freeze();
                        return Ok(pending.head(bytes, head_request)?);
                    }
                }
            }
            let read = std::future::poll_fn(|cx| self.poll_read_before(deadline, cx)).await;
            match read.ok_or(ExchangeError::Timeout)? {
                Ok(0) if !received => return Err(ExchangeError::Closed { delivered: true }),
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                Ok(_) => received = true,
                Err(e) if !received && is_reset(&e) => return Err(ExchangeError::Closed { delivered: true }),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads what is available into the buffer; 0 at end of stream.
    pub async fn read(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        wire::poll_read(&mut self.stream, &mut self.buf, &mut self.read_chunk, cx)
    }

    /// `poll_read`, or None once `deadline` has passed.
    fn poll_read_before(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<Option<io::Result<usize>>> {
        if let Poll::Ready(read) = self.poll_read(cx) {
            return Poll::Ready(Some(read));
        }
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        while timer.as_mut().poll(cx).is_ready() {
            if clock::tokio_now() >= deadline {
                return Poll::Ready(None);
            }
            // Set for an earlier wait: moved to this one's deadline.
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

/// The request body, as the connection sends it.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut ClientBody),
}

/// Writes the head (and inline body); a connection that turns out closed
/// or reset here never got the request.
async fn write_head(stream: &mut Socket, out: &[u8], write_timeout: Duration) -> Result<(), ExchangeError> {
    match within(write_timeout, stream.write_all(out)).await {
        None => Err(ExchangeError::Timeout),
        Some(Ok(())) => Ok(()),
        Some(Err(e)) if is_reset(&e) => Err(ExchangeError::Closed { delivered: false }),
        Some(Err(e)) => Err(e.into()),
    }
}

async fn timed<T>(limit: Duration, io: impl Future<Output = io::Result<T>>) -> Result<T, ExchangeError> {
    Ok(within(limit, io).await.ok_or(ExchangeError::Timeout)??)
}

/// `io`, or None if it takes longer than `limit`. Tried once first: a
/// write that fits the socket buffer (nearly all) never reads the clock
/// or touches a timer.
async fn within<F: Future>(limit: Duration, io: F) -> Option<F::Output> {
    let mut io = std::pin::pin!(io);
    if let Some(done) = io.as_mut().now_or_never() {
        return Some(done);
    }
    tokio::time::timeout(limit, io).await.ok()
}

/// Copies a streamed body upstream until it ends, or until the upstream
/// sends something (an early response, or its close).
async fn upload(
    stream: &mut Socket,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    incoming: &mut ClientBody,
    chunked: bool,
    write_timeout: Duration,
) -> Result<Upload, ExchangeError> {
    let (mut reader, mut writer) = (&*stream, &*stream);
    loop {
        buf.reserve(READ_CHUNK);
        let finished = tokio::select! {
            biased;
            result = forward_frame(incoming, &mut writer, out, chunked, write_timeout) => result?,
            // Waits for the upstream to send something (a stale readiness
            // flag does not end the wait).
            read = tokio_util::io::read_buf(&mut reader, buf) => match read {
                Ok(0) => return Err(ExchangeError::Closed { delivered: true }),
                Ok(_) => return Ok(Upload::Interrupted),
                Err(e) => return Err(e.into()),
            }
        };
        if finished {
            return Ok(Upload::Complete);
        }
    }
}

/// Sends the next frame of the client's body; true once the body ended.
async fn forward_frame(
    incoming: &mut ClientBody,
    writer: &mut &Socket,
    out: &mut Vec<u8>,
    chunked: bool,
    write_timeout: Duration,
) -> Result<bool, ExchangeError> {
    let data = match incoming.frame().await {
        None => {
            if chunked {
                timed(write_timeout, writer.write_all(b"0\r\n\r\n")).await?;
            }
            return Ok(true);
        }
        Some(Err(_)) => return Err(ExchangeError::ClientBody),
        // Trailers are not forwarded.
        Some(Ok(frame)) => match frame.into_data() {
            Ok(data) if !data.is_empty() => data,
            _ => return Ok(false),
        },
    };
    if !chunked {
        timed(write_timeout, writer.write_all(&data)).await?;
        return Ok(false);
    }
    out.clear();
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    if data.len() <= INLINE_BODY {
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\r\n");
        timed(write_timeout, writer.write_all(out)).await?;
    } else {
        timed(write_timeout, writer.write_all(out)).await?;
        timed(write_timeout, writer.write_all(&data)).await?;
        timed(write_timeout, writer.write_all(b"\r\n")).await?;
    }
    Ok(false)
}

/// The peer closed or reset the connection under us.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

async fn open(target: &Target) -> Result<TcpStream, ConnectError> {
    match target {
        Target::Addr(addr) => Ok(TcpStream::connect(addr).await?),
        Target::Name { host, port } => {
            let mut last = ConnectError::NoAddress;
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = e.into(),
                }
            }
            Err(last)
        }
    }
}
