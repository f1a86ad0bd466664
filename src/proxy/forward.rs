//! Turning the client's request into the upstream request (URI, forwarding
//! headers, Host) and the upstream response into the client's response.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, VIA};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Response, StatusCode, Uri};

use super::error::ProxyError;
use super::fields::RequestFields;
use super::headers::{
    HTTP_VALUE, HTTPS_VALUE, Known, VIA_VALUE, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PATH, X_FORWARDED_PORT,
    X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_KONG_PROXY_LATENCY, X_KONG_UPSTREAM_LATENCY, X_REAL_IP, millis_value,
    remove_hop_by_hop, whole_millis,
};
use super::key_auth::Identity;
use super::lines::put_field;
use super::response::ProxyBody;
use super::upstream::{AddedFields, Fields, UpstreamBody, UpstreamResponse};
use super::wire;
use crate::snapshot::{Route, Scheme, header_safe};

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

/// What the forwarding fields are made of.
pub struct Forwarding<'a> {
    pub client_ip: &'a HeaderValue,
    pub port: &'a HeaderValue,
    /// The listener's scheme, for X-Forwarded-Proto.
    pub scheme: Scheme,
    /// The routing host (lower-cased, no port), a valid field value.
    pub host: Bytes,
    /// The raw request path, without query.
    pub path: &'a str,
    pub stripped: Option<&'a str>,
    /// `:authority` of an HTTP/2 request (which has no Host header).
    pub authority: Option<&'a Authority>,
    /// Length of a buffered (possibly rewritten) body, to fix Content-Length.
    pub buffered_len: Option<usize>,
}

/// The forwarding fields of one request, written into the upstream head by
/// `encode`: X-Forwarded-For/-Proto/-Host/-Port/-Path/-Prefix and X-Real-IP.
pub struct Forwarded<'a> {
    /// X-Forwarded-For when the client sent one: its values joined, then
    /// the client's address (as nginx's `$proxy_add_x_forwarded_for`).
    chain: Option<Vec<u8>>,
    client_ip: &'a HeaderValue,
    proto: HeaderValue,
    host: Bytes,
    port: &'a HeaderValue,
    path: &'a str,
    prefix: Option<&'a str>,
    /// Host must be set per target (preserve_host off, no host_header).
    pub host_from_target: bool,
}

impl Forwarded<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let chain = self.chain.as_deref().unwrap_or(self.client_ip.as_bytes());
        put_field(out, &X_FORWARDED_FOR, chain);
        put_field(out, &X_FORWARDED_PROTO, self.proto.as_bytes());
        put_field(out, &X_FORWARDED_HOST, &self.host);
        put_field(out, &X_FORWARDED_PORT, self.port.as_bytes());
        // Both checked, as a HeaderValue would be (the prefix comes from
        // the normalized, decoded path).
        if header_safe(self.path) {
            put_field(out, &X_FORWARDED_PATH, self.path.as_bytes());
        }
        if let Some(prefix) = self.prefix.filter(|p| header_safe(p)) {
            put_field(out, &X_FORWARDED_PREFIX, prefix.as_bytes());
        }
        put_field(out, &X_REAL_IP, self.client_ip.as_bytes());
    }
}

/// The proxy's fields on a forwarded request: who it authenticated as (if
/// key-auth ran), then the forwarding fields.
pub struct Added<'a> {
    pub identity: Option<Identity>,
    pub forwarded: Forwarded<'a>,
}

impl AddedFields for Added<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(identity) = &self.identity {
            identity.encode(out);
        }
        self.forwarded.encode(out);
    }
}

/// Removes the client's forwarding fields; returns its X-Forwarded-For
/// values joined with ", ", if it sent any.
fn take_forwarding(fields: &mut RequestFields) -> Option<Vec<u8>> {
    if !fields.any_known(Known::is_forwarding) {
        return None;
    }
    let mut chain: Option<Vec<u8>> = None;
    for value in fields.values_of(Known::XForwardedFor) {
        let joined = chain.get_or_insert_with(Vec::new);
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value);
    }
    fields.remove_where(|known, _| known.is_forwarding());
    chain
}

/// Rewrites the client's fields into the upstream request's (hop-by-hop
/// and forwarding fields out, Content-Length and Host fixed) and returns
/// the forwarding fields to add.
pub fn upstream_fields<'a>(fields: &mut RequestFields, route: &Route, fwd: Forwarding<'a>) -> Forwarded<'a> {
    remove_hop_by_hop(fields);
    let chain = take_forwarding(fields).map(|mut chain| {
        chain.extend_from_slice(b", ");
        chain.extend_from_slice(fwd.client_ip.as_bytes());
        chain
    });
    let proto = match fwd.scheme {
        Scheme::Http => HTTP_VALUE,
        Scheme::Https => HTTPS_VALUE,
    };
    let host_from_target = fix_host_and_length(fields, route, &fwd);
    Forwarded {
        chain,
        client_ip: fwd.client_ip,
        proto,
        host: fwd.host,
        port: fwd.port,
        path: fwd.path,
        prefix: fwd.stripped,
        host_from_target,
    }
}

/// Content-Length of a rewritten body, and Host. Returns true when Host
/// must be set per target (preserve_host off, no host_header).
fn fix_host_and_length(fields: &mut RequestFields, route: &Route, fwd: &Forwarding<'_>) -> bool {
    if let Some(len) = fwd.buffered_len {
        // A bodiless request that was read for a key stays bodiless.
        if len > 0 || fields.has(Known::ContentLength) {
            fields.set(CONTENT_LENGTH.as_str(), itoa::Buffer::new().format(len).as_bytes());
        }
    }

    if let Some(host) = &route.backend.host_header {
        fields.set(HOST.as_str(), host.as_bytes());
        return false;
    }
    if route.preserve_host {
        if fields.has(Known::Host) {
            return false;
        }
        if let Some(authority) = fwd.authority {
            fields.set(HOST.as_str(), authority.as_str().as_bytes());
            return false;
        }
    }
    true
}

/// An upstream's response on its way to the client: status, fields as the
/// upstream sent them (hop-by-hop ones were left out as the head was read),
/// the streamed body, and what the proxy adds: Via and Kong's latency
/// headers.
pub struct Proxied {
    pub status: StatusCode,
    pub fields: Fields,
    pub body: UpstreamBody,
    /// Whole milliseconds, made field values as the head is written: a
    /// response moves from the upstream read to the client write, and two
    /// field values would make it 64 bytes larger at each move.
    proxy_ms: u32,
    upstream_ms: u32,
}

pub fn client_response(response: UpstreamResponse, proxy: Duration, upstream: Duration) -> Proxied {
    let UpstreamResponse { status, fields, body } = response;
    Proxied { status, fields, body, proxy_ms: whole_millis(proxy), upstream_ms: whole_millis(upstream) }
}

impl Proxied {
    /// The length the upstream declared (a HEAD's, a 304's, or its body's).
    pub fn declared_length(&self) -> Option<u64> {
        wire::content_length(self.fields.content_lengths()).ok().flatten()
    }

    /// Writes every field as a `name: value` line: the upstream's as sent,
    /// ours appended to its last Via (or a Via of our own), then the
    /// latency headers. Returns whether the upstream sent a Date.
    pub fn encode_fields(&self, out: &mut Vec<u8>) -> bool {
        // After the last Via's value: `, 1.1 portcullis`.
        const VIA_ADDED: &[u8] = b", 1.1 portcullis";
        debug_assert_eq!(&VIA_ADDED[2..], VIA_VALUE.as_bytes());
        if !self.fields.write_lines(out, VIA_ADDED) {
            put_field(out, &VIA, VIA_VALUE.as_bytes());
        }
        put_field(out, &X_KONG_UPSTREAM_LATENCY, millis_value(self.upstream_ms).as_bytes());
        put_field(out, &X_KONG_PROXY_LATENCY, millis_value(self.proxy_ms).as_bytes());
        self.fields.has_date()
    }

    /// The same response with its fields in a map (HTTP/2).
    pub fn into_response(self) -> Response<ProxyBody> {
        let mut headers = self.fields.to_map(3);
        let mut vias: Vec<HeaderValue> = headers.get_all(VIA).iter().cloned().collect();
        match vias.pop() {
            None => {
                headers.insert(VIA, VIA_VALUE);
            }
            Some(last) => {
                let mut v = last.as_bytes().to_vec();
                v.extend_from_slice(b", ");
                v.extend_from_slice(VIA_VALUE.as_bytes());
                headers.remove(VIA);
                for earlier in vias {
                    headers.append(VIA, earlier);
                }
                headers.append(VIA, HeaderValue::from_bytes(&v).unwrap_or(VIA_VALUE));
            }
        }
        headers.insert(X_KONG_UPSTREAM_LATENCY, millis_value(self.upstream_ms));
        headers.insert(X_KONG_PROXY_LATENCY, millis_value(self.proxy_ms));
        let mut response = Response::new(ProxyBody::Upstream(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
    }
}
