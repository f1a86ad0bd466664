//! What an object's status says now, as last seen from the API: the status
//! reporter compares it with what it wants, so unchanged statuses are never
//! rewritten (not after a restart, not after a leader change).

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::{CONDITION_PROGRAMMED, CrdStatus};

/// The `Programmed` condition as written on a Kong object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionState {
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
    pub last_transition_time: Option<jiff::Timestamp>,
}

/// Observed status. Deliberately equal to any other `Observed`: status is
/// not an input to translation, so a status-only update must never look
/// like a change to the World.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub programmed: Option<ConditionState>,
    /// Ingress `status.loadBalancer.ingress` as `ip` or `hostname` strings.
    pub load_balancer: Option<Vec<String>>,
}

impl PartialEq for Observed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Observed {
    pub fn from_crd_status(status: Option<&CrdStatus>) -> Self {
        let programmed =
            status.and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_PROGRAMMED)).map(condition_state);
        Self { programmed, load_balancer: None }
    }

    pub fn from_ingress(ing: &Ingress) -> Self {
        let lb = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .map(|lb| lb.ingress.iter().flatten().filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone())).collect())
            .unwrap_or_default();
        Self { programmed: None, load_balancer: Some(lb) }
    }
}

fn condition_state(c: &Condition) -> ConditionState {
    ConditionState {
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation,
        last_transition_time: Some(c.last_transition_time.0),
    }
}
