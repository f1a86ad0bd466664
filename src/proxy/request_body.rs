//! The request body: streamed to the upstream untouched, unless key-auth
//! (`key_in_body`) has to read it — then buffered within a size limit.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::error::ProxyError;
use super::fields::RequestFields;
use super::headers::Known;
use super::upstream::BoxError;

/// A client's body as it arrives: over our HTTP/1 server (boxed, only when
/// the request has one) or over hyper's HTTP/2.
pub enum ClientBody {
    Empty,
    H1(Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>),
    H2(Incoming),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::H1(body) => body.as_mut().poll_frame(cx),
            ClientBody::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::H1(body) => body.is_end_stream(),
            ClientBody::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::H1(body) => body.size_hint(),
            ClientBody::H2(body) => body.size_hint(),
        }
    }
}

pub enum RequestBody {
    Stream(ClientBody),
    Buffered(Bytes),
}

impl RequestBody {
    /// Reads a streamed body into memory, refusing more than `limit` bytes
    /// (by Content-Length before reading anything, else while reading).
    pub async fn buffer(&mut self, fields: &RequestFields, limit: usize) -> Result<Bytes, ProxyError> {
        let incoming = match std::mem::replace(self, RequestBody::Buffered(Bytes::new())) {
            RequestBody::Buffered(bytes) => {
                *self = RequestBody::Buffered(bytes.clone());
                return Ok(bytes);
            }
            RequestBody::Stream(incoming) => incoming,
        };
        let declared = fields
            .first_of(Known::ContentLength)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
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
}
