//! Accept loop and connection serving, with graceful drain on shutdown: the
//! plain listener (HTTP/1.x, HTTP/2 cleartext with prior knowledge) and the
//! TLS listener (HTTP/1.x and HTTP/2 by ALPN, certificate by SNI). HTTP/1
//! is our own server (`h1`), HTTP/2 is hyper's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::stop::Stop;
use arc_swap::ArcSwap;
use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::ProxyConfig;
use super::clock;
use super::h1::{self, Ended};
use super::handler;
use super::request_body::ClientBody;
use super::socket::{Listener, Socket};
use super::upstream::Pool;
use crate::snapshot::{Scheme, Snapshot};

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
    /// Whether this listener terminates TLS (route protocols, key-auth
    /// protocols, X-Forwarded-Proto).
    pub scheme: Scheme,
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

/// How accepted connections are read.
#[derive(Clone)]
enum Transport {
    Plain,
    /// TLS, with the time a client has to complete its handshake.
    Tls {
        acceptor: TlsAcceptor,
        handshake_timeout: Duration,
    },
}

/// Serves plain HTTP on `listener` until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, snapshot, config, Transport::Plain, shutdown).await
}

/// Serves HTTPS on `listener` until `shutdown`, then drains. Certificates
/// come from the current Snapshot's TLS part, chosen by SNI per handshake.
pub async fn serve_tls(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = super::tls::server_config(snapshot.clone()).map_err(std::io::Error::other)?;
    let transport =
        Transport::Tls { acceptor: TlsAcceptor::from(tls), handshake_timeout: config.tls_handshake_timeout };
    run(listener, snapshot, config, transport, shutdown).await
}

async fn run(
    listener: TcpListener,
    snapshot: Arc<ArcSwap<Snapshot>>,
    config: ProxyConfig,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = Listener::new(listener)?;
    let local = listener.local_addr()?;
    let pool = Pool::new(config.pool_max_idle_per_target, config.pool_idle_timeout);
    pool.spawn_sweeper();
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    let stop = Stop::new();
    let drain_timeout = config.drain_timeout;
    let scheme = match transport {
        Transport::Plain => Scheme::Http,
        Transport::Tls { .. } => Scheme::Https,
    };
    let shared = Arc::new(Shared { snapshot, pool, config, forwarded_port: HeaderValue::from(local.port()), scheme });

    tracing::info!(listen = %local, scheme = scheme.as_str(), "proxy listening");
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = Socket::accept(&listener) => match accepted {
                Ok((stream, peer)) => {
                    // Small writes (headers) must not wait for Nagle.
                    let _ = stream.get_ref().set_nodelay(true);
                    let conn = Conn {
                        ctx: Arc::new(ConnCtx::new(shared.clone(), peer)),
                        http2: http2.clone(),
                        stop: stop.clone(),
                        // Taken now, so a shutdown during the TLS handshake
                        // still reaches the connection and drain waits for it.
                        watcher: graceful.watcher(),
                        peer,
                    };
                    connections.spawn(clock::Ticked::new(conn.run(stream, transport.clone())));
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
    tracing::info!(connections = connections.len(), scheme = scheme.as_str(), "proxy draining");
    stop.stop();
    let drained = async {
        let ((), ()) = tokio::join!(graceful.shutdown(), async { while connections.join_next().await.is_some() {} });
    };
    if tokio::time::timeout(drain_timeout, drained).await.is_err() {
        tracing::warn!(connections = connections.len(), "drain timeout reached, closing remaining connections");
    }
    connections.shutdown().await;
    Ok(())
}

/// One accepted client connection, before its transport is set up.
struct Conn {
    ctx: Arc<ConnCtx>,
    http2: http2::Builder<TokioExecutor>,
    /// For a connection that turns out to be HTTP/2 (hyper's drain).
    watcher: Watcher,
    /// Set on shutdown (our HTTP/1 server's drain).
    stop: Stop,
    peer: SocketAddr,
}

impl Conn {
    async fn run(self, stream: Socket, transport: Transport) {
        match transport {
            Transport::Plain => self.serve(stream, true).await,
            Transport::Tls { acceptor, handshake_timeout } => {
                // Bounded, so idle or slow sockets do not pile up before a
                // request timeout could apply.
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                            self.serve_h2(tls).await;
                        } else {
                            self.serve(tls, false).await;
                        }
                    }
                    Ok(Err(error)) => tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    /// HTTP/1 (ours), or HTTP/2 when a plain connection opens with its
    /// preface (`detect_h2`).
    async fn serve<I>(self, io: I, detect_h2: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match h1::serve(io, &self.ctx, self.stop.waiter(), detect_h2).await {
            Ok(Ended::Closed) => {}
            Ok(Ended::Http2(io)) => self.serve_h2(io).await,
            Err(error) => tracing::debug!(peer = %self.peer, %error, "client connection ended with an error"),
        }
    }

    async fn serve_h2<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn { ctx, http2, watcher, peer, .. } = self;
        let service = service_fn(move |req: Request<Incoming>| {
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(handler::handle(req.map(ClientBody::H2), &ctx).await.into_response()) }
        });
        let conn = http2.serve_connection(TokioIo::new(io), service);
        if let Err(error) = watcher.watch(conn).await {
            tracing::debug!(%peer, %error, "client connection ended with an error");
        }
    }
}
