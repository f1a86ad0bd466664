//! What status Portcullis wants written: the types the status writer reads
//! and the rules for one object. Pure: no I/O. `StatusTracker` (tracker.rs)
//! applies these rules to the objects each batch touched.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;

use crate::api::ANN_INGRESS_CLASS;
use crate::translate::{Config, Problem, Reason};
use crate::world::{ConditionState, Kind, Meta, ObjectRef, Unreadable, World};

/// Longest condition message / Event note we write (the API caps notes at 1 kB).
const MAX_MESSAGE: usize = 1000;

/// An object status is written to or an Event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regarding {
    pub object: ObjectRef,
    pub uid: String,
    pub generation: Option<i64>,
}

impl Regarding {
    pub fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.object.kind.api_version().into()),
            kind: Some(self.object.kind.as_str().into()),
            name: Some(self.object.name.clone()),
            namespace: self.object.namespace.clone(),
            uid: Some(self.uid.clone()),
            ..Default::default()
        }
    }
}

/// The `Programmed` condition wanted on one Kong object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Want {
    /// Whether `observed` already says this (for the object's generation).
    pub fn is_satisfied_by(&self, observed: Option<&ConditionState>, generation: Option<i64>) -> bool {
        observed
            .is_some_and(|o| o.says(self.status, self.reason, &self.message) && o.observed_generation() == generation)
    }
}

/// Written by object name, so it carries no uid (Events need one; a
/// condition does not): at start the tracker holds 100k of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedCondition {
    pub object: ObjectRef,
    /// `metadata.generation` the condition is written for.
    pub generation: Option<i64>,
    pub want: Want,
    pub observed: Option<ConditionState>,
}

/// A wanted condition compared, ordered and found by its object alone, so
/// a set of them needs no copy of the objects' names: the tracker's and
/// the writer's tables hold every consumer's condition at start (100k),
/// and their copies of names and messages were ~30 MB of the write-back's
/// peak.
#[derive(Clone, Debug)]
pub struct ByObject(pub Arc<WantedCondition>);

impl Borrow<ObjectRef> for ByObject {
    fn borrow(&self) -> &ObjectRef {
        &self.0.object
    }
}

impl PartialEq for ByObject {
    fn eq(&self, other: &Self) -> bool {
        self.0.object == other.0.object
    }
}

impl Eq for ByObject {}

impl PartialOrd for ByObject {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByObject {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.object.cmp(&other.0.object)
    }
}

impl Hash for ByObject {
    // As `ObjectRef`'s, so that lookups by `&ObjectRef` find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.object.hash(state);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressTarget {
    pub regarding: Regarding,
    /// `status.loadBalancer.ingress` as last seen.
    pub observed: Vec<String>,
}

/// Everything the status writer should make true. Each part is shared
/// between successive `Desired`s until it changes, so handing the writer a
/// new one costs a few pointer copies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    /// Conditions the API does not show yet (satisfied ones are left out),
    /// sorted by object.
    pub conditions: Arc<Vec<Arc<WantedCondition>>>,
    /// Our Ingresses (their load-balancer status is the publish address),
    /// sorted by object.
    pub ingresses: Arc<Vec<IngressTarget>>,
    /// Every current problem, sorted, with the object it is about (when it
    /// exists).
    pub problems: Arc<Vec<(Problem, Option<Regarding>)>>,
}

/// The Kong kinds that carry a `Programmed` condition.
pub(super) const KONG_KINDS: [Kind; 3] = [Kind::KongConsumer, Kind::KongPlugin, Kind::KongClusterPlugin];

/// The stored metadata of `r`, if it is stored.
pub(super) fn meta_of<'w>(world: &'w World, r: &ObjectRef) -> Option<&'w Meta> {
    let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
    match r.kind {
        Kind::Ingress => world.ingresses.get(&key).map(|x| &x.meta),
        Kind::IngressClass => world.ingress_classes.get(&key).map(|x| &x.meta),
        Kind::Service => world.services.get(&key).map(|x| &x.meta),
        Kind::EndpointSlice => world.endpoint_slices.get(&key).map(|x| &x.meta),
        Kind::Secret => world.secrets.get(&key).map(|x| &x.meta),
        Kind::KongConsumer => world.consumers.get(&key).map(|x| &x.meta),
        Kind::KongPlugin => world.plugins.get(&key).map(|x| &x.meta),
        Kind::KongClusterPlugin => world.cluster_plugins.get(&key).map(|x| &x.meta),
    }
}

/// The stored metadata of every object of a Kong kind, sorted by
/// (namespace, name).
pub(super) fn kong_metas(world: &World, kind: Kind) -> Box<dyn Iterator<Item = &Meta> + '_> {
    match kind {
        Kind::KongConsumer => Box::new(world.consumers.values().map(|c| &c.meta)),
        Kind::KongPlugin => Box::new(world.plugins.values().map(|p| &p.meta)),
        Kind::KongClusterPlugin => Box::new(world.cluster_plugins.values().map(|p| &p.meta)),
        _ => Box::new(std::iter::empty()),
    }
}

/// The identity of `r` for Events: from the stored object, else from the
/// unreadable one; None when it does not exist.
pub(super) fn regarding_of(world: &World, r: &ObjectRef) -> Option<Regarding> {
    match meta_of(world, r) {
        Some(meta) => Some(regarding(r.kind, meta)),
        None => world.unreadable.get(r).map(|u| Regarding {
            object: r.clone(),
            uid: u.uid.clone(),
            generation: u.generation,
        }),
    }
}

/// The condition of a stored Kong object with `problems`, unless the API
/// shows it already or the object is another controller's.
pub(super) fn condition(
    kind: Kind,
    meta: &Meta,
    problems: &BTreeSet<Problem>,
    cfg: &Config,
) -> Option<WantedCondition> {
    let want = want(meta, problems, cfg)?;
    // Only what the API does not already show: at 100k consumers, listing
    // the satisfied ones too cost ~100 ms per publish.
    if want.is_satisfied_by(meta.observed().programmed().as_ref(), meta.generation()) {
        return None;
    }
    Some(WantedCondition {
        object: meta.object_ref(kind),
        generation: meta.generation(),
        want,
        observed: meta.observed().programmed(),
    })
}

/// The condition of a Kong object that exists in the API but could not be
/// read and has no last good version: Invalid.
pub(super) fn unreadable_condition(r: &ObjectRef, u: &Unreadable) -> WantedCondition {
    WantedCondition {
        object: r.clone(),
        generation: u.generation,
        want: Want { status: "False", reason: "Invalid", message: truncate(u.reason.clone()) },
        observed: None,
    }
}

/// The load-balancer status target of a stored Ingress, unless its class
/// makes it another controller's.
pub(super) fn ingress_target(meta: &Meta, problems: &BTreeSet<Problem>) -> Option<IngressTarget> {
    let ignored = problems.iter().any(|p| p.reason == Reason::IgnoredClass);
    (!ignored).then(|| IngressTarget {
        observed: meta.observed().load_balancer().map(<[String]>::to_vec).unwrap_or_default(),
        regarding: regarding(Kind::Ingress, meta),
    })
}

fn regarding(kind: Kind, m: &Meta) -> Regarding {
    Regarding { object: m.object_ref(kind), uid: m.uid().to_string(), generation: m.generation() }
}

/// The condition for one Kong object; None for another controller's object
/// (its class annotation names another class): its status is not ours.
fn want(meta: &Meta, problems: &BTreeSet<Problem>, cfg: &Config) -> Option<Want> {
    if let Some(p) = problems.iter().find(|p| p.reason == Reason::IgnoredClass) {
        let annotated_elsewhere =
            meta.annotation(ANN_INGRESS_CLASS).is_some_and(|c| !c.is_empty() && c != cfg.ingress_class);
        if annotated_elsewhere {
            return None;
        }
        return Some(Want { status: "False", reason: "Pending", message: truncate(p.message.clone()) });
    }
    if problems.is_empty() {
        return Some(Want { status: "True", reason: "Programmed", message: String::new() });
    }
    let message = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ");
    Some(Want { status: "False", reason: "Invalid", message: truncate(message) })
}

/// Caps a message at `MAX_MESSAGE` bytes (on a char boundary).
pub(super) fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    fn wanted(name: &str, message: &str) -> ByObject {
        let object = ObjectRef::new(Kind::KongConsumer, Some("default".into()), name);
        ByObject(Arc::new(WantedCondition {
            object,
            generation: Some(1),
            want: Want { status: "True", reason: "Programmed", message: message.into() },
            observed: None,
        }))
    }

    #[test]
    fn conditions_by_object_are_found_and_sorted_by_their_object_alone() {
        let alex = ObjectRef::new(Kind::KongConsumer, Some("default".into()), "alex");
        let set: BTreeSet<ByObject> = [wanted("bo", ""), wanted("alex", "")].into_iter().collect();
        let names: Vec<&str> = set.iter().map(|c| c.0.object.name.as_str()).collect();
        assert_eq!(names, ["alex", "bo"]);
        assert!(set.contains(&alex));

        // Another condition for the same object takes its place.
        let mut hashed: HashSet<ByObject> = set.into_iter().collect();
        assert_eq!(hashed.get(&alex).map(|c| c.0.want.message.as_str()), Some(""));
        hashed.replace(wanted("alex", "new"));
        assert_eq!(hashed.len(), 2);
        assert_eq!(hashed.get(&alex).map(|c| c.0.want.message.as_str()), Some("new"));
    }
}
