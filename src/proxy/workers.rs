//! The proxy's threads: one per core, each with its own single-threaded
//! runtime, accepting from the same listening sockets (as nginx workers).
//!
//! Why not the process's multi-threaded runtime: a request is served start
//! to end by one thread anyway (its client connection's task), so work
//! stealing buys nothing per request and costs synchronisation on every
//! wake-up; and the control plane (watchers, translation, status, admin)
//! keeps its own runtime, so a proxy under full load cannot queue a change's
//! watch event behind thousands of connection tasks. Measured in
//! docs/benchmarks.md.

use std::future::Future;
use std::io;
use std::net::TcpListener as StdListener;
use std::num::NonZeroUsize;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{ProxyConfig, serve, serve_tls};
use crate::snapshot::Snapshot;

/// The listening sockets every proxy thread accepts from.
pub struct Listeners {
    pub plain: StdListener,
    pub tls: StdListener,
}

/// Running proxy threads; `wait` returns once all have drained, or as soon
/// as one fails.
pub struct Workers {
    threads: usize,
    done: mpsc::UnboundedReceiver<io::Result<()>>,
}

/// Reports how a proxy thread ended, also when it panicked.
struct Report(Option<mpsc::UnboundedSender<io::Result<()>>>);

impl Report {
    fn send(mut self, result: io::Result<()>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(result);
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Err(io::Error::other("proxy thread panicked")));
        }
    }
}

/// The default thread count: the CPUs this process may use (affinity mask
/// and cgroup quota included).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Starts `threads` proxy threads (at least one) serving `listeners` from
/// `snapshot` until the future `shutdown()` returns completes; each then
/// drains its own connections.
pub fn spawn<S, F>(
    listeners: &Listeners,
    snapshot: &Arc<ArcSwap<Snapshot>>,
    config: &ProxyConfig,
    threads: usize,
    shutdown: S,
) -> io::Result<Workers>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, done) = mpsc::unbounded_channel();
    let threads = threads.max(1);
    for i in 0..threads {
        let plain = listeners.plain.try_clone()?;
        let tls = listeners.tls.try_clone()?;
        let (snapshot, config) = (snapshot.clone(), config.clone());
        let (stop_plain, stop_tls) = (shutdown(), shutdown());
        let report = Report(Some(tx.clone()));
        std::thread::Builder::new().name(format!("proxy-{i}")).spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
                runtime.block_on(async move {
                    let plain = TcpListener::from_std(plain)?;
                    let tls = TcpListener::from_std(tls)?;
                    // Either failing ends both: a proxy that cannot serve must not go unnoticed.
                    tokio::try_join!(
                        serve(plain, snapshot.clone(), config.clone(), stop_plain),
                        serve_tls(tls, snapshot, config, stop_tls),
                    )
                    .map(|_| ())
                })
            });
            report.send(served);
        })?;
    }
    Ok(Workers { threads, done })
}

impl Workers {
    /// Waits until every thread has stopped, or returns the first error.
    pub async fn wait(mut self) -> io::Result<()> {
        for _ in 0..self.threads {
            match self.done.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        Ok(())
    }
}
