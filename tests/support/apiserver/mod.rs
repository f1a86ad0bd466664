//! An in-process stand-in for kube-apiserver, for integration tests (see DESIGN.md, "Kubernetes
//! API in tests"). It speaks the Kubernetes REST protocol over plain HTTP well enough for the real
//! `kube::Client`, kube-runtime watchers, the event `Recorder`, Lease-based leader election and
//! `kubectl --server`, and it injects faults: failing or slow requests, dropped watches,
//! compaction (410 Gone), refused connections.
//!
//! ```ignore
//! let server = ApiServer::start().await;
//! let secrets: kube::Api<Secret> = kube::Api::namespaced(server.client(), "default");
//! server.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))?;
//! server.wait_for_watchers("secrets", 1).await;
//! server.drop_watches();
//! ```
//!
//! Faithful: one global resourceVersion; uid/creationTimestamp/generation; 409 AlreadyExists and
//! Conflict (stale resourceVersion on PUT, or in a patch body); `/status` split; no-op writes keep
//! their resourceVersion and send no event; list with label/field selectors, `limit`/`continue`
//! served at the first page's version, `Exact` versions rebuilt from history; watches replay
//! history, turn selector transitions into ADDED/DELETED, send BOOKMARKs, honour `timeoutSeconds`,
//! `sendInitialEvents` (streaming lists) and answer an expired version with an ERROR/410 event;
//! finalizers; `generateName`; Secret `stringData`; `as=PartialObjectMetadata`; `dryRun=All`.
//!
//! Approximations: strategic merge patch is a JSON merge patch (lists replaced, not merged by
//! key); server-side apply merges the applied object like a merge patch (no field ownership, no
//! conflicts, `force` ignored, no managedFields); updates without a resourceVersion are always
//! allowed; field selectors accept any dotted path; no schema validation (names must be RFC 1123
//! subdomains); core/v1 and events.k8s.io/v1 Events are separate stores; no protobuf/CBOR (415);
//! no auth; OpenAPI v3 is a skeleton that only tells kubectl to validate server-side.

// Each test binary that includes this module uses a different part of the handle.
#![allow(dead_code)]

mod body;
mod discovery;
mod errors;
mod faults;
mod handlers;
mod http;
mod object;
mod openapi;
mod patch;
mod resources;
mod selectors;
mod server;
mod store;
mod watch;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use ::http::{HeaderValue, header::USER_AGENT};
use serde_json::Value;

// Re-exported for tests; not every test binary names all of them.
#[allow(unused_imports)]
pub use errors::ApiError;
#[allow(unused_imports)]
pub use faults::{RequestInfo, RequestRecord};
#[allow(unused_imports)]
pub use resources::{DEFAULT_RESOURCES, ResourceType};

use faults::{Faults, Predicate, RequestLog};
use object::Sub;
use resources::{Registry, Rid};
use store::{Preconditions, Store};

/// How long the `wait_*` helpers wait before failing the test.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Options {
    /// Changes kept for watches to resume from; older resourceVersions answer 410 Gone.
    pub history_limit: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Served in addition to `DEFAULT_RESOURCES`.
    pub extra_resources: Vec<ResourceType>,
}

impl Default for Options {
    fn default() -> Self {
        Options { history_limit: 10_000, bookmark_interval: Duration::from_secs(1), extra_resources: Vec::new() }
    }
}

/// State shared by the handle, the HTTP handlers and the watch tasks.
struct Shared {
    store: Store,
    faults: Faults,
    log: RequestLog,
    /// Open watch streams per resource.
    watchers: tokio::sync::watch::Sender<BTreeMap<Rid, usize>>,
    options: Options,
}

/// The running server. Dropping it stops accepting and closes every connection.
pub struct ApiServer {
    shared: Arc<Shared>,
    listener: server::Listener,
}

impl ApiServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let registry = Arc::new(Registry::new(&options.extra_resources));
        let shared = Arc::new(Shared {
            store: Store::new(registry, options.history_limit),
            faults: Faults::default(),
            log: RequestLog::default(),
            watchers: tokio::sync::watch::channel(BTreeMap::new()).0,
            options,
        });
        let listener = server::Listener::start(shared.clone()).expect("test API server binds 127.0.0.1:0");
        ApiServer { shared, listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A kubeconfig file for a separate process (the binary run as
    /// deployed): plain HTTP, no auth, default namespace "default".
    #[allow(dead_code)] // not every test binary including this module starts one
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: test, cluster: {{server: '{}'}}}}]\n\
                 users: [{{name: test, user: {{}}}}]\n\
                 contexts: [{{name: test, context: {{cluster: test, user: test, namespace: default}}}}]\n\
                 current-context: test\n",
                self.url()
            ),
        )
    }

    /// Plain HTTP, no auth, default namespace "default".
    pub fn kube_config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().expect("server URL is a valid URI"))
    }

    /// Needs a tokio runtime (kube's client spawns a worker).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("kube client for the test API server")
    }

    /// A client whose requests are logged under `user_agent`, to count writes per client.
    pub fn client_as(&self, user_agent: &str) -> kube::Client {
        let mut config = self.kube_config();
        config.headers.push((USER_AGENT, HeaderValue::from_str(user_agent).expect("user agent is a header value")));
        kube::Client::try_from(config).expect("kube client for the test API server")
    }

    // ---- direct store access: same code paths as HTTP, so watches see these changes ----

    fn rid(&self, resource: &str) -> Result<Rid, ApiError> {
        self.shared
            .store
            .registry()
            .lookup(resource)
            .ok_or_else(|| ApiError::bad_request(format!("unknown resource {resource:?}")))
    }

    fn rid_of(&self, obj: &Value) -> Result<Rid, ApiError> {
        let field = |f: &str| obj.get(f).and_then(Value::as_str).unwrap_or("");
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        self.shared
            .store
            .registry()
            .by_type(api_version, kind)
            .ok_or_else(|| ApiError::bad_request(format!("unknown apiVersion/kind {api_version}/{kind}")))
    }

    /// (rid, namespace, name) an object names; namespace defaults to "default" where it applies.
    fn address(&self, obj: &Value) -> Result<(Rid, String, String), ApiError> {
        let rid = self.rid_of(obj)?;
        let ns = match object::namespace(obj) {
            "" if self.shared.store.registry().get(rid).namespaced => "default",
            ns => ns,
        };
        Ok((rid, ns.to_string(), object::name(obj).to_string()))
    }

    fn not_found(&self, rid: Rid, name: &str) -> ApiError {
        ApiError::not_found(self.shared.store.registry().get(rid), name)
    }

    /// POST: 409 AlreadyExists if it exists. Status is dropped for kinds with a status subresource.
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let rid = self.rid_of(&obj)?;
        Ok((*self.shared.store.create(rid, None, obj, false)?).clone())
    }

    /// PUT: 404 if missing, 409 if `metadata.resourceVersion` is set and stale.
    pub fn update(&self, obj: Value) -> Result<Value, ApiError> {
        self.put(obj, Sub::Main)
    }

    /// PUT on `/status`.
    pub fn update_status(&self, obj: Value) -> Result<Value, ApiError> {
        self.put(obj, Sub::Status)
    }

    fn put(&self, obj: Value, sub: Sub) -> Result<Value, ApiError> {
        let (rid, ns, name) = self.address(&obj)?;
        let missing = self.not_found(rid, &name);
        let written = self.shared.store.write(rid, &ns, &name, sub, false, |current| match current {
            Some(_) => Ok(obj),
            None => Err(missing),
        })?;
        Ok((*written.0).clone())
    }

    /// Create, or replace whatever is there (ignoring any resourceVersion in `obj`): "make it so",
    /// like `kubectl apply` of a whole manifest. Status is kept for kinds with a status subresource.
    pub fn apply(&self, mut obj: Value) -> Result<Value, ApiError> {
        let (rid, ns, name) = self.address(&obj)?;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let written = self.shared.store.write(rid, &ns, &name, Sub::Main, false, |_| Ok(obj))?;
        Ok((*written.0).clone())
    }

    /// JSON merge patch of an existing object.
    pub fn patch(&self, resource: &str, ns: &str, name: &str, merge_patch: &Value) -> Result<Value, ApiError> {
        let rid = self.rid(resource)?;
        let missing = self.not_found(rid, name);
        let written = self.shared.store.write(rid, ns, name, Sub::Main, false, |current| {
            let mut doc = current.ok_or(missing)?.clone();
            patch::merge_patch(&mut doc, merge_patch);
            Ok(doc)
        })?;
        Ok((*written.0).clone())
    }

    /// `resource` is a plural, kind, singular or short name, optionally `.group`-qualified
    /// (`events.events.k8s.io`); `ns` is ignored for cluster-scoped kinds.
    pub fn delete(&self, resource: &str, ns: &str, name: &str) -> Result<Value, ApiError> {
        let rid = self.rid(resource)?;
        Ok((*self.shared.store.delete(rid, ns, name, &Preconditions::default(), false)?).clone())
    }

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let rid = self.rid(resource).ok()?;
        self.shared.store.get(rid, ns, name).ok().map(|o| (*o).clone())
    }

    /// One namespace, or all of them with `None`; ordered by namespace, then name.
    pub fn list(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        let Ok(rid) = self.rid(resource) else { return Vec::new() };
        self.shared
            .store
            .list(rid, ns, None)
            .map(|(_, items)| items.iter().map(|o| (**o).clone()).collect())
            .unwrap_or_default()
    }

    /// The newest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    // ---- request log ----

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.snapshot()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// POST/PUT/PATCH/DELETE requests sent with this User-Agent (see `client_as`).
    pub fn writes_by(&self, user_agent: &str) -> usize {
        self.requests().iter().filter(|r| r.is_write() && r.user_agent.as_deref() == Some(user_agent)).count()
    }

    // ---- faults ----

    /// The next `times` requests (of any kind, watches included) answer `code` with a Status body.
    /// Note kube::Client itself retries 429, 503 and 504 (up to 15 times) before callers see them.
    pub fn fail_next(&self, times: usize, code: u16) {
        self.shared.faults.fail(Arc::new(|_| true), times, code);
    }

    /// Like `fail_next`, for requests whose path and query contain `path_contains` (e.g.
    /// `"/leases/"`, `"watch=true"`).
    pub fn fail_matching(&self, path_contains: &str, times: usize, code: u16) {
        self.shared.faults.fail(contains(path_contains), times, code);
    }

    pub fn fail_when(&self, predicate: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static, times: usize, code: u16) {
        self.shared.faults.fail(Arc::new(predicate), times, code);
    }

    /// Every request waits `delay` before it is handled (watches: before the stream starts).
    /// `Duration::ZERO` removes all delays.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.clear_delays();
        if !delay.is_zero() {
            self.shared.faults.add_delay(Arc::new(|_| true), delay);
        }
    }

    pub fn set_delay_matching(&self, path_contains: &str, delay: Duration) {
        self.shared.faults.add_delay(contains(path_contains), delay);
    }

    /// Removes pending failures and delays.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Abruptly ends every open watch stream (the connection is reset mid-body). Clients resume
    /// from the last resourceVersion they saw.
    pub fn drop_watches(&self) {
        self.shared.store.drop_watches();
    }

    /// Forgets all history: every resourceVersion handed out so far answers 410 Gone (watch: an
    /// ERROR event; list with an exact version or continue token: HTTP 410). Open watches go on.
    pub fn compact(&self) {
        self.shared.store.compact(false);
    }

    /// `compact` and `drop_watches` in one step, so no watch can see a newer version in between:
    /// every watcher has to relist.
    pub fn compact_and_drop_watches(&self) {
        self.shared.store.compact(true);
    }

    /// Sends a BOOKMARK now on every watch that allows them.
    pub fn send_bookmarks(&self) {
        self.shared.store.request_bookmarks();
    }

    /// `true`: close the listening socket (connects are refused) and kill every open connection.
    /// `false`: listen on the same port again. Returns once done.
    pub async fn refuse_connections(&self, refuse: bool) {
        self.listener.set_refusing(refuse).await;
    }

    /// Kills every open connection (watches and pooled keep-alive connections) but keeps listening.
    pub fn kill_connections(&self) {
        self.listener.kill_connections();
    }

    /// Open watch streams on `resource` (any namespace).
    pub fn open_watches(&self, resource: &str) -> usize {
        let Ok(rid) = self.rid(resource) else { return 0 };
        self.shared.watchers.borrow().get(&rid).copied().unwrap_or(0)
    }

    /// Waits until at least `n` watches on `resource` are open; panics after 5 s.
    pub async fn wait_for_watchers(&self, resource: &str, n: usize) {
        let rid = self.rid(resource).unwrap_or_else(|e| panic!("{e}"));
        let mut watchers = self.shared.watchers.subscribe();
        let reached = tokio::time::timeout(WAIT_TIMEOUT, watchers.wait_for(|m| m.get(&rid).copied().unwrap_or(0) >= n));
        if !matches!(reached.await, Ok(Ok(_))) {
            panic!("expected {n} open watches on {resource}, have {}", self.open_watches(resource));
        }
    }
}

fn contains(needle: &str) -> Predicate {
    let needle = needle.to_string();
    Arc::new(move |info: &RequestInfo| info.path_and_query().contains(&needle))
}
