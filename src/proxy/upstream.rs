//! Sending a request upstream: round-robin target choice, pooled or new
//! connection, retries on connection failures, connect/read timeouts.

use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::error::ProxyError;
use super::pool::{Checkin, ConnectError, Pool, UpstreamRequestBody, connect};
use crate::snapshot::Backend;

/// How long a pooled connection may take to become ready before it is
/// dropped in favour of another (or a new) connection.
const POOLED_READY_WAIT: Duration = Duration::from_millis(100);

pub struct Sent {
    pub response: Response<Incoming>,
    pub checkin: Checkin,
}

/// Sends `req` to the backend. A target that cannot be connected to is
/// skipped for the next one, up to `backend.retries` times. A pooled
/// connection found stale before the request went out is replaced without
/// counting as a retry. Once the request has been handed to a connection it
/// is never re-sent (its body may already be consumed).
pub async fn send(
    pool: &Arc<Pool>,
    backend: &Backend,
    mut req: Request<UpstreamRequestBody>,
    host_from_target: bool,
) -> Result<Sent, ProxyError> {
    let mut body_sent = req.body_mut().on_sent();
    let mut attempts = backend.retries.saturating_add(1);
    let mut failure = ProxyError::BadGateway;
    while attempts > 0 {
        attempts -= 1;
        let target = backend.next_target().ok_or(ProxyError::NoPeers)?;
        if host_from_target && let Ok(host) = HeaderValue::try_from(target.to_string()) {
            req.headers_mut().insert(HOST, host);
        }
        loop {
            let (mut conn, pooled) = match pool.checkout(target) {
                Some(conn) => (conn, true),
                None => match connect(target, backend.timeouts.connect).await {
                    Ok(conn) => (conn, false),
                    Err(error) => {
                        tracing::warn!(backend = %backend.name, %target, %error, "upstream connect failed");
                        failure = match error {
                            ConnectError::Timeout => ProxyError::UpstreamTimeout,
                            _ => ProxyError::BadGateway,
                        };
                        break;
                    }
                },
            };
            // A pooled connection normally turns ready as soon as its last
            // response ended; one still busy (e.g. still uploading a body the
            // upstream answered early) is not waited for long.
            if pooled && !conn.sender.is_ready() {
                match tokio::time::timeout(POOLED_READY_WAIT, conn.sender.ready()).await {
                    Ok(Ok(())) => {}
                    _ => continue,
                }
            }
            conn.write_timeout.set(backend.timeouts.write);
            // The read timeout bounds the wait for response headers once the
            // request body has been sent (an early response ends it sooner).
            let response = conn.sender.try_send_request(req);
            let result = match &mut body_sent {
                None => tokio::time::timeout(backend.timeouts.read, response).await,
                Some(sent) => {
                    let mut response = std::pin::pin!(response);
                    tokio::select! {
                        result = &mut response => Ok(result),
                        _ = sent => {
                            body_sent = None;
                            tokio::time::timeout(backend.timeouts.read, response).await
                        }
                    }
                }
            };
            match result {
                Err(_) => {
                    tracing::warn!(backend = %backend.name, %target, "upstream response timed out");
                    return Err(ProxyError::UpstreamTimeout);
                }
                Ok(Ok(response)) => {
                    return Ok(Sent { response, checkin: Checkin::new(pool.clone(), target.clone(), conn) });
                }
                Ok(Err(mut error)) => match error.take_message() {
                    Some(unsent) => {
                        req = unsent;
                        if pooled {
                            continue;
                        }
                        failure = ProxyError::BadGateway;
                        break;
                    }
                    None => {
                        let error = error.into_error();
                        tracing::warn!(backend = %backend.name, %target, %error, "upstream request failed");
                        return Err(if is_timeout(&error) {
                            ProxyError::UpstreamTimeout
                        } else {
                            ProxyError::BadGateway
                        });
                    }
                },
            }
        }
    }
    Err(failure)
}

/// Whether the failure was our socket write timeout (see `io::TimedIo`).
fn is_timeout(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut) {
            return true;
        }
        source = e.source();
    }
    false
}
