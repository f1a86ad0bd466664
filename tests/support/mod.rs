//! Test-only helpers: `mk_*` builders for snapshot types, an echo upstream
//! and the proxy on ephemeral ports, a tiny HTTP client and a raw-TCP client
//! for what client libraries normalize away. `tls` has the TLS helpers.
#![allow(dead_code)]

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::{
    Backend, Consumer, ConsumerIndex, Credential, KeyAuthConfig, KeyDigest, KeyName, PathMatch, Protocols, Route,
    RouteAuth, RouteTable, Snapshot, Target, Uid,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const HOST: &str = "example.com";

// ---------- builders ----------

pub fn mk_backend(targets: &[SocketAddr]) -> Backend {
    Backend::new("default.echo.80".into(), targets.iter().map(|a| Target::Addr(*a)).collect())
}

pub fn mk_route(name: &str, path: PathMatch, backend: Backend) -> Route {
    mk_route_on(name, path, Arc::new(backend))
}

pub fn mk_route_on(name: &str, path: PathMatch, backend: Arc<Backend>) -> Route {
    Route {
        name: format!("default.{name}"),
        source: format!("default/{name}"),
        hosts: Vec::new(),
        path,
        methods: Vec::new(),
        headers: Vec::new(),
        protocols: Protocols::default(),
        https_redirect_status: StatusCode::UPGRADE_REQUIRED,
        strip_path: false,
        preserve_host: true,
        backend,
        auth: RouteAuth::Open,
        plugins: Vec::new(),
        created: SystemTime::UNIX_EPOCH,
    }
}

pub fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

pub fn mk_key_name(name: &str) -> KeyName {
    let lower = name.to_ascii_lowercase();
    KeyName {
        name: name.into(),
        header: HeaderName::from_bytes(lower.as_bytes()).expect("valid key name"),
        header_alt: lower
            .contains('_')
            .then(|| HeaderName::from_bytes(lower.replace('_', "-").as_bytes()).expect("alt")),
    }
}

pub fn mk_key_auth() -> KeyAuthConfig {
    KeyAuthConfig {
        source: "default/key-auth".into(),
        key_names: vec![mk_key_name("apikey")],
        key_in_header: true,
        key_in_query: true,
        key_in_body: false,
        hide_credentials: false,
        anonymous: None,
        run_on_preflight: true,
        www_authenticate: HeaderValue::from_static("Key realm=\"kong\""),
        protocols: Protocols::default(),
    }
}

pub fn with_auth(mut route: Route, config: KeyAuthConfig) -> Route {
    route.auth = RouteAuth::KeyAuth(Arc::new(config));
    route
}

pub fn mk_consumer(id: &str, username: Option<&str>, custom_id: Option<&str>) -> Consumer {
    Consumer::owned(Uid::new(id), username, custom_id, "default", id).expect("valid consumer")
}

pub fn mk_credential(consumer: &Consumer, key: &str, id: &str, expires_at: Option<SystemTime>) -> Credential {
    let digest = KeyDigest::of(key.as_bytes());
    Credential::owned(consumer.clone(), digest, Uid::new(id), id, expires_at).expect("valid credential")
}

/// Consumers used across the key-auth tests:
/// - `alice` (custom_id `c-alice`) with key `alice-key` (credential `cred-alice`),
/// - `bob` (no username, no custom_id) with key `bob-key`,
/// - `carol` with an expired key `old-key`,
/// - `anon` (the anonymous consumer).
pub fn mk_consumers() -> ConsumerIndex {
    let mut index = ConsumerIndex::new();
    let alice = mk_consumer("id-alice", Some("alice"), Some("c-alice"));
    let bob = mk_consumer("id-bob", None, None);
    let carol = mk_consumer("id-carol", Some("carol"), None);
    let anon = mk_consumer("id-anon", Some("anon"), None);
    for c in [&alice, &bob, &carol, &anon] {
        index.count_consumer(true);
        if c.username() == Some("anon") {
            // Translation resolves `anonymous` names; by username and by id.
            index.set_anonymous("anon", Some(c.clone()));
            index.set_anonymous("id-anon", Some(c.clone()));
        }
    }
    index.insert_credential(mk_credential(&alice, "alice-key", "cred-alice", None));
    index.insert_credential(mk_credential(&bob, "bob-key", "cred-bob", None));
    let past = SystemTime::now() - Duration::from_secs(60);
    index.insert_credential(mk_credential(&carol, "old-key", "cred-carol", Some(past)));
    index
}

pub fn mk_snapshot(routes: Vec<Route>, consumers: ConsumerIndex) -> Snapshot {
    Snapshot::new(Arc::new(RouteTable::new(routes, None)), Arc::new(consumers))
}

// ---------- servers ----------

/// Starts an echo upstream; it runs until the test's runtime ends.
pub async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(portcullis::echo::serve(listener, std::future::pending()));
    addr
}

/// An address nothing listens on (connection refused).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    /// Signals shutdown (drain).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn start_proxy(snapshot: Snapshot) -> Proxy {
    start_proxy_with(snapshot, ProxyConfig::default()).await
}

pub async fn start_proxy_with(snapshot: Snapshot, config: ProxyConfig) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(portcullis::proxy::serve(listener, snapshot.clone(), config, async move {
        let _ = rx.await;
    }));
    Proxy { addr, snapshot, shutdown: Some(tx), task }
}

/// A proxy with one open route `/` to one echo upstream.
pub async fn open_proxy() -> Proxy {
    let echo = start_echo().await;
    start_proxy(mk_snapshot(vec![mk_route("open", prefix("/"), mk_backend(&[echo]))], ConsumerIndex::new())).await
}

/// A proxy with one key-auth route `/` (the given config) to one echo.
pub async fn auth_proxy(config: KeyAuthConfig) -> Proxy {
    let echo = start_echo().await;
    let route = with_auth(mk_route("auth", prefix("/"), mk_backend(&[echo])), config);
    start_proxy(mk_snapshot(vec![route], mk_consumers())).await
}

// ---------- HTTP client ----------

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    /// The echo's description of what the upstream received.
    pub fn echo(&self) -> Echoed {
        assert_eq!(self.status, StatusCode::OK, "expected a proxied 200, got body {:?}", self.body);
        Echoed(serde_json::from_slice(&self.body).expect("echo JSON"))
    }
}

pub struct Echoed(pub Value);

impl Echoed {
    /// Every value the upstream received for `name` (case-insensitive).
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .filter_map(|h| h[1].as_str().map(str::to_owned))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let mut all = self.headers(name);
        assert!(all.len() <= 1, "{name} received {} times: {all:?}", all.len());
        all.pop()
    }

    pub fn path(&self) -> &str {
        self.0["path"].as_str().expect("path")
    }

    pub fn body(&self) -> &str {
        self.0["body"].as_str().expect("body")
    }

    pub fn body_len(&self) -> u64 {
        self.0["body_len"].as_u64().expect("body_len")
    }

    pub fn listen(&self) -> &str {
        self.0["listen"].as_str().expect("listen")
    }

    pub fn peer(&self) -> &str {
        self.0["peer"].as_str().expect("peer")
    }
}

/// A GET request builder with the test Host.
pub fn get(path: &str) -> http::request::Builder {
    Request::get(path).header("host", HOST)
}

pub fn post(path: &str, content_type: &str) -> http::request::Builder {
    Request::post(path).header("host", HOST).header("content-type", content_type)
}

pub fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

pub fn body(s: impl Into<Bytes>) -> Full<Bytes> {
    Full::new(s.into())
}

/// Sends one request over a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    finish(sender.send_request(req)).await
}

/// Sends one request over a new HTTP/2 (prior knowledge) connection.
pub async fn send_h2(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2 handshake");
    tokio::spawn(conn);
    finish(sender.send_request(req)).await
}

/// Bounds every client wait: a hang is a test failure, not a stuck run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

async fn finish(response: impl Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>>) -> Resp {
    let response = tokio::time::timeout(CLIENT_TIMEOUT, response).await.expect("response in time").expect("response");
    let (parts, body) = response.into_parts();
    let body =
        tokio::time::timeout(CLIENT_TIMEOUT, body.collect()).await.expect("body in time").expect("body").to_bytes();
    Resp { status: parts.status, headers: parts.headers, body }
}

pub async fn get_path(addr: SocketAddr, path: &str) -> Resp {
    send(addr, get(path).body(empty()).expect("request")).await
}

// ---------- raw TCP ----------

pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn echo(&self) -> Echoed {
        assert_eq!(self.status, 200, "expected a proxied 200, got {:?}", String::from_utf8_lossy(&self.body));
        Echoed(serde_json::from_slice(&self.body).expect("echo JSON"))
    }
}

/// Writes `request` as is (it should carry `Connection: close`) and reads
/// the response until the server closes.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(CLIENT_TIMEOUT, stream.read_to_end(&mut buf)).await.expect("response in time").expect("read");
    parse_raw(&buf)
}

fn parse_raw(buf: &[u8]) -> RawResp {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
    let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().as_bytes().to_vec()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked =
        headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case(b"chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    RawResp { status, headers, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 2 + size + 2..];
    }
}

// ---------- misbehaving upstreams ----------

/// An upstream that answers each connection's first request with a small
/// 200 (keep-alive, as far as the client can tell) and closes the
/// connection shortly after (like an upstream keep-alive timeout).
pub async fn start_one_shot_upstream() -> SocketAddr {
    start_raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await
}

/// An upstream answering each connection's first request with `response`
/// verbatim, then closing the connection shortly after.
pub async fn start_raw_upstream(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    addr
}

/// An upstream that sends response headers and part of the body, then
/// stalls with the connection open.
pub async fn start_stalling_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial").await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

/// An upstream that accepts connections and never reads from them.
pub async fn start_deaf_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

// ---------- deterministic randomness ----------

/// Small deterministic PRNG (xorshift64*): reproducible failures, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
