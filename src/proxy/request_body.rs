//! The request body: streamed to the upstream untouched, unless key-auth
//! (`key_in_body`) has to read it — then buffered within a size limit.

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::error::ProxyError;

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
}
