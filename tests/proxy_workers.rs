//! The proxy's own threads (`portcullis run`): several single-threaded
//! runtimes accepting from one listening socket, all reading the same live
//! Snapshot, all draining on shutdown.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::StatusCode;
use portcullis::proxy::{Listeners, ProxyConfig, Workers, spawn_workers};
use portcullis::snapshot::{ConsumerIndex, Snapshot};
use support::*;
use tokio::sync::watch;

struct Threads {
    addr: SocketAddr,
    tls_addr: SocketAddr,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stop: watch::Sender<bool>,
    workers: Workers,
}

fn listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

fn start(snapshot: Snapshot, threads: usize) -> Threads {
    let listeners = Listeners { plain: listener(), tls: listener() };
    let addr = listeners.plain.local_addr().expect("addr");
    let tls_addr = listeners.tls.local_addr().expect("tls addr");
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let (stop, rx) = watch::channel(false);
    let shutdown = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let workers =
        spawn_workers(&listeners, &snapshot, &ProxyConfig::default(), threads, shutdown).expect("threads start");
    Threads { addr, tls_addr, snapshot, stop, workers }
}

/// Waits (up to 2 s) until this process's threads satisfy `ok`.
async fn threads_become(ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..200 {
        let names = thread_names();
        if ok(&names) {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("threads never became as expected: {:?}", thread_names());
}

/// Names of this process's threads (Linux).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[tokio::test]
async fn every_thread_serves_the_live_snapshot_and_all_drain() {
    let echo = start_echo().await;
    let route = |name: &str, path: &str| mk_route(name, prefix(path), mk_backend(&[echo]));
    let proxy = start(mk_snapshot(vec![route("a", "/a")], ConsumerIndex::new()), 3);
    threads_become(|names| (0..3).all(|i| names.contains(&format!("proxy-{i}")))).await;

    // Many connections at once (the kernel hands each to one thread).
    let answers = futures::future::join_all((0..24).map(|_| get_path(proxy.addr, "/a"))).await;
    for resp in &answers {
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.echo().header("x-forwarded-port"), Some(proxy.addr.port().to_string()));
    }

    // A new Snapshot is what every thread serves from the next request on.
    proxy.snapshot.store(Arc::new(mk_snapshot(vec![route("b", "/b")], ConsumerIndex::new())));
    let answers = futures::future::join_all((0..24).map(|_| get_path(proxy.addr, "/a"))).await;
    assert!(answers.iter().all(|r| r.status == StatusCode::NOT_FOUND));
    assert_eq!(get_path(proxy.addr, "/b").await.status, StatusCode::OK);
    // The TLS socket is served too (a handshake is attempted, not refused).
    assert!(tokio::net::TcpStream::connect(proxy.tls_addr).await.is_ok());

    proxy.stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), proxy.workers.wait())
        .await
        .expect("every thread drains")
        .expect("no thread failed");
    // Drained threads have let go of the sockets: nothing accepts any more.
    assert!(tokio::net::TcpStream::connect(proxy.addr).await.is_err());
    // They report before their runtime is gone: give them a moment to exit.
    threads_become(|names| !names.iter().any(|n| n.starts_with("proxy-"))).await;
}

#[tokio::test]
async fn zero_threads_means_one() {
    let echo = start_echo().await;
    let proxy = start(mk_snapshot(vec![mk_route("a", prefix("/"), mk_backend(&[echo]))], ConsumerIndex::new()), 0);
    assert_eq!(get_path(proxy.addr, "/").await.status, StatusCode::OK);
    proxy.stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), proxy.workers.wait()).await.expect("drains").expect("no failure");
}
