//! The status writer: while this replica leads, makes the API show what
//! `Desired` says — only where it does not already — and emits one Warning
//! Event per distinct problem.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Error};
use serde_json::json;
use tokio::sync::watch;

use super::desired::ByObject;
use super::{Desired, EVENT_REASON, StatusTracker, WantedCondition};
use crate::api::CONDITION_PROGRAMMED;
use crate::publish::Shared;
use crate::translate::Problem;
use crate::world::ObjectRef;

/// How often the publish Service is re-read and failed writes are retried
/// when nothing else happens.
const RESYNC: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default)]
pub struct StatusConfig {
    /// `--publish-service` as (namespace, name).
    pub publish_service: Option<(String, String)>,
    /// `--publish-status-address`: wins over the publish Service.
    pub publish_addresses: Vec<String>,
    /// Reporting instance in Events (pod name).
    pub instance: String,
}

/// Runs until `changed` closes. `changed` says when `tracker` has
/// something new.
pub fn spawn_status_writer(
    client: Client,
    cfg: StatusConfig,
    tracker: Arc<Mutex<StatusTracker>>,
    mut changed: watch::Receiver<()>,
    mut leader: watch::Receiver<bool>,
    shared: Arc<Shared>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let recorder = Recorder::new(
            client.clone(),
            Reporter { controller: "portcullis".into(), instance: Some(cfg.instance.clone()) },
        );
        let mut w = Writer { client, cfg, recorder, shared, emitted: HashSet::new(), written: HashSet::new() };
        loop {
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                r = leader.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RESYNC) => {}
            }
            if !*leader.borrow_and_update() {
                // A new term starts from what the API shows.
                w.emitted.clear();
                w.written.clear();
                continue;
            }
            changed.borrow_and_update();
            let d = tracker.lock().unwrap_or_else(PoisonError::into_inner).desired();
            w.sync(&d).await;
        }
    })
}

struct Writer {
    client: Client,
    cfg: StatusConfig,
    recorder: Recorder,
    shared: Arc<Shared>,
    /// Problems an Event was emitted for in this leadership term.
    emitted: HashSet<Problem>,
    /// Conditions written but not yet seen back through the watch, so a
    /// second `Desired` in between does not write them again.
    written: HashSet<ByObject>,
}

impl Writer {
    async fn sync(&mut self, d: &Desired) {
        // `Desired` lists only conditions the API does not show yet: one
        // missing from it was seen back (or its object is gone).
        let pending: HashSet<&ObjectRef> = d.conditions.iter().map(|c| &c.object).collect();
        self.written.retain(|w| pending.contains(&w.0.object));
        // The first write-back fills this with every consumer; once it is
        // seen back, the table's room for them would stay (~2 MB at 100k)
        // unless given back.
        if self.written.capacity() > 4 * self.written.len().max(256) {
            self.written.shrink_to_fit();
        }
        for c in d.conditions.iter() {
            if c.want.is_satisfied_by(c.observed.as_ref(), c.generation) {
                self.written.remove(&c.object);
                continue;
            }
            let already = |w: &ByObject| w.0.want == c.want && w.0.generation == c.generation;
            if self.written.get(&c.object).is_some_and(already) {
                continue;
            }
            match self.write_condition(c).await {
                Ok(()) => {
                    self.written.replace(ByObject(c.clone()));
                }
                Err(e) => self.failed("condition", &c.object, &e),
            }
        }

        let addresses = self.publish_addresses().await;
        if let Some(addresses) = addresses {
            for ing in d.ingresses.iter() {
                if ing.observed == addresses {
                    continue;
                }
                if let Err(e) = self.write_ingress(&ing.regarding.object, &addresses).await {
                    self.failed("ingress status", &ing.regarding.object, &e);
                }
            }
        }

        let current: HashSet<&Problem> = d.problems.iter().map(|(p, _)| p).collect();
        self.emitted.retain(|p| current.contains(p));
        for (problem, regarding) in d.problems.iter() {
            if self.emitted.contains(problem) {
                continue;
            }
            let Some(regarding) = regarding else {
                // The object is gone; nothing to attach an Event to.
                self.emitted.insert(problem.clone());
                continue;
            };
            let event = Event {
                type_: EventType::Warning,
                reason: EVENT_REASON.into(),
                note: Some(note(problem)),
                action: "Translate".into(),
                secondary: None,
            };
            match self.recorder.publish(&event, &regarding.reference()).await {
                Ok(()) => {
                    self.emitted.insert(problem.clone());
                }
                Err(e) => self.failed("event", &problem.object, &e),
            }
        }
    }

    async fn write_condition(&self, c: &WantedCondition) -> Result<(), Error> {
        // The transition time moves only when the status itself changes.
        let transition = match &c.observed {
            Some(o) if o.has_status(c.want.status) => o.last_transition_time().unwrap_or_else(Timestamp::now),
            _ => Timestamp::now(),
        };
        let mut condition = json!({
            "type": CONDITION_PROGRAMMED,
            "status": c.want.status,
            "reason": c.want.reason,
            "message": c.want.message,
            "lastTransitionTime": transition.to_string(),
        });
        if let Some(g) = c.generation {
            condition["observedGeneration"] = json!(g);
        }
        let patch = json!({"status": {"conditions": [condition]}});
        let r = &c.object;
        let ar = crate::source::cluster::kong_api_resource(r.kind);
        let api: Api<DynamicObject> = match &r.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        api.patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    async fn write_ingress(&self, r: &ObjectRef, addresses: &[String]) -> Result<(), Error> {
        let ingress: Vec<_> = addresses
            .iter()
            .map(|a| if a.parse::<std::net::IpAddr>().is_ok() { json!({"ip": a}) } else { json!({"hostname": a}) })
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), r.namespace.as_deref().unwrap_or("default"));
        api.patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    /// `--publish-status-address`, else the publish Service's load balancer
    /// addresses, else its ClusterIP. None when there is nothing to publish.
    async fn publish_addresses(&self) -> Option<Vec<String>> {
        if !self.cfg.publish_addresses.is_empty() {
            return Some(self.cfg.publish_addresses.clone());
        }
        let (ns, name) = self.cfg.publish_service.as_ref()?;
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let svc = match api.get_opt(name).await {
            Ok(Some(svc)) => svc,
            Ok(None) => {
                tracing::warn!(service = %format!("{ns}/{name}"), "publish service not found; Ingress status not updated");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the publish service; Ingress status not updated");
                self.shared.metrics.status_errors.inc();
                return None;
            }
        };
        let lb: Vec<String> = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.ip.or(i.hostname))
            .collect();
        if !lb.is_empty() {
            return Some(lb);
        }
        svc.spec.and_then(|s| s.cluster_ip).filter(|ip| !ip.is_empty() && ip != "None").map(|ip| vec![ip])
    }

    fn failed(&self, what: &str, object: &ObjectRef, e: &Error) {
        self.shared.metrics.status_errors.inc();
        tracing::warn!(object = %object, error = %e, "cannot write {what}; will retry");
    }
}

/// The Event note: the field and the problem (never Secret data: problems
/// carry none).
fn note(p: &Problem) -> String {
    let note = if p.field.is_empty() { p.message.clone() } else { format!("{}: {}", p.field, p.message) };
    super::desired::truncate(note)
}
