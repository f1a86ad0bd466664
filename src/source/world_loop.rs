//! The cluster-mode world loop: one thread owns the World, applies what the
//! watchers send, coalesces bursts and publishes. Publishing waits until
//! every watch has finished its first list, so the first snapshot is
//! complete (and only then does `/readyz` turn 200).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::free_memory::{QuietCollector, return_free_memory};
use crate::publish::{Outcome, Publisher};
use crate::translate::referenced_secrets;
use crate::translate::{Problem, Reason};
use crate::world::{Kind, ObjectRef, SecretSide, Shrunk, Unreadable, World};

/// Changes are applied together once the watches have been quiet this long...
const QUIET: Duration = Duration::from_millis(1);
/// ...or at the latest this long after the first one, so a steady stream of
/// changes cannot postpone enforcement.
const MAX_BATCH: Duration = Duration::from_millis(20);
/// After this long without changes the world thread gives back what the
/// batches before freed: long enough that a burst (the status echoes of a
/// start at 100k consumers) is over, short enough to follow it closely.
const GIVE_BACK_AFTER: Duration = Duration::from_millis(200);

/// When a batch closes: once the watches have been quiet for `QUIET`, or
/// `MAX_BATCH` after it opened. Only changes keep a batch that holds one
/// open: a steady stream of status-only updates (the echoes of our own
/// status writes, ~100k of them after a start at 100k consumers) must not
/// hold a credential change back for `MAX_BATCH`.
struct Window {
    opened: Instant,
    /// When the last op, and the last op that changes the World, arrived.
    last_op: Instant,
    last_change: Option<Instant>,
    /// When the first change of the batch reached the process.
    first_change: Option<Instant>,
    first_op: Instant,
    ops: usize,
}

impl Window {
    /// A batch opened at `now` by an op that arrived at `received`.
    fn new(now: Instant, received: Instant, change: bool) -> Self {
        let mut w =
            Window { opened: now, last_op: now, last_change: None, first_change: None, first_op: received, ops: 0 };
        w.add(now, received, change);
        w
    }

    /// An op taken at `now` that arrived at `received`.
    fn add(&mut self, now: Instant, received: Instant, change: bool) {
        self.ops += 1;
        self.last_op = now;
        self.first_op = self.first_op.min(received);
        if change {
            self.last_change = Some(now);
            self.first_change = Some(self.first_change.map_or(received, |f| f.min(received)));
        }
    }

    /// When the batch closes unless more ops keep it open.
    fn closes_at(&self) -> Instant {
        let quiet_since = self.last_change.unwrap_or(self.last_op);
        (quiet_since + QUIET).min(self.opened + MAX_BATCH)
    }

    /// How long to wait for more ops; None when the batch is closed.
    fn left(&self) -> Option<Duration> {
        let left = self.closes_at().saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Where the propagation of this batch starts: its first change.
    fn since(&self) -> Instant {
        self.first_change.unwrap_or(self.first_op)
    }
}

/// Whether applying `op` changes what translation reads. False for an
/// object equal to the stored one, which is what a status-only update
/// (the echo of a status write) is: the World ignores status in equality.
fn changes_world(world: &World, op: &Op) -> bool {
    fn differs<T: crate::world::HasMeta + PartialEq>(
        store: &crate::world::Store<T>,
        key: &(String, String),
        obj: &T,
    ) -> bool {
        store.get(key).is_none_or(|old| **old != *obj)
    }
    let obj = match op {
        Op::Apply(obj) => obj,
        Op::WatchError { .. } => return false,
        _ => return true,
    };
    let r = obj.object_ref();
    if world.unreadable.contains_key(&r) {
        // Readable again: its problem goes away.
        return true;
    }
    let key = (r.namespace.unwrap_or_default(), r.name);
    match &**obj {
        Shrunk::Ingress(o) => differs(&world.ingresses, &key, o),
        Shrunk::IngressClass(o) => differs(&world.ingress_classes, &key, o),
        Shrunk::Service(o) => differs(&world.services, &key, o),
        Shrunk::EndpointSlice(o) => differs(&world.endpoint_slices, &key, o),
        Shrunk::Secret(o) => differs(&world.secrets, &key, o),
        Shrunk::KongConsumer(o) => differs(&world.consumers, &key, o),
        Shrunk::KongPlugin(o) => differs(&world.plugins, &key, o),
        Shrunk::KongClusterPlugin(o) => differs(&world.cluster_plugins, &key, o),
    }
}

/// What a watcher tells the world loop.
#[derive(Debug)]
pub enum Op {
    Apply(Box<Shrunk>),
    Delete(ObjectRef),
    /// From the watch of labelled credential Secrets.
    DeleteSecret(ObjectRef),
    /// From the watch of one referenced Secret: its current state (None =
    /// absent); `synced` once its first list is in.
    ReferencedSecret {
        secret: ObjectRef,
        state: Option<Box<Shrunk>>,
        synced: bool,
    },
    /// A watch (re)listed its scope: replace it.
    Reset {
        stream: usize,
        kind: Kind,
        namespace: Option<String>,
        objects: Vec<Shrunk>,
        invalid: Vec<(ObjectRef, Unreadable)>,
    },
    /// An object that cannot be read; its last good version (if any) stays.
    Invalid(ObjectRef, Unreadable),
    WatchError {
        stream: usize,
    },
    Stop,
}

/// Called after every publish with the World, what was published and what
/// the batch touched.
pub type OnPublish = Box<dyn FnMut(&World, &Publisher, &Outcome, &Touched) + Send>;

/// The objects a batch applied, deleted or found unreadable (changed or
/// not: a status-only update is one), so status reporting looks at those
/// again instead of at every object. A relist touches everything.
#[derive(Debug, Default)]
pub struct Touched {
    pub everything: bool,
    pub objects: BTreeSet<ObjectRef>,
}

impl Touched {
    fn note(&mut self, r: ObjectRef) {
        if !self.everything {
            self.objects.insert(r);
        }
    }

    fn note_everything(&mut self) {
        self.everything = true;
        self.objects.clear();
    }
}

/// Where the world loop announces which Secrets objects reference, so
/// they (and only they) are watched.
pub type References = tokio::sync::watch::Sender<BTreeSet<(String, String)>>;

/// Where watchers send ops, each with the time its watch event reached
/// this process: the propagation metric starts there, so an event waiting
/// for the world thread counts as propagation time.
#[derive(Clone, Debug)]
pub struct Ops(mpsc::Sender<(Instant, Op)>);

/// The world loop has stopped; watchers stop too.
#[derive(Debug)]
pub struct Stopped;

impl Ops {
    /// Sends `op` for an event that arrived at `received`.
    pub fn send(&self, received: Instant, op: Op) -> Result<(), Stopped> {
        self.0.send((received, op)).map_err(|_| Stopped)
    }
}

pub struct WorldLoop {
    tx: mpsc::Sender<(Instant, Op)>,
    thread: Option<JoinHandle<()>>,
}

impl WorldLoop {
    /// Starts the loop for `streams` watch streams; referenced Secrets are
    /// announced on `references`.
    pub fn start(
        streams: usize,
        publisher: Publisher,
        references: References,
        on_publish: OnPublish,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("world".into())
            .spawn(move || run(rx, streams, publisher, references, on_publish))?;
        Ok(Self { tx, thread: Some(thread) })
    }

    pub fn sender(&self) -> Ops {
        Ops(self.tx.clone())
    }
}

impl Drop for WorldLoop {
    fn drop(&mut self) {
        let _ = self.tx.send((Instant::now(), Op::Stop));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    world: World,
    synced: Vec<bool>,
    invalid_changed: bool,
    /// Referenced Secrets whose watch has listed.
    references_synced: BTreeSet<(String, String)>,
    /// Whether an object that can reference Secrets changed since they were
    /// last collected (collecting walks every plugin and Ingress).
    references_stale: bool,
    /// What the batches since the last publish touched.
    touched: Touched,
}

impl State {
    fn new(streams: usize, publisher: &Publisher) -> Self {
        State {
            world: publisher.empty_world(),
            synced: vec![false; streams],
            invalid_changed: false,
            references_synced: BTreeSet::new(),
            references_stale: true,
            touched: Touched::default(),
        }
    }
}

fn run(
    rx: mpsc::Receiver<(Instant, Op)>,
    streams: usize,
    mut publisher: Publisher,
    references: References,
    mut on_publish: OnPublish,
) {
    let shared = publisher.shared();
    let mut st = State::new(streams, &publisher);
    let mut collector = QuietCollector::new(GIVE_BACK_AFTER);
    loop {
        let Ok((received, first)) = collector.recv(&rx, give_back) else { return };
        collector.worked();
        let batch = Instant::now();
        let mut window = Window::new(batch, received, changes_world(&st.world, &first));
        if !apply(&mut st, first, &shared) {
            return;
        }
        while let Some(wait) = window.left() {
            match rx.recv_timeout(wait) {
                Ok((received, op)) => {
                    window.add(Instant::now(), received, changes_world(&st.world, &op));
                    if !apply(&mut st, op, &shared) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let (ops, since) = (window.ops, window.since());
        let synced = st.synced.iter().filter(|s| **s).count();
        shared.metrics.watches_synced.set(synced as i64);
        if synced < st.synced.len() {
            continue;
        }
        if std::mem::take(&mut st.references_stale) {
            let wanted = referenced_secrets(&st.world);
            references.send_if_modified(|current| {
                let changed = *current != wanted;
                if changed {
                    current.clone_from(&wanted);
                }
                changed
            });
        }
        // The first snapshot also waits for the Secrets objects reference
        // (plugin configFrom, TLS): otherwise it would fail closed at start.
        if !shared.is_ready() && !references.borrow().is_subset(&st.references_synced) {
            continue;
        }
        if std::mem::take(&mut st.invalid_changed) {
            publisher.set_source_problems(
                st.world
                    .unreadable
                    .iter()
                    .map(|(r, u)| {
                        Problem::new(
                            r.clone(),
                            "",
                            Reason::InvalidObject,
                            format!(
                                "cannot read this object, skipped (its last good version, if any, stays): {}",
                                u.reason
                            ),
                        )
                    })
                    .collect(),
            );
        }
        // Propagation is measured only once serving: the first snapshot's
        // time is the startup time, not a change's.
        let was_ready = shared.is_ready();
        let publishing = Instant::now();
        let outcome = publisher.publish(&mut st.world, was_ready.then_some(since));
        let published = Instant::now();
        let touched = std::mem::take(&mut st.touched);
        on_publish(&st.world, &publisher, &outcome, &touched);
        tracing::debug!(
            ops,
            touched = if touched.everything { usize::MAX } else { touched.objects.len() },
            published = outcome.published,
            queued_us = batch.saturating_duration_since(since).as_micros() as u64,
            batch_us = (publishing - batch).as_micros() as u64,
            publish_us = (published - publishing).as_micros() as u64,
            after_publish_us = published.elapsed().as_micros() as u64,
            "batch applied"
        );
    }
}

/// The world thread builds what outlives a batch (the World, the snapshot,
/// the status tracker's `Desired`) and the status writer and proxy drop
/// much of it on their own threads: without this, the pages they emptied
/// stayed resident (cluster mode at 100k consumers: 4 MB after the status
/// write-back, docs/benchmarks.md).
fn give_back() {
    let start = Instant::now();
    return_free_memory();
    tracing::debug!(took_us = start.elapsed().as_micros() as u64, "world thread gave freed memory back");
}

/// Whether objects of `kind` can name Secrets (see `referenced_secrets`).
fn references_secrets(kind: Kind) -> bool {
    matches!(kind, Kind::Ingress | Kind::KongPlugin | Kind::KongClusterPlugin)
}

/// Applies one op; false when the loop must stop.
fn apply(st: &mut State, op: Op, shared: &crate::publish::Shared) -> bool {
    match op {
        Op::Apply(obj) => {
            let r = obj.object_ref();
            st.world.apply_shrunk(*obj);
            st.invalid_changed |= st.world.unreadable.remove(&r).is_some();
            st.references_stale |= references_secrets(r.kind);
            st.touched.note(r);
        }
        Op::Delete(r) => {
            st.world.delete(&r);
            st.invalid_changed |= st.world.unreadable.remove(&r).is_some();
            st.references_stale |= references_secrets(r.kind);
            st.touched.note(r);
        }
        Op::DeleteSecret(r) => {
            st.world.delete_secret(&r, SecretSide::Credentials);
            st.touched.note(r);
        }
        Op::ReferencedSecret { secret, state, synced } => {
            match state {
                Some(obj) => {
                    st.world.apply_shrunk(*obj);
                }
                None => {
                    st.world.delete_secret(&secret, SecretSide::Referenced);
                }
            }
            if synced {
                st.references_synced.insert((secret.namespace.clone().unwrap_or_default(), secret.name.clone()));
            }
            st.touched.note(secret);
        }
        Op::Reset { stream, kind, namespace, objects, invalid } => {
            st.references_stale |= references_secrets(kind);
            st.touched.note_everything();
            let in_scope =
                |r: &ObjectRef| r.kind == kind && namespace.as_ref().is_none_or(|ns| r.namespace.as_ref() == Some(ns));
            let before = st.world.unreadable.len();
            st.world.unreadable.retain(|r, _| !in_scope(r));
            st.invalid_changed |= before != st.world.unreadable.len() || !invalid.is_empty();
            st.world.unreadable.extend(invalid);
            if kind == Kind::Secret {
                st.world.reset_secrets(namespace.as_deref(), SecretSide::Credentials, objects);
            } else {
                st.world.reset_scope(kind, namespace.as_deref(), objects);
            }
            if let Some(s) = st.synced.get_mut(stream) {
                *s = true;
            }
        }
        Op::Invalid(r, info) => {
            st.invalid_changed |= st.world.unreadable.get(&r) != Some(&info);
            st.world.unreadable.insert(r.clone(), info);
            st.touched.note(r);
        }
        Op::WatchError { .. } => {
            shared.metrics.watch_errors.inc();
        }
        Op::Stop => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::publish::Shared;
    use crate::world::Object;

    fn consumer(name: &str) -> Shrunk {
        let obj = Object::from_value(serde_json::json!({
            "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
            "metadata": {"name": name, "namespace": "default", "annotations": {"kubernetes.io/ingress.class": "kong"}},
            "username": name,
        }))
        .unwrap();
        Shrunk::from_object(&obj).unwrap()
    }

    fn propagation_sum(shared: &Shared) -> f64 {
        let text = shared.metrics.encode();
        let line = text.lines().find(|l| l.starts_with("portcullis_propagation_seconds_sum")).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Waits (bounded) until `done` holds.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn status_echoes_do_not_hold_a_change_back() {
        let t0 = Instant::now();
        let us = |n: u64| t0 + Duration::from_micros(n);
        // A change, then echoes of status writes every 0.2 ms: the batch
        // closes QUIET after the change, not QUIET after the last echo.
        let mut w = Window::new(t0, t0, true);
        for n in [200, 400, 600, 800] {
            w.add(us(n), us(n), false);
        }
        assert_eq!(w.closes_at(), t0 + QUIET);
        assert_eq!(w.since(), t0);
        // A second change keeps it open for QUIET after that one.
        w.add(us(900), us(900), true);
        assert_eq!(w.closes_at(), us(900) + QUIET);
        assert_eq!(w.ops, 6);

        // Echoes only: every op keeps the batch open, up to MAX_BATCH.
        let mut w = Window::new(t0, t0, false);
        w.add(us(800), us(800), false);
        assert_eq!(w.closes_at(), us(800) + QUIET);
        for n in (1600..=24_000).step_by(800) {
            w.add(us(n), us(n), false);
        }
        assert_eq!(w.closes_at(), t0 + MAX_BATCH);

        // A change after an echo: propagation starts at the change.
        let mut w = Window::new(t0, t0, false);
        w.add(us(500), us(300), true);
        assert_eq!(w.since(), us(300));
        assert_eq!(w.closes_at(), us(500) + QUIET);
    }

    #[test]
    fn an_unchanged_object_is_not_a_change_but_a_new_one_is() {
        let mut world = World::new();
        assert!(changes_world(&world, &Op::Apply(Box::new(consumer("a")))));
        world.apply_shrunk(consumer("a"));
        // The same object again (a status-only update, as the World sees it).
        assert!(!changes_world(&world, &Op::Apply(Box::new(consumer("a")))));
        assert!(changes_world(&world, &Op::Apply(Box::new(consumer("b")))));
        assert!(changes_world(&world, &Op::Delete(ObjectRef::namespaced(Kind::KongConsumer, "default", "a"))));
        assert!(!changes_world(&world, &Op::WatchError { stream: 0 }));
    }

    #[test]
    fn the_initial_lists_note_no_key_changes_for_the_first_full_translation() {
        let shared = Shared::new();
        let publisher = Publisher::new(Default::default(), shared.clone());
        let mut st = State::new(1, &publisher);
        let reset = Op::Reset {
            stream: 0,
            kind: Kind::KongConsumer,
            namespace: None,
            objects: vec![consumer("a"), consumer("b")],
            invalid: Vec::new(),
        };
        assert!(apply(&mut st, reset, &shared));
        assert!(st.world.take_key_changes().is_empty(), "the first publish reads none");
        // From the first publish (which takes them) on, changes are noted.
        assert!(apply(&mut st, Op::Apply(Box::new(consumer("c"))), &shared));
        assert_eq!(st.world.take_key_changes().consumers.len(), 1);
    }

    #[test]
    fn propagation_counts_from_the_event_arriving_and_status_sees_what_each_batch_touched() {
        let shared = Shared::new();
        let publisher = Publisher::new(Default::default(), shared.clone());
        // (everything, objects) per publish.
        type Seen = Vec<(bool, Vec<String>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let record = seen.clone();
        let on_publish: OnPublish = Box::new(move |_, _, _, touched| {
            let objects = touched.objects.iter().map(|r| r.to_string()).collect();
            record.lock().unwrap().push((touched.everything, objects));
        });
        let (references, _) = tokio::sync::watch::channel(BTreeSet::new());
        let world = WorldLoop::start(1, publisher, references, on_publish).unwrap();
        let ops = world.sender();

        // The watch lists: the first snapshot (startup, not a propagation).
        let reset = Op::Reset {
            stream: 0,
            kind: Kind::KongConsumer,
            namespace: None,
            objects: vec![consumer("a")],
            invalid: Vec::new(),
        };
        ops.send(Instant::now(), reset).unwrap();
        wait_for("first snapshot", || shared.is_ready());
        assert_eq!(propagation_sum(&shared), 0.0);

        // An event that reached the process 200 ms ago but waited (for the
        // world thread, say): the wait is part of its propagation.
        let received = Instant::now() - Duration::from_millis(200);
        ops.send(received, Op::Apply(Box::new(consumer("b")))).unwrap();
        wait_for("the change published", || propagation_sum(&shared) > 0.0);
        assert!(propagation_sum(&shared) >= 0.2, "{}", propagation_sum(&shared));

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, [(true, vec![]), (false, vec!["KongConsumer default/b".to_string()])]);
    }
}
