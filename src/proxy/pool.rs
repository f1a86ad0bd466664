//! A small pool of idle HTTP/1.1 keep-alive connections per upstream target.
//!
//! Connections are checked out for one request and checked back in once the
//! response body has been read to the end; the most recently used one is
//! reused first (warm sockets, and fewer connections kept open).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::io::{TimedIo, WriteTimeout};
use crate::snapshot::Target;

/// The request body sent upstream: streamed from the client untouched, or
/// buffered (and possibly rewritten) when key-auth had to read it.
pub type UpstreamRequestBody = super::request_body::OutgoingBody;

pub struct Conn {
    pub sender: http1::SendRequest<UpstreamRequestBody>,
    pub write_timeout: WriteTimeout,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

pub struct Pool {
    idle: Mutex<HashMap<Target, Vec<Idle>>>,
    max_idle_per_target: usize,
    idle_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no address for target")]
    NoAddress,
    #[error("handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
}

impl Pool {
    pub fn new(max_idle_per_target: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Pool { idle: Mutex::default(), max_idle_per_target, idle_timeout })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Target, Vec<Idle>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every operation is a single push/pop), so poisoning is ignored.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently returned live idle connection to `target`.
    pub fn checkout(&self, target: &Target) -> Option<Conn> {
        let mut idle = self.lock();
        let list = idle.get_mut(target)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < self.idle_timeout && !entry.conn.sender.is_closed() {
                return Some(entry.conn);
            }
        }
        None
    }

    fn checkin(&self, target: Target, conn: Conn) {
        if conn.sender.is_closed() || self.max_idle_per_target == 0 {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(target).or_default();
        if list.len() >= self.max_idle_per_target {
            list.remove(0);
        }
        list.push(Idle { conn, since: Instant::now() });
    }

    /// Drops expired and closed idle connections and forgets targets that
    /// have none left (targets come and go with pods).
    fn sweep(&self) {
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain(|e| e.since.elapsed() < self.idle_timeout && !e.conn.sender.is_closed());
            !list.is_empty()
        });
    }

    /// Sweeps periodically for as long as the pool is alive.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak: Weak<Pool> = Arc::downgrade(self);
        let period = self.idle_timeout.clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.sweep();
            }
        });
    }
}

/// Hands a connection back to its pool; created per request, released by the
/// response body once it has been read to the end.
pub struct Checkin {
    pool: Arc<Pool>,
    target: Target,
    conn: Conn,
}

impl Checkin {
    pub fn new(pool: Arc<Pool>, target: Target, conn: Conn) -> Self {
        Checkin { pool, target, conn }
    }

    pub fn release(self) {
        self.pool.checkin(self.target, self.conn);
    }
}

/// Opens a new connection (resolving a name target at connect time) within
/// `timeout`, and spawns its connection task.
pub async fn connect(target: &Target, timeout: Duration) -> Result<Conn, ConnectError> {
    let stream = tokio::time::timeout(timeout, open(target)).await.map_err(|_| ConnectError::Timeout)??;
    stream.set_nodelay(true)?;
    let write_timeout = WriteTimeout::default();
    let io = TokioIo::new(TimedIo::new(stream, write_timeout.clone()));
    let (sender, connection) = http1::Builder::new().handshake(io).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
    });
    Ok(Conn { sender, write_timeout })
}

async fn open(target: &Target) -> Result<TcpStream, ConnectError> {
    match target {
        Target::Addr(addr) => Ok(TcpStream::connect(addr).await?),
        Target::Name { host, port } => {
            let mut last = ConnectError::NoAddress;
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = e.into(),
                }
            }
            Err(last)
        }
    }
}
