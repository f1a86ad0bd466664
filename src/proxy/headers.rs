//! Header names and values the proxy reads or writes, built once, plus the
//! hop-by-hop and anti-spoofing filters.

use std::sync::OnceLock;

use http::header::{
    ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, EXPECT, HOST, HeaderName, HeaderValue, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE, VIA,
};

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

/// The forwarding fields: ours alone (the client's X-Forwarded-For is kept
/// as the start of the chain).
pub const FORWARDING: [HeaderName; 7] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_FORWARDED_PATH,
    X_FORWARDED_PREFIX,
    X_REAL_IP,
];

/// What the proxy knows a field's name as, in requests and in responses.
/// Decided once per field when a head is read, so the lookups and filters
/// after it compare one byte per field instead of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Other,
    Host,
    Accept,
    ContentType,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    /// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade.
    HopByHop,
    /// A name that could pass for one of ours: every `X-Consumer-*` (so
    /// future ones like `X-Consumer-Groups` are covered too),
    /// `X-Credential-Identifier` and `X-Anonymous-Consumer`.
    Identity,
    XForwardedFor,
    /// The other forwarding fields.
    Forwarding,
    /// Read in responses: Via is appended to, a Date spares writing ours.
    Via,
    Date,
}

impl Known {
    pub fn of(name: &[u8]) -> Known {
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        match name.len() {
            2 if is(&TE) => Known::HopByHop,
            3 if is(&VIA) => Known::Via,
            4 if is(&HOST) => Known::Host,
            4 if is(&DATE) => Known::Date,
            6 if is(&ACCEPT) => Known::Accept,
            6 if is(&EXPECT) => Known::Expect,
            7 if is(&TRAILER) || is(&UPGRADE) => Known::HopByHop,
            10 if is(&CONNECTION) => Known::Connection,
            10 if is(&KEEP_ALIVE) => Known::HopByHop,
            12 if is(&CONTENT_TYPE) => Known::ContentType,
            14 if is(&CONTENT_LENGTH) => Known::ContentLength,
            16 if is(&PROXY_CONNECTION) => Known::HopByHop,
            17 if is(&TRANSFER_ENCODING) => Known::TransferEncoding,
            _ if name.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'x')) => {
                const CONSUMER: &[u8] = b"x-consumer-";
                if name.get(..CONSUMER.len()).is_some_and(|p| p.eq_ignore_ascii_case(CONSUMER))
                    || is(&X_CREDENTIAL_IDENTIFIER)
                    || is(&X_ANONYMOUS_CONSUMER)
                {
                    Known::Identity
                } else if is(&X_FORWARDED_FOR) {
                    Known::XForwardedFor
                } else if FORWARDING[1..].iter().any(is) {
                    Known::Forwarding
                } else {
                    Known::Other
                }
            }
            _ => Known::Other,
        }
    }

    /// Whether this is one name's own kind (else names of it must still be
    /// compared).
    pub fn is_one_name(self) -> bool {
        !matches!(self, Known::Other | Known::HopByHop | Known::Identity | Known::Forwarding)
    }

    /// Hop-by-hop fields that are always removed (RFC 9110 §7.6.1), with
    /// `Connection` (the names it lists go too); and `Expect`, which the
    /// proxy answers itself (100 Continue when it starts reading the body,
    /// as nginx does): an upstream that also saw it would send a 100 of its
    /// own, read as an early response while the upload is still going.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(self, Known::Connection | Known::HopByHop | Known::TransferEncoding | Known::Expect)
    }

    pub fn is_forwarding(self) -> bool {
        matches!(self, Known::XForwardedFor | Known::Forwarding)
    }
}

/// Removes client-sent identity fields: a client sending them could
/// otherwise impersonate a consumer to an upstream that trusts them.
pub fn remove_identity(fields: &mut RequestFields) {
    fields.remove_where(|known, _| known == Known::Identity);
}

/// Removes a request's hop-by-hop fields: those named in `Connection`,
/// then the fixed kinds. Requests usually have none, found out by one
/// look at each field's kind.
pub fn remove_hop_by_hop(fields: &mut RequestFields) {
    if !fields.any_known(Known::is_hop_by_hop) {
        return;
    }
    let listed: Vec<Vec<u8>> = fields
        .values_of(Known::Connection)
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    fields.remove_where(|known, name| {
        known.is_hop_by_hop() || listed.iter().any(|token| name.eq_ignore_ascii_case(token))
    });
}

/// Milliseconds as a header value (integer, like Kong's latency headers).
/// Values under a second come from a table built once: no allocation.
pub fn millis(d: std::time::Duration) -> HeaderValue {
    millis_value(whole_millis(d))
}

/// Whole milliseconds, as Kong's latency headers count them; a duration
/// past `u32::MAX` ms (49 days) reads as that.
pub fn whole_millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// `ms` as a header value (see `millis`).
pub fn millis_value(ms: u32) -> HeaderValue {
    static SMALL: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    let table = SMALL.get_or_init(|| {
        // The numbers' text is made once and kept for the process's life
        // (2.9 KB): values over static bytes are cloned and dropped without
        // the two atomic reference-count updates that values over shared
        // bytes cost, twice per proxied request.
        let text: &'static str = String::leak((0..1000u32).map(|n| n.to_string()).collect());
        let mut at = 0;
        (0..1000u32)
            .map(|n| {
                let len = n.checked_ilog10().map_or(1, |digits| digits as usize + 1);
                let value = HeaderValue::from_static(&text[at..at + len]);
                at += len;
                value
            })
            .collect()
    });
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
    fn field_names_are_known_in_any_case() {
        for (name, known) in [
            ("Host", Known::Host),
            ("ACCEPT", Known::Accept),
            ("expect", Known::Expect),
            ("Content-Type", Known::ContentType),
            ("content-LENGTH", Known::ContentLength),
            ("Transfer-Encoding", Known::TransferEncoding),
            ("Connection", Known::Connection),
            ("TE", Known::HopByHop),
            ("Keep-Alive", Known::HopByHop),
            ("Proxy-Connection", Known::HopByHop),
            ("Trailer", Known::HopByHop),
            ("Upgrade", Known::HopByHop),
            ("VIA", Known::Via),
            ("date", Known::Date),
            ("X-Consumer-ID", Known::Identity),
            ("x-consumer-groups", Known::Identity),
            ("X-Credential-Identifier", Known::Identity),
            ("X-Anonymous-Consumer", Known::Identity),
            ("X-Forwarded-For", Known::XForwardedFor),
            ("X-Real-IP", Known::Forwarding),
            ("x-forwarded-prefix", Known::Forwarding),
            ("X-Consumer", Known::Other),
            ("X-Forwarded", Known::Other),
            ("apikey", Known::Other),
            ("Hosts", Known::Other),
            // Same lengths as known names, other names.
            ("tf", Known::Other),
            ("vim", Known::Other),
            ("dat", Known::Other),
            ("trailed", Known::Other),
            ("content-lengtx", Known::Other),
            ("set-cookie", Known::Other),
            ("", Known::Other),
        ] {
            assert_eq!(Known::of(name.as_bytes()), known, "{name}");
        }
    }

    #[test]
    fn millis_values() {
        use std::time::Duration;
        assert_eq!(millis(Duration::from_micros(2500)), "2");
        assert_eq!(millis(Duration::from_millis(999)), "999");
        assert_eq!(millis(Duration::from_secs(61)), "61000");
        assert_eq!(millis(Duration::ZERO), "0");
        for ms in [9, 10, 99, 100, 998, 999, 1000] {
            assert_eq!(millis_value(ms), ms.to_string().as_str());
        }
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
