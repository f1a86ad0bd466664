use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderValue;

/// Default connect/read/write timeout (Kong: 60 000 ms).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(60_000);
/// Default number of retries on connection failure (Kong: 5).
pub const DEFAULT_RETRIES: u32 = 5;

/// Where a Service's traffic goes: its targets plus per-Service settings from
/// `konghq.com/*` annotations.
#[derive(Debug)]
pub struct Backend {
    /// `namespace.service.port`, for logs and `check` output.
    pub name: String,
    /// Ready targets; empty means 503 "failure to get a peer from the ring-balancer".
    pub targets: Vec<Target>,
    /// `konghq.com/path`: prefix prepended to the upstream path ("/" when unset).
    pub path: String,
    /// `konghq.com/host-header`: Host sent upstream (overrides preserve_host).
    pub host_header: Option<HeaderValue>,
    pub timeouts: Timeouts,
    /// `konghq.com/retries`: further targets tried after a connection failure.
    pub retries: u32,
    cursor: AtomicUsize,
}

impl Backend {
    pub fn new(name: String, targets: Vec<Target>) -> Self {
        Self {
            name,
            targets,
            path: "/".into(),
            host_header: None,
            timeouts: Timeouts::default(),
            retries: DEFAULT_RETRIES,
            cursor: AtomicUsize::new(0),
        }
    }

    /// Next target in round-robin order, or None when there is none.
    pub fn next_target(&self) -> Option<&Target> {
        if self.targets.is_empty() {
            return None;
        }
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.targets.get(i % self.targets.len())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: DEFAULT_TIMEOUT, read: DEFAULT_TIMEOUT, write: DEFAULT_TIMEOUT }
    }
}

/// One upstream endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An EndpointSlice address or a ClusterIP.
    Addr(SocketAddr),
    /// An ExternalName Service: resolved when connecting.
    Name { host: String, port: u16 },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}
