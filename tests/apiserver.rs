//! The test API server (tests/support/apiserver) against the real kube::Client, kube-runtime
//! watchers and event Recorder: if these pass, controller tests can trust it as a stand-in.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

use std::{collections::BTreeSet, fmt::Debug, future::Future, pin::Pin, time::Duration};

use apiserver::{ApiServer, DEFAULT_RESOURCES};
use futures::{Stream, StreamExt};
use http::header::CONTENT_TYPE;
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Secret, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::core::PartialObjectMeta;
use kube::{
    Api, Resource, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
        VersionMatch, WatchEvent, WatchParams,
    },
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        watcher,
    },
};
use portcullis::api::{KongClusterPlugin, KongConsumer};
use serde_json::{Value, json};

/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);
/// Waits that include kube-runtime's default backoff (0.8 s, 1.6 s, ... plus jitter).
const WAIT_WITH_BACKOFF: Duration = Duration::from_secs(9);

async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn secret(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": "default", "labels": labels },
        "data": { "key": "c2VjcmV0" },
    })
}

fn api_error<T: Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv<K: Resource>(obj: &K) -> u64 {
    obj.meta().resource_version.as_deref().expect("resourceVersion").parse().expect("numeric resourceVersion")
}

fn names<K: ResourceExt>(items: impl IntoIterator<Item = K>) -> Vec<String> {
    items.into_iter().map(|o| o.name_any()).collect()
}

// ---------------------------------------------------------------------------------------------
// watcher event helper

type WatcherItem<K> = Result<watcher::Event<K>, watcher::Error>;

/// A kube-runtime watcher, driven by its own task the way a controller drives it (a watcher only
/// makes requests while polled), read as `Init`, `InitApply(name)`, `Apply(name)`... strings, with
/// errors set aside and a reflector-like view of which objects the watcher believes exist.
struct Watched<K> {
    events: tokio::sync::mpsc::UnboundedReceiver<WatcherItem<K>>,
    pump: tokio::task::JoinHandle<()>,
    errors: Vec<String>,
    known: BTreeSet<String>,
    buffer: BTreeSet<String>,
    log: Vec<String>,
}

impl<K> Drop for Watched<K> {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl<K: ResourceExt + Clone + Debug + Send + 'static> Watched<K> {
    fn new(stream: impl Stream<Item = WatcherItem<K>> + Send + 'static) -> Self {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        Watched { events, pump, errors: Vec::new(), known: BTreeSet::new(), buffer: BTreeSet::new(), log: Vec::new() }
    }

    /// The next event (errors are recorded and skipped).
    async fn next(&mut self) -> String {
        loop {
            let item = tokio::time::timeout(WAIT_WITH_BACKOFF, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no watcher event; so far {:?}, errors {:?}", self.log, self.errors))
                .expect("watcher streams never end");
            match item {
                Ok(event) => {
                    match &event {
                        watcher::Event::Init => self.buffer.clear(),
                        watcher::Event::InitApply(o) => drop(self.buffer.insert(o.name_any())),
                        watcher::Event::InitDone => self.known = std::mem::take(&mut self.buffer),
                        watcher::Event::Apply(o) => drop(self.known.insert(o.name_any())),
                        watcher::Event::Delete(o) => drop(self.known.remove(&o.name_any())),
                    }
                    let text = event.to_string();
                    self.log.push(text.clone());
                    return text;
                }
                Err(err) => self.errors.push(err.to_string()),
            }
        }
    }

    async fn expect(&mut self, expected: &[&str]) {
        for want in expected {
            assert_eq!(self.next().await, *want, "events so far {:?}, errors {:?}", self.log, self.errors);
        }
    }

    /// Reads events until the watcher's view is exactly `expected`.
    async fn converge(&mut self, expected: &[&str]) {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        let deadline = tokio::time::Instant::now() + WAIT_WITH_BACKOFF;
        while self.known != expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "watcher did not converge to {expected:?}: has {:?}, events {:?}, errors {:?}",
                self.known,
                self.log,
                self.errors
            );
            self.next().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRUD

#[tokio::test]
async fn secret_crud_conflicts_patch_and_delete() {
    let server = ApiServer::start().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();

    let new: Secret = serde_json::from_value(secret("creds", &[("app", "web")])).unwrap();
    let created = secrets.create(&pp, &new).await.unwrap();
    assert!(created.metadata.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(api_error(secrets.create(&pp, &new).await), (409, "AlreadyExists".into()));

    // Replace with the current resourceVersion works and moves generation (data changed).
    let mut fresh = created.clone();
    fresh.data.get_or_insert_default().insert("more".into(), k8s_openapi::ByteString(b"x".to_vec()));
    let replaced = secrets.replace("creds", &pp, &fresh).await.unwrap();
    assert!(rv(&replaced) > rv(&created));
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // A stale resourceVersion is a 409 Conflict.
    assert_eq!(api_error(secrets.replace("creds", &pp, &created).await), (409, "Conflict".into()));

    // Merge patch: labels merge, generation does not move for metadata.
    let patch = json!({ "metadata": { "labels": { "tier": "gold" } } });
    let patched = secrets.patch("creds", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(patched.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(patched.labels().get("tier").map(String::as_str), Some("gold"));
    assert_eq!(patched.metadata.generation, Some(2));

    // A patch that changes nothing is not a write: same resourceVersion.
    let again = secrets.patch("creds", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(rv(&again), rv(&patched));

    secrets.delete("creds", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(secrets.get("creds").await), (404, "NotFound".into()));
    assert!(secrets.get_opt("creds").await.unwrap().is_none());
    assert_eq!(api_error(secrets.delete("creds", &DeleteParams::default()).await).0, 404);
}

#[tokio::test]
async fn kong_consumer_status_subresource_and_server_side_apply() {
    let server = ApiServer::start().await;
    let consumers: Api<KongConsumer> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();

    let alice = KongConsumer {
        metadata: ObjectMeta { name: Some("alice".into()), ..Default::default() },
        username: Some("alice".into()),
        status: Some(Default::default()),
        ..Default::default()
    };
    let created = consumers.create(&pp, &alice).await.unwrap();
    assert!(created.status.is_none(), "create drops status for kinds with a status subresource");

    // /status: changes status only, bumps resourceVersion but not generation.
    let status = json!({ "status": { "conditions": [{
        "type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }] }, "username": "ignored" });
    let after_status = consumers.patch_status("alice", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(after_status.metadata.generation, Some(1));
    assert!(rv(&after_status) > rv(&created));
    assert_eq!(after_status.username.as_deref(), Some("alice"));
    assert_eq!(after_status.status.as_ref().unwrap().conditions[0].type_, "Programmed");

    // Main resource: status changes are ignored, field changes bump generation.
    let patch = json!({ "username": "alice2", "status": null });
    let after_main = consumers.patch("alice", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(after_main.metadata.generation, Some(2));
    assert_eq!(after_main.username.as_deref(), Some("alice2"));
    assert!(after_main.status.is_some());

    // replace_status with a stale resourceVersion conflicts.
    let mut stale = after_status.clone();
    stale.status = None;
    assert_eq!(api_error(consumers.replace_status("alice", &pp, &stale).await).0, 409);

    // Server-side apply creates a missing object, then merges into it.
    let ssa = PatchParams::apply("portcullis-test");
    let bob = json!({
        "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
        "metadata": { "name": "bob", "labels": { "team": "a" } }, "username": "bob",
    });
    let applied = consumers.patch("bob", &ssa, &Patch::Apply(&bob)).await.unwrap();
    assert_eq!((applied.username.as_deref(), applied.metadata.generation), (Some("bob"), Some(1)));
    let more = json!({
        "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
        "metadata": { "name": "bob" }, "credentials": ["bob-key"],
    });
    let merged = consumers.patch("bob", &ssa, &Patch::Apply(&more)).await.unwrap();
    assert_eq!(merged.username.as_deref(), Some("bob"));
    assert_eq!(merged.credentials, vec!["bob-key".to_string()]);
    assert_eq!(merged.metadata.generation, Some(2));
    assert_eq!(merged.labels().get("team").map(String::as_str), Some("a"));

    // The same objects through the dynamic API.
    let gvk = GroupVersionKind::gvk("configuration.konghq.com", "v1", "KongConsumer");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "kongconsumers");
    let dynamic: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &resource);
    let listed = dynamic.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(listed), ["alice", "bob"]);
    assert_eq!(dynamic.get("bob").await.unwrap().data["credentials"], json!(["bob-key"]));
}

#[tokio::test]
async fn cluster_scoped_kinds_and_lifecycle_details() {
    let server = ApiServer::start().await;
    let client = server.client();

    server
        .create(json!({
            "apiVersion": "configuration.konghq.com/v1", "kind": "KongClusterPlugin",
            "metadata": { "name": "global-auth", "namespace": "ignored", "labels": { "global": "true" } },
            "plugin": "key-auth",
        }))
        .unwrap();
    let plugins: Api<KongClusterPlugin> = Api::all(client.clone());
    let plugin = plugins.get("global-auth").await.unwrap();
    assert_eq!(plugin.metadata.namespace, None);
    assert_eq!(names(plugins.list(&ListParams::default().labels("global=true")).await.unwrap()), ["global-auth"]);

    // stringData is folded into data, as kube-apiserver does.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let with_string_data: Secret = serde_json::from_value(json!({
        "metadata": { "name": "plain" }, "stringData": { "key": "foo" },
    }))
    .unwrap();
    let stored = secrets.create(&PostParams::default(), &with_string_data).await.unwrap();
    assert_eq!(stored.data.unwrap()["key"].0, b"foo");
    assert!(stored.string_data.is_none());

    // generateName picks a fresh name.
    let generated: Secret = serde_json::from_value(json!({ "metadata": { "generateName": "gen-" } })).unwrap();
    let generated = secrets.create(&PostParams::default(), &generated).await.unwrap();
    assert!(generated.name_any().starts_with("gen-") && generated.name_any().len() == 9);

    // Finalizers: delete only marks the object; removing the last finalizer deletes it.
    let held: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "held", "finalizers": ["x/y"] } })).unwrap();
    secrets.create(&PostParams::default(), &held).await.unwrap();
    secrets.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(secrets.get("held").await.unwrap().metadata.deletion_timestamp.is_some());
    let release = json!({ "metadata": { "finalizers": null } });
    secrets.patch("held", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    assert!(secrets.get_opt("held").await.unwrap().is_none());

    // Direct handle access goes through the same store.
    assert_eq!(server.get("secrets", "default", "plain").unwrap()["data"]["key"], "Zm9v");
    assert_eq!(server.list("kongclusterplugins", None).len(), 1);
    assert_eq!(server.delete("kcp", "", "global-auth").unwrap()["metadata"]["name"], "global-auth");
    assert_eq!(server.delete("kcp", "", "global-auth").unwrap_err().code, 404);
}

#[tokio::test]
async fn handle_writes_follow_the_same_rules() {
    let server = ApiServer::start().await;
    let consumer = |username: &str| {
        json!({
            "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
            "metadata": { "name": "c", "namespace": "default" }, "username": username,
        })
    };
    let created = server.apply(consumer("c")).unwrap();
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(
        server.apply(consumer("c")).unwrap()["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(server.create(consumer("c")).unwrap_err().reason, "AlreadyExists");

    let mut status = consumer("ignored");
    status["status"] = json!({ "conditions": [] });
    let with_status = server.update_status(status).unwrap();
    assert_eq!((with_status["username"].as_str(), &with_status["status"]), (Some("c"), &json!({ "conditions": [] })));

    let mut stale = created.clone();
    stale["username"] = json!("x");
    assert_eq!(server.update(stale).unwrap_err().code, 409);
    let replaced = server.apply(consumer("d")).unwrap();
    assert_eq!(
        (replaced["metadata"]["generation"].as_i64(), &replaced["status"]),
        (Some(2), &json!({ "conditions": [] }))
    );
    let mut missing = consumer("e");
    missing["metadata"]["name"] = json!("nobody");
    assert_eq!(server.update(missing).unwrap_err().code, 404);

    // dryRun=All answers as if written but stores nothing.
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let dry = PostParams { dry_run: true, ..Default::default() };
    secrets.create(&dry, &serde_json::from_value(secret("dry", &[])).unwrap()).await.unwrap();
    assert!(server.get("secrets", "default", "dry").is_none());
}

#[tokio::test]
async fn protocol_errors_are_status_objects() {
    let server = ApiServer::start().await;
    let client = server.client();
    let request = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header(CONTENT_TYPE, content_type)
            .body(body.to_vec())
            .unwrap()
    };
    let send = |req: http::Request<Vec<u8>>| client.request::<Value>(req);
    let secrets = "/api/v1/namespaces/default/secrets";

    let bad_json = send(request("POST", secrets, "application/json", b"{not json")).await;
    assert_eq!(api_error(bad_json), (400, "BadRequest".into()));
    let wrong_ns = serde_json::to_vec(&json!({ "metadata": { "name": "a", "namespace": "other" } })).unwrap();
    assert_eq!(api_error(send(request("POST", secrets, "application/json", &wrong_ns)).await).0, 400);
    let bad_name = serde_json::to_vec(&json!({ "metadata": { "name": "Bad_Name" } })).unwrap();
    assert_eq!(api_error(send(request("POST", secrets, "application/json", &bad_name)).await), (422, "Invalid".into()));
    let protobuf = send(request("POST", secrets, "application/vnd.kubernetes.protobuf", b"k8s\0")).await;
    assert_eq!(api_error(protobuf).0, 415);
    let yaml = b"metadata: {name: from-yaml}\ndata: {key: eA==}\n";
    assert_eq!(
        send(request("POST", secrets, "application/yaml", yaml)).await.unwrap()["metadata"]["name"],
        "from-yaml"
    );
    let wrong_kind = serde_json::to_vec(&json!({ "kind": "ConfigMap", "metadata": { "name": "a" } })).unwrap();
    assert_eq!(api_error(send(request("POST", secrets, "application/json", &wrong_kind)).await).0, 400);

    server.create(secret("a", &[])).unwrap();
    let object = format!("{secrets}/a");
    let text_patch = send(request("PATCH", &object, "text/plain", b"{}")).await;
    assert_eq!(api_error(text_patch), (415, "UnsupportedMediaType".into()));
    let json_patch = br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}},{"op":"test","path":"/metadata/name","value":"a"}]"#;
    let patched = send(request("PATCH", &object, "application/json-patch+json", json_patch)).await.unwrap();
    assert_eq!(patched["metadata"]["labels"]["a"], "b");
    let failing_test = br#"[{"op":"test","path":"/metadata/name","value":"b"}]"#;
    assert_eq!(api_error(send(request("PATCH", &object, "application/json-patch+json", failing_test)).await).0, 422);
    let garbage = send(request("PATCH", &object, "application/merge-patch+json", b"[1,")).await;
    assert_eq!(api_error(garbage).0, 400);

    assert_eq!(api_error(send(request("GET", &format!("{object}/status"), "", b"")).await).0, 404);
    assert_eq!(api_error(send(request("PUT", secrets, "application/json", b"{}")).await).0, 405);
    assert_eq!(api_error(send(request("GET", "/apis/example.com/v1/widgets", "", b"")).await).0, 404);
    assert_eq!(api_error(send(request("GET", &format!("{secrets}?labelSelector=a%20in%20x"), "", b"")).await).0, 400);
    assert_eq!(api_error(send(request("GET", &format!("{secrets}?continue=zz"), "", b"")).await).0, 400);

    // Discovery is there for tools that need it.
    let resources = send(request("GET", "/apis/configuration.konghq.com/v1", "", b"")).await.unwrap();
    let listed: Vec<&str> =
        resources["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(listed.contains(&"kongconsumers") && listed.contains(&"kongclusterplugins/status"));
}

// ---------------------------------------------------------------------------------------------
// list

#[tokio::test]
async fn list_with_selectors_and_consistent_paging() {
    let server = ApiServer::start().await;
    for i in 0..7 {
        let app = if i % 2 == 0 { "web" } else { "api" };
        let labels: &[(&str, &str)] = if i < 3 { &[("app", app), ("tier", "front")] } else { &[("app", app)] };
        server.create(secret(&format!("s{i}"), labels)).unwrap();
    }
    server
        .create(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s0", "namespace": "other" } }))
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let select = |labels: &str| {
        let secrets = secrets.clone();
        let params = ListParams::default().labels(labels);
        async move { names(secrets.list(&params).await.unwrap()) }
    };
    assert_eq!(select("app=web").await, ["s0", "s2", "s4", "s6"]);
    assert_eq!(select("app==api,tier").await, ["s1"]);
    assert_eq!(select("app in (web, api),tier!=front").await, ["s3", "s4", "s5", "s6"]);
    assert_eq!(select("app notin (web),!tier").await, ["s3", "s5"]);
    let by_field = secrets.list(&ListParams::default().fields("metadata.name=s3")).await.unwrap();
    assert_eq!(names(by_field), ["s3"]);
    let everywhere: Api<Secret> = Api::all(server.client());
    let across = everywhere.list(&ListParams::default().fields("metadata.namespace!=default")).await.unwrap();
    assert_eq!(names(across), ["s0"]);

    // Pages of a selection: a continue token while more match, but no count (as kube-apiserver).
    let web = ListParams::default().labels("app=web").limit(2);
    let page = secrets.list(&web).await.unwrap();
    assert_eq!(names(page.items.clone()), ["s0", "s2"]);
    assert_eq!(page.metadata.remaining_item_count, None);
    let token = page.metadata.continue_.clone().expect("continue token");
    let last = secrets.list(&web.clone().continue_token(&token)).await.unwrap();
    assert_eq!(names(last.items), ["s4", "s6"]);
    assert!(last.metadata.continue_.is_none());

    // Paging: every page is served at the first page's resourceVersion, so changes between pages
    // do not show up (s5 deleted and s9 created after the first page).
    let first = secrets.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(first.items.clone()), ["s0", "s1", "s2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().expect("continue token");
    server.delete("secrets", "default", "s5").unwrap();
    server.create(secret("s9", &[])).unwrap();
    let second = secrets.list(&ListParams::default().limit(3).continue_token(&token)).await.unwrap();
    assert_eq!(names(second.items.clone()), ["s3", "s4", "s5"]);
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third_token = second.metadata.continue_.clone().expect("continue token");
    let third = secrets.list(&ListParams::default().limit(3).continue_token(&third_token)).await.unwrap();
    assert_eq!(names(third.items), ["s6"]);
    assert!(third.metadata.continue_.is_none());

    // An exact old resourceVersion is served from history...
    let old_rv = first.metadata.resource_version.clone().unwrap();
    let exact = ListParams::default().at(&old_rv).matching(VersionMatch::Exact);
    assert!(names(secrets.list(&exact).await.unwrap()).contains(&"s5".to_string()));
    // ...until history is compacted: then it, and continue tokens from before, are 410 Gone.
    server.compact();
    assert_eq!(api_error(secrets.list(&exact).await), (410, "Expired".into()));
    assert_eq!(api_error(secrets.list(&ListParams::default().limit(3).continue_token(&token)).await).0, 410);
    assert_eq!(names(secrets.list(&ListParams::default()).await.unwrap()).len(), 7);
}

// ---------------------------------------------------------------------------------------------
// watch: raw protocol

type RawWatch = Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<Secret>>> + Send>>;

async fn next(stream: &mut RawWatch) -> WatchEvent<Secret> {
    within("a watch event", WAIT, stream.next()).await.expect("stream open").expect("event")
}

#[tokio::test]
async fn raw_watch_protocol() {
    let server = ApiServer::start().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let a = server.create(secret("a", &[("app", "web")])).unwrap();
    let rv_a = a["metadata"]["resourceVersion"].as_str().unwrap().to_string();

    // From a resourceVersion: only later changes, then bookmarks on request.
    let mut stream = secrets.watch(&WatchParams::default(), &rv_a).await.unwrap().boxed();
    server.create(secret("b", &[("app", "api")])).unwrap();
    assert!(matches!(next(&mut stream).await, WatchEvent::Added(s) if s.name_any() == "b"));
    server.send_bookmarks();
    match next(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, server.resource_version().to_string()),
        other => panic!("expected a bookmark, got {other:?}"),
    }

    // A selector turns label changes into ADDED / DELETED, like kube-apiserver.
    let now = server.resource_version().to_string();
    let mut web =
        secrets.watch(&WatchParams::default().labels("app=web").disable_bookmarks(), &now).await.unwrap().boxed();
    server.patch("secrets", "default", "b", &json!({ "metadata": { "labels": { "app": "web" } } })).unwrap();
    server.patch("secrets", "default", "a", &json!({ "metadata": { "labels": { "app": "api" } } })).unwrap();
    server.patch("secrets", "default", "b", &json!({ "data": { "k": "eA==" } })).unwrap();
    assert!(matches!(next(&mut web).await, WatchEvent::Added(s) if s.name_any() == "b"));
    assert!(matches!(next(&mut web).await, WatchEvent::Deleted(s) if s.name_any() == "a"));
    assert!(matches!(next(&mut web).await, WatchEvent::Modified(s) if s.name_any() == "b"));

    // resourceVersion "0": current objects as ADDED; timeoutSeconds ends the stream.
    let mut short = secrets.watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0").await.unwrap().boxed();
    let mut initial = Vec::new();
    while let Some(event) = within("the watch to time out", WAIT, short.next()).await {
        match event.unwrap() {
            WatchEvent::Added(s) => initial.push(s.name_any()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["a", "b"]);

    // The legacy single-object watch path.
    let current = server.resource_version();
    let request =
        http::Request::get(format!("/api/v1/namespaces/default/secrets/a?watch=true&resourceVersion={current}"))
            .body(Vec::new())
            .unwrap();
    let mut one: RawWatch = server.client().request_events::<Secret>(request).await.unwrap().boxed();
    server.patch("secrets", "default", "b", &json!({ "data": { "k": "eQ==" } })).unwrap();
    server.patch("secrets", "default", "a", &json!({ "data": { "k": "eQ==" } })).unwrap();
    assert!(matches!(next(&mut one).await, WatchEvent::Modified(s) if s.name_any() == "a"));

    // After compaction an old resourceVersion gets one ERROR event: a Status with 410 Expired.
    server.compact();
    let mut expired = secrets.watch(&WatchParams::default(), &rv_a).await.unwrap().boxed();
    match next(&mut expired).await {
        WatchEvent::Error(status) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(within("the expired watch to end", WAIT, expired.next()).await.is_none());
}

// ---------------------------------------------------------------------------------------------
// watch: kube-runtime watcher

#[tokio::test]
async fn watcher_default_config_sees_init_then_changes() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default()));
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    server.create(secret("b", &[])).unwrap();
    watched.expect(&["Apply(b)"]).await;
    server.patch("secrets", "default", "b", &json!({ "metadata": { "labels": { "x": "y" } } })).unwrap();
    watched.expect(&["Apply(b)"]).await;
    server.delete("secrets", "default", "a").unwrap();
    watched.expect(&["Delete(a)"]).await;
    // Other namespaces are not part of a namespaced watch.
    server
        .create(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "o", "namespace": "other" } }))
        .unwrap();
    server.create(secret("c", &[])).unwrap();
    watched.expect(&["Apply(c)"]).await;
    assert!(watched.errors.is_empty(), "{:?}", watched.errors);

    // The default config lists (paged) and then watches from the list's resourceVersion.
    let requests = server.requests();
    assert!(requests.iter().any(|r| !r.watch && r.query.contains("limit=500")));
    assert!(requests.iter().any(|r| r.watch && r.query.contains("allowWatchBookmarks=true")));
}

#[tokio::test]
async fn watcher_with_label_selector_follows_matching_objects() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[("app", "web")])).unwrap();
    server.create(secret("b", &[("app", "api")])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default().labels("app=web")));
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    server.create(secret("c", &[("app", "web")])).unwrap();
    watched.expect(&["Apply(c)"]).await;
    server.create(secret("d", &[("app", "api")])).unwrap();
    server.patch("secrets", "default", "a", &json!({ "metadata": { "labels": { "app": "api" } } })).unwrap();
    watched.expect(&["Delete(a)"]).await;
    server.patch("secrets", "default", "d", &json!({ "metadata": { "labels": { "app": "web" } } })).unwrap();
    watched.expect(&["Apply(d)"]).await;
    assert_eq!(watched.known, BTreeSet::from(["c".to_string(), "d".to_string()]));
}

#[tokio::test]
async fn streaming_list_watcher() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default().streaming_lists()));
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.create(secret("b", &[])).unwrap();
    watched.expect(&["Apply(b)"]).await;
    assert!(server.requests().iter().all(|r| r.watch), "streaming lists never LIST");
    assert!(server.requests()[0].query.contains("sendInitialEvents=true"));
}

#[tokio::test]
async fn watcher_resumes_after_dropped_watches() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default()).default_backoff());
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    server.clear_requests();
    server.drop_watches();
    server.create(secret("b", &[])).unwrap();
    // Resumed from its last resourceVersion: the change is replayed, no relist.
    watched.expect(&["Apply(b)"]).await;
    server.wait_for_watchers("secrets", 1).await;
    server.create(secret("c", &[])).unwrap();
    watched.expect(&["Apply(c)"]).await;
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.watch), "no relist after a dropped watch: {requests:?}");
}

#[tokio::test]
async fn watcher_relists_after_compaction() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    server.create(secret("b", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default()).default_backoff());
    watched.expect(&["Init", "InitApply(a)", "InitApply(b)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    server.compact_and_drop_watches();
    server.delete("secrets", "default", "a").unwrap();
    server.create(secret("c", &[])).unwrap();
    watched.converge(&["b", "c"]).await;
    assert!(watched.errors.iter().any(|e| e.contains("Expired")), "expected a 410, got {:?}", watched.errors);
    assert_eq!(watched.log.iter().filter(|e| *e == "Init").count(), 2, "relisted: {:?}", watched.log);
}

#[tokio::test]
async fn watcher_recovers_from_server_errors_and_slowness() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default()).default_backoff());
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    server.fail_next(2, 500);
    server.drop_watches();
    server.create(secret("b", &[])).unwrap();
    watched.converge(&["a", "b"]).await;
    assert!(watched.errors.iter().any(|e| e.contains("500")), "{:?}", watched.errors);
    assert!(server.requests().iter().filter(|r| r.status == 500).count() == 2);

    server.set_delay(Duration::from_millis(300));
    server.drop_watches();
    server.create(secret("c", &[])).unwrap();
    watched.converge(&["a", "b", "c"]).await;
    server.set_delay(Duration::ZERO);
}

#[tokio::test]
async fn watcher_recovers_after_refused_connections() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(secrets, watcher::Config::default()).default_backoff());
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.wait_for_watchers("secrets", 1).await;

    let addr = server.addr();
    server.refuse_connections(true).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "connections are refused");
    server.create(secret("b", &[])).unwrap();
    // Let the watcher notice and fail at least once while the port is closed.
    let failed = async {
        while watched.errors.is_empty() {
            tokio::select! {
                _ = watched.next() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    };
    within("the watcher to fail while refused", WAIT, failed).await;
    server.refuse_connections(false).await;
    assert_eq!(server.addr(), addr);
    watched.converge(&["a", "b"]).await;
}

#[tokio::test]
async fn metadata_watcher_gets_partial_objects() {
    let server = ApiServer::start().await;
    server.create(secret("a", &[("app", "web")])).unwrap();
    let metas: Api<PartialObjectMeta<Secret>> = Api::namespaced(server.client(), "default");
    let mut watched = Watched::new(watcher(metas, watcher::Config::default()));
    watched.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    server.create(secret("b", &[])).unwrap();
    watched.expect(&["Apply(b)"]).await;
    let accepts_partial = server.requests().iter().all(|r| r.status == 200);
    assert!(accepts_partial && watched.errors.is_empty(), "{:?}", watched.errors);
}

#[tokio::test]
async fn history_window_is_bounded() {
    let options = apiserver::Options { history_limit: 3, ..Default::default() };
    let server = ApiServer::start_with(options).await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let first = server.create(secret("s0", &[])).unwrap();
    let first_rv = first["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    for i in 1..3 {
        server.create(secret(&format!("s{i}"), &[])).unwrap();
    }
    // Three changes kept: a watch from the first one still replays the next two.
    let mut replay: RawWatch =
        secrets.watch(&WatchParams::default().disable_bookmarks(), &first_rv).await.unwrap().boxed();
    assert!(matches!(next(&mut replay).await, WatchEvent::Added(s) if s.name_any() == "s1"));
    drop(replay);
    for i in 3..6 {
        server.create(secret(&format!("s{i}"), &[])).unwrap();
    }
    let mut expired: RawWatch = secrets.watch(&WatchParams::default(), &first_rv).await.unwrap().boxed();
    assert!(matches!(next(&mut expired).await, WatchEvent::Error(status) if status.code == 410));
}

// ---------------------------------------------------------------------------------------------
// faults on plain requests, request log

#[tokio::test]
async fn request_faults_and_log() {
    let server = ApiServer::start().await;
    server.create(secret("x", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client_as("reader"), "default");

    server.fail_matching("/secrets/x", 1, 500);
    assert_eq!(api_error(secrets.get("x").await), (500, "InternalError".into()));
    secrets.get("x").await.unwrap();

    // kube::Client retries 503 on its own; the log shows the failed attempts.
    server.clear_requests();
    server.fail_next(2, 503);
    secrets.get("x").await.unwrap();
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);

    server.fail_when(|r| r.method == "DELETE", 1, 429);
    server.set_delay_matching("/secrets/x", Duration::from_millis(200));
    let started = std::time::Instant::now();
    secrets.get("x").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    server.clear_faults();

    let writer_a: Api<Secret> = Api::namespaced(server.client_as("writer-a"), "default");
    let writer_b: Api<Secret> = Api::namespaced(server.client_as("writer-b"), "default");
    for name in ["w1", "w2"] {
        writer_a.create(&PostParams::default(), &serde_json::from_value(secret(name, &[])).unwrap()).await.unwrap();
    }
    writer_b.delete("w1", &DeleteParams::default()).await.unwrap();
    assert_eq!((server.writes_by("writer-a"), server.writes_by("writer-b"), server.writes_by("reader")), (2, 1, 0));
}

// ---------------------------------------------------------------------------------------------
// leases and events

#[tokio::test]
async fn lease_updates_use_optimistic_concurrency() {
    let server = ApiServer::start().await;
    let a: Api<Lease> = Api::namespaced(server.client_as("candidate-a"), "default");
    let b: Api<Lease> = Api::namespaced(server.client_as("candidate-b"), "default");
    let now = || MicroTime(k8s_openapi::jiff::Timestamp::now());
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "portcullis-leader" },
        "spec": { "holderIdentity": "a", "leaseDurationSeconds": 15 },
    }))
    .unwrap();
    let mut held = a.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(api_error(b.create(&PostParams::default(), &lease).await).0, 409);

    let seen_by_b = b.get("portcullis-leader").await.unwrap();
    held.spec.as_mut().unwrap().renew_time = Some(now());
    let renewed = a.replace("portcullis-leader", &PostParams::default(), &held).await.unwrap();

    let mut takeover = seen_by_b.clone();
    takeover.spec.as_mut().unwrap().holder_identity = Some("b".into());
    assert_eq!(
        api_error(b.replace("portcullis-leader", &PostParams::default(), &takeover).await),
        (409, "Conflict".into())
    );

    let mut takeover = b.get("portcullis-leader").await.unwrap();
    assert_eq!(rv(&takeover), rv(&renewed));
    takeover.spec.as_mut().unwrap().holder_identity = Some("b".into());
    takeover.spec.as_mut().unwrap().acquire_time = Some(now());
    b.replace("portcullis-leader", &PostParams::default(), &takeover).await.unwrap();
    assert_eq!(server.get("leases", "default", "portcullis-leader").unwrap()["spec"]["holderIdentity"], "b");
    assert_eq!(api_error(a.replace("portcullis-leader", &PostParams::default(), &renewed).await).0, 409);
    // A patch carrying a resourceVersion is conditional on it too.
    let stale_rv = renewed.metadata.resource_version.clone().unwrap();
    let patch = json!({ "metadata": { "resourceVersion": stale_rv }, "spec": { "holderIdentity": "a" } });
    let patched = a.patch("portcullis-leader", &PatchParams::default(), &Patch::Merge(&patch)).await;
    assert_eq!(api_error(patched), (409, "Conflict".into()));
    assert_eq!((server.writes_by("candidate-a"), server.writes_by("candidate-b")), (4, 3));
}

#[tokio::test]
async fn recorder_publishes_events_k8s_io_events() {
    let server = ApiServer::start().await;
    let client = server.client();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let target =
        secrets.create(&PostParams::default(), &serde_json::from_value(secret("creds", &[])).unwrap()).await.unwrap();
    let reporter = Reporter { controller: "portcullis".into(), instance: Some("portcullis-0".into()) };
    let recorder = Recorder::new(client.clone(), reporter);
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidCredential".into(),
        note: Some("key missing".into()),
        action: "Translate".into(),
        secondary: None,
    };
    let reference = target.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The same event again is a merge patch that starts a series.
    recorder.publish(&event, &reference).await.unwrap();

    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let listed = events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    let stored = &listed[0];
    assert_eq!(stored.reason.as_deref(), Some("InvalidCredential"));
    assert_eq!(stored.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("creds"));
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(stored.reporting_controller.as_deref(), Some("portcullis"));
    // events.k8s.io events are their own resource here (kube-apiserver also shows them as core events).
    assert!(server.list("events", None).is_empty());
    assert_eq!(server.list("events.events.k8s.io", Some("default")).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// kubectl

/// kubectl speaks to the server too (discovery, OpenAPI v3 for validation, client- and server-side
/// apply, label selectors). Skipped where kubectl is not installed.
#[tokio::test]
async fn kubectl_applies_and_reads_manifests() {
    let Some(kubectl) = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("kubectl")).find(|p| p.is_file()))
    else {
        eprintln!("kubectl not on PATH: skipped");
        return;
    };
    let server = ApiServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let manifest = home.path().join("m.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: alice-key, namespace: default, labels: {konghq.com/credential: key-auth}}\n\
         stringData: {key: alice-secret}\n---\n\
         apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {name: alice, namespace: default}\n\
         username: alice\ncredentials: [alice-key]\n",
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let mut command = std::process::Command::new(&kubectl);
        command.env("KUBECONFIG", home.path().join("kubeconfig")).env("HOME", home.path());
        command.arg("--server").arg(server.url()).arg("--cache-dir").arg(home.path().join("cache")).args(&args);
        async move {
            let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(output.status.success(), "kubectl {args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
            stdout
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let file = manifest.to_str().unwrap();
    within("kubectl apply", WAIT_WITH_BACKOFF, run(args(&["apply", "-f", file]))).await;
    within("kubectl apply --server-side", WAIT, run(args(&["apply", "--server-side", "-f", file]))).await;
    let names =
        within("kubectl get", WAIT, run(args(&["get", "secrets,kc", "-l", "konghq.com/credential", "-o", "name"])))
            .await;
    assert_eq!(names.trim(), "secret/alice-key");
    assert_eq!(server.get("secrets", "default", "alice-key").unwrap()["data"]["key"], "YWxpY2Utc2VjcmV0");
    assert_eq!(server.get("kongconsumers", "default", "alice").unwrap()["credentials"], json!(["alice-key"]));
}

// ---------------------------------------------------------------------------------------------
// registry

#[test]
fn registry_matches_the_kong_crds() {
    for crd in portcullis::api::all_crds() {
        let spec = &crd.spec;
        let served = DEFAULT_RESOURCES
            .iter()
            .find(|r| r.group == spec.group && r.plural == spec.names.plural)
            .unwrap_or_else(|| panic!("{} is not served", spec.names.plural));
        let version = &spec.versions[0];
        assert_eq!(served.version, version.name);
        assert_eq!(served.kind, spec.names.kind);
        assert_eq!(served.namespaced, spec.scope == "Namespaced");
        let has_status = version.subresources.as_ref().is_some_and(|s| s.status.is_some());
        assert_eq!(served.status_subresource, has_status, "{}", spec.names.plural);
    }
}
