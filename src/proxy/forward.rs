//! Turning the client's request into the upstream request (URI, forwarding
//! headers, Host) and the upstream response into the client's response.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, Entry, HOST, VIA};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Response, Uri, Version};

use super::error::ProxyError;
use super::headers::{
    HTTP_VALUE, HTTPS_VALUE, VIA_VALUE, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PATH, X_FORWARDED_PORT,
    X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_KONG_PROXY_LATENCY, X_KONG_UPSTREAM_LATENCY, X_REAL_IP, millis,
    remove_hop_by_hop,
};
use super::response::ProxyBody;
use super::upstream::UpstreamBody;
use crate::snapshot::{Route, Scheme};

/// The upstream path-and-query and the prefix strip_path removed (for
/// X-Forwarded-Prefix).
pub struct UpstreamTarget<'a> {
    pub uri: Uri,
    pub stripped: Option<&'a str>,
}

/// Builds the upstream URI from the normalized `path`: strip_path removes
/// the matched prefix, then the Service path (`konghq.com/path`) is
/// prepended with exactly one slash between them. `query` is the (possibly
/// rewritten) raw query; the original URI is reused untouched when nothing
/// changed.
pub fn upstream_uri<'p>(
    route: &Route,
    original: &Uri,
    path: &'p str,
    query: Option<&str>,
    query_changed: bool,
) -> Result<UpstreamTarget<'p>, ProxyError> {
    let matched = if route.strip_path { route.path.matched_len(path).min(path.len()) } else { 0 };
    let (stripped, rest) = match (path.get(..matched), path.get(matched..)) {
        (Some(prefix), Some(rest)) if matched > 0 => (Some(prefix), rest),
        _ => (None, path),
    };
    let base = route.backend.path.as_str();
    let unchanged = stripped.is_none() && (base.is_empty() || base == "/") && path == original.path() && !query_changed;
    if unchanged && let Some(pq) = original.path_and_query() {
        return Ok(UpstreamTarget { uri: Uri::from(pq.clone()), stripped });
    }
    let mut s = String::with_capacity(base.len() + rest.len() + query.map_or(0, str::len) + 2);
    let rest_is_root = rest.is_empty() || rest == "/";
    if base.is_empty() || base == "/" {
        if !rest.starts_with('/') {
            s.push('/');
        }
        s.push_str(rest);
    } else if rest_is_root {
        s.push_str(base);
    } else {
        s.push_str(base.trim_end_matches('/'));
        if !rest.starts_with('/') {
            s.push('/');
        }
        s.push_str(rest);
    }
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    let pq = PathAndQuery::try_from(s).map_err(|_| ProxyError::BadRequest)?;
    Ok(UpstreamTarget { uri: Uri::from(pq), stripped })
}

/// Fields a forwarded request may gain: four identity fields (key-auth),
/// X-Forwarded-For/-Proto/-Host/-Port/-Path/-Prefix, X-Real-IP, Host and
/// Content-Length.
pub const REQUEST_FIELDS_ADDED: usize = 13;

/// What the forwarding headers are made of.
pub struct Forwarding<'a> {
    pub client_ip: &'a HeaderValue,
    pub port: &'a HeaderValue,
    /// The listener's scheme, for X-Forwarded-Proto.
    pub scheme: Scheme,
    /// The routing host (lower-cased, no port).
    pub host: HeaderValue,
    /// The raw request path, without query.
    pub path: &'a str,
    pub stripped: Option<&'a str>,
    /// `:authority` of an HTTP/2 request (which has no Host header).
    pub authority: Option<&'a Authority>,
    /// Length of a buffered (possibly rewritten) body, to fix Content-Length.
    pub buffered_len: Option<usize>,
}

/// Rewrites the client's headers into the upstream request's. Returns true
/// when Host must be set per target (preserve_host off, no host_header).
pub fn upstream_headers(headers: &mut HeaderMap, route: &Route, fwd: Forwarding<'_>) -> bool {
    remove_hop_by_hop(headers);

    // Appended to whatever the client sent (as nginx's $proxy_add_x_forwarded_for).
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(entry) => {
            entry.insert(fwd.client_ip.clone());
        }
        Entry::Occupied(mut entry) => {
            let mut joined = Vec::new();
            for value in entry.iter() {
                joined.extend_from_slice(value.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(fwd.client_ip.as_bytes());
            entry.insert(HeaderValue::from_bytes(&joined).unwrap_or_else(|_| fwd.client_ip.clone()));
        }
    }
    let proto = match fwd.scheme {
        Scheme::Http => HTTP_VALUE,
        Scheme::Https => HTTPS_VALUE,
    };
    headers.insert(X_FORWARDED_PROTO, proto);
    headers.insert(X_FORWARDED_HOST, fwd.host);
    headers.insert(X_FORWARDED_PORT, fwd.port.clone());
    if let Ok(path) = HeaderValue::from_str(fwd.path) {
        headers.insert(X_FORWARDED_PATH, path);
    }
    // Only ours: a client-sent prefix is not trusted.
    match fwd.stripped.and_then(|p| HeaderValue::from_str(p).ok()) {
        Some(prefix) => headers.insert(X_FORWARDED_PREFIX, prefix),
        None => headers.remove(X_FORWARDED_PREFIX),
    };
    headers.insert(X_REAL_IP, fwd.client_ip.clone());

    if let Some(len) = fwd.buffered_len {
        // A bodiless request that was read for a key stays bodiless.
        if len > 0 || headers.contains_key(CONTENT_LENGTH) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
    }

    if let Some(host) = &route.backend.host_header {
        headers.insert(HOST, host.clone());
        return false;
    }
    if route.preserve_host {
        if headers.contains_key(HOST) {
            return false;
        }
        if let Some(host) = fwd.authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            headers.insert(HOST, host);
            return false;
        }
    }
    true
}

/// The client's response: upstream status, headers (hop-by-hop ones were
/// left out as the head was read) and streamed body, plus Via and Kong's
/// latency headers.
pub fn client_response(response: Response<UpstreamBody>, proxy: Duration, upstream: Duration) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    match parts.headers.entry(VIA) {
        Entry::Vacant(entry) => {
            entry.insert(VIA_VALUE);
        }
        Entry::Occupied(mut entry) => {
            let mut v = entry.get().as_bytes().to_vec();
            v.extend_from_slice(b", ");
            v.extend_from_slice(VIA_VALUE.as_bytes());
            entry.insert(HeaderValue::from_bytes(&v).unwrap_or(VIA_VALUE));
        }
    }
    parts.headers.insert(X_KONG_UPSTREAM_LATENCY, millis(upstream));
    parts.headers.insert(X_KONG_PROXY_LATENCY, millis(proxy));
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, ProxyBody::Upstream(body))
}
