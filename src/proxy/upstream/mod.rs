//! Sending a request upstream over HTTP/1.1: round-robin target choice,
//! pooled or new connection, retries on connection failures, connect /
//! write / read timeouts.
//!
//! The client side is our own (`conn`, `head`, `chunked`, `body`) rather
//! than hyper's: a proxy only needs one request at a time per connection,
//! driven from the request's task, and that removes hyper's connection
//! task, its channels and a cross-task wake-up per message — about a third
//! of the proxy's user-space instructions per request (docs/benchmarks.md).
//! Parsing is httparse's, as in hyper. The client-facing HTTP/1 side is
//! our own too (`h1`), for the same reasons.

mod body;
mod conn;
mod head;
mod pool;

use std::sync::Arc;

use http::header::HOST;
use http::{Method, StatusCode, Uri};
use http_body::Body as _;

pub use body::{BoxError, UpstreamBody};
pub use head::{AddedFields, Fields};
pub use pool::Pool;

use self::conn::{Body, ExchangeError, Outgoing, Upload, UpstreamConn};
use self::head::RequestFraming;
use self::pool::Checkin;
use super::error::ProxyError;
use super::fields::RequestFields;
use super::headers::Known;
use super::request_body::RequestBody;
use crate::snapshot::Backend;

/// The upstream's answer: its status, its fields (hop-by-hop ones left
/// out) and its body, still to be read.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub fields: Fields,
    pub body: UpstreamBody,
}

/// What goes upstream: the rewritten request.
pub struct UpstreamRequest<'a> {
    pub method: &'a Method,
    /// Origin-form: path and query.
    pub uri: Uri,
    /// The client's fields, rewritten.
    pub fields: &'a mut RequestFields,
    /// The proxy's own fields, written after `fields`.
    pub added: &'a dyn AddedFields,
    pub body: RequestBody,
}

/// Sends `req` to the backend. A target that cannot be connected to is
/// skipped for the next one, up to `backend.retries` times. A pooled
/// connection found closed by the upstream is replaced without counting as
/// a retry — when the request can be sent again: it never reached the
/// upstream, or it is idempotent and its body was not consumed.
pub async fn send(
    pool: &Arc<Pool>,
    backend: &Backend,
    req: &mut UpstreamRequest<'_>,
    host_from_target: bool,
) -> Result<UpstreamResponse, ProxyError> {
    let known = match &req.body {
        RequestBody::Buffered(bytes) => Some(bytes.len() as u64),
        RequestBody::Stream(incoming) => incoming.size_hint().exact(),
    };
    let framing = RequestFraming::choose(known, req.fields.has(Known::ContentLength));
    let streamed = framing != RequestFraming::None && matches!(req.body, RequestBody::Stream(_));
    let idempotent = is_idempotent(req.method);
    let mut attempts = backend.retries.saturating_add(1);
    let mut failure = ProxyError::BadGateway;
    while attempts > 0 {
        attempts -= 1;
        let target = backend.next_target().ok_or(ProxyError::NoPeers)?;
        if host_from_target {
            req.fields.set(HOST.as_str(), target.to_string().as_bytes());
        }
        loop {
            let (conn, pooled) = match pool.checkout(target) {
                Some(conn) => (conn, true),
                None => match UpstreamConn::connect(target, backend.timeouts.connect).await {
                    Ok(conn) => (conn, false),
                    Err(error) => {
                        tracing::warn!(backend = %backend.name, %target, %error, "upstream connect failed");
                        failure = match error {
                            conn::ConnectError::Timeout => ProxyError::UpstreamTimeout,
                            _ => ProxyError::BadGateway,
                        };
                        break;
                    }
                },
            };
            match exchange(pool, conn, req, framing, backend).await {
                Ok(response) => return Ok(response),
                Err(ExchangeError::Closed { delivered }) => {
                    let resendable = !delivered || (idempotent && !streamed);
                    if pooled && resendable {
                        continue;
                    }
                    tracing::warn!(backend = %backend.name, %target, "upstream closed the connection without a response");
                    if !delivered {
                        // A new connection closed at once: a failed target.
                        failure = ProxyError::BadGateway;
                        break;
                    }
                    return Err(ProxyError::BadGateway);
                }
                Err(ExchangeError::Timeout) => {
                    tracing::warn!(backend = %backend.name, %target, "upstream timed out");
                    return Err(ProxyError::UpstreamTimeout);
                }
                Err(ExchangeError::ClientBody) => return Err(ProxyError::BadRequest),
                Err(error) => {
                    tracing::warn!(backend = %backend.name, %target, %error, "upstream request failed");
                    return Err(ProxyError::BadGateway);
                }
            }
        }
    }
    Err(failure)
}

/// One request and response head on `conn`; the body is read later, by the
/// client's side, from the returned response.
async fn exchange(
    pool: &Arc<Pool>,
    mut conn: Box<UpstreamConn>,
    req: &mut UpstreamRequest<'_>,
    framing: RequestFraming,
    backend: &Backend,
) -> Result<UpstreamResponse, ExchangeError> {
    let outgoing = Outgoing {
        method: req.method,
        target: req.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        fields: req.fields,
        added: req.added,
        framing,
    };
    let body = match (&mut req.body, framing) {
        (_, RequestFraming::None) => Body::Empty,
        (RequestBody::Buffered(bytes), _) => Body::Bytes(bytes),
        (RequestBody::Stream(incoming), _) => Body::Stream(incoming),
    };
    let upload = conn.send(outgoing, body, backend.timeouts.write).await?;
    // The read timeout bounds the wait for the response head once the
    // request is sent (an early response ends the upload sooner).
    let head = conn.read_head(*req.method == Method::HEAD, backend.timeouts.read).await?;
    let reusable = head.keep_alive && upload == Upload::Complete;
    let checkin = Checkin::new(pool.clone(), conn, reusable);
    let body = UpstreamBody::new(checkin, head.framing);
    Ok(UpstreamResponse { status: head.status, fields: head.fields, body })
}

/// RFC 9110 §9.2.2: safe to send again after a failure mid-flight.
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}
