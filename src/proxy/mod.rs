//! The proxy: serves requests from the current Snapshot, over plain HTTP
//! (`serve`) and TLS (`serve_tls`). Per request the Snapshot is loaded once
//! and the phases route -> key-auth -> forward -> respond run; every denial
//! or failure is a `ProxyError` turned into a response in one place
//! (`error.rs`). Per TLS handshake the Snapshot's certificates are read once.

mod args;
mod body;
mod chunked;
mod clock;
mod error;
mod fields;
mod forward;
mod h1;
mod handler;
mod headers;
mod key_auth;
mod lines;
mod request;
mod request_body;
mod response;
mod server;
mod socket;
mod stop;
mod tls;
mod upstream;
mod wire;
mod workers;

use std::time::Duration;

pub use error::{AuthFailure, ProxyError};
pub use server::{serve, serve_tls};
pub use workers::{Listeners, Workers, default_threads, spawn as spawn_workers};

/// Default limit for bodies read by key-auth (`key_in_body`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default time given to in-flight requests on shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a client has to send its request headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle time after which a pooled upstream connection is closed
/// (Kong's upstream_keepalive_idle_timeout).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default idle upstream connections kept per target.
pub const DEFAULT_POOL_MAX_IDLE_PER_TARGET: usize = 128;
/// Default time a client has to complete the TLS handshake.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Largest body key-auth will buffer to look for a key (413 beyond).
    pub max_body_bytes: usize,
    /// How long in-flight requests may run on after shutdown is signalled.
    pub drain_timeout: Duration,
    /// How long a client may take to send request headers (HTTP/1),
    /// counted from when the proxy starts waiting for them: an idle
    /// keep-alive connection is closed after it too.
    pub header_read_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_target: usize,
    /// How long a client may take to complete the TLS handshake (TLS
    /// listener only), so idle sockets do not pile up.
    pub tls_handshake_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_target: DEFAULT_POOL_MAX_IDLE_PER_TARGET,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}
