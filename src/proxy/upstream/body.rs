//! The upstream response body, read from the connection's buffer and
//! socket as the client takes it (so a slow client slows the upstream read,
//! never buffers it). Bounded by the read timeout between reads; the
//! connection goes back to the pool the moment the body's last byte is
//! handed out, if the exchange left it clean.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::head::BodyFraming;
use super::pool::Checkin;
use crate::proxy::chunked::{self, Chunked};
use crate::proxy::clock;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Raised when the upstream sends nothing for longer than its read timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream read timed out")]
pub struct ReadTimeout;

/// The upstream closed the connection before the body's declared end.
#[derive(Debug, thiserror::Error)]
#[error("upstream closed the connection before the end of the body")]
pub struct Truncated;

enum State {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

pub struct UpstreamBody {
    /// Present until the body ends or fails.
    conn: Option<Checkin>,
    state: State,
    /// Created on the first wait only: bodies that arrive with the head
    /// never touch the timer.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

/// What the buffer yields next.
enum Next {
    Data(Bytes),
    NeedMore,
    End,
}

impl UpstreamBody {
    /// `conn.reusable` says whether the exchange so far allows reuse.
    /// Reads time out after the connection's `read_timeout`.
    pub fn new(conn: Checkin, framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Empty => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked(Chunked::default()),
            BodyFraming::UntilClose => State::UntilClose,
        };
        let mut body = UpstreamBody { conn: Some(conn), state, timer: None, waiting: false };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The body ended cleanly: the connection goes back to the pool if it can.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            conn.release();
        }
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }

    fn next(&mut self) -> Result<Next, chunked::ChunkError> {
        let Some(conn) = self.conn.as_mut() else { return Ok(Next::End) };
        let buf = &mut conn.conn.buf;
        let (next, ended) = match &mut self.state {
            State::Done => return Ok(Next::End),
            State::Length(_) | State::UntilClose if buf.is_empty() => return Ok(Next::NeedMore),
            State::Length(left) => {
                let take = usize::try_from(*left).map_or(buf.len(), |left| left.min(buf.len()));
                *left -= take as u64;
                (Next::Data(buf.split_to(take).freeze()), *left == 0)
            }
            State::Chunked(decoder) => match decoder.step(buf)? {
                chunked::Step::Data(data) => (Next::Data(data), false),
                chunked::Step::NeedMore => return Ok(Next::NeedMore),
                chunked::Step::Done => (Next::End, true),
            },
            State::UntilClose => (Next::Data(buf.split().freeze()), false),
        };
        // Released as soon as the last byte is out, before the client even
        // asks for the end: the next request can have the connection.
        if ended {
            self.finish();
        }
        Ok(next)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.next() {
                Err(e) => return this.fail(e.into()),
                Ok(Next::End) => return Poll::Ready(None),
                Ok(Next::Data(data)) => {
                    this.waiting = false;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Next::NeedMore) => {}
            }
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match conn.conn.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    if matches!(this.state, State::UntilClose) {
                        // The close is the end; the connection is spent.
                        this.state = State::Done;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    return this.fail(Truncated.into());
                }
                Poll::Ready(Ok(_)) => this.waiting = false,
                Poll::Ready(Err(e)) => return this.fail(e.into()),
                Poll::Pending => {
                    if !this.waiting {
                        let deadline = clock::tokio_now() + conn.conn.read_timeout;
                        match &mut this.timer {
                            Some(timer) => timer.as_mut().reset(deadline),
                            None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                        }
                        this.waiting = true;
                    }
                    let Some(timer) = this.timer.as_mut() else { return Poll::Pending };
                    ready!(timer.as_mut().poll(cx));
                    return this.fail(ReadTimeout.into());
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(left) => SizeHint::with_exact(left),
            State::Chunked(_) | State::UntilClose => SizeHint::default(),
        }
    }
}
