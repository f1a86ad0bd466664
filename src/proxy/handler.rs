//! One request through the phases: route -> key-auth -> forward -> respond.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::header::{ACCEPT, HOST};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, Uri};

use super::error::{Answer, ProxyError};
use super::forward::{self, Added, Forwarding, Proxied};
use super::headers::remove_identity;
use super::key_auth::{self, AuthRequest};
use super::request::{normalize_path, routing_host};
use super::request_body::{ClientBody, RequestBody};
use super::response::ProxyBody;
use super::server::ConnCtx;
use super::upstream::{self, UpstreamRequest};
use crate::snapshot::{Consumer, Route, RouteAuth};

/// What the request log line names (never a key).
#[derive(Default)]
struct RequestLog {
    route: Option<Arc<Route>>,
    consumer: Option<Arc<Consumer>>,
}

/// What a request gets: the upstream's response, or the proxy's own.
pub enum Reply {
    Proxied(Proxied),
    Own(Answer),
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Proxied(proxied) => proxied.status,
            Reply::Own(answer) => answer.status,
        }
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        match self {
            Reply::Proxied(proxied) => proxied.into_response(),
            Reply::Own(answer) => answer.into_response(),
        }
    }
}

pub async fn handle(req: Request<ClientBody>, conn: &ConnCtx) -> Reply {
    let start = Instant::now();
    let mut log = RequestLog::default();
    // Kept aside (a cheap clone) for errors raised after the headers moved on.
    let accept = req.headers().get(ACCEPT).cloned();
    let reply = match proxy(req, conn, start, &mut log).await {
        Ok(response) => Reply::Proxied(response),
        Err(error) => {
            tracing::debug!(%error, "answered by the proxy");
            Reply::Own(error.answer(accept.as_ref(), start))
        }
    };
    tracing::debug!(
        route.name = log.route.as_deref().map(|r| r.name.as_str()),
        consumer.username = log.consumer.as_deref().and_then(|c| c.username()),
        status = reply.status().as_u16(),
        "request"
    );
    reply
}

async fn proxy(
    req: Request<ClientBody>,
    conn: &ConnCtx,
    start: Instant,
    log: &mut RequestLog,
) -> Result<Proxied, ProxyError> {
    let shared = &conn.shared;
    let (parts, body) = req.into_parts();
    let Parts { method, uri, version, mut headers, .. } = parts;

    // Route. Routing and the upstream both use the normalized path.
    let path = normalize_path(uri.path());
    // Kept aside (a reference count, no copy) so the routing host can
    // outlive changes to the headers.
    let host_header = headers.get(HOST).cloned();
    let host = routing_host(&uri, host_header.as_ref(), version);
    let (route, consumers) = {
        // The one snapshot load of this request; the guard is not held
        // across awaits, only the parts this request uses.
        let snapshot = shared.snapshot.load();
        let route = snapshot
            .routes
            .find_for(shared.scheme, &host, &path, &method, &headers)
            .ok_or(ProxyError::NoRoute)?
            .clone();
        let consumers = matches!(route.auth, RouteAuth::KeyAuth(_)).then(|| snapshot.consumers.clone());
        (route, consumers)
    };
    log.route = Some(route.clone());
    // Over TLS the router only returns routes that allow https.
    if !route.protocols.allows(shared.scheme) {
        return Err(https_required(&route, &host, &uri));
    }

    // Plugins: identity headers are ours alone, on every route.
    remove_identity(&mut headers);
    let mut body = RequestBody::Stream(body);
    let mut query = uri.query().map(Cow::Borrowed);
    let mut identity = None;
    match &route.auth {
        RouteAuth::Open => {}
        RouteAuth::Unavailable => return Err(ProxyError::PluginUnavailable),
        RouteAuth::KeyAuth(config) => {
            if key_auth::applies(config, shared.scheme, &method) {
                let Some(consumers) = consumers.as_deref() else { return Err(ProxyError::PluginUnavailable) };
                let request = AuthRequest {
                    headers: &mut headers,
                    query: &mut query,
                    body: &mut body,
                    max_body_bytes: shared.config.max_body_bytes,
                };
                let found = key_auth::authenticate(config, consumers, request).await?;
                log.consumer = Some(found.consumer().clone());
                identity = Some(found);
            }
        }
    }

    // Forward.
    let forwarded_host = forwarded_host(&host, host_header.as_ref());
    let query_changed = matches!(query, Some(Cow::Owned(_))) || (query.is_none() && uri.query().is_some());
    let target = forward::upstream_uri(&route, &uri, &path, query.as_deref(), query_changed)?;
    let forwarding = Forwarding {
        client_ip: &conn.client_ip,
        port: &shared.forwarded_port,
        scheme: shared.scheme,
        host: forwarded_host,
        path: uri.path(),
        stripped: target.stripped,
        authority: uri.authority(),
        buffered_len: match &body {
            RequestBody::Buffered(bytes) => Some(bytes.len()),
            RequestBody::Stream(_) => None,
        },
    };
    let forwarded = forward::upstream_headers(&mut headers, &route, forwarding);
    let host_from_target = forwarded.host_from_target;
    let added = Added { identity, forwarded };
    let upstream_req = UpstreamRequest { method, uri: target.uri, headers, added: &added, body };

    let proxy_latency = start.elapsed();
    let sent_at = Instant::now();
    let sent = upstream::send(&shared.pool, &route.backend, upstream_req, host_from_target).await?;
    let upstream_latency = sent_at.elapsed();

    // Respond.
    Ok(forward::client_response(sent, proxy_latency, upstream_latency))
}

/// 426, or a redirect to the same host and request target over https.
fn https_required(route: &Route, host: &str, uri: &Uri) -> ProxyError {
    let status = route.https_redirect_status;
    let location = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
    .then(|| {
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        HeaderValue::from_str(&format!("https://{host}{target}")).ok()
    })
    .flatten();
    ProxyError::HttpsRequired { status, location }
}

/// X-Forwarded-Host: the routing host; the client's Host value is reused
/// as is when it is already in that form (the common case).
fn forwarded_host(host: &str, host_header: Option<&HeaderValue>) -> HeaderValue {
    match host_header {
        Some(value) if value.as_bytes() == host.as_bytes() => value.clone(),
        _ => HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("")),
    }
}
