use serde::Serialize;

use super::{Backend, Consumer, HostMatch, PathMatch, Route, RouteAuth, Snapshot};

/// A secret-free, deterministic view of a Snapshot: what `portcullis check`
/// prints, what golden tests compare and what the debug endpoint shows.
/// Keys and digests never appear; credentials are named by their Secret.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub routes: Vec<RouteSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<RouteSummary>,
    pub consumers: Vec<ConsumerSummary>,
    /// TLS server certificates: host -> Secret, never certificate or key data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsSummary>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct TlsSummary {
    /// `app.example.com` or `*.example.com`.
    pub host: String,
    /// `namespace/name` of the Secret whose certificate is served.
    pub secret: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct RouteSummary {
    pub name: String,
    pub source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    pub path: String,
    pub path_type: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<&'static str>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub backend: BackendSummary,
    pub auth: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct BackendSummary {
    pub name: String,
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "is_root")]
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
    pub timeouts_ms: [u128; 3],
    pub retries: u32,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ConsumerSummary {
    pub source: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    /// `namespace/name` of each credential Secret (with expiry when set).
    pub credentials: Vec<String>,
}

fn is_root(p: &str) -> bool {
    p == "/"
}

impl Summary {
    /// `consumers`: every accepted consumer (the snapshot holds only those
    /// its credentials and `anonymous` settings lead to; translation knows
    /// them all).
    pub fn of<'a>(s: &Snapshot, consumers: impl IntoIterator<Item = &'a Consumer>) -> Self {
        let mut consumers: Vec<ConsumerSummary> = consumers
            .into_iter()
            .map(|c| ConsumerSummary {
                source: c.source(),
                id: c.uid().to_string(),
                username: c.username().map(str::to_string),
                custom_id: c.custom_id().map(str::to_string),
                credentials: Vec::new(),
            })
            .collect();
        consumers.sort_by(|a, b| a.source.cmp(&b.source));
        for cred in s.consumers.credentials() {
            let owner = cred.consumer.source();
            if let Ok(i) = consumers.binary_search_by(|c| c.source.cmp(&owner)) {
                let label = match cred.expires_at() {
                    Some(t) => format!("{} (expires {})", cred.source(), httpdate::fmt_http_date(t)),
                    None => cred.source(),
                };
                consumers[i].credentials.push(label);
            }
        }
        for c in &mut consumers {
            c.credentials.sort();
        }
        Summary {
            routes: s.routes.routes().iter().map(|r| RouteSummary::of(r)).collect(),
            default_backend: s.routes.default_backend().map(|r| RouteSummary::of(r)),
            consumers,
            tls: s
                .tls
                .hosts()
                .into_iter()
                .map(|(host, cert)| TlsSummary { host, secret: cert.secret.clone() })
                .collect(),
        }
    }
}

impl RouteSummary {
    pub fn of(r: &Route) -> Self {
        let (path, path_type) = match &r.path {
            PathMatch::Exact(p) => (p.clone(), "Exact"),
            PathMatch::Prefix(p) => (p.clone(), "Prefix"),
            PathMatch::Plain(p) => (p.clone(), "ImplementationSpecific"),
            PathMatch::Regex { source, priority, .. } => (format!("{source} (priority {priority})"), "Regex"),
        };
        let mut protocols = Vec::new();
        if !(r.protocols.http && r.protocols.https) {
            if r.protocols.http {
                protocols.push("http");
            }
            if r.protocols.https {
                protocols.push("https");
            }
        }
        RouteSummary {
            name: r.name.clone(),
            source: r.source.clone(),
            hosts: r
                .hosts
                .iter()
                .map(|h| match h {
                    HostMatch::Exact(h) => h.clone(),
                    HostMatch::Wildcard(s) => format!("*.{s}"),
                })
                .collect(),
            path,
            path_type,
            methods: r.methods.iter().map(|m| m.to_string()).collect(),
            headers: r.headers.iter().map(|h| format!("{}: {}", h.name, h.values.join(","))).collect(),
            protocols,
            strip_path: r.strip_path,
            preserve_host: r.preserve_host,
            backend: BackendSummary::of(&r.backend),
            auth: match &r.auth {
                RouteAuth::Open => "none".into(),
                RouteAuth::KeyAuth(k) => format!("key-auth ({})", k.source),
                RouteAuth::Unavailable => "unavailable (fails closed with 503)".into(),
            },
            plugins: r.plugins.clone(),
        }
    }
}

impl BackendSummary {
    pub fn of(b: &Backend) -> Self {
        BackendSummary {
            name: b.name.clone(),
            targets: b.targets.iter().map(|t| t.to_string()).collect(),
            path: b.path.clone(),
            host_header: b.host_header.as_ref().and_then(|h| h.to_str().ok()).map(str::to_string),
            timeouts_ms: [b.timeouts.connect.as_millis(), b.timeouts.read.as_millis(), b.timeouts.write.as_millis()],
            retries: b.retries,
        }
    }
}
