//! A client's request body, read from the connection's own buffer and
//! socket as the handler takes it (so a slow upstream slows the upload,
//! never buffers it).
//!
//! While the handler runs, the connection lives in an `Inbound` shared with
//! the body; the connection's task takes it back once the handler returns
//! (by then the body is gone: the handler consumes or drops it). Requests
//! without a body never share the connection at all.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::head::BodyFraming;
use super::io::Io;
use crate::proxy::chunked::{self, Chunked};
use crate::proxy::upstream::BoxError;

/// The interim response a client waiting on `Expect: 100-continue` needs
/// before it sends the body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where the body's reading stands.
#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Chunked),
    Done,
    /// Malformed or cut short: the connection cannot carry another request.
    Failed,
}

/// The connection, lent to the body while the handler runs.
pub struct Inbound<I> {
    pub io: Io<I>,
    state: State,
    /// Bytes of `CONTINUE` still to write; written before the first read,
    /// so a request refused without reading its body never invites it.
    continue_left: usize,
}

/// The outcome of the body for the connection, once the handler is done.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Read to its end (or drained from what was already buffered): the
    /// next request starts right after it.
    Consumed,
    /// Not read to its end: the connection cannot carry another request.
    Unread,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Inbound<I> {
    pub fn new(io: Io<I>, framing: BodyFraming, expect_continue: bool) -> Self {
        let state = match framing {
            BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked(Chunked::default()),
        };
        let continue_left = if expect_continue && !matches!(state, State::Done) { CONTINUE.len() } else { 0 };
        Inbound { io, state, continue_left }
    }

    /// Ends the loan: the connection back, and whether the next request can
    /// be read from it. A body the handler left unread is skipped when it
    /// is already in the buffer (a small POST refused with a 401); else the
    /// connection closes after the response, as it would with hyper.
    pub fn finish(mut self) -> (Io<I>, Leftover) {
        loop {
            match self.next() {
                Ok(Next::Data(_)) => {}
                Ok(Next::End) => return (self.io, Leftover::Consumed),
                Ok(Next::NeedMore) | Err(_) => return (self.io, Leftover::Unread),
            }
        }
    }

    fn next(&mut self) -> Result<Next, chunked::ChunkError> {
        let buf = &mut self.io.buf;
        let (next, ended) = match &mut self.state {
            State::Done => return Ok(Next::End),
            State::Failed => return Err(chunked::ChunkError),
            State::Length(_) if buf.is_empty() => return Ok(Next::NeedMore),
            State::Length(left) => {
                let take = usize::try_from(*left).map_or(buf.len(), |left| left.min(buf.len()));
                *left -= take as u64;
                (Next::Data(buf.split_to(take).freeze()), *left == 0)
            }
            State::Chunked(decoder) => match decoder.step(buf) {
                Ok(chunked::Step::Data(data)) => (Next::Data(data), false),
                Ok(chunked::Step::NeedMore) => return Ok(Next::NeedMore),
                Ok(chunked::Step::Done) => (Next::End, true),
                Err(e) => {
                    self.state = State::Failed;
                    return Err(e);
                }
            },
        };
        if ended {
            self.state = State::Done;
        }
        Ok(next)
    }

    fn poll_continue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.continue_left > 0 {
            let from = CONTINUE.len() - self.continue_left;
            let written = ready!(Pin::new(&mut self.io.stream).poll_write(cx, &CONTINUE[from..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.continue_left -= written;
        }
        Pin::new(&mut self.io.stream).poll_flush(cx)
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match self.next() {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(Next::End) => return Poll::Ready(None),
                Ok(Next::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Next::NeedMore) => {}
            }
            if self.continue_left > 0 {
                // Bytes already here mean the client did not wait for it.
                if self.io.buf.is_empty()
                    && let Err(e) = ready!(self.poll_continue(cx))
                {
                    self.state = State::Failed;
                    return Poll::Ready(Some(Err(e.into())));
                }
                self.continue_left = 0;
            }
            match ready!(self.io.poll_read(cx)) {
                Ok(0) => {
                    self.state = State::Failed;
                    return Poll::Ready(Some(Err(Box::new(io::Error::from(io::ErrorKind::UnexpectedEof)))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.state = State::Failed;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }
}

/// What the buffer yields next.
enum Next {
    Data(Bytes),
    NeedMore,
    End,
}

/// The body as the handler sees it.
pub struct H1Body<I> {
    inbound: Arc<Mutex<Inbound<I>>>,
    /// The exact length still to come, when known (for the upstream's framing).
    size: SizeHint,
    ended: bool,
}

impl<I> H1Body<I> {
    pub fn new(inbound: Arc<Mutex<Inbound<I>>>, framing: BodyFraming) -> Self {
        let size = match framing {
            BodyFraming::Length(n) => SizeHint::with_exact(n),
            BodyFraming::Chunked => SizeHint::default(),
        };
        H1Body { inbound, size, ended: false }
    }

    fn lock(&self) -> MutexGuard<'_, Inbound<I>> {
        // Only this body and, after it is gone, the connection's task ever
        // lock it: never contended, and no panic can leave it half-updated.
        self.inbound.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin + Send> http_body::Body for H1Body<I> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let polled = this.lock().poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => this.ended = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(left)) = (frame.data_ref(), this.size.exact()) {
                    this.size = SizeHint::with_exact(left.saturating_sub(data.remaining() as u64));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.size.exact() == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.size
    }
}
