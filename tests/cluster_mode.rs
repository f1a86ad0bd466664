//! Cluster mode end to end: the real controller (real `kube::Client`,
//! kube-runtime watchers) against the in-process test API server, with the
//! proxy and an echo upstream on real sockets.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::ApiServer;
use portcullis::controller::{Controller, ControllerConfig, StatusSettings};
use portcullis::publish::Shared;
use portcullis::status::{LeaderConfig, StatusConfig};
use serde_json::{Value, json};
use support::{empty, get, send};
use tokio::net::TcpListener;

/// Upper bound for anything to converge; measured delays are printed.
const CONVERGE: Duration = Duration::from_secs(15);
const NO_KEY: &str = "{\n  \"message\":\"No API key found in request\"\n}";
const INVALID: &str = "{\n  \"message\":\"Invalid authentication credentials\"\n}";

struct Replica {
    name: String,
    shared: Arc<Shared>,
    proxy: SocketAddr,
    proxy_tls: SocketAddr,
    controller: Option<Controller>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Replica {
    /// A replica whose API requests carry `name` as User-Agent, with fast
    /// leader election (2 s lease) so take-overs fit in a test.
    async fn start(server: &ApiServer, name: &str, namespaces: &[&str]) -> Replica {
        Self::start_with(server, name, namespaces, |_| {}).await
    }

    async fn start_with(
        server: &ApiServer,
        name: &str,
        namespaces: &[&str],
        tweak: impl FnOnce(&mut ControllerConfig),
    ) -> Replica {
        let shared = Shared::new();
        let mut election = LeaderConfig::new("kube-system".into(), "portcullis-leader".into(), name.into());
        election.lease_duration = Duration::from_secs(2);
        election.retry_period = Duration::from_millis(200);
        let mut cfg = ControllerConfig {
            translate: Default::default(),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            status: Some(StatusSettings {
                election,
                writer: StatusConfig {
                    publish_service: None,
                    publish_addresses: vec!["203.0.113.10".into()],
                    instance: name.into(),
                },
            }),
        };
        tweak(&mut cfg);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = Controller::start(server.client_as(name), cfg, shared.clone(), async move {
            let _ = stopped.await;
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        tokio::spawn(portcullis::proxy::serve(
            listener,
            shared.snapshot.clone(),
            Default::default(),
            std::future::pending(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_tls = listener.local_addr().unwrap();
        tokio::spawn(portcullis::proxy::serve_tls(
            listener,
            shared.snapshot.clone(),
            Default::default(),
            std::future::pending(),
        ));
        Replica { name: name.into(), shared, proxy, proxy_tls, controller: Some(controller), stop: Some(stop) }
    }

    async fn ready(&self) {
        let start = Instant::now();
        while !self.shared.is_ready() {
            assert!(start.elapsed() < CONVERGE, "{} not ready", self.name);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn leading(&self) -> bool {
        self.controller.as_ref().is_some_and(|c| *c.leader.borrow())
    }

    async fn get(&self, path: &str, key: Option<&str>) -> support::Resp {
        let mut req = get(path);
        if let Some(k) = key {
            req = req.header("apikey", k);
        }
        send(self.proxy, req.body(empty()).unwrap()).await
    }

    /// Polls until `pred` holds; returns how long it took.
    async fn until(
        &self,
        path: &str,
        key: Option<&str>,
        what: &str,
        pred: impl Fn(&support::Resp) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let r = self.get(path, key).await;
            if pred(&r) {
                let took = start.elapsed();
                println!("{}: {what}: enforced {took:?} after the write", self.name);
                return took;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "{}: {what}: not seen in time; last {} {}",
                self.name,
                r.status,
                r.text()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Graceful stop: releases the Lease.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.controller.take();
    }
}

async fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(portcullis::echo::serve(l, std::future::pending()));
    addr
}

/// Applies YAML documents (as users write them) through the API server.
fn apply_yaml(server: &ApiServer, yaml: &str) {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let mut v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if v.is_null() {
            continue;
        }
        let cluster_scoped = matches!(v["kind"].as_str(), Some("IngressClass" | "KongClusterPlugin"));
        if !cluster_scoped && v["metadata"]["namespace"].is_null() {
            v["metadata"]["namespace"] = json!("default");
        }
        server.apply(v).unwrap();
    }
}

/// The quick start (examples/quickstart) pointed at `echo`.
fn quickstart(server: &ApiServer, echo: SocketAddr) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let mut text = std::fs::read_to_string(f).unwrap();
        if let Some((svc, slice)) = text.split_once("kind: EndpointSlice") {
            text =
                format!("{svc}kind: EndpointSlice{}", slice.replace("port: 1027", &format!("port: {}", echo.port())));
        }
        apply_yaml(server, &text);
    }
}

fn consumer_yaml(name: &str, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-key\n  labels: {{konghq.com/credential: key-auth}}\nstringData: {{key: {key}}}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: {name}\n  annotations: {{kubernetes.io/ingress.class: kong}}\nusername: {name}\ncredentials: [{name}-key]\n"
    )
}

fn condition(server: &ApiServer, resource: &str, ns: &str, name: &str) -> Option<Value> {
    let obj = server.get(resource, ns, name)?;
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Programmed").cloned()
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < CONVERGE, "{what}: not within {CONVERGE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn events_for(server: &ApiServer, name: &str) -> Vec<Value> {
    server
        .list("events.events.k8s.io", None)
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == "KongConfigurationTranslationFailed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_enforces_key_auth_and_follows_every_change() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;

    let resp = r.get("/echo", None).await;
    assert_eq!((resp.status.as_u16(), resp.text()), (401, NO_KEY));
    let resp = r.get("/echo", Some("hello_world")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().header("x-consumer-username").as_deref(), Some("alex"));

    let mut delays = Vec::new();
    // kubectl annotate service echo konghq.com/plugins- (and back)
    server
        .patch("services", "default", "echo", &json!({"metadata": {"annotations": {"konghq.com/plugins": null}}}))
        .unwrap();
    delays.push(r.until("/echo", None, "un-annotate", |x| x.status == 200).await);
    server
        .patch("services", "default", "echo", &json!({"metadata": {"annotations": {"konghq.com/plugins": "key-auth"}}}))
        .unwrap();
    delays.push(r.until("/echo", None, "annotate", |x| x.status == 401).await);

    // Rotate the credential Secret.
    server.patch("secrets", "default", "alex-key-auth", &json!({"stringData": {"key": "rotated"}})).unwrap();
    delays.push(r.until("/echo", Some("rotated"), "rotate (new key)", |x| x.status == 200).await);
    assert_eq!(r.get("/echo", Some("hello_world")).await.text(), INVALID);

    // Delete it.
    server.delete("secrets", "default", "alex-key-auth").unwrap();
    delays.push(r.until("/echo", Some("rotated"), "delete secret", |x| x.text() == INVALID).await);

    // Add a consumer, then remove it.
    apply_yaml(&server, &consumer_yaml("bob", "bobs-key"));
    delays.push(r.until("/echo", Some("bobs-key"), "add consumer", |x| x.status == 200).await);
    server.delete("kongconsumers", "default", "bob").unwrap();
    delays.push(r.until("/echo", Some("bobs-key"), "remove consumer", |x| x.status == 401).await);

    delays.sort();
    println!(
        "write-to-enforced over {} changes: median {:?}, max {:?}",
        delays.len(),
        delays[delays.len() / 2],
        delays.last().unwrap()
    );
    assert!(r.shared.metrics.encode().contains("portcullis_propagation_seconds_count"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_until_every_watch_has_listed() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    // The KongClusterPlugin list fails for a while.
    server.fail_matching("/kongclusterplugins", 2, 500);
    let r = Replica::start(&server, "replica-a", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!r.shared.is_ready(), "ready before the KongClusterPlugin watch listed");
    assert_eq!(r.get("/echo", Some("hello_world")).await.status, 404, "nothing is served before the first snapshot");
    r.ready().await;
    assert_eq!(r.get("/echo", Some("hello_world")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conditions_and_events_are_written_once_per_problem() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    apply_yaml(
        &server,
        "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: broken\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: broken\ncredentials: [missing-secret]\n---\napiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: bad-auth\nplugin: key-auth\nconfig:\n  key_names: [\"bad name\"]\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: other-class\n  annotations: {kubernetes.io/ingress.class: nginx}\nusername: other\n",
    );
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;

    let ok = eventually("alex Programmed", || {
        condition(&server, "kongconsumers", "default", "alex").filter(|c| c["status"] == "True")
    })
    .await;
    assert_eq!(ok["reason"], "Programmed");
    assert_eq!(ok["observedGeneration"], 1);
    let bad = eventually("broken Invalid", || condition(&server, "kongconsumers", "default", "broken")).await;
    assert_eq!((bad["status"].as_str(), bad["reason"].as_str()), (Some("False"), Some("Invalid")));
    assert!(bad["message"].as_str().unwrap().contains("missing-secret"), "{bad}");
    let plugin = eventually("bad-auth Invalid", || condition(&server, "kongplugins", "default", "bad-auth")).await;
    assert_eq!(plugin["reason"], "Invalid");
    assert!(plugin["message"].as_str().unwrap().contains("bad header name"), "{plugin}");
    let good_plugin =
        eventually("key-auth Programmed", || condition(&server, "kongplugins", "default", "key-auth")).await;
    assert_eq!(good_plugin["status"], "True");

    // Ingress status: the publish address.
    let lb = eventually("ingress status", || {
        let ing = server.get("ingresses", "default", "echo")?;
        ing["status"]["loadBalancer"]["ingress"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(lb, vec![json!({"ip": "203.0.113.10"})]);

    eventually("event for broken", || (!events_for(&server, "broken").is_empty()).then_some(())).await;
    // Unrelated changes rebuild the snapshot several times...
    for i in 0..5 {
        apply_yaml(&server, &consumer_yaml(&format!("extra{i}"), &format!("extra-key-{i}")));
        r.until("/echo", Some(&format!("extra-key-{i}")), "extra consumer", |x| x.status == 200).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...but each distinct problem has exactly one Event, and none has a key.
    let events = events_for(&server, "broken");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events_for(&server, "bad-auth").len(), 1);
    let all = serde_json::to_string(&server.list("events.events.k8s.io", None)).unwrap();
    for key in ["hello_world", "extra-key-0", "extra-key-4"] {
        assert!(!all.contains(key), "an Event contains a key");
    }

    // Another controller's consumer: no status written on it.
    assert!(condition(&server, "kongconsumers", "default", "other-class").is_none());

    // Unchanged status is not rewritten on later rebuilds.
    let writes = server.requests().iter().filter(|q| q.is_write() && q.path.ends_with("/alex/status")).count();
    assert_eq!(writes, 1, "alex's condition was written more than once");

    // Fixing the problem flips the condition.
    apply_yaml(
        &server,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: missing-secret\n  labels: {konghq.com/credential: key-auth}\nstringData: {key: fixed-key}\n",
    );
    eventually("broken Programmed", || {
        condition(&server, "kongconsumers", "default", "broken").filter(|c| c["status"] == "True")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_both_serve_and_only_the_leader_writes() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let mut a = Replica::start(&server, "replica-a", &[]).await;
    a.ready().await;
    eventually("a leads", || a.leading().then_some(())).await;
    let b = Replica::start(&server, "replica-b", &[]).await;
    b.ready().await;
    for r in [&a, &b] {
        assert_eq!(r.get("/echo", None).await.status, 401);
        assert_eq!(r.get("/echo", Some("hello_world")).await.status, 200);
    }
    apply_yaml(
        &server,
        "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: broken\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: broken\ncredentials: [nope]\n",
    );
    eventually("event", || (!events_for(&server, "broken").is_empty()).then_some(())).await;
    let status_writes = |ua: &str| {
        server
            .requests()
            .iter()
            .filter(|q| q.is_write() && q.user_agent.as_deref() == Some(ua) && !q.path.contains("/leases"))
            .count()
    };
    assert!(status_writes("replica-a") > 0);
    assert_eq!(status_writes("replica-b"), 0, "a follower wrote status or Events");
    assert!(!b.leading());

    // The leader goes away: the other takes over and reports new problems.
    a.stop().await;
    eventually("b leads", || b.leading().then_some(())).await;
    apply_yaml(
        &server,
        "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: broken-two\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: broken-two\ncredentials: [nope-two]\n",
    );
    eventually("b reports", || (!events_for(&server, "broken-two").is_empty()).then_some(())).await;
    assert!(status_writes("replica-b") > 0);
    assert_eq!(b.get("/echo", Some("hello_world")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_is_replaced_after_its_lease_expires() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let a = Replica::start(&server, "replica-a", &[]).await;
    a.ready().await;
    eventually("a leads", || a.leading().then_some(())).await;
    let b = Replica::start(&server, "replica-b", &[]).await;
    b.ready().await;
    // Every request from a now fails, as if it lost the API server.
    server.fail_when(|q| q.user_agent.as_deref() == Some("replica-a"), usize::MAX, 500);
    let start = Instant::now();
    eventually("b takes over", || b.leading().then_some(())).await;
    println!("take-over after {:?}", start.elapsed());
    eventually("a steps down", || (!a.leading()).then_some(())).await;
    // a still serves its last snapshot.
    assert_eq!(a.get("/echo", Some("hello_world")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_faults_never_stop_traffic_and_state_converges() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;
    let serving = |r: &Replica| {
        let addr = r.proxy;
        async move {
            let resp = send(addr, get("/echo").header("apikey", "hello_world").body(empty()).unwrap()).await;
            assert_eq!(resp.status, 200, "traffic stopped");
        }
    };

    // Dropped watches.
    server.drop_watches();
    serving(&r).await;
    apply_yaml(&server, &consumer_yaml("after-drop", "k-drop"));
    r.until("/echo", Some("k-drop"), "after dropped watches", |x| x.status == 200).await;

    // 410 Gone: history compacted, watches dropped -> relist.
    server.compact_and_drop_watches();
    serving(&r).await;
    server.delete("kongconsumers", "default", "after-drop").unwrap();
    apply_yaml(&server, &consumer_yaml("after-compact", "k-compact"));
    r.until("/echo", Some("k-compact"), "after 410", |x| x.status == 200).await;
    r.until("/echo", Some("k-drop"), "deletion during relist", |x| x.status == 401).await;

    // 500s.
    server.fail_next(6, 500);
    server.drop_watches();
    serving(&r).await;
    apply_yaml(&server, &consumer_yaml("after-500", "k-500"));
    r.until("/echo", Some("k-500"), "after 500s", |x| x.status == 200).await;

    // Slow responses.
    server.set_delay(Duration::from_millis(200));
    serving(&r).await;
    apply_yaml(&server, &consumer_yaml("after-slow", "k-slow"));
    r.until("/echo", Some("k-slow"), "while slow", |x| x.status == 200).await;
    server.set_delay(Duration::ZERO);

    // Connection refused, then back.
    server.refuse_connections(true).await;
    for _ in 0..5 {
        serving(&r).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.refuse_connections(false).await;
    apply_yaml(&server, &consumer_yaml("after-refused", "k-refused"));
    r.until("/echo", Some("k-refused"), "after refused connections", |x| x.status == 200).await;

    assert!(r.shared.is_ready(), "readiness must survive API server trouble");
    let metrics = r.shared.metrics.encode();
    let errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_watch_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(errors > 0.0, "watch errors must be counted:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_credential_secrets_are_watched_and_no_key_is_cached() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    apply_yaml(
        &server,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated\nstringData: {key: unrelated-secret-value}\n",
    );
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;
    let secret_reads: Vec<_> =
        server.requests().into_iter().filter(|q| q.path.contains("/secrets") && q.method == "GET").collect();
    assert!(!secret_reads.is_empty());
    for q in &secret_reads {
        assert!(
            q.query.contains("labelSelector=konghq.com%2Fcredential"),
            "Secrets read without the credential selector: {q:?}"
        );
    }
    assert!(r.shared.metrics.encode().contains("portcullis_credentials 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_custom_object_is_reported_and_skipped() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    // The test server does no schema validation: a consumer with a wrong type.
    server
        .apply(json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
            "metadata": {"name": "mangled", "namespace": "default", "annotations": {"kubernetes.io/ingress.class": "kong"}},
            "username": "mangled", "credentials": "not-a-list"}))
        .unwrap();
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;
    assert_eq!(r.get("/echo", Some("hello_world")).await.status, 200, "the rest keeps working");
    let events =
        eventually("event for mangled", || Some(events_for(&server, "mangled")).filter(|e| !e.is_empty())).await;
    assert!(events[0]["note"].as_str().unwrap().contains("credentials"), "{:#?}", events[0]);
    let c = eventually("mangled Invalid", || condition(&server, "kongconsumers", "default", "mangled")).await;
    assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("Invalid")));
    // The watch is not stalled: later changes still arrive.
    apply_yaml(&server, &consumer_yaml("later", "later-key"));
    r.until("/echo", Some("later-key"), "change after a malformed object", |x| x.status == 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_namespace_limits_what_is_read() {
    let server = ApiServer::start().await;
    let echo = echo().await;
    quickstart(&server, echo);
    // The same route in another namespace, with an open path.
    apply_yaml(
        &server,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: other}}\nspec:\n  ports: [{{name: http, port: 1027}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: echo\n  namespace: other\n  labels: {{kubernetes.io/service-name: echo}}\naddressType: IPv4\nports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [127.0.0.1]}}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: open, namespace: other}}\nspec:\n  ingressClassName: kong\n  rules:\n  - http:\n      paths:\n      - {{path: /open, pathType: Prefix, backend: {{service: {{name: echo, port: {{number: 1027}}}}}}}}\n",
            echo.port()
        ),
    );
    let r = Replica::start(&server, "replica-a", &["default"]).await;
    r.ready().await;
    assert_eq!(r.get("/echo", Some("hello_world")).await.status, 200);
    assert_eq!(r.get("/open", None).await.status, 404, "objects outside --watch-namespace must be ignored");
    let outside = server
        .requests()
        .into_iter()
        .filter(|q| q.user_agent.as_deref() == Some("replica-a") && q.path.contains("/namespaces/other/"))
        .count();
    assert_eq!(outside, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_config_from_a_referenced_secret_and_nothing_else() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    apply_yaml(
        &server,
        "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: key-auth\nplugin: key-auth\nconfigFrom:\n  secretKeyRef: {name: key-auth-settings, key: settings}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: key-auth-settings\nstringData:\n  settings: '{\"key_names\": [\"x-api-key\"]}'\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated\nstringData: {password: hunter2}\n",
    );
    // The plugin's settings Secret is slow to list: readiness waits for it.
    server.set_delay_matching("key-auth-settings", Duration::from_millis(400));
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;
    server.clear_faults();
    let resp = send(r.proxy, get("/echo").header("x-api-key", "hello_world").body(empty()).unwrap()).await;
    assert_eq!(resp.status, 200, "the first snapshot already has the settings: {}", resp.text());

    // Editing the settings Secret re-configures the route (once its watch,
    // slowed above, is open).
    server.wait_for_watchers("secrets", 2).await;
    server
        .patch("secrets", "default", "key-auth-settings", &json!({"stringData": {"settings": "key_names: [x-other]"}}))
        .unwrap();
    let start = Instant::now();
    loop {
        let resp = send(r.proxy, get("/echo").header("x-other", "hello_world").body(empty()).unwrap()).await;
        if resp.status == 200 {
            break;
        }
        assert!(start.elapsed() < CONVERGE, "settings edit not applied");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("settings Secret edit enforced after {:?}", start.elapsed());

    // Secrets are read only by the credential label or by a referenced name.
    for q in server.requests().iter().filter(|q| q.path.contains("/secrets") && q.method == "GET") {
        let by_label = q.query.contains("labelSelector=konghq.com%2Fcredential");
        let by_name = q.query.contains("fieldSelector=metadata.name%3Dkey-auth-settings");
        assert!(by_label || by_name, "unexpected Secret read: {q:?}");
    }

    // The reference goes away: so does its watch.
    apply_yaml(
        &server,
        "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: key-auth\nplugin: key-auth\n",
    );
    r.until("/echo", Some("hello_world"), "plugin back to inline config", |x| x.status == 200).await;
    // Only the credential watch is left.
    eventually("settings watch stopped", || (server.open_watches("secrets") == 1).then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_status_comes_from_the_publish_service() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    apply_yaml(
        &server,
        "apiVersion: v1\nkind: Service\nmetadata: {name: proxy, namespace: kong}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n",
    );
    let r = Replica::start_with(&server, "replica-a", &[], |cfg| {
        let status = cfg.status.as_mut().unwrap();
        status.writer.publish_addresses.clear();
        status.writer.publish_service = Some(("kong".into(), "proxy".into()));
    })
    .await;
    r.ready().await;
    let lb = |server: &ApiServer| {
        let ing = server.get("ingresses", "default", "echo")?;
        ing["status"]["loadBalancer"]["ingress"].as_array().filter(|a| !a.is_empty()).cloned()
    };
    // No load balancer yet: the ClusterIP.
    assert_eq!(eventually("ClusterIP status", || lb(&server)).await, vec![json!({"ip": "10.96.0.50"})]);
    // The cloud provider assigns a hostname: it replaces the ClusterIP (picked up on the next resync
    // or change; a change to an Ingress triggers one).
    let mut svc = server.get("services", "kong", "proxy").unwrap();
    svc["status"] = json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}});
    server.update_status(svc).unwrap();
    server
        .patch("ingresses", "default", "echo", &json!({"metadata": {"annotations": {"example.com/touch": "1"}}}))
        .unwrap();
    let got = eventually("hostname status", || lb(&server).filter(|a| a[0]["hostname"] == "lb.example.net")).await;
    assert_eq!(got, vec![json!({"hostname": "lb.example.net"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_tls_secrets_are_watched_by_name_and_served() {
    use support::tls::{TestCa, send_tls, tls_secret};
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let ca = TestCa::new();
    apply_yaml(&server, &tls_secret("echo-tls", &ca.issue(&["secure.example.com"])));
    apply_yaml(
        &server,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: secure, namespace: default}\nspec:\n  ingressClassName: kong\n  tls: [{hosts: [secure.example.com], secretName: echo-tls}]\n  rules:\n  - host: secure.example.com\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 1027}}}}\n",
    );
    let r = Replica::start(&server, "replica-a", &[]).await;
    r.ready().await;
    let client = ca.client(&[b"http/1.1"]);
    let req = || {
        let r = http::Request::get("/").header("host", "secure.example.com").header("apikey", "hello_world");
        r.body(empty()).unwrap()
    };
    let (resp, _) = send_tls(r.proxy_tls, "secure.example.com", &client, req()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.echo().header("x-forwarded-proto").as_deref(), Some("https"));

    // A renewed certificate (new Secret content) is served on the next handshake.
    let renewed = ca.issue(&["secure.example.com"]);
    apply_yaml(&server, &tls_secret("echo-tls", &renewed));
    let start = Instant::now();
    loop {
        // A fresh client each time: a resumed session would report the old certificate.
        let client = ca.client(&[b"http/1.1"]);
        let (_, leaf) = send_tls(r.proxy_tls, "secure.example.com", &client, req()).await;
        if leaf.as_ref() == renewed.der.as_ref() {
            break;
        }
        assert!(start.elapsed() < CONVERGE, "renewed certificate not served");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("renewed TLS certificate served after {:?}", start.elapsed());
}

/// The binary in cluster mode, as deployed: once the changes of its start
/// (the first lists and the status write-back they cause) go quiet, the
/// world thread gives back the heap pages other threads freed there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_gives_the_world_threads_freed_memory_back_once_changes_go_quiet() {
    let server = ApiServer::start().await;
    quickstart(&server, echo().await);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--proxy-listen", "127.0.0.1:0", "--proxy-tls-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--publish-status-address", "203.0.113.10"])
        .env("RUST_LOG", "info,portcullis::source::world_loop=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The test API server runs on this runtime: wait without blocking it.
    let (mut seen, start) = (Vec::new(), Instant::now());
    while !seen.iter().any(|l: &String| l.contains("world thread gave freed memory back")) && start.elapsed() < CONVERGE
    {
        match lines.try_recv() {
            Ok(line) => seen.push(line),
            Err(std::sync::mpsc::TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
        }
    }
    child.kill().ok();
    child.wait().ok();
    assert!(seen.iter().any(|l| l.contains("first snapshot live")), "never ready: {seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("world thread gave freed memory back")),
        "no 'world thread gave freed memory back' line: {seen:#?}"
    );
}
