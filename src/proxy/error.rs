//! Every way the proxy answers by itself, and the one place those answers
//! are turned into responses (status, exact body bytes, headers).

use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, SERVER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};

use super::clock;
use super::headers::{JSON_UTF8, SERVER_VALUE, TEXT_UTF8, X_KONG_RESPONSE_LATENCY, millis};
use super::response::ProxyBody;

static JSON: HeaderValue = JSON_UTF8;
static TEXT: HeaderValue = TEXT_UTF8;
static LOCATION_NAME: HeaderName = LOCATION;
static WWW_AUTHENTICATE_NAME: HeaderName = WWW_AUTHENTICATE;

/// Why key-auth rejected a request (before `anonymous` is considered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("No API key found in request")]
    NoKey,
    #[error("Duplicate API key found")]
    Duplicate,
    #[error("Invalid authentication credentials")]
    Invalid,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no Route matched with those values")]
    NoRoute,
    /// Plain HTTP to an https-only route: 426, or a redirect to `location`.
    #[error("Please use HTTPS protocol")]
    HttpsRequired { status: StatusCode, location: Option<HeaderValue> },
    #[error("plugin configuration unavailable")]
    PluginUnavailable,
    #[error("{failure}")]
    Unauthorized { failure: AuthFailure, www_authenticate: HeaderValue },
    /// `anonymous` names no consumer.
    #[error("An unexpected error occurred")]
    AnonymousNotFound,
    #[error("Request size limit exceeded")]
    BodyTooLarge,
    /// The request could not be read or forwarded as sent (aborted body, unusable URI).
    #[error("Bad request")]
    BadRequest,
    /// The request head is larger than the server reads (nginx's 494,
    /// answered as a 400 as nginx and Kong do).
    #[error("Request header or cookie too large")]
    HeadTooLarge,
    #[error("failure to get a peer from the ring-balancer")]
    NoPeers,
    #[error("An invalid response was received from the upstream server")]
    BadGateway,
    #[error("The upstream server is timing out")]
    UpstreamTimeout,
}

/// (message-as-JSON, message-as-text) for one fixed message.
macro_rules! bodies {
    ($m:literal) => {
        (concat!("{\n  \"message\":\"", $m, "\"\n}"), concat!($m, "\n"))
    };
}

/// How a response body is chosen.
enum Format {
    /// Always JSON (key-auth's 401/500, as Kong).
    Json,
    /// JSON unless the client's Accept prefers text/plain.
    Negotiated,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::HttpsRequired { status, .. } => *status,
            ProxyError::PluginUnavailable | ProxyError::NoPeers => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::AnonymousNotFound => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BadRequest | ProxyError::HeadTooLarge => StatusCode::BAD_REQUEST,
            ProxyError::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn bodies(&self) -> ((&'static str, &'static str), Format) {
        match self {
            ProxyError::NoRoute => (bodies!("no Route matched with those values"), Format::Negotiated),
            ProxyError::HttpsRequired { .. } => (bodies!("Please use HTTPS protocol"), Format::Json),
            ProxyError::PluginUnavailable => (bodies!("plugin configuration unavailable"), Format::Negotiated),
            ProxyError::Unauthorized { failure, .. } => (
                match failure {
                    AuthFailure::NoKey => bodies!("No API key found in request"),
                    AuthFailure::Duplicate => bodies!("Duplicate API key found"),
                    AuthFailure::Invalid => bodies!("Invalid authentication credentials"),
                },
                Format::Json,
            ),
            ProxyError::AnonymousNotFound => (bodies!("An unexpected error occurred"), Format::Json),
            ProxyError::BodyTooLarge => (bodies!("Request size limit exceeded"), Format::Json),
            ProxyError::BadRequest => (bodies!("Bad request"), Format::Json),
            ProxyError::HeadTooLarge => (bodies!("Request header or cookie too large"), Format::Json),
            ProxyError::NoPeers => (bodies!("failure to get a peer from the ring-balancer"), Format::Negotiated),
            ProxyError::BadGateway => {
                (bodies!("An invalid response was received from the upstream server"), Format::Negotiated)
            }
            ProxyError::UpstreamTimeout => (bodies!("The upstream server is timing out"), Format::Negotiated),
        }
    }

    /// The single mapping from a denial or failure to what the client sees.
    /// `accept` is the client's Accept header, parsed only here.
    pub fn answer(self, accept: Option<&[u8]>, start: Instant) -> Answer {
        let status = self.status();
        let ((json, text), format) = self.bodies();
        let latency = millis(clock::now().saturating_duration_since(start));
        match self {
            // Kong answers a redirect with headers only.
            ProxyError::HttpsRequired { location: Some(location), .. } => {
                Answer { status, latency, content_type: None, extra: Some((&LOCATION_NAME, location)), body: "" }
            }
            other => {
                let as_text = matches!(format, Format::Negotiated) && accept.is_some_and(prefers_text);
                let (content_type, body) = if as_text { (&TEXT, text) } else { (&JSON, json) };
                let extra = match other {
                    ProxyError::Unauthorized { www_authenticate, .. } => {
                        Some((&WWW_AUTHENTICATE_NAME, www_authenticate))
                    }
                    _ => None,
                };
                Answer { status, latency, content_type: Some(content_type), extra, body }
            }
        }
    }
}

/// A response the proxy makes itself: a handful of fixed fields and a
/// static body, nothing allocated. Our HTTP/1 server writes it straight
/// into the connection's buffer; HTTP/2 gets it as a `Response`.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// X-Kong-Response-Latency.
    latency: HeaderValue,
    // Static names and values are referred to: an answer moves from the
    // handler to the connection's writer, and owned ones made it ~60 %
    // larger.
    content_type: Option<&'static HeaderValue>,
    /// Location (redirects) or WWW-Authenticate (401s).
    extra: Option<(&'static HeaderName, HeaderValue)>,
    pub body: &'static str,
}

impl Answer {
    /// The header fields, in the order they are sent.
    pub fn fields(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        static SERVER_FIELD: (HeaderName, HeaderValue) = (SERVER, SERVER_VALUE);
        static LATENCY: HeaderName = X_KONG_RESPONSE_LATENCY;
        static TYPE: HeaderName = CONTENT_TYPE;
        [(&SERVER_FIELD.0, &SERVER_FIELD.1), (&LATENCY, &self.latency)]
            .into_iter()
            .chain(self.content_type.map(|v| (&TYPE, v)))
            .chain(self.extra.as_ref().map(|(n, v)| (*n, v)))
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let mut response = Response::new(ProxyBody::full(Bytes::from_static(self.body.as_bytes())));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.reserve(4);
        for (name, value) in self.fields() {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

/// Whether the Accept header ranks text/plain above JSON. Media ranges are
/// weighed by `q` (default 1); on a tie the earlier range wins, and
/// anything we cannot serve is ignored, so the default stays JSON.
pub fn prefers_text(accept: &[u8]) -> bool {
    // Read only when it is visible ASCII (a valid field value that is ASCII).
    let Some(accept) = accept.is_ascii().then(|| std::str::from_utf8(accept).ok()).flatten() else {
        return false;
    };
    let mut best: Option<(u16, bool)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or("").trim();
        let is_text = if media.eq_ignore_ascii_case("text/plain") || media.eq_ignore_ascii_case("text/*") {
            true
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/*")
            || media == "*/*"
        {
            false
        } else {
            continue;
        };
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(parse_q)
            .unwrap_or(1000);
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, is_text));
        }
    }
    best.is_some_and(|(_, text)| text)
}

/// `q` as thousandths (RFC 9110 qvalue: at most three decimals).
fn parse_q(v: &str) -> Option<u16> {
    let f: f32 = v.trim().parse().ok()?;
    (0.0..=1.0).contains(&f).then(|| (f * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &'static str) -> bool {
        prefers_text(a.as_bytes())
    }

    #[test]
    fn an_answer_has_the_same_fields_as_bytes_and_as_a_response() {
        let denial = ProxyError::Unauthorized {
            failure: AuthFailure::NoKey,
            www_authenticate: HeaderValue::from_static("Key realm=\"kong\""),
        };
        let answer = denial.answer(None, Instant::now());
        let names: Vec<&str> = answer.fields().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["server", "x-kong-response-latency", "content-type", "www-authenticate"]);
        assert_eq!(answer.body, "{\n  \"message\":\"No API key found in request\"\n}");
        let response = answer.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().len(), 4);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Key realm=\"kong\"");

        let redirect = ProxyError::HttpsRequired {
            status: StatusCode::MOVED_PERMANENTLY,
            location: Some(HeaderValue::from_static("https://a/")),
        };
        let answer = redirect.answer(None, Instant::now());
        assert_eq!(answer.body, "");
        assert!(answer.fields().any(|(n, v)| n == LOCATION && v == "https://a/"));
        assert!(!answer.fields().any(|(n, _)| n == CONTENT_TYPE));
    }

    #[test]
    fn accept_negotiation() {
        assert!(text("text/plain"));
        assert!(text("text/*"));
        assert!(!text("application/json"));
        assert!(!text("*/*"));
        assert!(!text("text/html"));
        assert!(text("application/json;q=0.5, text/plain"));
        assert!(!text("text/plain;q=0.5, application/json"));
        assert!(text("text/plain, application/json"));
        assert!(!text("text/plain;q=0"));
    }
}
