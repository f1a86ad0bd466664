//! Local mode end to end: a manifests folder on disk, the file watcher, the
//! publisher and the proxy on real sockets, with a real echo upstream.
//! Edits, additions and deletions change behaviour live.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::publish::{Publisher, Shared};
use portcullis::source::watch::LocalSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for a file change to take effect before failing.
/// Generous: machines are noisy; the measured delay is printed.
const CONVERGE: Duration = Duration::from_secs(10);

struct Stack {
    dir: tempfile::TempDir,
    proxy: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    shared: Arc<Shared>,
    _source: LocalSource,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Stack {
    /// The quick start, pointed at a fresh echo upstream.
    async fn quickstart() -> Stack {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        tokio::spawn(portcullis::echo::serve(echo, std::future::pending()));

        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
        for f in std::fs::read_dir(src).unwrap() {
            let f = f.unwrap().path();
            let mut text = std::fs::read_to_string(&f).unwrap();
            if let Some((svc, slice)) = text.split_once("kind: EndpointSlice") {
                text =
                    format!("{svc}kind: EndpointSlice{}", slice.replace("port: 1027", &format!("port: {echo_port}")));
            }
            std::fs::write(dir.path().join(f.file_name().unwrap()), text).unwrap();
        }

        let shared = Shared::new();
        let publisher = Publisher::new(Default::default(), shared.clone());
        let source = LocalSource::start(dir.path(), publisher).unwrap();
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (proxy_addr, admin_addr) = (proxy.local_addr().unwrap(), admin.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stopped.await;
            let _ = tx.send(true);
        });
        let wait = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(portcullis::proxy::serve(proxy, shared.snapshot.clone(), Default::default(), wait(rx.clone())));
        tokio::spawn(portcullis::admin::serve(admin, shared.clone(), wait(rx)));
        Stack { dir, proxy: proxy_addr, admin: admin_addr, shared, _source: source, _stop: stop }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn edit(&self, name: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(name)).unwrap();
        assert!(text.contains(from), "{name} does not contain {from:?}");
        std::fs::write(self.path(name), text.replace(from, to)).unwrap();
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.proxy, path, headers).await
    }

    /// Polls until `pred` holds for GET `path`; returns how long it took.
    async fn until(&self, path: &str, headers: &[(&str, &str)], what: &str, pred: impl Fn(&Reply) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.get(path, headers).await;
            if pred(&r) {
                let took = start.elapsed();
                println!("{what}: took effect after {took:?}");
                return took;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "{what}: not seen within {CONVERGE:?}; last reply {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    /// What the echo upstream saw for a request header (lower-case name).
    fn upstream_header(&self, name: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v["headers"]
            .as_array()?
            .iter()
            .find_map(|h| (h[0].as_str()?.eq_ignore_ascii_case(name)).then(|| h[1].as_str().unwrap_or("").to_string()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), raw.
async fn request(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    Reply { status, head: head.to_string(), body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

const NO_KEY: &str = "{\n  \"message\":\"No API key found in request\"\n}";
const INVALID: &str = "{\n  \"message\":\"Invalid authentication credentials\"\n}";

#[tokio::test]
async fn quickstart_enforces_key_auth() {
    let stack = Stack::quickstart().await;
    let r = stack.get("/echo", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, NO_KEY);
    assert!(r.head.to_ascii_lowercase().contains("www-authenticate: key realm=\"kong\""), "{}", r.head);

    let r = stack.get("/echo", &[("apikey", "hello_world")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-consumer-username").as_deref(), Some("alex"));
    assert_eq!(r.upstream_header("apikey").as_deref(), Some("hello_world"), "hide_credentials is off");

    let r = stack.get("/echo?apikey=wrong", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (401, INVALID));
}

#[tokio::test]
async fn deleting_the_credential_revokes_the_key() {
    let stack = Stack::quickstart().await;
    assert_eq!(stack.get("/echo", &[("apikey", "hello_world")]).await.status, 200);
    std::fs::remove_file(stack.path("consumer-alex.yaml")).unwrap();
    stack
        .until("/echo", &[("apikey", "hello_world")], "credential deleted", |r| r.status == 401 && r.body == INVALID)
        .await;
}

#[tokio::test]
async fn editing_a_secret_rotates_the_key() {
    let stack = Stack::quickstart().await;
    stack.edit("consumer-alex.yaml", "key: hello_world", "key: rotated-key");
    stack.until("/echo", &[("apikey", "rotated-key")], "rotated key accepted", |r| r.status == 200).await;
    let old = stack.get("/echo", &[("apikey", "hello_world")]).await;
    assert_eq!((old.status, old.body.as_str()), (401, INVALID));
}

#[tokio::test]
async fn annotating_and_unannotating_the_service_follows_the_file() {
    let stack = Stack::quickstart().await;
    stack.edit("echo-service.yaml", "konghq.com/plugins: key-auth", "example.com/note: open");
    stack.until("/echo", &[], "plugin annotation removed", |r| r.status == 200).await;
    stack.edit("echo-service.yaml", "example.com/note: open", "konghq.com/plugins: key-auth");
    stack.until("/echo", &[], "plugin annotation restored", |r| r.status == 401).await;
}

#[tokio::test]
async fn adding_a_file_adds_a_consumer_and_a_route() {
    let stack = Stack::quickstart().await;
    std::fs::write(
        stack.path("bob.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bob-key\n  labels: {konghq.com/credential: key-auth}\nstringData: {key: bobs-key}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: bob\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: bob\ncredentials: [bob-key]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: bob\nspec:\n  ingressClassName: kong\n  rules:\n  - http:\n      paths:\n      - path: /bob\n        pathType: Prefix\n        backend:\n          service: {name: echo, port: {name: http}}\n",
    )
    .unwrap();
    let r = {
        stack.until("/bob", &[("apikey", "bobs-key")], "new consumer and route", |r| r.status == 200).await;
        stack.get("/bob", &[("apikey", "bobs-key")]).await
    };
    assert_eq!(r.upstream_header("x-consumer-username").as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_broken_file_is_reported_and_the_last_good_state_keeps_serving() {
    let stack = Stack::quickstart().await;
    std::fs::write(stack.path("consumer-alex.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: [oops\n").unwrap();
    // Reported: the manifest_issues gauge goes to 1.
    let start = Instant::now();
    loop {
        let m = request(stack.admin, "/metrics", &[]).await;
        if m.body.contains("portcullis_manifest_issues 1") {
            break;
        }
        assert!(start.elapsed() < CONVERGE, "broken file not reported:\n{}", m.body);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The credential from the last good version still works.
    let r = stack.get("/echo", &[("apikey", "hello_world")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!request(stack.admin, "/metrics", &[]).await.body.contains("hello_world"));
}

#[tokio::test]
async fn no_request_is_dropped_while_files_change() {
    let stack = Stack::quickstart().await;
    let proxy = stack.proxy;
    let client = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..300 {
            statuses.push(request(proxy, "/echo", &[("apikey", "hello_world")]).await.status);
        }
        statuses
    });
    for i in 0..30 {
        std::fs::write(
            stack.path("unrelated.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\nspec:\n  ports: [{{port: {}}}]\n",
                1000 + i
            ),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let statuses = client.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "some requests failed during reloads: {statuses:?}");
    assert!(stack.shared.metrics.encode().contains("portcullis_snapshots_published_total"));
}

#[tokio::test]
async fn health_and_readiness() {
    let stack = Stack::quickstart().await;
    assert_eq!(request(stack.admin, "/healthz", &[]).await.status, 200);
    let ready = request(stack.admin, "/readyz", &[]).await;
    assert_eq!(ready.status, 200);
    assert!(stack.shared.is_ready());
    let metrics = request(stack.admin, "/metrics", &[]).await;
    assert!(metrics.body.contains("portcullis_routes 1"), "{}", metrics.body);
    assert!(metrics.body.contains("portcullis_credentials 1"), "{}", metrics.body);
}

#[tokio::test]
async fn readiness_is_false_before_the_first_snapshot() {
    let shared = Shared::new();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = admin.local_addr().unwrap();
    tokio::spawn(portcullis::admin::serve(admin, shared.clone(), std::future::pending()));
    assert_eq!(request(addr, "/readyz", &[]).await.status, 503);
    assert_eq!(request(addr, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn plugin_config_from_a_secret_is_enforced_and_follows_the_secret() {
    let stack = Stack::quickstart().await;
    std::fs::write(
        stack.path("key-auth-plugin.yaml"),
        "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: key-auth\nplugin: key-auth\nconfigFrom:\n  secretKeyRef: {name: key-auth-settings, key: settings}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: key-auth-settings\nstringData:\n  settings: |\n    key_names: [x-api-key]\n",
    )
    .unwrap();
    stack.until("/echo", &[("x-api-key", "hello_world")], "configFrom settings", |r| r.status == 200).await;
    assert_eq!(stack.get("/echo", &[("apikey", "hello_world")]).await.status, 401, "apikey is no longer a key name");

    // Editing the settings Secret re-configures the routes using it.
    stack.edit("key-auth-plugin.yaml", "key_names: [x-api-key]", "key_names: [x-other-key]");
    stack.until("/echo", &[("x-other-key", "hello_world")], "settings Secret edited", |r| r.status == 200).await;

    // A broken settings Secret fails closed.
    stack.edit("key-auth-plugin.yaml", "key_names: [x-other-key]", "key_names: [\"bad name\"]");
    stack.until("/echo", &[("x-other-key", "hello_world")], "broken settings fail closed", |r| r.status == 503).await;
}
