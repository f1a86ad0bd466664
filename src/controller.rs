//! Cluster mode wiring: watchers -> world loop -> publisher (every replica),
//! plus leader election and the status writer (leader only).

use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use tokio::sync::watch;

use crate::publish::{Publisher, Shared};
use crate::source::cluster::{self, Scope};
use crate::source::world_loop::WorldLoop;
use crate::status::{self, LeaderConfig, StatusConfig, StatusTracker};
use crate::translate;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub translate: translate::Config,
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
    /// Status reporting; None = `--update-status=false`.
    pub status: Option<StatusSettings>,
}

#[derive(Clone, Debug)]
pub struct StatusSettings {
    pub election: LeaderConfig,
    pub writer: StatusConfig,
}

/// A running controller; dropping it stops the world loop.
pub struct Controller {
    _world: WorldLoop,
    /// Whether this replica leads (always false without status reporting).
    pub leader: watch::Receiver<bool>,
}

impl Controller {
    /// Starts watching. The first snapshot is published (and `/readyz`
    /// turns 200) once every watch has listed.
    pub fn start(
        client: Client,
        cfg: ControllerConfig,
        shared: Arc<Shared>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let streams = cluster::streams(&Scope { namespaces: cfg.namespaces.clone() });
        // A replica that reports status (leading or not, so a new leader
        // starts from a current view) keeps its tracker up to date after
        // every publish and wakes the writer when something changed; the
        // writer takes a `Desired` from it when ready for one.
        let tracker = Arc::new(Mutex::new(StatusTracker::new(cfg.translate.clone())));
        let (changed_tx, changed_rx) = watch::channel(());
        let reporting = cfg.status.is_some().then(|| tracker.clone());
        let on_publish: crate::source::world_loop::OnPublish = Box::new(move |world, publisher, outcome, touched| {
            if let Some(tracker) = &reporting {
                let mut t = tracker.lock().unwrap_or_else(PoisonError::into_inner);
                if t.update(world, publisher.current_problems(), outcome, touched) {
                    changed_tx.send_replace(());
                }
            }
        });
        let (references_tx, references_rx) = watch::channel(Default::default());
        let publisher = Publisher::new(cfg.translate.clone(), shared.clone());
        let world = WorldLoop::start(streams.len(), publisher, references_tx, on_publish)?;
        cluster::spawn_watchers(&client, &streams, &world.sender());
        let scope = Scope { namespaces: cfg.namespaces.clone() };
        cluster::spawn_referenced_secrets(client.clone(), scope, references_rx, world.sender());

        let leader = match cfg.status {
            Some(settings) => {
                let leader = status::spawn_leader_election(client.clone(), settings.election, shared.clone(), stop);
                status::spawn_status_writer(client, settings.writer, tracker, changed_rx, leader.clone(), shared);
                leader
            }
            None => watch::channel(false).1,
        };
        Ok(Self { _world: world, leader })
    }
}
