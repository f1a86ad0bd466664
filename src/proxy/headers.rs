//! Header names and values the proxy reads or writes, built once, plus the
//! hop-by-hop and anti-spoofing filters.

use std::sync::OnceLock;

use http::header::{CONNECTION, EXPECT, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

use super::fields::RequestFields;

pub const X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
pub const X_CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
pub const X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
pub const X_CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
pub const X_ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_PATH: HeaderName = HeaderName::from_static("x-forwarded-path");
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

pub const X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
pub const X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
pub const X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

pub const VIA_VALUE: HeaderValue = HeaderValue::from_static("1.1 portcullis");
pub const SERVER_VALUE: HeaderValue = HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
pub const HTTP_VALUE: HeaderValue = HeaderValue::from_static("http");
pub const HTTPS_VALUE: HeaderValue = HeaderValue::from_static("https");
pub const JSON_UTF8: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
pub const TEXT_UTF8: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// Whether a client-sent field could pass for one of ours: every
/// `X-Consumer-*` (so future ones like `X-Consumer-Groups` are covered too),
/// `X-Credential-Identifier` and `X-Anonymous-Consumer`.
fn is_identity(name: &[u8]) -> bool {
    const PREFIX: &[u8] = b"x-consumer-";
    name.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
        || name.eq_ignore_ascii_case(X_CREDENTIAL_IDENTIFIER.as_str().as_bytes())
        || name.eq_ignore_ascii_case(X_ANONYMOUS_CONSUMER.as_str().as_bytes())
}

/// Removes client-sent identity fields (`is_identity`): a client sending
/// them could otherwise impersonate a consumer to an upstream that trusts
/// them. One pass over the names.
pub fn remove_identity(fields: &mut RequestFields) {
    fields.remove_where(is_identity);
}

/// Hop-by-hop fields that are always removed (RFC 9110 §7.6.1), besides
/// `Connection` and the names it lists; and `Expect`, which the proxy
/// answers itself (100 Continue when it starts reading the body, as nginx
/// does): an upstream that also saw it would send a 100 of its own, read as
/// an early response while the upload is still going.
const HOP_BY_HOP: [HeaderName; 7] = [KEEP_ALIVE, PROXY_CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, EXPECT];

fn is_hop_by_hop(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(CONNECTION.as_str().as_bytes())
        || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
}

/// Removes a request's hop-by-hop fields: those named in `Connection`,
/// then the fixed list. One pass finds out whether there is anything to
/// remove (requests usually have none).
pub fn remove_hop_by_hop(fields: &mut RequestFields) {
    if !fields.any_name(is_hop_by_hop) {
        return;
    }
    let listed: Vec<Vec<u8>> = fields
        .get_all(CONNECTION.as_str())
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    fields.remove_where(|name| is_hop_by_hop(name) || listed.iter().any(|token| name.eq_ignore_ascii_case(token)));
}

/// Milliseconds as a header value (integer, like Kong's latency headers).
/// Values under a second come from a table built once: no allocation.
pub fn millis(d: std::time::Duration) -> HeaderValue {
    static SMALL: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let table = SMALL.get_or_init(|| (0..1000u64).map(HeaderValue::from).collect());
    usize::try_from(ms).ok().and_then(|i| table.get(i)).cloned().unwrap_or_else(|| HeaderValue::from(ms))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn names(h: &RequestFields) -> Vec<String> {
        h.iter().map(|(n, _)| String::from_utf8_lossy(n).into_owned()).collect()
    }

    #[test]
    fn hop_by_hop_includes_connection_listed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, X-Foo"));
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert("x-bar", HeaderValue::from_static("1"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let mut h = RequestFields::from(h);
        remove_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-bar"]);
    }

    #[test]
    fn hop_by_hop_in_several_connection_values_and_none() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        h.append(CONNECTION, HeaderValue::from_static(" X-A ,, x-b"));
        for name in ["keep-alive", "x-a", "x-b", "x-c", "te", "upgrade", "proxy-connection", "trailer"] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
        }
        let mut h = RequestFields::from(h);
        remove_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["x-c"]);

        let mut plain = HeaderMap::new();
        plain.insert("x-c", HeaderValue::from_static("1"));
        let mut plain = RequestFields::from(plain);
        remove_hop_by_hop(&mut plain);
        assert_eq!(names(&plain), ["x-c"]);
    }

    #[test]
    fn millis_values() {
        use std::time::Duration;
        assert_eq!(millis(Duration::from_micros(2500)), "2");
        assert_eq!(millis(Duration::from_millis(999)), "999");
        assert_eq!(millis(Duration::from_secs(61)), "61000");
    }

    #[test]
    fn identity_prefix_removed() {
        let mut h = HeaderMap::new();
        h.insert("x-consumer-groups", HeaderValue::from_static("admin"));
        h.insert(X_CONSUMER_ID, HeaderValue::from_static("spoof"));
        h.insert(X_ANONYMOUS_CONSUMER, HeaderValue::from_static("false"));
        h.insert(X_CREDENTIAL_IDENTIFIER, HeaderValue::from_static("spoof"));
        h.append(X_CONSUMER_USERNAME, HeaderValue::from_static("a"));
        h.append(X_CONSUMER_USERNAME, HeaderValue::from_static("b"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        h.insert("x-consumer", HeaderValue::from_static("kept: no dash after the prefix"));
        let mut h = RequestFields::from(h);
        remove_identity(&mut h);
        assert_eq!(names(&h), ["x-other", "x-consumer"]);
    }
}
