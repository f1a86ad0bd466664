//! Cluster mode: one kube-runtime watcher per kind (and per namespace when
//! `--watch-namespace` is set), feeding the world loop. Objects are shrunk
//! the moment they arrive, so no Secret data is ever buffered or cached.
//!
//! A watch's initial list (Init .. InitDone) is a reset of its scope:
//! objects deleted while we were disconnected disappear. A custom object
//! that does not fit its schema is reported and skipped; it never stalls
//! its watch. Errors are retried with kube-runtime's default backoff while
//! the last snapshot keeps serving.

use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use super::world_loop::{Op, Ops};
use crate::api::LABEL_CREDENTIAL;
use crate::world::{Kind, Object, ObjectRef, Shrunk};

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
}

/// One watch stream: a kind in one namespace (or all).
#[derive(Clone, Debug)]
pub struct Stream {
    pub id: usize,
    pub kind: Kind,
    pub namespace: Option<String>,
}

/// Every stream the scope needs: namespaced kinds once per namespace,
/// cluster-scoped kinds once.
pub fn streams(scope: &Scope) -> Vec<Stream> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let namespaces: Vec<Option<String>> = if !kind.is_namespaced() || scope.namespaces.is_empty() {
            vec![None]
        } else {
            scope.namespaces.iter().cloned().map(Some).collect()
        };
        for namespace in namespaces {
            out.push(Stream { id: out.len(), kind, namespace });
        }
    }
    out
}

/// Spawns every watcher; they run until the ops receiver is dropped.
pub fn spawn_watchers(client: &Client, streams: &[Stream], ops: &Ops) {
    for s in streams {
        let (client, ops, s) = (client.clone(), ops.clone(), s.clone());
        let ns = s.namespace.as_deref();
        match s.kind {
            Kind::Ingress => {
                spawn_typed::<Ingress>(api(&client, ns), watcher::Config::default(), s, ops, Object::Ingress)
            }
            Kind::IngressClass => {
                spawn_typed::<IngressClass>(Api::all(client), watcher::Config::default(), s, ops, Object::IngressClass)
            }
            Kind::Service => {
                spawn_typed::<Service>(api(&client, ns), watcher::Config::default(), s, ops, Object::Service)
            }
            Kind::EndpointSlice => spawn_typed::<EndpointSlice>(
                api(&client, ns),
                watcher::Config::default(),
                s,
                ops,
                Object::EndpointSlice,
            ),
            // Only credential Secrets: never every Secret of the cluster.
            Kind::Secret => spawn_typed::<Secret>(
                api(&client, ns),
                watcher::Config::default().labels(LABEL_CREDENTIAL),
                s,
                ops,
                Object::Secret,
            ),
            Kind::KongConsumer | Kind::KongPlugin | Kind::KongClusterPlugin => {
                let ar = kong_api_resource(s.kind);
                let api = match ns {
                    Some(ns) => Api::<DynamicObject>::namespaced_with(client, ns, &ar),
                    None => Api::<DynamicObject>::all_with(client, &ar),
                };
                tokio::spawn(run_stream(api, watcher::Config::default(), s, ops, move |o| dynamic_to_object(o, &ar)));
            }
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn spawn_typed<K>(api: Api<K>, cfg: watcher::Config, s: Stream, ops: Ops, wrap: fn(K) -> Object)
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(run_stream(api, cfg, s, ops, move |o| Ok(wrap(o))));
}

/// The API resource of a Kong CRD (read as untyped objects so one malformed
/// object cannot fail a whole list; status is written the same way).
pub fn kong_api_resource(kind: Kind) -> ApiResource {
    let plural = match kind {
        Kind::KongConsumer => "kongconsumers",
        Kind::KongPlugin => "kongplugins",
        _ => "kongclusterplugins",
    };
    ApiResource {
        group: crate::api::GROUP.into(),
        version: crate::api::VERSION.into(),
        api_version: kind.api_version().into(),
        kind: kind.as_str().into(),
        plural: plural.into(),
    }
}

/// An object from a watch that cannot be used: with its identity when it
/// has a name (so it can be reported on), else just why.
enum Rejected {
    Named(ObjectRef, crate::world::Unreadable),
    Nameless(String),
}

type Unreadable = Box<Rejected>;

fn unreadable(kind: Kind, m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, why: String) -> Unreadable {
    Box::new(match m.name.clone() {
        Some(name) => Rejected::Named(
            ObjectRef::new(kind, m.namespace.clone(), name),
            crate::world::Unreadable { uid: m.uid.clone().unwrap_or_default(), generation: m.generation, reason: why },
        ),
        None => Rejected::Nameless(why),
    })
}

fn dynamic_to_object(o: DynamicObject, ar: &ApiResource) -> Result<Object, Unreadable> {
    let kind = match ar.kind.as_str() {
        "KongConsumer" => Kind::KongConsumer,
        "KongPlugin" => Kind::KongPlugin,
        _ => Kind::KongClusterPlugin,
    };
    let mut value = serde_json::to_value(&o).map_err(|e| unreadable(kind, &o.metadata, e.to_string()))?;
    // List items may come without apiVersion/kind.
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), ar.api_version.clone().into());
        map.insert("kind".into(), ar.kind.clone().into());
    }
    Object::from_value(value).map_err(|e| unreadable(kind, &o.metadata, e.to_string()))
}

/// Drives one watch stream: Init..InitDone becomes one Reset of the
/// stream's scope; later events become Apply/Delete.
async fn run_stream<K, F>(api: Api<K>, cfg: watcher::Config, s: Stream, ops: Ops, to_object: F)
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(K) -> Result<Object, Unreadable>,
{
    let (kind, namespace) = (s.kind.as_str(), s.namespace.clone().unwrap_or_else(|| "*".into()));
    let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
    let mut buffer: Vec<Shrunk> = Vec::new();
    let mut invalid: Vec<(ObjectRef, crate::world::Unreadable)> = Vec::new();
    while let Some(event) = stream.next().await {
        let received = Instant::now();
        let op = match event {
            Ok(Event::Init) => {
                buffer.clear();
                invalid.clear();
                continue;
            }
            Ok(Event::InitApply(o)) => {
                match shrink(&to_object, o).map_err(|e| *e) {
                    Ok(obj) => buffer.push(obj),
                    Err(Rejected::Named(r, info)) => invalid.push((r, info)),
                    Err(Rejected::Nameless(why)) => {
                        tracing::warn!(kind, %namespace, "skipping an object without a name: {why}")
                    }
                }
                continue;
            }
            Ok(Event::InitDone) => Op::Reset {
                stream: s.id,
                kind: s.kind,
                namespace: s.namespace.clone(),
                objects: std::mem::take(&mut buffer),
                invalid: std::mem::take(&mut invalid),
            },
            Ok(Event::Apply(o)) => match shrink(&to_object, o).map_err(|e| *e) {
                Ok(obj) => Op::Apply(Box::new(obj)),
                Err(Rejected::Named(r, info)) => Op::Invalid(r, info),
                Err(Rejected::Nameless(why)) => {
                    tracing::warn!(kind, %namespace, "skipping an object without a name: {why}");
                    continue;
                }
            },
            Ok(Event::Delete(o)) => match object_ref(s.kind, &o) {
                // The credential watch never removes a referenced Secret.
                Some(r) if s.kind == Kind::Secret => Op::DeleteSecret(r),
                Some(r) => Op::Delete(r),
                None => continue,
            },
            Err(e) => {
                // The backoff retries; the last snapshot keeps serving.
                tracing::warn!(kind, %namespace, error = %e, "watch failed; retrying with backoff");
                Op::WatchError { stream: s.id }
            }
        };
        if ops.send(received, op).is_err() {
            return;
        }
    }
}

fn shrink<K, F>(to_object: &F, o: K) -> Result<Shrunk, Unreadable>
where
    F: Fn(K) -> Result<Object, Unreadable>,
{
    let obj = to_object(o)?;
    Shrunk::from_object(&obj).map_err(|e| unreadable(obj.kind(), obj.metadata(), e.to_string()))
}

fn object_ref<K: kube::Resource>(kind: Kind, o: &K) -> Option<ObjectRef> {
    let m = o.meta();
    Some(ObjectRef::new(kind, m.namespace.clone(), m.name.clone()?))
}

/// Watches exactly the Secrets objects reference (plugin `configFrom`,
/// Ingress TLS): one watch per name, started and stopped as references
/// come and go. Runs until `references` closes.
pub fn spawn_referenced_secrets(
    client: Client,
    scope: Scope,
    mut references: tokio::sync::watch::Receiver<std::collections::BTreeSet<(String, String)>>,
    ops: Ops,
) {
    tokio::spawn(async move {
        let mut running: std::collections::HashMap<(String, String), tokio::task::AbortHandle> = Default::default();
        while references.changed().await.is_ok() {
            let wanted = references.borrow_and_update().clone();
            running.retain(|key, task| {
                let keep = wanted.contains(key);
                if !keep {
                    task.abort();
                    // No longer referenced: its data has no reason to stay.
                    let _ = ops.send(
                        Instant::now(),
                        Op::ReferencedSecret { secret: secret_ref(key), state: None, synced: true },
                    );
                }
                keep
            });
            for key in wanted {
                if running.contains_key(&key) {
                    continue;
                }
                if !scope.namespaces.is_empty() && !scope.namespaces.contains(&key.0) {
                    // Outside --watch-namespace: not readable, so absent.
                    let _ = ops.send(
                        Instant::now(),
                        Op::ReferencedSecret { secret: secret_ref(&key), state: None, synced: true },
                    );
                    continue;
                }
                let task = tokio::spawn(watch_one_secret(client.clone(), key.clone(), ops.clone()));
                running.insert(key, task.abort_handle());
            }
        }
        for task in running.values() {
            task.abort();
        }
    });
}

fn secret_ref((ns, name): &(String, String)) -> ObjectRef {
    ObjectRef::namespaced(Kind::Secret, ns, name)
}

/// One referenced Secret, by name.
async fn watch_one_secret(client: Client, key: (String, String), ops: Ops) {
    let api: Api<Secret> = Api::namespaced(client, &key.0);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", key.1));
    let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
    let secret = secret_ref(&key);
    let mut listed: Option<Box<Shrunk>> = None;
    let shrink = |o: Secret| Shrunk::from_object(&Object::Secret(o)).ok().map(Box::new);
    while let Some(event) = stream.next().await {
        let received = Instant::now();
        let op = match event {
            Ok(Event::Init) => {
                listed = None;
                continue;
            }
            Ok(Event::InitApply(o)) => {
                listed = shrink(o);
                continue;
            }
            Ok(Event::InitDone) => Op::ReferencedSecret { secret: secret.clone(), state: listed.take(), synced: true },
            Ok(Event::Apply(o)) => Op::ReferencedSecret { secret: secret.clone(), state: shrink(o), synced: false },
            Ok(Event::Delete(_)) => Op::ReferencedSecret { secret: secret.clone(), state: None, synced: false },
            Err(e) => {
                tracing::warn!(secret = %secret, error = %e, "watch of a referenced Secret failed; retrying with backoff");
                Op::WatchError { stream: usize::MAX }
            }
        };
        if ops.send(received, op).is_err() {
            return;
        }
    }
}
