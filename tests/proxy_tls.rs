//! TLS termination on real sockets: certificates from Ingress `spec.tls`
//! Secrets (generated per test by a test CA), chosen by SNI per handshake,
//! served next to plain HTTP from one snapshot; route and key-auth
//! `protocols` evaluated as https; rotation and broken Secrets.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use portcullis::proxy::ProxyConfig;
use portcullis::publish::{Publisher, Shared};
use portcullis::snapshot::Snapshot;
use portcullis::source::manifest;
use portcullis::source::watch::LocalSource;
use portcullis::translate::{self, Reason};
use portcullis::world::{Kind, ObjectRef, World};
use support::tls::{Leaf, TestCa, handshake, peer_leaf, send_tls, tls_secret, tls_secret_raw};
use support::{Resp, empty, send, start_echo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECURE: &str = "secure.example.com";
const H1: &[&[u8]] = &[b"http/1.1"];
/// How long a test waits for a file change to reach the TLS listener.
const CONVERGE: Duration = Duration::from_secs(10);

// ---------- manifests ----------

/// The test CA and the certificates the base manifests use.
struct Certs {
    ca: TestCa,
    secure: Leaf,
    wild: Leaf,
    plain: Leaf,
}

fn certs() -> Certs {
    let ca = TestCa::new();
    let secure = ca.issue(&[SECURE]);
    let wild = ca.issue(&["*.wild.example.com"]);
    let plain = ca.issue(&["plain.example.com"]);
    Certs { ca, secure, wild, plain }
}

fn ingress(name: &str, host: &str, path: &str, annotations: &str, tls: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: default
  annotations: {{{annotations}}}
spec:
  ingressClassName: kong
  tls: [{tls}]
  rules:
  - host: "{host}"
    http:
      paths:
      - {{path: {path}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    )
}

/// Service `web` -> the echo upstream, the base Secrets, and Ingresses:
/// `web` (secure.example.com and *.wild.example.com, both protocols),
/// `https-only` (/https-only), `http-only` (/http-only, strip-path, so the
/// upstream path tells which route answered) and `plain` (plain.example.com,
/// http only, with a certificate so its handshake succeeds).
fn base(echo: SocketAddr, c: &Certs) -> Vec<String> {
    vec![
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec:\n  ports: [{{name: http, port: 80}}]\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: web}}\n\
             addressType: IPv4\nports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [\"127.0.0.1\"]}}]\n",
            echo.port()
        ),
        tls_secret("secure-tls", &c.secure),
        tls_secret("wild-tls", &c.wild),
        tls_secret("plain-tls", &c.plain),
        // The rules list comes last, so a second rule can be appended.
        ingress(
            "web",
            SECURE,
            "/",
            "",
            &format!(
                "{{hosts: [{SECURE}], secretName: secure-tls}}, {{hosts: [\"*.wild.example.com\"], secretName: wild-tls}}"
            ),
        ) + "  - host: \"*.wild.example.com\"\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n",
        ingress("https-only", SECURE, "/https-only", "konghq.com/protocols: https", ""),
        ingress("http-only", SECURE, "/http-only", "konghq.com/protocols: http, konghq.com/strip-path: \"true\"", ""),
        ingress("plain", "plain.example.com", "/", "konghq.com/protocols: http", "{secretName: plain-tls}"),
    ]
}

fn world(docs: &[String]) -> World {
    let mut world = World::new();
    let text = docs.join("---\n");
    for doc in manifest::parse(&text).expect("manifests parse") {
        world.apply(doc.result.expect("readable manifest")).expect("apply");
    }
    world
}

// ---------- servers ----------

/// The plain and TLS listeners serving one snapshot.
struct Proxies {
    plain: SocketAddr,
    tls: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    tls_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(snapshot: Arc<ArcSwap<Snapshot>>, config: ProxyConfig) -> Proxies {
    let plain_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind plain");
    let tls_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
    let (plain, tls) = (plain_listener.local_addr().expect("addr"), tls_listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = stopped.await;
        let _ = tx.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(portcullis::proxy::serve(plain_listener, snapshot.clone(), config.clone(), wait(rx.clone())));
    let tls_task = tokio::spawn(portcullis::proxy::serve_tls(tls_listener, snapshot, config, wait(rx)));
    Proxies { plain, tls, stop: Some(stop), tls_task }
}

/// Translates the base manifests (plus `extra`) and serves them.
async fn serve_manifests(c: &Certs, extra: &[String]) -> Proxies {
    let echo = start_echo().await;
    let mut docs = base(echo, c);
    docs.extend_from_slice(extra);
    let t = translate::translate(&world(&docs), &Default::default());
    assert!(t.problems.is_empty(), "unexpected problems: {:#?}", t.problems);
    start(Arc::new(ArcSwap::from_pointee(t.snapshot)), ProxyConfig::default()).await
}

fn request(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path).header("host", host).body(empty()).expect("request")
}

async fn get_tls(p: &Proxies, c: &Certs, host: &str, path: &str) -> Resp {
    send_tls(p.tls, host, &c.ca.client(H1), request(host, path)).await.0
}

// ---------- SNI ----------

#[tokio::test]
async fn sni_picks_the_certificate_and_upstreams_see_https() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    let (resp, leaf) = send_tls(p.tls, SECURE, &c.ca.client(H1), request(SECURE, "/hello")).await;
    assert_eq!(leaf, c.secure.der, "the certificate of secure-tls");
    let echo = resp.echo();
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(echo.header("x-forwarded-port"), Some(p.tls.port().to_string()));
    assert_eq!(echo.header("x-forwarded-host").as_deref(), Some(SECURE));

    // The same route over plain HTTP, from the same snapshot.
    let plain = send(p.plain, request(SECURE, "/hello")).await.echo();
    assert_eq!(plain.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(plain.header("x-forwarded-port"), Some(p.plain.port().to_string()));
}

#[tokio::test]
async fn a_wildcard_certificate_covers_exactly_one_label() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    let (resp, leaf) =
        send_tls(p.tls, "api.wild.example.com", &c.ca.client(H1), request("api.wild.example.com", "/")).await;
    assert_eq!(leaf, c.wild.der);
    assert_eq!(resp.status, StatusCode::OK);
    for sni in ["a.b.wild.example.com", "wild.example.com"] {
        assert!(handshake(p.tls, sni, &c.ca.client(H1)).await.is_err(), "{sni} must get no certificate");
    }
}

#[tokio::test]
async fn unknown_names_and_no_sni_fail_the_handshake_and_harm_nothing() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    let client = c.ca.client(H1);
    assert!(handshake(p.tls, "unknown.example.com", &client).await.is_err());
    // A client connecting by IP address sends no SNI: no default certificate.
    assert!(handshake(p.tls, "127.0.0.1", &client).await.is_err());
    let stream = handshake(p.tls, SECURE, &client).await.expect("a known name still works");
    assert_eq!(peer_leaf(&stream), c.secure.der);
}

#[tokio::test]
async fn alpn_negotiates_http2() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    let client = c.ca.client(&[b"h2", b"http/1.1"]);
    let stream = handshake(p.tls, SECURE, &client).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (resp, _) = send_tls(p.tls, SECURE, &client, request(SECURE, "/over-h2")).await;
    let echo = resp.echo();
    assert_eq!(echo.path(), "/over-h2");
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("https"));
    // Without h2 offered, HTTP/1.1 is agreed.
    let stream = handshake(p.tls, SECURE, &c.ca.client(H1)).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

// ---------- route and plugin protocols ----------

#[tokio::test]
async fn an_https_only_route_is_served_over_tls_and_426_over_http() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    assert_eq!(get_tls(&p, &c, SECURE, "/https-only").await.echo().path(), "/https-only");
    let plain = send(p.plain, request(SECURE, "/https-only")).await;
    assert_eq!(plain.status, StatusCode::UPGRADE_REQUIRED);
    assert!(plain.text().contains("Please use HTTPS protocol"), "{}", plain.text());
}

#[tokio::test]
async fn an_http_only_route_is_not_matched_over_tls() {
    let c = certs();
    let p = serve_manifests(&c, &[]).await;
    // Plain HTTP: the http-only route answers (strip-path: upstream sees /).
    assert_eq!(send(p.plain, request(SECURE, "/http-only")).await.echo().path(), "/");
    // TLS: as in Kong's router the route is no candidate; the next match
    // (the `/` route, no strip-path) answers instead...
    assert_eq!(get_tls(&p, &c, SECURE, "/http-only").await.echo().path(), "/http-only");
    // ...or, with none, Kong's 404.
    let resp = get_tls(&p, &c, "plain.example.com", "/").await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert!(resp.text().contains("no Route matched with those values"), "{}", resp.text());
    assert_eq!(send(p.plain, request("plain.example.com", "/")).await.status, StatusCode::OK);
}

fn key_auth(plugin: &str, protocols: &str) -> String {
    format!(
        "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {{name: {plugin}, namespace: default}}\nplugin: key-auth\n{protocols}"
    )
}

const CONSUMER: &str = "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: alex\n  namespace: default\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: alex\ncredentials: [alex-key]\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: alex-key\n  namespace: default\n  labels: {konghq.com/credential: key-auth}\nstringData: {key: tls-test-key}\n";

#[tokio::test]
async fn key_auth_runs_over_tls_unless_its_protocols_exclude_https() {
    let c = certs();
    let extra = [
        key_auth("auth", ""),
        key_auth("auth-http", "protocols: [http]\n"),
        CONSUMER.to_string(),
        ingress("auth", SECURE, "/auth", "konghq.com/plugins: auth", ""),
        ingress("auth-http", SECURE, "/auth-http", "konghq.com/plugins: auth-http", ""),
    ];
    let p = serve_manifests(&c, &extra).await;
    let client = c.ca.client(H1);

    let denied = get_tls(&p, &c, SECURE, "/auth").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.text(), "{\n  \"message\":\"No API key found in request\"\n}");
    let with_key = Request::get("/auth").header("host", SECURE).header("apikey", "tls-test-key").body(empty());
    let (ok, _) = send_tls(p.tls, SECURE, &client, with_key.expect("request")).await;
    assert_eq!(ok.echo().header("x-consumer-username").as_deref(), Some("alex"));

    // A plugin limited to http does not run over TLS (as Kong), but does over HTTP.
    assert_eq!(get_tls(&p, &c, SECURE, "/auth-http").await.echo().header("x-consumer-username"), None);
    assert_eq!(send(p.plain, request(SECURE, "/auth-http")).await.status, StatusCode::UNAUTHORIZED);
}

// ---------- Secrets changing ----------

/// A manifests folder watched by the local source, served on both listeners.
struct Folder {
    dir: tempfile::TempDir,
    proxies: Proxies,
    _source: LocalSource,
}

async fn serve_folder(c: &Certs) -> Folder {
    let echo = start_echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, doc) in base(echo, c).iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:02}.yaml")), doc).expect("write manifest");
    }
    let shared = Shared::new();
    let source = LocalSource::start(dir.path(), Publisher::new(Default::default(), shared.clone())).expect("source");
    let proxies = start(shared.snapshot.clone(), ProxyConfig::default()).await;
    Folder { dir, proxies, _source: source }
}

#[tokio::test]
async fn a_rotated_secret_is_served_on_the_next_handshake() {
    let c = certs();
    let f = serve_folder(&c).await;
    let client = c.ca.client(H1);
    let first = handshake(f.proxies.tls, SECURE, &client).await.expect("handshake");
    assert_eq!(peer_leaf(&first), c.secure.der);
    // An established connection, kept across the rotation.
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(first)).await.expect("http1");
    tokio::spawn(conn);

    let renewed = c.ca.issue(&[SECURE]);
    std::fs::write(f.dir.path().join("01.yaml"), tls_secret("secure-tls", &renewed)).expect("rotate");
    let started = Instant::now();
    loop {
        let stream = handshake(f.proxies.tls, SECURE, &client).await.expect("handshake during rotation");
        if peer_leaf(&stream) == renewed.der {
            break;
        }
        assert!(started.elapsed() < CONVERGE, "the renewed certificate was not served within {CONVERGE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("renewed certificate served after {:?}", started.elapsed());
    let resp = sender.send_request(request(SECURE, "/still-open")).await.expect("request on the old connection");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_broken_secret_is_a_problem_and_everything_else_keeps_serving() {
    let c = certs();
    let broken = c.ca.issue(&["broken.example.com"]);
    let echo = start_echo().await;
    let mut docs = base(echo, &c);
    docs.push(ingress(
        "broken",
        "broken.example.com",
        "/",
        "",
        "{hosts: [broken.example.com], secretName: broken-tls}",
    ));
    docs.push(tls_secret_raw(
        "broken-tls",
        "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----",
        &broken.key_pem,
    ));
    let mut world = world(&docs);
    let shared = Shared::new();
    let mut publisher = Publisher::new(Default::default(), shared.clone());
    publisher.publish(&mut world, None);
    let p = start(shared.snapshot.clone(), ProxyConfig::default()).await;
    let client = c.ca.client(H1);
    let broken_ingress = ObjectRef::namespaced(Kind::Ingress, "default", "broken");

    let expect_problem = |publisher: &Publisher, reason: Reason, needle: &str| {
        let problems = publisher.problems();
        let found = problems.iter().find(|p| p.object == broken_ingress && p.field == "spec.tls[0].secretName");
        let found = found.unwrap_or_else(|| panic!("no problem on spec.tls[0].secretName: {problems:#?}"));
        assert_eq!(found.reason, reason, "{found}");
        assert!(found.message.contains(needle), "{found}");
        assert!(!found.message.contains("BEGIN") && !found.message.contains("base64\n"), "{found}");
    };
    let serving = |sni: &'static str| {
        let client = client.clone();
        async move { handshake(p.tls, sni, &client).await.is_ok() }
    };

    // Bad PEM.
    expect_problem(&publisher, Reason::InvalidTlsSecret, "not valid PEM");
    assert!(!serving("broken.example.com").await);
    assert!(serving(SECURE).await, "the other certificates keep serving");

    // A key that belongs to another certificate.
    let mismatched = tls_secret_raw("broken-tls", &broken.cert_pem, &c.secure.key_pem);
    world.apply(manifest::parse(&mismatched).expect("parse").remove(0).result.expect("secret")).expect("apply");
    publisher.publish(&mut world, None);
    expect_problem(&publisher, Reason::InvalidTlsSecret, "does not belong to the first certificate");
    assert!(!serving("broken.example.com").await);

    // No Secret at all.
    world.delete(&ObjectRef::namespaced(Kind::Secret, "default", "broken-tls"));
    publisher.publish(&mut world, None);
    expect_problem(&publisher, Reason::TlsSecretNotFound, "does not exist");
    assert!(serving(SECURE).await);

    // Fixed: the problem goes away and the host is served.
    world
        .apply(manifest::parse(&tls_secret("broken-tls", &broken)).expect("parse").remove(0).result.expect("secret"))
        .expect("apply");
    publisher.publish(&mut world, None);
    assert!(publisher.problems().is_empty(), "{:#?}", publisher.problems());
    let stream = handshake(p.tls, "broken.example.com", &client).await.expect("fixed");
    assert_eq!(peer_leaf(&stream), broken.der);
    assert_eq!(get_tls(&p, &c, SECURE, "/").await.status, StatusCode::OK);
}

// ---------- connection handling ----------

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let c = certs();
    let echo = start_echo().await;
    let t = translate::translate(&world(&base(echo, &c)), &Default::default());
    let config = ProxyConfig { tls_handshake_timeout: Duration::from_millis(200), ..ProxyConfig::default() };
    let p = start(Arc::new(ArcSwap::from_pointee(t.snapshot)), config).await;
    let mut idle = tokio::net::TcpStream::connect(p.tls).await.expect("connect");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the server should close the idle socket: {read:?}");
    assert!(started.elapsed() >= Duration::from_millis(150), "closed too early: {:?}", started.elapsed());
}

#[tokio::test]
async fn the_tls_listener_drains_on_shutdown() {
    let c = certs();
    let mut p = serve_manifests(&c, &[]).await;
    let client = c.ca.client(H1);
    // An idle keep-alive connection must not hold the shutdown up.
    let stream = handshake(p.tls, SECURE, &client).await.expect("handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("http1");
    tokio::spawn(conn);
    assert_eq!(sender.send_request(request(SECURE, "/")).await.expect("request").status(), StatusCode::OK);
    if let Some(stop) = p.stop.take() {
        let _ = stop.send(());
    }
    let result = tokio::time::timeout(Duration::from_secs(10), &mut p.tls_task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "serve_tls should return after draining: {result:?}");
    assert!(handshake(p.tls, SECURE, &client).await.is_err(), "no new connections after shutdown");
}
