//! Publishing: translate the parts of the World that changed, swap the new
//! Snapshot in (one ArcSwap store), and report Problems as they appear and
//! go away — once each, not on every rebuild.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::at_once::at_once;
use crate::metrics::{Metrics, PartLabel, ReasonLabel};
use crate::snapshot::{ConsumerIndex, RouteTable, Snapshot, TlsCertificates};
use crate::translate::{self, CertCache, ConsumerTranslation, Problem};
use crate::world::{Kind, World};

/// What the proxy and the admin endpoints read.
pub struct Shared {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// True once the first snapshot is live (and, in cluster mode, every
    /// watch has listed once). A channel, so the process can act on it
    /// (`ready()`) without polling.
    ready: tokio::sync::watch::Sender<bool>,
    pub metrics: Metrics,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            ready: tokio::sync::watch::Sender::new(false),
            metrics: Metrics::new(),
        })
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once the first snapshot is live.
    pub fn ready(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ready = self.ready.subscribe();
        async move {
            // The sender lives as long as `Shared`; if that is dropped
            // first, the process is not going to be ready.
            if ready.wait_for(|r| *r).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Kinds each snapshot part reads. Routes and TLS also read non-credential
/// Secrets (plugin `configFrom`, certificates): World tracks those apart, so
/// a credential change touches the consumer index only. Consumers read
/// KongConsumers and Secrets (updated object by object), IngressClasses
/// (a class change re-translates them all) and plugins (consumers naming
/// plugins are re-read).
const ROUTE_KINDS: [Kind; 6] =
    [Kind::Ingress, Kind::IngressClass, Kind::Service, Kind::EndpointSlice, Kind::KongPlugin, Kind::KongClusterPlugin];
const TLS_KINDS: [Kind; 2] = [Kind::Ingress, Kind::IngressClass];

pub struct Publisher {
    cfg: translate::Config,
    shared: Arc<Shared>,
    routes: Option<(Arc<RouteTable>, Vec<Problem>)>,
    /// Kept between publishes: consumers are updated in place.
    consumer_translation: Option<ConsumerTranslation>,
    consumers: Option<(Arc<ConsumerIndex>, Vec<Problem>)>,
    tls: Option<(Arc<TlsCertificates>, Vec<Problem>)>,
    /// Parsed TLS Secrets, so a Secret change re-parses only what changed.
    certs: CertCache,
    reported: BTreeSet<Problem>,
    /// Problems found by the source (objects it could not read), reported
    /// with translation's.
    source_problems: Vec<Problem>,
    reported_source: Vec<Problem>,
}

/// Result of one publish.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether a new snapshot was stored.
    pub published: bool,
    /// Problems that appeared with this publish.
    pub new_problems: Vec<Problem>,
    /// Problems that went away with this publish.
    pub resolved_problems: Vec<Problem>,
}

impl Publisher {
    pub fn new(cfg: translate::Config, shared: Arc<Shared>) -> Self {
        Self {
            cfg,
            shared,
            routes: None,
            consumer_translation: None,
            consumers: None,
            tls: None,
            certs: CertCache::new(),
            reported: BTreeSet::new(),
            source_problems: Vec::new(),
            reported_source: Vec::new(),
        }
    }

    /// Replaces the source's own problems; they are reported with the next
    /// publish.
    pub fn set_source_problems(&mut self, problems: Vec<Problem>) {
        self.source_problems = problems;
    }

    /// Rebuilds what changed in `world` since the last call and makes it
    /// live. `since` is when the first change of this batch was observed
    /// (for the propagation metric).
    pub fn publish(&mut self, world: &mut World, since: Option<Instant>) -> Outcome {
        let changed = world.take_changes();
        let config_secrets = world.take_config_secret_change();
        let key_changes = world.take_key_changes();
        let world: &World = world;
        let first = self.routes.is_none();
        let mut rebuilt = false;
        let routes_needed = first || config_secrets || ROUTE_KINDS.iter().any(|k| changed.contains(k));
        let full_consumers = self.consumer_translation.is_none() || changed.contains(&Kind::IngressClass);
        let cfg = &self.cfg;
        let routes = || timed(|| translate::routes(world, cfg));
        let full = || timed(|| ConsumerTranslation::full(world, cfg));
        // At startup and on an IngressClass change both are rebuilt from
        // scratch: on two cores at once.
        let (routes, full) = match (routes_needed, full_consumers) {
            (true, true) => {
                let (r, f) = at_once(routes, full);
                (Some(r), Some(f))
            }
            (r, f) => (r.then(routes), f.then(full)),
        };
        if let Some(((table, problems), took)) = routes {
            self.observe("routes", took);
            self.routes = Some((Arc::new(table), problems));
            rebuilt = true;
        }
        let plugins_changed = changed.contains(&Kind::KongPlugin) || changed.contains(&Kind::KongClusterPlugin);
        let full_done = full.is_some();
        let mut consumers_changed = match (full, &mut self.consumer_translation) {
            (Some((t, took)), _) => {
                self.observe("consumers", took);
                self.consumer_translation = Some(t);
                true
            }
            (None, Some(t)) if !key_changes.is_empty() || plugins_changed => {
                let (_, took) = timed(|| t.update(world, &key_changes, plugins_changed));
                self.observe("consumers", took);
                true
            }
            (None, _) => false,
        };
        // The consumers the routes' `anonymous` settings name: resolved
        // by the consumer translation, for these routes.
        if (rebuilt || full_done)
            && let (Some((table, _)), Some(t)) = (&self.routes, &mut self.consumer_translation)
        {
            consumers_changed |= t.want_anonymous(table.anonymous_names());
        }
        if consumers_changed && let Some(t) = &self.consumer_translation {
            self.consumers = Some((Arc::new(t.index().clone()), t.problems()));
            rebuilt = true;
        }
        if first || config_secrets || TLS_KINDS.iter().any(|k| changed.contains(k)) {
            let ((certs, problems), took) = timed(|| translate::tls(world, &self.cfg, &mut self.certs));
            self.observe("tls", took);
            self.tls = Some((Arc::new(certs), problems));
            rebuilt = true;
        }
        let (Some((routes, route_problems)), Some((consumers, consumer_problems)), Some((tls, tls_problems))) =
            (&self.routes, &self.consumers, &self.tls)
        else {
            return Outcome::default();
        };
        let source_changed = self.reported_source != self.source_problems;
        if !rebuilt && !source_changed {
            return Outcome::default();
        }
        self.reported_source = self.source_problems.clone();
        let snapshot = Snapshot::new(routes.clone(), consumers.clone()).with_tls(tls.clone());
        let m = &self.shared.metrics;
        m.routes.set(routes.routes().len() as i64);
        m.consumers.set(consumers.consumer_count() as i64);
        m.credentials.set(consumers.credential_count() as i64);
        self.shared.snapshot.store(Arc::new(snapshot));
        m.snapshots_published.inc();
        if let Some(since) = since {
            m.propagation_seconds.observe(since.elapsed().as_secs_f64());
        }
        if !self.shared.ready.send_replace(true) {
            m.ready.set(1);
            tracing::info!(
                routes = routes.routes().len(),
                consumers = consumers.consumer_count(),
                tls_hosts = tls.len(),
                "first snapshot live"
            );
        }

        let current: BTreeSet<Problem> = route_problems
            .iter()
            .chain(consumer_problems)
            .chain(tls_problems)
            .chain(&self.source_problems)
            .cloned()
            .collect();
        let new_problems: Vec<Problem> = current.difference(&self.reported).cloned().collect();
        for p in &new_problems {
            tracing::warn!(object = %p.object, field = %p.field, reason = p.reason.as_str(), "{}", p.message);
        }
        let resolved_problems: Vec<Problem> = self.reported.difference(&current).cloned().collect();
        for p in &resolved_problems {
            tracing::info!(object = %p.object, field = %p.field, reason = p.reason.as_str(), "problem resolved");
        }
        m.problems.clear();
        for p in &current {
            m.problems.get_or_create(&ReasonLabel { reason: p.reason.as_str() }).inc();
        }
        self.reported = current;
        Outcome { published: true, new_problems, resolved_problems }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// An empty World for a source to fill and publish from. While the
    /// next publish translates consumers from scratch (nothing published
    /// yet), it never reads which ones changed, so the World does not note
    /// them until that publish: at 100k consumers and Secrets the notes
    /// were a set of 200,000 names, ~18 MB at the startup peak
    /// (docs/benchmarks.md, "Where the startup peak sits").
    pub fn empty_world(&self) -> World {
        let mut world = World::new();
        if self.consumer_translation.is_none() {
            world.skip_key_changes_until_taken();
        }
        world
    }

    /// Every current problem, sorted.
    pub fn problems(&self) -> Vec<Problem> {
        self.reported.iter().cloned().collect()
    }

    /// Every current problem, without copying them.
    pub fn current_problems(&self) -> &BTreeSet<Problem> {
        &self.reported
    }

    fn observe(&self, part: &'static str, took: Duration) {
        self.shared.metrics.translate_seconds.get_or_create(&PartLabel { part }).observe(took.as_secs_f64());
    }
}

/// `op`'s result and how long it took.
fn timed<T>(op: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let result = op();
    (result, started.elapsed())
}
