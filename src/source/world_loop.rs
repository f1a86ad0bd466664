//! The cluster-mode world loop: one thread owns the World, applies what the
//! watchers send, coalesces bursts and publishes. Publishing waits until
//! every watch has finished its first list, so the first snapshot is
//! complete (and only then does `/readyz` turn 200).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::publish::{Outcome, Publisher};
use crate::translate::referenced_secrets;
use crate::translate::{Problem, Reason};
use crate::world::{Kind, ObjectRef, SecretSide, Shrunk, Unreadable, World};

/// Changes are applied together once the watches have been quiet this long...
const QUIET: Duration = Duration::from_millis(1);
/// ...or at the latest this long after the first one, so a steady stream of
/// changes cannot postpone enforcement.
const MAX_BATCH: Duration = Duration::from_millis(20);

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

fn run(
    rx: mpsc::Receiver<(Instant, Op)>,
    streams: usize,
    mut publisher: Publisher,
    references: References,
    mut on_publish: OnPublish,
) {
    let shared = publisher.shared();
    let mut st = State {
        world: World::new(),
        synced: vec![false; streams],
        invalid_changed: false,
        references_synced: BTreeSet::new(),
        references_stale: true,
        touched: Touched::default(),
    };
    loop {
        let Ok((mut since, first)) = rx.recv() else { return };
        let batch = Instant::now();
        let mut ops = 1;
        if !apply(&mut st, first, &shared) {
            return;
        }
        loop {
            let left = MAX_BATCH.saturating_sub(batch.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(QUIET.min(left)) {
                Ok((received, op)) => {
                    since = since.min(received);
                    ops += 1;
                    if !apply(&mut st, op, &shared) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
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
            queued_us = (batch - since).as_micros() as u64,
            batch_us = (publishing - batch).as_micros() as u64,
            publish_us = (published - publishing).as_micros() as u64,
            after_publish_us = published.elapsed().as_micros() as u64,
            "batch applied"
        );
    }
}

/// Whether objects of `kind` can name Secrets (see `referenced_secrets`).
fn references_secrets(kind: Kind) -> bool {
    matches!(kind, Kind::Ingress | Kind::KongPlugin | Kind::KongClusterPlugin)
}

/// Applies one op; false when the loop must stop.
fn apply(st: &mut State, op: Op, shared: &crate::publish::Shared) -> bool {
    match op {
        Op::Apply(obj) => {
            let r = st.world.apply_shrunk(*obj);
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
