//! The local-mode loop: load the folder, publish, then apply file changes
//! as they happen. Runs on its own thread: file I/O and translation are
//! synchronous and must not stall the proxy's runtime.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::files::{FileIssue, Folder, is_manifest};
use super::free_memory::return_free_memory;
use crate::publish::Publisher;

/// A batch of changes is applied once the folder has been quiet this long
/// (editors write a file in several steps)...
const QUIET: Duration = Duration::from_millis(10);
/// ...or at the latest this long after its first event.
const MAX_BATCH: Duration = Duration::from_millis(100);

enum Msg {
    Fs(notify::Result<notify::Event>),
    Stop,
}

/// A running local source. Dropping it stops the watcher thread.
pub struct LocalSource {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot read manifests folder {dir}: {source}")]
    Folder { dir: PathBuf, source: std::io::Error },
    #[error("cannot watch manifests folder {dir}: {source}")]
    Watch { dir: PathBuf, source: notify::Error },
}

impl LocalSource {
    /// Loads `dir`, publishes the first snapshot, and keeps applying changes
    /// until dropped. Fails only if the folder cannot be read or watched.
    pub fn start(dir: &Path, mut publisher: Publisher) -> Result<Self, WatchError> {
        let dir = dir.to_path_buf();
        let (tx, rx) = mpsc::channel();
        let fs_tx = tx.clone();
        // Watch before the first read so no change falls between the two.
        let mut watcher = notify::recommended_watcher(move |ev| {
            let _ = fs_tx.send(Msg::Fs(ev));
        })
        .map_err(|source| WatchError::Watch { dir: dir.clone(), source })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch { dir: dir.clone(), source })?;

        let mut folder = Folder::new(&dir);
        let mut world = publisher.empty_world();
        tracing::debug!(dir = %dir.display(), "loading manifests folder");
        folder.rescan(&mut world).map_err(|source| WatchError::Folder { dir: dir.clone(), source })?;
        tracing::debug!(dir = %dir.display(), "manifests folder loaded");
        let shared = publisher.shared();
        let mut reported = report_issues(&folder, &BTreeSet::new());
        shared.metrics.manifest_issues.set(reported.len() as i64);
        publisher.publish(&mut world, None);
        return_free_memory();
        tracing::debug!("first snapshot published, free memory returned");

        let thread = std::thread::Builder::new()
            .name("local-source".into())
            .spawn(move || {
                let _watcher = watcher;
                while let Some(batch) = next_batch(&rx) {
                    let since = batch.since;
                    if batch.rescan {
                        if let Err(e) = folder.rescan(&mut world) {
                            tracing::warn!(dir = %folder.dir().display(), error = %e, "cannot list manifests folder; keeping current configuration");
                        }
                    } else {
                        folder.reload(batch.paths, &mut world);
                    }
                    reported = report_issues(&folder, &reported);
                    shared.metrics.manifest_issues.set(reported.len() as i64);
                    publisher.publish(&mut world, Some(since));
                    // Reading a big file frees as much as it keeps (the
                    // text, its documents, the objects before shrinking),
                    // and this thread then sleeps until the next change.
                    return_free_memory();
                }
            })
            .map_err(|source| WatchError::Folder { dir, source })?;
        Ok(Self { tx, thread: Some(thread) })
    }
}

impl Drop for LocalSource {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Batch {
    since: Instant,
    paths: BTreeSet<PathBuf>,
    rescan: bool,
}

/// Waits for the next change and gathers the events that follow it closely.
/// None when stopped.
fn next_batch(rx: &mpsc::Receiver<Msg>) -> Option<Batch> {
    let mut batch = Batch { since: Instant::now(), paths: BTreeSet::new(), rescan: false };
    let first = match rx.recv() {
        Ok(Msg::Fs(ev)) => ev,
        Ok(Msg::Stop) | Err(_) => return None,
    };
    batch.since = Instant::now();
    add_event(&mut batch, first);
    loop {
        let left = MAX_BATCH.saturating_sub(batch.since.elapsed());
        if left.is_zero() {
            return Some(batch);
        }
        match rx.recv_timeout(QUIET.min(left)) {
            Ok(Msg::Fs(ev)) => add_event(&mut batch, ev),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => return Some(batch),
        }
    }
}

fn add_event(batch: &mut Batch, ev: notify::Result<notify::Event>) {
    match ev {
        Ok(ev) if ev.need_rescan() => batch.rescan = true,
        Ok(ev) => {
            if ev.kind.is_access() {
                return;
            }
            for p in ev.paths {
                if is_manifest(&p) {
                    batch.paths.insert(p);
                } else if stands_for_many(&p) {
                    batch.rescan = true;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "file watch error; rescanning the folder");
            batch.rescan = true;
        }
    }
}

/// A path that is not a manifest but may stand for many: a ConfigMap
/// volume swaps its `..data` symlink; a folder appears or is renamed.
/// (Editor swap and temp files are neither, and are ignored.)
fn stands_for_many(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("..")) || p.is_dir()
}

/// Logs issues that are new since `before`; returns the current set.
fn report_issues(folder: &Folder, before: &BTreeSet<FileIssue>) -> BTreeSet<FileIssue> {
    let now: BTreeSet<FileIssue> = folder.issues().into_iter().collect();
    for issue in now.difference(before) {
        tracing::warn!(file = %issue.file.display(), position = issue.position.as_deref().unwrap_or(""), "{}", issue.message);
    }
    for issue in before.difference(&now) {
        tracing::info!(file = %issue.file.display(), "manifest issue resolved");
    }
    now
}
