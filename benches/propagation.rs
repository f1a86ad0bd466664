//! Change propagation at scale (issue 4): the time from a credential change
//! to the first proxy response that shows it, with N credentials loaded.
//!
//! - cluster mode: the real controller (kube::Client, kube-runtime watchers,
//!   leader election and status writer) against the in-process test API
//!   server of tests/support/apiserver; changes are written through the
//!   server's handle (the same code path as HTTP: watches see them alike);
//! - local mode: a manifests folder with the N credentials in one big file
//!   and each credential that will change in a small file of its own.
//!
//! Each change is timed from the write returning to the first response that
//! shows it, polling the proxy back to back over one keep-alive HTTP/1
//! connection. Run: `cargo bench --bench propagation` (N=100000 CHANGES=100
//! by default; MODE=cluster|local|both, or MODE=process for the memory of
//! the `portcullis` binary itself in cluster mode (BIN runs another build of
//! it, WRAP="valgrind ..." runs it under a tool), STATUS=0 turns status reporting
//! off, SETTLE=0 starts the changes as soon as the proxy is ready instead of
//! after the status write-back of all N consumers has settled, PAUSE_MS is
//! the pause between changes, POLL_GAP_US a pause between polls, BENCH_LOG a
//! log filter for the controller). Results: docs/benchmarks.md.

// `cargo check --benches` sets cfg(test) without the test harness, so the
// imports of the server's unit tests go unused here.
#[allow(unused_imports)]
#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apiserver::ApiServer;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use portcullis::controller::{Controller, ControllerConfig, StatusSettings};
use portcullis::publish::{Publisher, Shared};
use portcullis::source::watch::LocalSource;
use portcullis::status::{LeaderConfig, StatusConfig};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/process.rs"]
mod process;

// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A change not seen within this long aborts the run.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Readiness (and status write-back) must happen within this long.
const STARTUP: Duration = Duration::from_secs(600);
/// Status write-back counts as settled after this long without a write.
const SETTLED: Duration = Duration::from_secs(2);
const INVALID: &str = "{\n  \"message\":\"Invalid authentication credentials\"\n}";

struct Knobs {
    n: usize,
    changes: usize,
    pause: Duration,
    status: bool,
    /// Wait for the status write-back to settle before the changes.
    settle: bool,
    mode: String,
}

/// Pause between polls (`POLL_GAP_US`, default 0: back to back).
fn poll_gap() -> Duration {
    static GAP: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *GAP.get_or_init(|| Duration::from_micros(knob("POLL_GAP_US", 0)))
}

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn main() {
    // BENCH_LOG=portcullis=debug: the controller's logs, for a slow run.
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).init();
    }
    let k = Knobs {
        n: knob("N", 100_000),
        changes: knob("CHANGES", 100),
        pause: Duration::from_millis(knob("PAUSE_MS", 50)),
        status: knob::<u8>("STATUS", 1) == 1,
        settle: knob::<u8>("SETTLE", 1) == 1,
        mode: knob("MODE", "both".to_string()),
    };
    // Three change types use a consumer each: they must not run out.
    assert!(k.n >= 3 * k.changes, "N must be at least 3 x CHANGES");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    println!("# Propagation benchmark: N={} CHANGES={} PAUSE_MS={}\n", k.n, k.changes, k.pause.as_millis());
    if k.mode == "both" || k.mode == "cluster" {
        rt.block_on(cluster_mode(&k));
    }
    if k.mode == "both" || k.mode == "local" {
        rt.block_on(local_mode(&k));
    }
    if k.mode == "process" {
        rt.block_on(process_mode(&k));
    }
}

// ---------- shared pieces ----------

fn key_of(i: usize) -> String {
    format!("bench-key-{i:07}-{:08x}", (i as u64 * 2_654_435_761) % 4_294_967_296)
}

/// Consumer for change `c` (0..CHANGES) of change type `t` (0..3), spread
/// over the whole range so each change touches a different consumer.
fn changing(k: &Knobs, t: usize, c: usize) -> usize {
    (3 * c + t) * (k.n / (3 * k.changes))
}

/// The quick start's routes (examples/quickstart, without its consumer)
/// pointed at `echo`: /echo -> Service echo, key-auth on the Service.
fn routes_yaml(echo: SocketAddr) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let mut out = String::new();
    for f in ["echo-ingress.yaml", "echo-service.yaml", "key-auth-plugin.yaml"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("quick start file");
        let text = match text.split_once("kind: EndpointSlice") {
            Some((svc, slice)) => {
                format!("{svc}kind: EndpointSlice{}", slice.replace("port: 1027", &format!("port: {}", echo.port())))
            }
            None => text,
        };
        out.push_str(&text);
        out.push_str("\n---\n");
    }
    out
}

fn consumer_yaml(i: usize, key: Option<&str>, consumer: bool) -> String {
    let mut out = String::new();
    if let Some(key) = key {
        out.push_str(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: key-{i}\n  labels: {{konghq.com/credential: key-auth}}\nstringData: {{key: {key}}}\n---\n"
        ));
    }
    if consumer {
        out.push_str(&format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: consumer-{i}\n  annotations: {{kubernetes.io/ingress.class: kong}}\nusername: consumer-{i}\ncredentials: [key-{i}]\n---\n"
        ));
    }
    out
}

/// The runtimes of what is not Portcullis: the test API server, and the
/// clients (poller) with the echo upstream. Deployed, those run on other
/// machines; here they share the 2 cores, but not Portcullis's runtimes:
/// the controller runs on the bench's main runtime (as `portcullis run`'s
/// control plane) and the proxy on its own threads (as `portcullis run`).
fn runtime(name: &'static str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

fn peers() -> &'static tokio::runtime::Runtime {
    static PEERS: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    PEERS.get_or_init(|| runtime("peers"))
}

fn api_server_runtime() -> &'static tokio::runtime::Runtime {
    static API: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    API.get_or_init(|| runtime("apiserver"))
}

async fn echo() -> SocketAddr {
    peers()
        .spawn(async {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
            let addr = l.local_addr().expect("echo addr");
            tokio::spawn(portcullis::echo::serve(l, std::future::pending()));
            addr
        })
        .await
        .expect("echo starts")
}

/// The proxy as `portcullis run` serves it: its own threads, one per core.
fn proxy(shared: &Shared) -> SocketAddr {
    let bind = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        l.set_nonblocking(true).expect("nonblocking");
        l
    };
    let listeners = portcullis::proxy::Listeners { plain: bind(), tls: bind() };
    let addr = listeners.plain.local_addr().expect("proxy addr");
    let threads = portcullis::proxy::default_threads();
    portcullis::proxy::spawn_workers(&listeners, &shared.snapshot, &Default::default(), threads, std::future::pending)
        .expect("proxy threads start");
    addr
}

/// One keep-alive HTTP/1 connection to the proxy, driven on the peers'
/// runtime.
struct Poller {
    inner: Option<Client>,
    polls: u64,
}

impl Poller {
    async fn connect(addr: SocketAddr) -> Self {
        let client = peers().spawn(Client::connect(addr)).await.expect("poller connects");
        Poller { inner: Some(client), polls: 0 }
    }

    async fn get(&mut self, key: Option<&str>) -> (u16, Bytes) {
        let mut client = self.inner.take().expect("poller in place");
        let key = key.map(str::to_string);
        let (client, answer) = peers()
            .spawn(async move {
                let answer = client.get(key.as_deref()).await;
                (client, answer)
            })
            .await
            .expect("poll");
        self.inner = Some(client);
        self.polls += 1;
        answer
    }

    /// Polls back to back until `seen`; returns the time since `written`.
    async fn until(
        &mut self,
        written: Instant,
        key: Option<&str>,
        what: &str,
        seen: fn(u16, &[u8]) -> bool,
    ) -> Duration {
        let mut client = self.inner.take().expect("poller in place");
        let (key, what) = (key.map(str::to_string), what.to_string());
        let (client, took, polls) = peers()
            .spawn(async move {
                let (took, polls) = client.until(written, key.as_deref(), &what, seen).await;
                (client, took, polls)
            })
            .await
            .expect("poll until seen");
        self.inner = Some(client);
        self.polls += polls;
        took
    }
}

struct Client {
    addr: SocketAddr,
    sender: SendRequest<Empty<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Client { addr, sender: Self::handshake(addr).await }
    }

    async fn handshake(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
        let stream = TcpStream::connect(addr).await.expect("connect to the proxy");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        sender
    }

    async fn get(&mut self, key: Option<&str>) -> (u16, Bytes) {
        if self.sender.ready().await.is_err() {
            // The proxy closed the connection (it may limit requests per
            // connection): open another; rare enough not to matter.
            self.sender = Self::handshake(self.addr).await;
        }
        let mut req = http::Request::get("/echo").header("host", "example.com");
        if let Some(key) = key {
            req = req.header("apikey", key);
        }
        let resp = self.sender.send_request(req.body(Empty::new()).expect("request")).await.expect("response");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    }

    /// Polls back to back until `seen`: the time since `written`, and the
    /// number of polls.
    async fn until(
        &mut self,
        written: Instant,
        key: Option<&str>,
        what: &str,
        seen: fn(u16, &[u8]) -> bool,
    ) -> (Duration, u64) {
        let mut polls = 0;
        loop {
            let (status, body) = self.get(key).await;
            polls += 1;
            if seen(status, &body) {
                return (written.elapsed(), polls);
            }
            let gap = poll_gap();
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            assert!(
                written.elapsed() < GIVE_UP,
                "{what}: not seen within {GIVE_UP:?}; last answer {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

fn ok(status: u16, _: &[u8]) -> bool {
    status == 200
}

fn unauthorized(status: u16, _: &[u8]) -> bool {
    status == 401
}

fn invalid(status: u16, body: &[u8]) -> bool {
    status == 401 && body == INVALID.as_bytes()
}

// ---------- reporting ----------

/// The propagation histogram's count and sum: read before and after each
/// change, their growth is that change's internal part (the batch that
/// made it live), exactly rather than as a bucket.
#[derive(Clone, Copy, Default)]
struct Internal {
    count: f64,
    sum: f64,
}

impl Internal {
    fn read(shared: &Shared) -> Self {
        let mut out = Internal::default();
        for line in shared.metrics.encode().lines() {
            let Some(rest) = line.strip_prefix("portcullis_propagation_seconds") else { continue };
            let value = || rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            if rest.starts_with("_count") {
                out.count = value();
            } else if rest.starts_with("_sum") {
                out.sum = value();
            }
        }
        out
    }

    fn since(self, before: Internal) -> Internal {
        Internal { count: self.count - before.count, sum: self.sum - before.sum }
    }
}

/// CPU time (user + system) per thread name, from /proc/self/task: how
/// much the world thread, the runtimes and the proxy used over a phase
/// (steadier than wall times on a shared machine). Empty off Linux.
struct ThreadCpu(std::collections::BTreeMap<String, f64>);

impl ThreadCpu {
    fn read() -> Self {
        let mut out = std::collections::BTreeMap::new();
        let ticks = 100.0; // USER_HZ on Linux
        for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            // "tid (comm) state ... utime stime": comm may hold spaces.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let comm = stat[open + 1..close].to_string();
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // utime and stime are fields 14 and 15 of stat; 3 is the first after comm.
            *out.entry(comm).or_insert(0.0) += (field(11) + field(12)) / ticks;
        }
        ThreadCpu(out)
    }

    fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        let mut out = self.0.clone();
        for (comm, secs) in &mut out {
            *secs -= before.0.get(comm).copied().unwrap_or(0.0);
        }
        ThreadCpu(out)
    }

    fn print(&self) {
        let cells: Vec<String> =
            self.0.iter().filter(|(_, s)| **s > 0.0).map(|(comm, s)| format!("{comm} {:.0} ms", s * 1e3)).collect();
        println!("CPU time per thread during the changes: {}\n", cells.join(", "));
    }
}

struct Row {
    what: String,
    took: Vec<Duration>,
    /// Per change: the snapshots published and their summed internal time.
    internal: Vec<(f64, Duration)>,
}

impl Row {
    fn new(what: &str) -> Row {
        Row { what: what.into(), took: Vec::new(), internal: Vec::new() }
    }

    /// One change: write to seen, and how the metric grew meanwhile.
    fn record(&mut self, took: Duration, internal: Internal) {
        self.took.push(took);
        self.internal.push((internal.count, Duration::from_secs_f64(internal.sum.max(0.0))));
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// Per change type: end-to-end times; the internal part (the metric:
/// change reached the process -> snapshot live); and the rest (through the
/// API server and the watch until the event is decoded, plus the poll).
fn table(rows: &[Row]) {
    println!(
        "| change | count | median ms | p90 ms | p99 ms | max ms | snapshots | internal median ms | internal p99 ms | internal max ms | rest median ms | rest p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let line = |what: &str, took: &[Duration], internal: &[(f64, Duration)]| {
        let mut sorted = took.to_vec();
        sorted.sort();
        let mut inner: Vec<Duration> = internal.iter().map(|(_, d)| *d).collect();
        inner.sort();
        let mut rest: Vec<Duration> = took.iter().zip(internal).map(|(t, (_, i))| t.saturating_sub(*i)).collect();
        rest.sort();
        let snapshots: f64 = internal.iter().map(|(n, _)| n).sum();
        let p = percentile;
        println!(
            "| {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {snapshots} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            took.len(),
            p(&sorted, 0.5),
            p(&sorted, 0.9),
            p(&sorted, 0.99),
            p(&sorted, 1.0),
            p(&inner, 0.5),
            p(&inner, 0.99),
            p(&inner, 1.0),
            p(&rest, 0.5),
            p(&rest, 0.99),
        );
    };
    let (mut all, mut all_internal) = (Vec::new(), Vec::new());
    for r in rows {
        all.extend(&r.took);
        all_internal.extend(&r.internal);
        line(&r.what, &r.took, &r.internal);
    }
    line("**all**", &all, &all_internal);
    println!();
}

// ---------- cluster mode ----------

fn secret_json(i: usize, key: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("key-{i}"), "namespace": "default", "labels": {"konghq.com/credential": "key-auth"}},
        "stringData": {"key": key},
    })
}

fn consumer_json(i: usize) -> Value {
    json!({
        "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
        "metadata": {"name": format!("consumer-{i}"), "namespace": "default",
                     "annotations": {"kubernetes.io/ingress.class": "kong"}},
        "username": format!("consumer-{i}"), "credentials": [format!("key-{i}")],
    })
}

/// The test API server with the quick start's routes to `echo` and N
/// credentials.
async fn seeded_server(k: &Knobs, echo: SocketAddr) -> ApiServer {
    let server = api_server_runtime().spawn(ApiServer::start()).await.expect("test API server starts");
    let seeding = Instant::now();
    for doc in serde_yaml_ng::Deserializer::from_str(&routes_yaml(echo)) {
        let mut v: Value = serde::Deserialize::deserialize(doc).expect("quick start YAML");
        if v.is_null() {
            continue;
        }
        v["metadata"]["namespace"] = json!("default");
        server.apply(v).expect("quick start object");
    }
    for i in 0..k.n {
        server.create(secret_json(i, &key_of(i))).expect("seed Secret");
        server.create(consumer_json(i)).expect("seed KongConsumer");
    }
    println!("- seeded {} objects through the server handle in {:.2?}", 2 * k.n + 4, seeding.elapsed());
    server
}

async fn cluster_mode(k: &Knobs) {
    println!("## Cluster mode (test API server, {} credentials)\n", k.n);
    let echo = echo().await;
    let server = seeded_server(k, echo).await;

    let shared = Shared::new();
    let name = "bench";
    let status = k.status.then(|| StatusSettings {
        election: LeaderConfig::new("kube-system".into(), "portcullis-leader".into(), name.into()),
        writer: StatusConfig {
            publish_service: None,
            publish_addresses: vec!["203.0.113.10".into()],
            instance: name.into(),
        },
    });
    let cfg = ControllerConfig { translate: Default::default(), namespaces: Vec::new(), status };
    let started = Instant::now();
    let controller = Controller::start(server.client_as(name), cfg, shared.clone(), std::future::pending())
        .expect("controller starts");
    let addr = proxy(&shared);
    while !shared.is_ready() {
        assert!(started.elapsed() < STARTUP, "not ready within {STARTUP:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "- ready (first snapshot live, every watch listed) {:.2?} after the controller started",
        started.elapsed()
    );
    if k.status && !k.settle {
        println!("- changes start now, during the status write-back of {} consumers (SETTLE=0)", k.n);
    }
    if k.status && k.settle {
        // The leader writes a Programmed condition on every KongConsumer
        // once; measure after that storm, as a long-running replica sees.
        let (mut writes, mut quiet_since) = (0, Instant::now());
        while !*controller.leader.borrow() || writes == 0 || quiet_since.elapsed() < SETTLED {
            assert!(started.elapsed() < STARTUP, "status writes did not settle within {STARTUP:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let new = status_writes(&server);
            if new > 0 {
                (writes, quiet_since) = (writes + new, Instant::now());
            }
        }
        println!(
            "- status write-back settled ({writes} status writes by the controller) {:.2?} after the controller started; \
             process RSS (controller + test API server) {} MB",
            quiet_since - started,
            process::rss_mb()
        );
    }
    server.clear_requests();
    println!();

    let mut poller = Poller::connect(addr).await;
    assert_eq!(poller.get(Some(&key_of(changing(k, 0, 0)))).await.0, 200, "a seeded key works");

    let mut rotate = Row::new("rotate a Secret's key (patch stringData.key)");
    let mut delete_secret = Row::new("delete a credential Secret");
    let mut remove_consumer = Row::new("delete a KongConsumer");
    let mut unannotate = Row::new("Service: remove konghq.com/plugins");
    let mut annotate = Row::new("Service: set konghq.com/plugins: key-auth");
    let polls = poller.polls;
    let cpu = ThreadCpu::read();

    for c in 0..k.changes {
        let i = changing(k, 0, c);
        let key = format!("rotated-{c}-{i}");
        let before = Internal::read(&shared);
        server.patch("secrets", "default", &format!("key-{i}"), &json!({"stringData": {"key": key}})).expect("rotate");
        let written = Instant::now();
        let took = poller.until(written, Some(&key), "rotate", ok).await;
        tokio::time::sleep(k.pause).await;
        rotate.record(took, Internal::read(&shared).since(before));
    }

    for c in 0..k.changes {
        let i = changing(k, 1, c);
        let before = Internal::read(&shared);
        server.delete("secrets", "default", &format!("key-{i}")).expect("delete Secret");
        let written = Instant::now();
        let took = poller.until(written, Some(&key_of(i)), "delete Secret", invalid).await;
        tokio::time::sleep(k.pause).await;
        delete_secret.record(took, Internal::read(&shared).since(before));
    }

    for c in 0..k.changes {
        let i = changing(k, 2, c);
        let before = Internal::read(&shared);
        server.delete("kongconsumers", "default", &format!("consumer-{i}")).expect("delete KongConsumer");
        let written = Instant::now();
        let took = poller.until(written, Some(&key_of(i)), "delete consumer", unauthorized).await;
        tokio::time::sleep(k.pause).await;
        remove_consumer.record(took, Internal::read(&shared).since(before));
    }

    for _ in 0..k.changes {
        for (value, row) in [(Value::Null, &mut unannotate), (json!("key-auth"), &mut annotate)] {
            let before = Internal::read(&shared);
            let patch = json!({"metadata": {"annotations": {"konghq.com/plugins": value}}});
            server.patch("services", "default", "echo", &patch).expect("annotate");
            let written = Instant::now();
            let seen = if value.is_null() { ok } else { unauthorized };
            let took = poller.until(written, None, "annotate", seen).await;
            tokio::time::sleep(k.pause).await;
            row.record(took, Internal::read(&shared).since(before));
        }
    }

    let mut rows = Vec::new();
    rows.extend([rotate, delete_secret, remove_consumer, unannotate, annotate]);
    table(&rows);
    println!(
        "{} polls in all; {} status writes by the controller during the changes\n",
        poller.polls - polls,
        status_writes(&server)
    );
    ThreadCpu::read().since(&cpu).print();
}

// ---------- the binary, cluster mode ----------

/// A port free right now on 127.0.0.1 (for the child process to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The process's user + system CPU time, in ms.
fn cpu_ms_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based from
    // `state` (field 3): utime is field 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    // Linux reports these in USER_HZ, 100 on every supported architecture.
    ticks * 10
}

/// `portcullis run` as deployed: a process of its own, reading the test
/// API server through a kubeconfig. What it holds with N credentials
/// loaded (and, with status on, their status written) is its own memory,
/// without the test server's.
async fn process_mode(k: &Knobs) {
    println!("## The binary in cluster mode (its own process, {} credentials)\n", k.n);
    let echo = echo().await;
    let server = seeded_server(k, echo).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("write kubeconfig");
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let local = |port: u16| format!("127.0.0.1:{port}");
    let started = Instant::now();
    // WRAP: a command the binary runs under (scripts/symbol-order.sh
    // profiles cluster mode this way); BIN: another build of the binary.
    let bin = std::env::var("BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_portcullis").to_string());
    let wrap = std::env::var("WRAP").unwrap_or_default();
    let mut command = wrap.split_whitespace().chain([bin.as_str()]);
    let mut child = std::process::Command::new(command.next().expect("a command"))
        .args(command)
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--proxy-listen", &proxy.to_string()])
        .args(["--proxy-tls-listen", &local(free_port())])
        .args(["--admin-listen", &local(free_port())])
        .args(["--publish-status-address", "203.0.113.10"])
        .args(["--update-status", if k.status { "true" } else { "false" }])
        .env("RUST_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start portcullis");
    let pid = child.id();
    // Ready: the last seeded key passes key-auth through the proxy.
    let last = key_of(k.n - 1);
    loop {
        assert!(started.elapsed() < STARTUP, "not ready within {STARTUP:?}");
        assert!(child.try_wait().ok().flatten().is_none(), "portcullis exited");
        if TcpStream::connect(proxy).await.is_ok() {
            let mut poller = Poller::connect(proxy).await;
            if poller.get(Some(&last)).await.0 == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = started.elapsed();
    let (rss, anon, file) = process::rss_of(pid);
    println!(
        "- ready (the last key passes) {ready:.2?} after start; CPU {} ms; RSS {rss} MB (anonymous {anon}, file {file})",
        cpu_ms_of(pid)
    );
    if k.status {
        let (mut writes, mut quiet_since) = (0, Instant::now());
        while writes == 0 || quiet_since.elapsed() < SETTLED {
            assert!(started.elapsed() < STARTUP, "status writes did not settle within {STARTUP:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let new = status_writes(&server);
            if new > 0 {
                (writes, quiet_since) = (writes + new, Instant::now());
            }
        }
        let (rss, anon, file) = process::rss_of(pid);
        println!(
            "- status write-back settled ({writes} status writes) {:.2?} after start; CPU {} ms; RSS {rss} MB (anonymous {anon}, file {file}); peak RSS so far {} MB",
            quiet_since - started,
            cpu_ms_of(pid),
            process::peak_rss_of(pid)
        );
    }
    // Credential changes, as a long-running process sees them: each
    // rotated key is polled until it passes.
    let mut poller = Poller::connect(proxy).await;
    let rotations = k.changes.min(20);
    for c in 0..rotations {
        let i = changing(k, 0, c);
        let key = format!("rotated-{c}-{i}");
        server.patch("secrets", "default", &format!("key-{i}"), &json!({"stringData": {"key": key}})).expect("rotate");
        poller.until(Instant::now(), Some(&key), "rotate", ok).await;
    }
    println!("- {rotations} keys rotated, each seen passing");
    // A quiet while later: what stays (the allocator returns freed pages
    // after a delay).
    tokio::time::sleep(Duration::from_secs(knob("QUIET_S", 5))).await;
    let (rss, anon, file) = process::rss_of(pid);
    println!("- {:.2?} after start, quiet: RSS {rss} MB (anonymous {anon}, file {file})", started.elapsed());
    // SIGTERM: a clean shutdown (MIMALLOC_SHOW_STATS=1 prints the
    // allocator's statistics then).
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    if tokio::time::timeout(Duration::from_secs(40), async {
        while child.try_wait().ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_err()
    {
        let _ = child.kill();
    }
    let _ = child.wait();
    println!();
}

/// Status subresource writes since the last call (the log is cleared).
fn status_writes(server: &ApiServer) -> usize {
    let n = server.requests().iter().filter(|r| r.is_write() && r.path.ends_with("/status")).count();
    server.clear_requests();
    n
}

// ---------- local mode ----------

/// Writes `text` to `path` the way tools that update files atomically do:
/// a temporary file (ignored by the watcher) renamed into place.
fn replace(path: &Path, text: &str) {
    let tmp: PathBuf = path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("")));
    std::fs::write(&tmp, text).expect("write temporary file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

async fn local_mode(k: &Knobs) {
    println!("## Local mode (manifests folder, {} credentials)\n", k.n);
    let dir = tempfile::tempdir().expect("temporary folder");
    let echo = echo().await;
    std::fs::write(dir.path().join("routes.yaml"), routes_yaml(echo)).expect("write routes");
    let small = |i: usize| dir.path().join(format!("consumer-{i}.yaml"));
    let changed: std::collections::HashSet<usize> =
        (0..3).flat_map(|t| (0..k.changes).map(move |c| changing(k, t, c))).collect();
    let mut big = String::new();
    let mut small_files = 0;
    for i in 0..k.n {
        if changed.contains(&i) {
            std::fs::write(small(i), consumer_yaml(i, Some(&key_of(i)), true)).expect("write consumer file");
            small_files += 1;
        } else {
            big.push_str(&consumer_yaml(i, Some(&key_of(i)), true));
        }
    }
    std::fs::write(dir.path().join("consumers.yaml"), &big).expect("write consumers");
    println!(
        "- consumers.yaml: {} credentials ({:.1} MB); {small_files} credentials in a file of their own",
        k.n - small_files,
        big.len() as f64 / 1e6
    );
    drop(big);

    let shared = Shared::new();
    let publisher = Publisher::new(Default::default(), shared.clone());
    let started = Instant::now();
    let path = dir.path().to_path_buf();
    let _source = tokio::task::spawn_blocking(move || LocalSource::start(&path, publisher))
        .await
        .expect("local source task")
        .expect("local source starts");
    println!("- first snapshot live {:.2?} after the start (folder read and translated)\n", started.elapsed());
    let addr = proxy(&shared);
    let mut poller = Poller::connect(addr).await;
    assert_eq!(poller.get(Some(&key_of(changing(k, 0, 0)))).await.0, 200, "a seeded key works");

    let mut rotate = Row::new("rotate a key (file rewritten)");
    let mut delete_secret = Row::new("delete a Secret (its document removed)");
    let mut remove_consumer = Row::new("remove a consumer (its document removed)");
    for c in 0..k.changes {
        let i = changing(k, 0, c);
        let key = format!("rotated-{c}-{i}");
        let before = Internal::read(&shared);
        replace(&small(i), &consumer_yaml(i, Some(&key), true));
        let written = Instant::now();
        let took = poller.until(written, Some(&key), "rotate", ok).await;
        tokio::time::sleep(k.pause).await;
        rotate.record(took, Internal::read(&shared).since(before));
    }
    for c in 0..k.changes {
        let i = changing(k, 1, c);
        let before = Internal::read(&shared);
        replace(&small(i), &consumer_yaml(i, None, true));
        let written = Instant::now();
        let took = poller.until(written, Some(&key_of(i)), "delete Secret", invalid).await;
        tokio::time::sleep(k.pause).await;
        delete_secret.record(took, Internal::read(&shared).since(before));
    }
    for c in 0..k.changes {
        let i = changing(k, 2, c);
        let before = Internal::read(&shared);
        replace(&small(i), &consumer_yaml(i, Some(&key_of(i)), false));
        let written = Instant::now();
        let took = poller.until(written, Some(&key_of(i)), "remove consumer", unauthorized).await;
        tokio::time::sleep(k.pause).await;
        remove_consumer.record(took, Internal::read(&shared).since(before));
    }
    table(&[rotate, delete_secret, remove_consumer]);
}
