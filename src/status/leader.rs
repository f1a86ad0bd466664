//! Leader election on a `coordination.k8s.io/v1` Lease. Optimistic
//! concurrency (resourceVersion) makes the API server the referee: of two
//! replicas updating the same Lease, one gets 409 Conflict.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Error};
use tokio::sync::watch;

use crate::publish::Shared;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    /// Lease name (`--election-id`).
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews and others retry.
    pub retry_period: Duration,
}

impl LeaderConfig {
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Runs the election until `stop` fires; the receiver says whether this
/// replica leads. On stop a held Lease is released so another replica can
/// take over at once.
pub fn spawn_leader_election(
    client: Client,
    cfg: LeaderConfig,
    shared: std::sync::Arc<Shared>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let mut last_renewed: Option<tokio::time::Instant> = None;
        tokio::pin!(stop);
        loop {
            let leading = match try_acquire_or_renew(&api, &cfg).await {
                Ok(held) => {
                    if held {
                        last_renewed = Some(tokio::time::Instant::now());
                    }
                    held
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %cfg.name, "leader election: cannot reach the Lease");
                    // Keep leading only while our last renewal is surely valid.
                    last_renewed.is_some_and(|t| t.elapsed() + cfg.retry_period < cfg.lease_duration)
                }
            };
            if !leading {
                last_renewed = None;
            }
            let changed = tx.send_if_modified(|v| std::mem::replace(v, leading) != leading);
            if changed {
                shared.metrics.leader.set(i64::from(leading));
                tracing::info!(identity = %cfg.identity, lease = %cfg.name, leading, "leadership changed");
            }
            tokio::select! {
                _ = tokio::time::sleep(cfg.retry_period) => {}
                _ = &mut stop => break,
            }
        }
        if *tx.borrow() {
            let _ = tx.send(false);
            shared.metrics.leader.set(0);
            if let Err(e) = release(&api, &cfg).await {
                tracing::debug!(error = %e, "could not release the Lease; it expires by itself");
            }
        }
    });
    rx
}

/// One election round: true when this replica holds the Lease afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, cfg: &LeaderConfig) -> Result<bool, Error> {
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(cfg.name.clone()), ..Default::default() },
            spec: Some(held_spec(cfg, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    let transitions = spec.lease_transitions.unwrap_or(0);
    let new_spec = if holder == cfg.identity {
        held_spec(cfg, spec.acquire_time.map_or(now, |t| t.0), now, transitions)
    } else if holder.is_empty() || expired(&spec, now) {
        held_spec(cfg, now, now, transitions + 1)
    } else {
        return Ok(false);
    };
    lease.spec = Some(new_spec);
    // replace carries the resourceVersion we read: a concurrent writer wins
    // and we get 409.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn held_spec(cfg: &LeaderConfig, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else { return true };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renewed.checked_add(jiff::SignedDuration::from_secs(secs)).is_ok_and(|until| until < now)
}

async fn release(api: &Api<Lease>, cfg: &LeaderConfig) -> Result<(), Error> {
    let Some(mut lease) = api.get_opt(&cfg.name).await? else { return Ok(()) };
    let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    api.replace(&cfg.name, &PostParams::default(), &lease).await.map(|_| ())
}
