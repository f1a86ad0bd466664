//! One request through the phases: route -> key-auth -> forward -> respond.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};

use super::clock;
use super::error::{Answer, ProxyError};
use super::fields::RequestFields;
use super::forward::{self, Added, Forwarding, Proxied};
use super::headers::{Known, remove_identity};
use super::key_auth::{self, AuthRequest, Identity};
use super::request::{ClientHead, normalize_path, routing_host};
use super::request_body::{ClientBody, RequestBody};
use super::response::ProxyBody;
use super::server::ConnCtx;
use super::upstream::{self, UpstreamRequest};
use crate::snapshot::{Consumer, ConsumerIndex, Route, RouteAuth, Snapshot};

/// What the request log line names (never a key): borrowed from the
/// request's own state when it ends, never copied for a log line that is
/// off by default.
#[derive(Clone, Copy, Default)]
struct RequestLog<'a> {
    route: Option<&'a Route>,
    consumer: Option<&'a Consumer>,
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

/// One request start to end (HTTP/2; the HTTP/1 server calls `admit` and
/// `forward` itself).
pub async fn handle(req: Request<ClientBody>, conn: &ConnCtx) -> Reply {
    let (parts, body) = req.into_parts();
    let mut head =
        ClientHead { method: parts.method, uri: parts.uri, version: parts.version, fields: (&parts.headers).into() };
    match admit(&mut head, body, conn) {
        Admission::Forward(mut admitted) => forward(&mut admitted).await,
        Admission::Answered(reply) => reply,
    }
}

/// What admission decided.
pub enum Admission<'r> {
    Forward(Admitted<'r>),
    /// Refused, or answered by the proxy (a redirect to https).
    Answered(Reply),
}

/// A request that is routed and, unless its key-auth reads the body,
/// authenticated: what `forward` needs, borrowed from the request head its
/// caller keeps.
pub struct Admitted<'r> {
    conn: &'r ConnCtx,
    start: Instant,
    route: Arc<Route>,
    /// The consumers, while key-auth must still read the body.
    body_auth: Option<Arc<ConsumerIndex>>,
    method: &'r Method,
    uri: &'r Uri,
    fields: &'r mut RequestFields,
    /// The normalized path, which routing used and the upstream gets.
    path: Cow<'r, str>,
    query: Option<Cow<'r, str>>,
    forwarded_host: Bytes,
    body: RequestBody,
    identity: Option<Identity>,
}

impl Admitted<'_> {
    fn log(&self) -> RequestLog<'_> {
        RequestLog { route: Some(&self.route), consumer: self.identity.as_ref().map(Identity::consumer) }
    }
}

/// Routes the request and runs key-auth, without waiting for anything (but
/// for a key that may be in the body): a request refused here, a 401 most
/// often, is answered without the forwarding future ever being built.
pub fn admit<'r>(head: &'r mut ClientHead, body: ClientBody, conn: &'r ConnCtx) -> Admission<'r> {
    let start = clock::now();
    // The one snapshot load of this request, held only while admission
    // runs (it never waits): routing and key-auth borrow from it, and only
    // an admitted request takes its own references (no reference-count
    // traffic for a refusal).
    let snapshot = conn.shared.snapshot.load();
    let ClientHead { method, uri, version, fields } = head;
    match route_and_authenticate(&snapshot, uri, *version, method, fields, body, conn, start) {
        Ok(admitted) => Admission::Forward(admitted),
        Err(Refusal { error, route, fields }) => {
            let log = RequestLog { route, consumer: None };
            Admission::Answered(conclude(Err(error), fields, start, log))
        }
    }
}

/// A request refused by admission, with its fields (for Accept) given back.
struct Refusal<'r, 's> {
    error: ProxyError,
    route: Option<&'s Route>,
    fields: &'r RequestFields,
}

/// `admit`'s work. An admitted request borrows the method and fields from
/// the head, which stays with the connection: the field list's storage is
/// reused for the connection's next request.
#[allow(clippy::too_many_arguments)]
fn route_and_authenticate<'r, 's>(
    snapshot: &'s Snapshot,
    uri: &'r Uri,
    version: Version,
    method: &'r Method,
    fields: &'r mut RequestFields,
    body: ClientBody,
    conn: &'r ConnCtx,
    start: Instant,
) -> Result<Admitted<'r>, Refusal<'r, 's>> {
    let shared = &conn.shared;
    // Route. Routing and the upstream both use the normalized path.
    let path = normalize_path(uri.path());
    let host = routing_host(uri, fields.first_of(Known::Host), version);
    let Some(route) = snapshot.routes.find_for(shared.scheme, &host, &path, method, fields) else {
        return Err(Refusal { error: ProxyError::NoRoute, route: None, fields });
    };
    // Over TLS the router only returns routes that allow https.
    if !route.protocols.allows(shared.scheme) {
        return Err(Refusal { error: https_required(route, &host, uri), route: Some(route), fields });
    }
    let forwarded_host = forwarded_host(&host, fields);

    // Plugins: identity headers are ours alone, on every route.
    remove_identity(fields);
    let mut body = RequestBody::Stream(body);
    let mut query = uri.query().map(Cow::Borrowed);
    let mut identity = None;
    let mut body_auth = None;
    match &route.auth {
        RouteAuth::Open => {}
        RouteAuth::Unavailable => {
            return Err(Refusal { error: ProxyError::PluginUnavailable, route: Some(route), fields });
        }
        RouteAuth::KeyAuth(config) if key_auth::applies(config, shared.scheme, method) => {
            let request = AuthRequest {
                fields,
                query: &mut query,
                body: &mut body,
                max_body_bytes: shared.config.max_body_bytes,
            };
            match key_auth::authenticate_now(config, &snapshot.consumers, request) {
                Some(Ok(found)) => identity = Some(found),
                Some(Err(error)) => return Err(Refusal { error, route: Some(route), fields }),
                // The key may be in the body: read in `forward`.
                None => body_auth = Some(snapshot.consumers.clone()),
            }
        }
        RouteAuth::KeyAuth(_) => {}
    }
    Ok(Admitted {
        conn,
        start,
        route: route.clone(),
        body_auth,
        method,
        uri,
        fields,
        path,
        query,
        forwarded_host,
        body,
        identity,
    })
}

/// Sends an admitted request upstream and answers with what comes back
/// (or the proxy's own answer). `admitted` is borrowed: it stays where the
/// caller's future holds it and is read in place, where a value (~300
/// bytes) would be copied into this future and again into its state.
pub async fn forward(a: &mut Admitted<'_>) -> Reply {
    let shared = &a.conn.shared;
    if let (Some(consumers), RouteAuth::KeyAuth(config)) = (a.body_auth.take(), &a.route.auth) {
        let request = AuthRequest {
            fields: a.fields,
            query: &mut a.query,
            body: &mut a.body,
            max_body_bytes: shared.config.max_body_bytes,
        };
        match Box::pin(key_auth::authenticate(config, &consumers, request)).await {
            Ok(found) => a.identity = Some(found),
            Err(error) => return conclude(Err(error), a.fields, a.start, a.log()),
        }
    }

    let query_changed = matches!(a.query, Some(Cow::Owned(_))) || (a.query.is_none() && a.uri.query().is_some());
    let target = match forward::upstream_uri(&a.route, a.uri, &a.path, a.query.as_deref(), query_changed) {
        Ok(target) => target,
        Err(error) => return conclude(Err(error), a.fields, a.start, a.log()),
    };
    let forwarding = Forwarding {
        client_ip: &a.conn.client_ip,
        port: &shared.forwarded_port,
        scheme: shared.scheme,
        host: std::mem::take(&mut a.forwarded_host),
        path: a.uri.path(),
        stripped: target.stripped,
        authority: a.uri.authority(),
        buffered_len: match &a.body {
            RequestBody::Buffered(bytes) => Some(bytes.len()),
            RequestBody::Stream(_) => None,
        },
    };
    let forwarded = forward::upstream_fields(a.fields, &a.route, forwarding);
    let host_from_target = forwarded.host_from_target;
    let added = Added { identity: a.identity.take(), forwarded };
    let mut upstream_req = UpstreamRequest {
        method: a.method,
        uri: target.uri,
        fields: a.fields,
        added: &added,
        body: std::mem::replace(&mut a.body, RequestBody::Buffered(Bytes::new())),
    };

    // One clock read ends the proxy's part and starts the upstream's.
    let sent_at = clock::now();
    let proxy_latency = sent_at.saturating_duration_since(a.start);
    let sent = upstream::send(&shared.pool, &a.route.backend, &mut upstream_req, host_from_target).await;
    let result =
        sent.map(|sent| forward::client_response(sent, proxy_latency, clock::now().saturating_duration_since(sent_at)));
    let log = RequestLog { route: Some(&a.route), consumer: added.identity.as_ref().map(Identity::consumer) };
    conclude(result, upstream_req.fields, a.start, log)
}

/// Logs the request's end and turns an error into the proxy's answer
/// (which reads the client's Accept).
fn conclude(result: Result<Proxied, ProxyError>, fields: &RequestFields, start: Instant, log: RequestLog<'_>) -> Reply {
    let reply = match result {
        Ok(response) => Reply::Proxied(response),
        Err(error) => {
            tracing::debug!(%error, "answered by the proxy");
            Reply::Own(error.answer(fields.first_of(Known::Accept), start))
        }
    };
    tracing::debug!(
        route.name = log.route.map(|r| r.name.as_str()),
        consumer.username = log.consumer.and_then(|c| c.username()),
        status = reply.status().as_u16(),
        "request"
    );
    reply
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

/// X-Forwarded-Host: the routing host; the client's Host value is shared
/// as is when it is already in that form (the common case). The routing
/// host comes from a field value or the request target, so it is a valid
/// field value.
fn forwarded_host(host: &str, fields: &RequestFields) -> Bytes {
    match fields.first_shared(Known::Host) {
        Some(value) if value == host.as_bytes() => value,
        _ => Bytes::copy_from_slice(host.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply is returned and passed on by value at each step from the
    /// upstream read to the client write. Up to 128 bytes, the compiler
    /// moves it with a few register copies; above, each move is a call to
    /// `memcpy` (there were ~25 such calls per proxied request, ~2 % of the
    /// proxy core at saturation; docs/benchmarks.md).
    #[test]
    fn a_reply_is_small_enough_to_move_without_a_copy_call() {
        assert!(size_of::<Reply>() <= 128, "Reply is {} bytes", size_of::<Reply>());
        assert!(size_of::<Proxied>() <= 128, "Proxied is {} bytes", size_of::<Proxied>());
        assert!(size_of::<Answer>() <= 128, "Answer is {} bytes", size_of::<Answer>());
    }
}
