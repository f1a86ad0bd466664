//! Accept loop and connection serving (HTTP/1.1 and HTTP/2 cleartext with
//! prior knowledge), with graceful drain on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::ProxyConfig;
use super::handler;
use super::pool::Pool;
use crate::snapshot::Snapshot;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// State shared by every connection of one listener.
pub struct Shared {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub pool: Arc<Pool>,
    pub config: ProxyConfig,
    /// X-Forwarded-Port: the listener's port.
    pub forwarded_port: HeaderValue,
}

/// Per client connection: what the forwarding headers need, computed once.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    /// The client's IP, for X-Real-IP and X-Forwarded-For.
    pub client_ip: HeaderValue,
}

impl ConnCtx {
    fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        ConnCtx { shared, client_ip: HeaderValue::from_str(&ip).unwrap_or_else(|_| HeaderValue::from_static("")) }
    }
}

pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let pool = Pool::new(config.pool_max_idle_per_target, config.pool_idle_timeout);
    pool.spawn_sweeper();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let drain_timeout = config.drain_timeout;
    let shared = Arc::new(Shared { snapshot, pool, config, forwarded_port: HeaderValue::from(local.port()) });

    tracing::info!(listen = %local, "proxy listening");
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small writes (headers) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let ctx = Arc::new(ConnCtx::new(shared.clone(), peer));
                    let service = service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(handler::handle(req, &ctx).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        if let Err(error) = conn.await {
                            tracing::debug!(%peer, %error, "client connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }

    // Drain: stop accepting, let in-flight requests finish (idle keep-alive
    // connections are closed at once), then cut what is left.
    drop(listener);
    tracing::info!(connections = connections.len(), "proxy draining");
    if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(connections = connections.len(), "drain timeout reached, closing remaining connections");
    }
    connections.shutdown().await;
    Ok(())
}
