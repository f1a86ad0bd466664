use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderName, Method, StatusCode};

use super::{Backend, KeyAuthConfig};

/// One routable (hosts, path) pair made from an Ingress rule path (or the
/// default backend), with everything needed to serve it.
#[derive(Debug)]
pub struct Route {
    /// Stable name, `namespace.ingress.<rule>.<path>` — for logs and `check`.
    pub name: String,
    /// `namespace/name` of the Ingress it came from.
    pub source: String,
    /// Hosts the route answers for; empty = any host.
    pub hosts: Vec<HostMatch>,
    pub path: PathMatch,
    /// `konghq.com/methods`; empty = any method.
    pub methods: Vec<Method>,
    /// `konghq.com/headers.*`: every entry must match (any of its values).
    pub headers: Vec<HeaderMatch>,
    /// `konghq.com/protocols`.
    pub protocols: Protocols,
    /// `konghq.com/https-redirect-status-code` (default 426) for plain-HTTP
    /// requests to an https-only route.
    pub https_redirect_status: StatusCode,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub backend: Arc<Backend>,
    pub auth: RouteAuth,
    /// Names of every plugin attached (including unsupported ones), for `check`.
    pub plugins: Vec<String>,
    /// Creation time of the source Ingress: the tie-breaker (oldest wins).
    pub created: SystemTime,
}

/// Authentication a route enforces.
#[derive(Clone, Debug)]
pub enum RouteAuth {
    /// No auth plugin attached.
    Open,
    KeyAuth(Arc<KeyAuthConfig>),
    /// An attached plugin could not be resolved (missing KongPlugin, invalid
    /// config): fail closed with 503 "plugin configuration unavailable".
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// Lower-cased, no port.
    Exact(String),
    /// `*.example.com` stored as `example.com`: matches exactly one extra label.
    Wildcard(String),
}

#[derive(Clone, Debug)]
pub enum PathMatch {
    /// pathType Exact: the whole path, literally.
    Exact(String),
    /// pathType Prefix: by path segments; stored without trailing slash
    /// ("/" matches everything).
    Prefix(String),
    /// pathType ImplementationSpecific: plain string prefix.
    Plain(String),
    /// ImplementationSpecific path starting `/~`: a regex anchored at the
    /// start; `priority` from `konghq.com/regex-priority`.
    Regex { source: String, regex: regex::Regex, priority: i64 },
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => {
                p == "/" || (path.starts_with(p.as_str()) && matches!(path.as_bytes().get(p.len()), None | Some(b'/')))
            }
            PathMatch::Plain(p) => path.starts_with(p.as_str()),
            PathMatch::Regex { regex, .. } => regex.find(path).is_some_and(|m| m.start() == 0),
        }
    }

    /// Length of the literal part matched, for strip_path (regexes: the match).
    pub fn matched_len(&self, path: &str) -> usize {
        match self {
            PathMatch::Exact(p) | PathMatch::Plain(p) => p.len(),
            PathMatch::Prefix(p) if p == "/" => 0,
            PathMatch::Prefix(p) => p.len(),
            PathMatch::Regex { regex, .. } => regex.find(path).map_or(0, |m| m.end()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HeaderMatch {
    pub name: HeaderName,
    /// Any of these values (exact, case-sensitive, as Kong).
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocols {
    pub http: bool,
    pub https: bool,
}

impl Default for Protocols {
    fn default() -> Self {
        Self { http: true, https: true }
    }
}

impl Protocols {
    pub fn allows(self, scheme: Scheme) -> bool {
        match scheme {
            Scheme::Http => self.http,
            Scheme::Https => self.https,
        }
    }
}

/// How a request reached the proxy: the plain listener or the TLS one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}
