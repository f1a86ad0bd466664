//! The response body type: our own fixed bodies, or an upstream body
//! streamed through with a read timeout that hands its connection back to
//! the pool once fully read.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::pool::Checkin;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

impl ProxyBody {
    pub fn full(bytes: Bytes) -> Self {
        ProxyBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    pub fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Upstream(body) => body.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Upstream(body) => body.inner.size_hint(),
        }
    }
}

/// Raised when the upstream sends nothing for longer than its read timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream read timed out")]
pub struct ReadTimeout;

pub struct UpstreamBody {
    inner: Incoming,
    /// Present until the body ends; then the connection goes back to the
    /// pool. Dropped with the body otherwise (the connection is then closed
    /// by hyper, as a half-read response leaves it unusable).
    checkin: Option<Checkin>,
    read_timeout: Duration,
    /// Created on the first wait only: bodies that arrive together with the
    /// headers never allocate a timer.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl UpstreamBody {
    pub fn new(inner: Incoming, checkin: Checkin, read_timeout: Duration) -> Self {
        let mut body = UpstreamBody { inner, checkin: Some(checkin), read_timeout, timer: None, waiting: false };
        if body.inner.is_end_stream() {
            body.release();
        }
        body
    }

    fn release(&mut self) {
        if let Some(checkin) = self.checkin.take() {
            checkin.release();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                if this.inner.is_end_stream() {
                    this.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.checkin = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => {
                if !this.waiting {
                    let deadline = Instant::now() + this.read_timeout;
                    match &mut this.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    this.waiting = true;
                }
                let Some(timer) = this.timer.as_mut() else { return Poll::Pending };
                ready!(timer.as_mut().poll(cx));
                this.checkin = None;
                Poll::Ready(Some(Err(ReadTimeout.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
