//! `?watch=true`: a chunked stream of newline-delimited `{"type":..,"object":..}` events, fed
//! from the store's history by one task per watch.

use std::{io, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Response, header};
use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Shared,
    body::{self, Body},
    resources::{ResourceType, Rid},
    selectors::{FieldSelector, LabelSelector},
    store::{Change, ChangeType, Poll, WatchStart},
};

/// Buffered events per watch before the task waits for the client to read.
const WATCH_BUFFER: usize = 64;
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

pub struct WatchSpec {
    pub rid: Rid,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// None when unset or "0": start from the current state.
    pub resource_version: Option<u64>,
    /// `sendInitialEvents`, when given.
    pub send_initial_events: Option<bool>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    /// `Accept: ...;as=PartialObjectMetadata`: send only metadata (kube's metadata watchers).
    pub partial_metadata: bool,
}

/// Which objects a watch (or list) shows, and in which form.
pub struct View {
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub partial_metadata: bool,
}

impl View {
    /// Whether a label or field selector narrows what this view shows.
    pub fn selects(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    pub fn visible(&self, obj: &Value) -> bool {
        self.ns.as_deref().is_none_or(|ns| super::object::namespace(obj) == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    pub fn render(&self, obj: &Value) -> Value {
        if self.partial_metadata {
            json!({
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadata",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        } else {
            obj.clone()
        }
    }

    /// How a change looks through this view: like kube-apiserver, an object that starts matching
    /// is ADDED and one that stops matching is DELETED.
    fn event<'c>(&self, change: &'c Change) -> Option<(&'static str, &'c Value)> {
        let now = self.visible(&change.object);
        let kind = match change.kind {
            ChangeType::Added => now.then_some("ADDED")?,
            ChangeType::Deleted => now.then_some("DELETED")?,
            ChangeType::Modified => match (change.previous.as_deref().is_some_and(|p| self.visible(p)), now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
        };
        Some((kind, &change.object))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({ "type": kind, "object": object }).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(rt: &ResourceType, view: &View, rv: u64, initial_end: bool) -> Bytes {
    let mut object = json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(),
        "metadata": { "resourceVersion": rv.to_string() },
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
    }
    if view.partial_metadata {
        object = view.render(&object);
    }
    line("BOOKMARK", &object)
}

/// Counts the watch as open for `wait_for_watchers` until the task ends.
struct OpenWatch {
    shared: Arc<Shared>,
    rid: Rid,
}

impl OpenWatch {
    fn new(shared: Arc<Shared>, rid: Rid) -> Self {
        shared.watchers.send_modify(|m| *m.entry(rid).or_default() += 1);
        OpenWatch { shared, rid }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.shared.watchers.send_modify(|m| {
            if let Some(n) = m.get_mut(&self.rid) {
                *n = n.saturating_sub(1);
            }
        });
    }
}

pub fn start(shared: Arc<Shared>, spec: WatchSpec) -> Response<Body> {
    let (tx, body) = body::channel(WATCH_BUFFER);
    let open = OpenWatch::new(shared.clone(), spec.rid);
    tokio::spawn(run(shared, spec, tx, open));
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

async fn run(shared: Arc<Shared>, spec: WatchSpec, tx: mpsc::Sender<io::Result<Bytes>>, _open: OpenWatch) {
    let store = &shared.store;
    let rt = *store.registry().get(spec.rid);
    let view = View { ns: spec.ns, labels: spec.labels, fields: spec.fields, partial_metadata: spec.partial_metadata };
    let send_initial = spec.send_initial_events.unwrap_or(spec.resource_version.is_none());
    let mut notify = store.subscribe();
    let from = if send_initial { None } else { spec.resource_version };
    let (start, drop_epoch, mut bookmark_epoch) = match store.begin_watch(spec.rid, from) {
        Ok(started) => started,
        Err(err) => {
            // Like kube-apiserver: the watch is accepted, then a single ERROR event says why not.
            let _ = tx.send(Ok(line("ERROR", &err.to_status()))).await;
            return;
        }
    };
    let mut cursor = match start {
        WatchStart::After(rv) => rv,
        WatchStart::Snapshot { rv, objects } => {
            for obj in objects.iter().filter(|o| send_initial && view.visible(o)) {
                if tx.send(Ok(line("ADDED", &view.render(obj)))).await.is_err() {
                    return;
                }
            }
            if spec.send_initial_events == Some(true) && tx.send(Ok(bookmark(&rt, &view, rv, true))).await.is_err() {
                return;
            }
            rv
        }
    };

    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let interval = shared.options.bookmark_interval;
    let mut next_bookmark = Instant::now() + interval;
    loop {
        notify.borrow_and_update();
        match store.poll(spec.rid, cursor, drop_epoch) {
            Poll::Dropped => {
                let _ = tx.send(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "watch dropped"))).await;
                return;
            }
            Poll::Expired(err) => {
                let _ = tx.send(Ok(line("ERROR", &err.to_status()))).await;
                return;
            }
            Poll::Ready { changes, rv, bookmark_epoch: requested } => {
                for (kind, obj) in changes.iter().filter_map(|c| view.event(c)) {
                    if tx.send(Ok(line(kind, &view.render(obj)))).await.is_err() {
                        return;
                    }
                }
                cursor = rv;
                let due = requested != bookmark_epoch || Instant::now() >= next_bookmark;
                bookmark_epoch = requested;
                if spec.bookmarks && due {
                    if tx.send(Ok(bookmark(&rt, &view, cursor, false))).await.is_err() {
                        return;
                    }
                    next_bookmark = Instant::now() + interval;
                }
            }
        }
        tokio::select! {
            biased;
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => return,
            changed = notify.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(next_bookmark), if spec.bookmarks => {}
        }
    }
}
