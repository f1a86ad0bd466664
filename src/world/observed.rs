//! What an object's status says now, as last seen from the API: the status
//! reporter compares it with what it wants, so unchanged statuses are never
//! rewritten (not after a restart, not after a leader change).

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU64;
use std::sync::OnceLock;

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::{CONDITION_PROGRAMMED, CrdStatus};

/// The `Programmed` condition as written on a Kong object, kept as what
/// the status reporter asks of it: does it say this status, reason and
/// message; for which generation; since when. Every KongConsumer carries
/// one once its status is written, so the text is kept as digests, not
/// strings: 32 bytes and no allocation, instead of ~200 bytes in four
/// blocks (26 MB at 100k consumers). The digests are keyed per process
/// (64 bits: a collision, which would leave one condition unwritten, is
/// not a practical concern). The two numbers use `ABSENT` for none, and
/// the status digest is never zero, so an `Option<ConditionState>` is 32
/// bytes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConditionState {
    status: NonZeroU64,
    said: u64,
    observed_generation: i64,
    /// `lastTransitionTime` in whole seconds, as the API writes it.
    transition: i64,
}

/// No generation or time: neither is ever this far below zero.
const ABSENT: i64 = i64::MIN;

impl ConditionState {
    pub fn new(
        status: &str,
        reason: &str,
        message: &str,
        observed_generation: Option<i64>,
        last_transition_time: Option<jiff::Timestamp>,
    ) -> Self {
        ConditionState {
            status: NonZeroU64::new(digest(&status)).unwrap_or(NonZeroU64::MIN),
            said: digest(&(status, reason, message)),
            observed_generation: observed_generation.filter(|g| *g != ABSENT).unwrap_or(ABSENT),
            transition: last_transition_time.map_or(ABSENT, |t| t.as_second()),
        }
    }

    /// Whether the condition says exactly this.
    pub fn says(&self, status: &str, reason: &str, message: &str) -> bool {
        self.said == digest(&(status, reason, message))
    }

    pub fn has_status(&self, status: &str) -> bool {
        self.status == NonZeroU64::new(digest(&status)).unwrap_or(NonZeroU64::MIN)
    }

    pub fn observed_generation(&self) -> Option<i64> {
        (self.observed_generation != ABSENT).then_some(self.observed_generation)
    }

    pub fn last_transition_time(&self) -> Option<jiff::Timestamp> {
        (self.transition != ABSENT).then(|| jiff::Timestamp::from_second(self.transition).ok()).flatten()
    }
}

/// A keyed digest (a `str` hashes with a terminator, so a tuple of them
/// cannot be confused with another split of the same text).
fn digest(value: &impl Hash) -> u64 {
    static KEY: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default).hash_one(value)
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
    ConditionState::new(&c.status, &c.reason, &c.message, c.observed_generation, Some(c.last_transition_time.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_says_exactly_its_text() {
        let at = "2026-12-05T10:11:12Z".parse().ok();
        let c = ConditionState::new("True", "Programmed", "ok", Some(2), at);
        assert!(c.says("True", "Programmed", "ok"));
        assert!(!c.says("True", "Programmed", "ok."));
        assert!(!c.says("False", "Programmed", "ok"));
        // The parts are kept apart: moving text between them is a change.
        assert!(!c.says("True", "Programmedok", ""));
        assert!(c.has_status("True") && !c.has_status("False"));
        assert_eq!((c.observed_generation(), c.last_transition_time()), (Some(2), at));
        let bare = ConditionState::new("False", "", "", None, None);
        assert_eq!((bare.observed_generation(), bare.last_transition_time()), (None, None));
        assert_eq!(std::mem::size_of::<Option<ConditionState>>(), 32);
    }
}
