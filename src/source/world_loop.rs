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

/// Called after every publish with the World and what was published.
pub type OnPublish = Box<dyn FnMut(&World, &Publisher, &Outcome) + Send>;

/// Where the world loop announces which Secrets objects reference, so
/// they (and only they) are watched.
pub type References = tokio::sync::watch::Sender<BTreeSet<(String, String)>>;

pub struct WorldLoop {
    tx: mpsc::Sender<Op>,
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

    pub fn sender(&self) -> mpsc::Sender<Op> {
        self.tx.clone()
    }
}

impl Drop for WorldLoop {
    fn drop(&mut self) {
        let _ = self.tx.send(Op::Stop);
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
}

fn run(
    rx: mpsc::Receiver<Op>,
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
    };
    loop {
        let Ok(first) = rx.recv() else { return };
        let since = Instant::now();
        if !apply(&mut st, first, &shared) {
            return;
        }
        loop {
            let left = MAX_BATCH.saturating_sub(since.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(QUIET.min(left)) {
                Ok(op) => {
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
        let wanted = referenced_secrets(&st.world);
        references.send_if_modified(|current| {
            let changed = *current != wanted;
            if changed {
                current.clone_from(&wanted);
            }
            changed
        });
        // The first snapshot also waits for the Secrets objects reference
        // (plugin configFrom, TLS): otherwise it would fail closed at start.
        if !shared.is_ready() && !wanted.is_subset(&st.references_synced) {
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
        let outcome = publisher.publish(&mut st.world, was_ready.then_some(since));
        on_publish(&st.world, &publisher, &outcome);
    }
}

/// Applies one op; false when the loop must stop.
fn apply(st: &mut State, op: Op, shared: &crate::publish::Shared) -> bool {
    match op {
        Op::Apply(obj) => {
            let r = st.world.apply_shrunk(*obj);
            st.invalid_changed |= st.world.unreadable.remove(&r).is_some();
        }
        Op::Delete(r) => {
            st.world.delete(&r);
            st.invalid_changed |= st.world.unreadable.remove(&r).is_some();
        }
        Op::DeleteSecret(r) => {
            st.world.delete_secret(&r, SecretSide::Credentials);
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
                st.references_synced.insert((secret.namespace.unwrap_or_default(), secret.name));
            }
        }
        Op::Reset { stream, kind, namespace, objects, invalid } => {
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
            st.world.unreadable.insert(r, info);
        }
        Op::WatchError { .. } => {
            shared.metrics.watch_errors.inc();
        }
        Op::Stop => return false,
    }
    true
}
