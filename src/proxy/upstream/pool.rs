//! A small pool of idle HTTP/1.1 keep-alive connections per upstream target.
//!
//! Connections are checked out for one request and checked back in once the
//! response body has been read to the end; the most recently used one is
//! reused first (warm sockets, and fewer connections kept open). Each proxy
//! thread has its own pool, so the lock is never contended. Targets come
//! from the cluster's objects, not from clients, so the map hashes with
//! foldhash: two lookups per request, each a few instructions instead of
//! SipHash's hundreds.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use foldhash::HashMap;

use super::conn::UpstreamConn;
use crate::proxy::clock;
use crate::snapshot::Target;

struct Idle {
    conn: Box<UpstreamConn>,
    since: Instant,
}

pub struct Pool {
    idle: Mutex<HashMap<Target, Vec<Idle>>>,
    max_idle_per_target: usize,
    idle_timeout: Duration,
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

    /// The most recently returned idle connection to `target` that is still
    /// usable (not expired, not closed by the upstream).
    pub fn checkout(&self, target: &Target) -> Option<Box<UpstreamConn>> {
        let mut idle = self.lock();
        let list = idle.get_mut(target)?;
        while let Some(mut entry) = list.pop() {
            if clock::now().saturating_duration_since(entry.since) < self.idle_timeout && entry.conn.is_idle_usable() {
                return Some(entry.conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Box<UpstreamConn>) {
        if self.max_idle_per_target == 0 {
            return;
        }
        let mut idle = self.lock();
        // The target is cloned only for a list not yet made (a name
        // target's clone allocates).
        let list = match idle.get_mut(&conn.target) {
            Some(list) => list,
            None => idle.entry(conn.target.clone()).or_default(),
        };
        if list.len() >= self.max_idle_per_target {
            list.remove(0);
        }
        list.push(Idle { conn, since: clock::now() });
    }

    /// Drops expired and closed idle connections and forgets targets that
    /// have none left (targets come and go with pods).
    fn sweep(&self) {
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain_mut(|e| e.since.elapsed() < self.idle_timeout && e.conn.is_idle_usable());
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

/// A checked-out connection and where it goes back to; released by the
/// response body once it has been read to the end.
pub struct Checkin {
    pool: Arc<Pool>,
    pub(super) conn: Box<UpstreamConn>,
    /// The exchange left the connection clean: request fully sent, the
    /// upstream keeps it alive, the body is delimited.
    reusable: bool,
}

impl Checkin {
    pub fn new(pool: Arc<Pool>, conn: Box<UpstreamConn>, reusable: bool) -> Self {
        Checkin { pool, conn, reusable }
    }

    /// Back to the pool if reusable and nothing unread is left; else the
    /// connection is closed.
    pub fn release(self) {
        if self.reusable && self.conn.buf.is_empty() {
            self.pool.checkin(self.conn);
        }
    }
}
