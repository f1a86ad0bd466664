//! Prometheus metrics. Labels are bounded sets (problem reasons, snapshot
//! parts) — never object names, keys or paths.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabel {
    /// `routes` or `consumers`.
    pub part: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Every metric Portcullis exports, registered once.
pub struct Metrics {
    pub registry: Registry,
    /// Snapshots stored (one per effective change).
    pub snapshots_published: Counter,
    /// Time to translate one part of the snapshot.
    pub translate_seconds: Family<PartLabel, Histogram, fn() -> Histogram>,
    /// From the first change of a batch reaching the process (cluster: the
    /// watch event decoded; local: the file event) to the new snapshot being
    /// live in the proxy: the part of change propagation Portcullis owns,
    /// including any wait for the world thread.
    pub propagation_seconds: Histogram,
    /// Current problems by reason.
    pub problems: Family<ReasonLabel, Gauge>,
    pub routes: Gauge,
    pub consumers: Gauge,
    pub credentials: Gauge,
    /// 1 once the first snapshot is live.
    pub ready: Gauge,
    /// Local mode: manifest files or documents that could not be read.
    pub manifest_issues: Gauge,
    /// Cluster mode: watch failures (each is retried with backoff).
    pub watch_errors: Counter,
    /// Cluster mode: watches that have finished their first list.
    pub watches_synced: Gauge,
    /// Cluster mode: 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// Cluster mode: status writes and Events that failed (retried).
    pub status_errors: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let m = Metrics {
            snapshots_published: Counter::default(),
            translate_seconds: Family::new_with_constructor(latency_histogram),
            propagation_seconds: latency_histogram(),
            problems: Family::default(),
            routes: Gauge::default(),
            consumers: Gauge::default(),
            credentials: Gauge::default(),
            ready: Gauge::default(),
            manifest_issues: Gauge::default(),
            watch_errors: Counter::default(),
            watches_synced: Gauge::default(),
            leader: Gauge::default(),
            status_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("snapshots_published", "Snapshots made live", m.snapshots_published.clone());
        registry.register("translate_seconds", "Time to translate one snapshot part", m.translate_seconds.clone());
        registry.register(
            "propagation_seconds",
            "Time from a configuration change reaching Portcullis (watch event or file event) to the snapshot that reflects it being live",
            m.propagation_seconds.clone(),
        );
        registry.register("problems", "Current configuration problems by reason", m.problems.clone());
        registry.register("routes", "Routes in the live snapshot", m.routes.clone());
        registry.register("consumers", "Consumers in the live snapshot", m.consumers.clone());
        registry.register("credentials", "Key-auth credentials in the live snapshot", m.credentials.clone());
        registry.register("ready", "1 once the first snapshot is live", m.ready.clone());
        registry.register(
            "manifest_issues",
            "Manifest files or documents that could not be read (local mode)",
            m.manifest_issues.clone(),
        );
        registry.register("watch_errors", "Kubernetes watch failures (retried with backoff)", m.watch_errors.clone());
        registry.register(
            "watches_synced",
            "Kubernetes watches that finished their first list",
            m.watches_synced.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader Lease", m.leader.clone());
        registry.register("status_errors", "Failed status writes and Events (retried)", m.status_errors.clone());
        Metrics { registry, ..m }
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// 50 µs .. ~13 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
