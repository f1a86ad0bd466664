//! Objects, the one global resourceVersion counter and the bounded change history that watches
//! read from. Every write — over HTTP or through the test handle — goes through here, so watches
//! see both alike.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use serde_json::Value;
use tokio::sync::watch;

use super::{
    errors::ApiError,
    object::{self, Sub},
    resources::{Registry, Rid},
};

pub type Object = Arc<Value>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed write. `previous` is the state before it (for MODIFIED and DELETED), which lets a
/// watch with a selector turn a change into ADDED/DELETED and lets a list be served at an older
/// resourceVersion.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub rid: Rid,
    pub kind: ChangeType,
    pub object: Object,
    pub previous: Option<Object>,
}

/// `DeleteOptions.preconditions`.
#[derive(Clone, Debug, Default)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Where a new watch starts.
pub enum WatchStart {
    /// No resourceVersion (or "0"): the current objects of the resource, to be sent as ADDED.
    Snapshot { rv: u64, objects: Vec<Object> },
    /// Replay history after this resourceVersion.
    After(u64),
}

/// What a watch finds when it looks for news.
pub enum Poll {
    /// `drop_watches()` was called since the watch started: end the stream abruptly.
    Dropped,
    /// The history this watch still needed was trimmed: it must get a 410.
    Expired(ApiError),
    Ready {
        changes: Vec<Arc<Change>>,
        rv: u64,
        bookmark_epoch: u64,
    },
}

type Key = (Rid, String, String);

/// What `Store::list_page` returns.
pub struct Page {
    pub rv: u64,
    pub items: Vec<Object>,
    /// Objects after the page (only whether there are any when a selector chose them).
    pub remaining: usize,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Object>,
    history: VecDeque<Arc<Change>>,
    /// A watch or list may start at resourceVersion N only if N >= this (all later changes kept).
    oldest_valid: u64,
    /// The newest change ever discarded; a live watch whose cursor is behind it missed events.
    dropped_through: u64,
    drop_epoch: u64,
    bookmark_epoch: u64,
}

pub struct Store {
    registry: Arc<Registry>,
    history_limit: usize,
    inner: Mutex<Inner>,
    /// Bumped on every state change watches may care about (writes, drops, compaction, bookmarks).
    notify: watch::Sender<u64>,
}

impl Store {
    pub fn new(registry: Arc<Registry>, history_limit: usize) -> Self {
        let inner = Inner {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest_valid: 0,
            dropped_through: 0,
            drop_epoch: 0,
            bookmark_epoch: 0,
        };
        Store { registry, history_limit: history_limit.max(1), inner: Mutex::new(inner), notify: watch::channel(0).0 }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge every later request.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, rid: Rid, ns: &str, name: &str) -> Key {
        let ns = if self.registry.get(rid).namespaced { ns } else { "" };
        (rid, ns.to_string(), name.to_string())
    }

    fn bump(&self, inner: &Inner) {
        // Receivers wake on every send; the value itself is informational.
        self.notify.send_replace(inner.rv);
    }

    pub fn get(&self, rid: Rid, ns: &str, name: &str) -> Result<Object, ApiError> {
        let key = self.key(rid, ns, name);
        let inner = self.lock();
        inner.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(self.registry.get(rid), name))
    }

    /// Objects of a resource (in one namespace or all), ordered by namespace then name, as of `at`
    /// (default: now). An older `at` is rebuilt by undoing history; 410 when that history is gone.
    pub fn list(&self, rid: Rid, ns: Option<&str>, at: Option<u64>) -> Result<(u64, Vec<Object>), ApiError> {
        let page = self.list_page(rid, ns, at, None, usize::MAX, None::<fn(&Object) -> bool>)?;
        Ok((page.rv, page.items))
    }

    /// One page of a list: up to `limit` objects after `after` (a namespace/name, exclusive) that
    /// `keep` accepts (all without one), in list order, as of `at`, and how many more there are
    /// (with `keep`: 1 if any, as kube-apiserver only counts them without selectors). Walks the stored
    /// objects from `after` on and overlays the few that changed since `at`, so paging through a
    /// large resource costs what the pages hold, not a copy of the resource per page (kube-runtime
    /// lists 100k objects in 200 pages of 500).
    pub fn list_page(
        &self,
        rid: Rid,
        ns: Option<&str>,
        at: Option<u64>,
        after: Option<(&str, &str)>,
        limit: usize,
        keep: Option<impl Fn(&Object) -> bool>,
    ) -> Result<Page, ApiError> {
        let inner = self.lock();
        let at = at.unwrap_or(inner.rv);
        if at < inner.oldest_valid {
            return Err(ApiError::expired(format!("too old resource version: {at} ({})", inner.oldest_valid)));
        }
        if at > inner.rv {
            return Err(ApiError::timeout(format!("Too large resource version: {at}, current: {}", inner.rv)));
        }
        // The state at `at` of each object written since: the change's previous state, applied
        // newest first so the oldest change after `at` has the last word (None: not there yet).
        let mut then: BTreeMap<(&str, &str), Option<&Object>> = BTreeMap::new();
        for change in inner.history.iter().rev().take_while(|c| c.rv > at).filter(|c| c.rid == rid) {
            let key = (object::namespace(&change.object), object::name(&change.object));
            match (&change.kind, &change.previous) {
                (ChangeType::Added, _) => then.insert(key, None),
                (_, Some(previous)) => then.insert(key, Some(previous)),
                (_, None) => None,
            };
        }
        let in_scope = |k: &(&str, &str)| ns.is_none_or(|ns| ns == k.0) && after.is_none_or(|after| *k > after);
        let start = ns.map(|ns| (ns, "")).max(after).unwrap_or(("", ""));
        let from = (rid, start.0.to_string(), start.1.to_string());
        let now = inner
            .objects
            .range(from..)
            .take_while(|((r, o_ns, _), _)| *r == rid && ns.is_none_or(|ns| ns == o_ns))
            .map(|((_, o_ns, o_name), o)| ((o_ns.as_str(), o_name.as_str()), o))
            .filter(|(k, _)| in_scope(k) && !then.contains_key(k));
        let changed = then.iter().filter(|(k, _)| in_scope(k)).filter_map(|(k, o)| o.map(|o| (*k, o)));
        let selected = keep.is_some();
        let mut matching = merge_sorted(now, changed).filter(|o| keep.as_ref().is_none_or(|keep| keep(o)));
        let items: Vec<Object> = matching.by_ref().take(limit).cloned().collect();
        // Evaluating selectors on every object after each page made paging quadratic again.
        let remaining = if selected { usize::from(matching.next().is_some()) } else { matching.count() };
        Ok(Page { rv: at, items, remaining })
    }

    /// POST. `ns` is the namespace from the URL (None: take it from the body, default "default").
    pub fn create(&self, rid: Rid, ns: Option<&str>, obj: Value, dry_run: bool) -> Result<Object, ApiError> {
        let rt = self.registry.get(rid);
        let mut inner = self.lock();
        let mut obj = object::prepare_create(rt, ns, obj)?;
        let generated = object::name(&obj).is_empty();
        for _ in 0..16 {
            if generated {
                object::generate_name(&mut obj);
            }
            object::validate_name(rt, object::name(&obj))?;
            let key = self.key(rid, object::namespace(&obj), object::name(&obj));
            if inner.objects.contains_key(&key) {
                if generated {
                    continue;
                }
                return Err(ApiError::already_exists(rt, object::name(&obj)));
            }
            if dry_run {
                return Ok(Arc::new(obj));
            }
            return Ok(self.commit(&mut inner, rid, ChangeType::Added, key, obj, None));
        }
        Err(ApiError::new(500, "InternalError", "could not generate a unique name"))
    }

    /// Read-modify-write of one object under the store lock: PUT, PATCH and apply. `f` gets the
    /// current object (None if missing) and returns the desired one; for a missing object, Ok
    /// means create it (server-side apply does that). Returns the result and whether it was created.
    pub fn write(
        &self,
        rid: Rid,
        ns: &str,
        name: &str,
        sub: Sub,
        dry_run: bool,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Object, bool), ApiError> {
        let rt = self.registry.get(rid);
        let key = self.key(rid, ns, name);
        let mut inner = self.lock();
        let current = inner.objects.get(&key).cloned();
        let desired = f(current.as_deref())?;
        let Some(current) = current else {
            if sub == Sub::Status {
                return Err(ApiError::not_found(rt, name));
            }
            let obj = object::prepare_create_named(rt, ns, name, desired)?;
            object::validate_name(rt, name)?;
            if dry_run {
                return Ok((Arc::new(obj), true));
            }
            return Ok((self.commit(&mut inner, rid, ChangeType::Added, key, obj, None), true));
        };
        let updated = object::prepare_update(rt, ns, name, &current, desired, sub)?;
        if updated == *current {
            // kube-apiserver skips no-op writes: same resourceVersion, no watch event.
            return Ok((current, false));
        }
        if dry_run {
            return Ok((Arc::new(updated), false));
        }
        let kind = if object::deletion_finished(&updated) { ChangeType::Deleted } else { ChangeType::Modified };
        Ok((self.commit(&mut inner, rid, kind, key, updated, Some(current)), false))
    }

    /// DELETE. Objects with finalizers only get a deletionTimestamp; they go away when an update
    /// removes the last finalizer.
    pub fn delete(
        &self,
        rid: Rid,
        ns: &str,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        let rt = self.registry.get(rid);
        let key = self.key(rid, ns, name);
        let mut inner = self.lock();
        let current = inner.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(rt, name))?;
        object::check_preconditions(rt, &current, pre)?;
        if object::has_finalizers(&current) {
            if object::is_terminating(&current) {
                return Ok(current);
            }
            let mut marked = (*current).clone();
            object::mark_terminating(&mut marked);
            if dry_run {
                return Ok(Arc::new(marked));
            }
            return Ok(self.commit(&mut inner, rid, ChangeType::Modified, key, marked, Some(current)));
        }
        if dry_run {
            return Ok(current);
        }
        Ok(self.commit(&mut inner, rid, ChangeType::Deleted, key, (*current).clone(), Some(current)))
    }

    fn commit(
        &self,
        inner: &mut Inner,
        rid: Rid,
        kind: ChangeType,
        key: Key,
        mut obj: Value,
        previous: Option<Object>,
    ) -> Object {
        inner.rv += 1;
        object::set_resource_version(&mut obj, inner.rv);
        let obj = Arc::new(obj);
        if kind == ChangeType::Deleted {
            inner.objects.remove(&key);
        } else {
            inner.objects.insert(key, obj.clone());
        }
        inner.history.push_back(Arc::new(Change { rv: inner.rv, rid, kind, object: obj.clone(), previous }));
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.dropped_through = old.rv;
                inner.oldest_valid = inner.oldest_valid.max(old.rv);
            }
        }
        self.bump(inner);
        obj
    }

    /// Start a watch: a snapshot to send as ADDED, or a resourceVersion to replay from (410 if it
    /// is older than the retained history). Also returns the drop epoch the watch belongs to.
    pub fn begin_watch(&self, rid: Rid, from: Option<u64>) -> Result<(WatchStart, u64, u64), ApiError> {
        let inner = self.lock();
        let start = match from {
            None => WatchStart::Snapshot {
                rv: inner.rv,
                objects: objects_of(&inner, rid).map(|(_, o)| o.clone()).collect(),
            },
            Some(rv) if rv < inner.oldest_valid => {
                return Err(ApiError::expired(format!("too old resource version: {rv} ({})", inner.oldest_valid)));
            }
            Some(rv) => WatchStart::After(rv),
        };
        Ok((start, inner.drop_epoch, inner.bookmark_epoch))
    }

    /// Changes to `rid` after `cursor`, unless the watch was dropped or fell out of the history.
    pub fn poll(&self, rid: Rid, cursor: u64, drop_epoch: u64) -> Poll {
        let inner = self.lock();
        if inner.drop_epoch != drop_epoch {
            return Poll::Dropped;
        }
        if cursor < inner.dropped_through {
            return Poll::Expired(ApiError::expired(format!(
                "too old resource version: {cursor} ({})",
                inner.oldest_valid
            )));
        }
        let start = inner.history.partition_point(|c| c.rv <= cursor);
        let changes = inner.history.range(start..).filter(|c| c.rid == rid).cloned().collect();
        Poll::Ready { changes, rv: inner.rv.max(cursor), bookmark_epoch: inner.bookmark_epoch }
    }

    pub fn drop_watches(&self) {
        let mut inner = self.lock();
        inner.drop_epoch += 1;
        self.bump(&inner);
    }

    pub fn request_bookmarks(&self) {
        let mut inner = self.lock();
        inner.bookmark_epoch += 1;
        self.bump(&inner);
    }

    /// Forget all history. The counter moves on by one (as if something unrelated was written) so
    /// every resourceVersion handed out so far is older than the compaction point and answers 410,
    /// while a fresh list gets a version that is valid to watch from. Open watches that are caught
    /// up keep running, as they do across an etcd compaction.
    pub fn compact(&self, drop_watches: bool) {
        let mut inner = self.lock();
        if let Some(last) = inner.history.back() {
            inner.dropped_through = inner.dropped_through.max(last.rv);
        }
        inner.history.clear();
        inner.rv += 1;
        inner.oldest_valid = inner.rv;
        if drop_watches {
            inner.drop_epoch += 1;
        }
        self.bump(&inner);
    }
}

/// Two iterators sorted by key, merged into one (keys never repeat between them).
fn merge_sorted<'a>(
    a: impl Iterator<Item = ((&'a str, &'a str), &'a Object)>,
    b: impl Iterator<Item = ((&'a str, &'a str), &'a Object)>,
) -> impl Iterator<Item = &'a Object> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some((ka, _)), Some((kb, _))) if kb < ka => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
    .map(|(_, o)| o)
}

fn objects_of(inner: &Inner, rid: Rid) -> impl Iterator<Item = (&Key, &Object)> {
    inner.objects.range((rid, String::new(), String::new())..).take_while(move |((r, _, _), _)| *r == rid)
}
