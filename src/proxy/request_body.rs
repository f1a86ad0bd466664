//! The request body: streamed to the upstream untouched, unless key-auth
//! (`key_in_body`) has to read it — then buffered within a size limit.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::error::ProxyError;
use super::response::BoxError;

pub enum RequestBody {
    Stream(Incoming),
    Buffered(Bytes),
}

impl RequestBody {
    /// Reads a streamed body into memory, refusing more than `limit` bytes
    /// (by Content-Length before reading anything, else while reading).
    pub async fn buffer(&mut self, headers: &HeaderMap, limit: usize) -> Result<Bytes, ProxyError> {
        let incoming = match std::mem::replace(self, RequestBody::Buffered(Bytes::new())) {
            RequestBody::Buffered(bytes) => {
                *self = RequestBody::Buffered(bytes.clone());
                return Ok(bytes);
            }
            RequestBody::Stream(incoming) => incoming,
        };
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ProxyError::BodyTooLarge);
        }
        let bytes = match Limited::new(incoming, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(ProxyError::BodyTooLarge),
            Err(_) => return Err(ProxyError::BadRequest),
        };
        *self = RequestBody::Buffered(bytes.clone());
        Ok(bytes)
    }

    fn is_end(&self) -> bool {
        match self {
            RequestBody::Stream(incoming) => incoming.is_end_stream(),
            RequestBody::Buffered(bytes) => bytes.is_empty(),
        }
    }
}

/// The request body as sent upstream. It can report when it has been sent
/// in full, so the read timeout starts only then (a long upload is not an
/// upstream timing out).
pub struct OutgoingBody {
    body: RequestBody,
    sent: Option<oneshot::Sender<()>>,
}

impl OutgoingBody {
    pub fn new(body: RequestBody) -> Self {
        OutgoingBody { body, sent: None }
    }

    /// A receiver completed once the body has been sent (or abandoned);
    /// None when there is nothing to send.
    pub fn on_sent(&mut self) -> Option<oneshot::Receiver<()>> {
        if self.body.is_end() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.sent = Some(tx);
        Some(rx)
    }
}

impl Body for OutgoingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match &mut this.body {
            RequestBody::Stream(incoming) => ready!(Pin::new(incoming).poll_frame(cx)).map(|f| f.map_err(Into::into)),
            RequestBody::Buffered(bytes) => (!bytes.is_empty()).then(|| Ok(Frame::data(std::mem::take(bytes)))),
        };
        if (frame.is_none() || this.body.is_end())
            && let Some(sent) = this.sent.take()
        {
            let _ = sent.send(());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            RequestBody::Stream(incoming) => incoming.size_hint(),
            RequestBody::Buffered(bytes) => SizeHint::with_exact(bytes.len() as u64),
        }
    }
}
