//! Keeps `Desired` current batch by batch. A batch changes a handful of
//! objects, but walking every Kong object after each one (100k consumers,
//! and again for the echo of each status write) was most of the world
//! thread's time and the tail of change propagation. Only the objects a
//! batch touched and those whose problems changed are looked at again; a
//! relist (or the first publish) computes everything.
//!
//! The world thread updates the tracker after every publish; the status
//! writer takes a `Desired` from it when it is ready for one. Taking one
//! copies the list of pending conditions (all 100k of them while the
//! conditions are first written), so it happens once per writer pass, not
//! once per batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::desired::{
    ByObject, Desired, IngressTarget, KONG_KINDS, Regarding, WantedCondition, condition, ingress_target, kong_metas,
    meta_of, regarding_of, unreadable_condition,
};
use crate::publish::Outcome;
use crate::source::world_loop::Touched;
use crate::translate::{Config, Problem};
use crate::world::{Kind, ObjectRef, World};

static NO_PROBLEMS: BTreeSet<Problem> = BTreeSet::new();

/// The status reporter's view of the World, updated after every publish.
pub struct StatusTracker {
    cfg: Config,
    /// False until the first full computation.
    primed: bool,
    /// Conditions the API does not show yet.
    conditions: BTreeSet<ByObject>,
    ingresses: BTreeMap<ObjectRef, IngressTarget>,
    /// Current problems by the object they are about.
    subjects: BTreeMap<ObjectRef, Subject>,
    /// The last `Desired` taken, and which of its parts are out of date.
    current: Arc<Desired>,
    stale: Changed,
}

#[derive(Debug, Default)]
struct Subject {
    /// The object's identity for Events; None while it does not exist.
    regarding: Option<Regarding>,
    problems: BTreeSet<Problem>,
}

/// Which parts of `Desired` changed.
#[derive(Clone, Copy, Default)]
struct Changed {
    conditions: bool,
    ingresses: bool,
    problems: bool,
}

impl Changed {
    fn any(self) -> bool {
        self.conditions || self.ingresses || self.problems
    }

    fn add(&mut self, other: Changed) {
        self.conditions |= other.conditions;
        self.ingresses |= other.ingresses;
        self.problems |= other.problems;
    }
}

impl StatusTracker {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            primed: false,
            conditions: BTreeSet::new(),
            ingresses: BTreeMap::new(),
            subjects: BTreeMap::new(),
            current: Arc::default(),
            stale: Changed::default(),
        }
    }

    /// Call after every publish with what the batch touched, the publish's
    /// outcome and every current problem. Returns whether something the
    /// status writer acts on changed (if not, the writer is not woken).
    pub fn update(
        &mut self,
        world: &World,
        problems: &BTreeSet<Problem>,
        outcome: &Outcome,
        touched: &Touched,
    ) -> bool {
        if !self.primed || touched.everything {
            self.recompute(world, problems);
            return true;
        }
        let mut changed = Changed::default();
        let mut dirty: BTreeSet<&ObjectRef> = touched.objects.iter().collect();
        for p in &outcome.resolved_problems {
            if let Some(s) = self.subjects.get_mut(&p.object) {
                s.problems.remove(p);
                if s.problems.is_empty() {
                    self.subjects.remove(&p.object);
                }
            }
            dirty.insert(&p.object);
            changed.problems = true;
        }
        for p in &outcome.new_problems {
            self.subjects.entry(p.object.clone()).or_default().problems.insert(p.clone());
            dirty.insert(&p.object);
            changed.problems = true;
        }
        for r in dirty {
            let problems = self.subjects.get(r).map_or(&NO_PROBLEMS, |s| &s.problems);
            if KONG_KINDS.contains(&r.kind) {
                let wanted = match meta_of(world, r) {
                    Some(meta) => condition(r.kind, meta, problems, &self.cfg),
                    None => world.unreadable.get(r).map(|u| unreadable_condition(r, u)),
                };
                changed.conditions |= replace_condition(&mut self.conditions, r, wanted);
            }
            if r.kind == Kind::Ingress {
                let target = meta_of(world, r).and_then(|meta| ingress_target(meta, problems));
                // An event about one of our Ingresses also has the writer
                // re-read the publish addresses (a new load balancer
                // address is picked up with the next Ingress change).
                let seen = target.is_some() && touched.objects.contains(r);
                changed.ingresses |= replace(&mut self.ingresses, r, target) || seen;
            }
            if let Some(s) = self.subjects.get_mut(r) {
                let regarding = regarding_of(world, r);
                if s.regarding != regarding {
                    s.regarding = regarding;
                    changed.problems = true;
                }
            }
        }
        self.stale.add(changed);
        changed.any()
    }

    /// What the status writer should make true now. Parts that did not
    /// change since the last call are shared with the `Desired` it returned.
    pub fn desired(&mut self) -> Arc<Desired> {
        let stale = std::mem::take(&mut self.stale);
        if stale.any() {
            let mut d = (*self.current).clone();
            if stale.conditions {
                d.conditions = Arc::new(self.conditions.iter().map(|c| c.0.clone()).collect());
            }
            if stale.ingresses {
                d.ingresses = Arc::new(self.ingresses.values().cloned().collect());
            }
            if stale.problems {
                d.problems = Arc::new(self.problem_list());
            }
            self.current = Arc::new(d);
        }
        self.current.clone()
    }

    /// Everything from scratch.
    fn recompute(&mut self, world: &World, problems: &BTreeSet<Problem>) {
        self.primed = true;
        self.subjects.clear();
        for p in problems {
            self.subjects.entry(p.object.clone()).or_default().problems.insert(p.clone());
        }
        for (r, s) in &mut self.subjects {
            s.regarding = regarding_of(world, r);
        }

        self.conditions.clear();
        for kind in KONG_KINDS {
            // Stores and subjects are both sorted by (namespace, name) within
            // a kind: walk them together (no lookup, no allocation for the
            // satisfied objects, which are nearly all of them).
            let first = ObjectRef { kind, namespace: None, name: String::new() };
            let mut subjects = self.subjects.range(first..).take_while(|(r, _)| r.kind == kind).peekable();
            for meta in kong_metas(world, kind) {
                let here = meta.key();
                while subjects.next_if(|(r, _)| at(r) < here).is_some() {}
                let problems = subjects.next_if(|(r, _)| at(r) == here).map_or(&NO_PROBLEMS, |(_, s)| &s.problems);
                if let Some(c) = condition(kind, meta, problems, &self.cfg) {
                    self.conditions.insert(ByObject(Arc::new(c)));
                }
            }
        }
        // Unreadable Kong objects without a last good version (never in the
        // stores above): Invalid.
        for (r, u) in &world.unreadable {
            if KONG_KINDS.contains(&r.kind) && meta_of(world, r).is_none() {
                self.conditions.insert(ByObject(Arc::new(unreadable_condition(r, u))));
            }
        }

        self.ingresses.clear();
        for ing in world.ingresses.values() {
            let r = ing.meta.object_ref(Kind::Ingress);
            let problems = self.subjects.get(&r).map_or(&NO_PROBLEMS, |s| &s.problems);
            if let Some(target) = ingress_target(&ing.meta, problems) {
                self.ingresses.insert(r, target);
            }
        }

        self.stale = Changed { conditions: true, ingresses: true, problems: true };
    }

    /// Every problem, sorted (subjects are sorted by object, and problems
    /// sort by object first), with its object's identity.
    fn problem_list(&self) -> Vec<(Problem, Option<Regarding>)> {
        self.subjects.values().flat_map(|s| s.problems.iter().map(|p| (p.clone(), s.regarding.clone()))).collect()
    }
}

/// Where `r` sorts among objects of its kind (stores use "" for no namespace).
fn at(r: &ObjectRef) -> (&str, &str) {
    (r.namespace.as_deref().unwrap_or(""), r.name.as_str())
}

/// As `replace`, for the conditions (`wanted` is about `r`).
fn replace_condition(set: &mut BTreeSet<ByObject>, r: &ObjectRef, wanted: Option<WantedCondition>) -> bool {
    match wanted {
        Some(c) => {
            if set.get(r).is_some_and(|current| *current.0 == c) {
                return false;
            }
            set.replace(ByObject(Arc::new(c)));
            true
        }
        None => set.remove(r),
    }
}

/// Sets or removes `r`'s entry; true when that changed it.
fn replace<T: PartialEq>(map: &mut BTreeMap<ObjectRef, T>, r: &ObjectRef, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            if map.get(r) == Some(&v) {
                return false;
            }
            map.insert(r.clone(), v);
            true
        }
        None => map.remove(r).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::publish::{Publisher, Shared};
    use crate::translate::Reason;
    use crate::world::{Object, Unreadable};

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
            &of[self.below(of.len() as u64) as usize]
        }
    }

    /// The status side of a controller without the API: the World, the real
    /// Publisher, and a tracker fed the way the world loop feeds it.
    struct Harness {
        world: World,
        publisher: Publisher,
        tracker: StatusTracker,
        touched: Touched,
        /// The last manifest applied for each object (to echo status on).
        manifests: BTreeMap<ObjectRef, Value>,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                world: World::new(),
                publisher: Publisher::new(Config::default(), Shared::new()),
                tracker: StatusTracker::new(Config::default()),
                touched: Touched::default(),
                manifests: BTreeMap::new(),
            }
        }

        fn apply(&mut self, manifest: Value) -> ObjectRef {
            let r = self.world.apply(Object::from_value(manifest.clone()).unwrap()).unwrap();
            self.world.unreadable.remove(&r);
            self.manifests.insert(r.clone(), manifest);
            self.touched.objects.insert(r.clone());
            r
        }

        fn delete(&mut self, r: &ObjectRef) {
            self.world.delete(r);
            self.world.unreadable.remove(r);
            self.manifests.remove(r);
            self.touched.objects.insert(r.clone());
        }

        fn unreadable(&mut self, r: &ObjectRef) {
            let u = Unreadable { uid: format!("uid-{}", r.name), generation: Some(1), reason: "bad field".into() };
            self.world.unreadable.insert(r.clone(), u);
            self.touched.objects.insert(r.clone());
        }

        /// The API shows `status` on `r` (as the echo of a status write).
        fn show_status(&mut self, r: &ObjectRef, status: &str, reason: &str, message: &str, generation: i64) {
            let Some(mut manifest) = self.manifests.get(r).cloned() else { return };
            manifest["status"] = json!({"conditions": [{
                "type": "Programmed", "status": status, "reason": reason, "message": message,
                "observedGeneration": generation, "lastTransitionTime": "2024-01-01T00:00:00Z",
            }]});
            self.apply(manifest);
        }

        /// Publishes (with the source problems the world loop reports for
        /// unreadable objects) and updates the tracker.
        fn publish(&mut self) -> Option<Arc<Desired>> {
            let source = self
                .world
                .unreadable
                .iter()
                .map(|(r, u)| Problem::new(r.clone(), "", Reason::InvalidObject, u.reason.clone()))
                .collect();
            self.publisher.set_source_problems(source);
            let outcome = self.publisher.publish(&mut self.world, None);
            let touched = std::mem::take(&mut self.touched);
            let changed = self.tracker.update(&self.world, self.publisher.current_problems(), &outcome, &touched);
            changed.then(|| self.tracker.desired())
        }

        fn computed_from_scratch(&self) -> Arc<Desired> {
            let mut fresh = StatusTracker::new(Config::default());
            fresh.recompute(&self.world, self.publisher.current_problems());
            fresh.desired()
        }
    }

    fn consumer(ns: &str, name: &str, class: Option<&str>, credentials: &[String], generation: i64) -> Value {
        let mut c = json!({
            "apiVersion": "configuration.konghq.com/v1", "kind": "KongConsumer",
            "metadata": {"name": name, "namespace": ns, "generation": generation, "uid": format!("uid-{ns}-{name}")},
            "username": format!("{ns}-{name}"), "credentials": credentials,
        });
        if let Some(class) = class {
            c["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": class});
        }
        c
    }

    fn secret(ns: &str, name: &str, key: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "labels": {"konghq.com/credential": "key-auth"}},
            "stringData": {"key": key},
        })
    }

    fn plugin(kind: Kind, ns: &str, name: &str, key_name: &str) -> Value {
        let mut p = json!({
            "apiVersion": "configuration.konghq.com/v1", "kind": kind.as_str(),
            "metadata": {"name": name, "generation": 1, "annotations": {"kubernetes.io/ingress.class": "kong"}},
            "plugin": "key-auth", "config": {"key_names": [key_name]},
        });
        if kind == Kind::KongPlugin {
            p["metadata"]["namespace"] = json!(ns);
        }
        p
    }

    fn ingress(ns: &str, name: &str, class: &str, plugin: &str, load_balancer: Option<&str>) -> Value {
        let mut i = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns,
                         "annotations": {"kubernetes.io/ingress.class": class, "konghq.com/plugins": plugin}},
            "spec": {"rules": [{"http": {"paths": [{"path": format!("/{name}"), "pathType": "Prefix",
                     "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]},
        });
        if let Some(ip) = load_balancer {
            i["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
        }
        i
    }

    /// One random change: objects of every kind status reporting looks
    /// at, few names so they collide and reference each other, status
    /// echoes (right and stale), unreadable objects and deletions.
    fn random_change(h: &mut Harness, rng: &mut Rng) {
        let ns = *rng.pick(&["a", "b"]);
        let name = format!("o{}", rng.below(4));
        match rng.below(10) {
            0 | 1 => {
                let credentials: Vec<String> = (0..rng.below(3)).map(|_| format!("s{}", rng.below(4))).collect();
                let class = *rng.pick(&[Some("kong"), Some("kong"), Some("other"), None]);
                h.apply(consumer(ns, &name, class, &credentials, 1 + rng.below(2) as i64));
            }
            2 => {
                let key = format!("k{}", rng.below(3));
                h.apply(secret(ns, &format!("s{}", rng.below(4)), &key));
            }
            3 => {
                let kind = *rng.pick(&[Kind::KongPlugin, Kind::KongClusterPlugin]);
                let key_name = *rng.pick(&["apikey", "bad name"]);
                h.apply(plugin(kind, ns, &format!("p{}", rng.below(2)), key_name));
            }
            4 => {
                let class = *rng.pick(&["kong", "other"]);
                let lb = *rng.pick(&[None, Some("203.0.113.10")]);
                h.apply(ingress(ns, &format!("i{}", rng.below(2)), class, &format!("p{}", rng.below(2)), lb));
            }
            5 | 6 => {
                // The echo of a status write: what the tracker wants, as
                // written, or (sometimes) something else.
                let wanted: Vec<Arc<WantedCondition>> = h.tracker.desired().conditions.iter().cloned().collect();
                if wanted.is_empty() {
                    return;
                }
                let c = rng.pick(&wanted).clone();
                let generation = c.generation.unwrap_or(1);
                if rng.below(4) == 0 {
                    h.show_status(&c.object, "Unknown", "Pending", "stale", generation);
                } else {
                    h.show_status(&c.object, c.want.status, c.want.reason, &c.want.message, generation);
                }
            }
            7 => {
                let kind = *rng.pick(&KONG_KINDS);
                let ns = (kind != Kind::KongClusterPlugin).then(|| ns.to_string());
                h.unreadable(&ObjectRef::new(kind, ns, format!("o{}", rng.below(5))));
            }
            _ => {
                let known: Vec<ObjectRef> =
                    h.manifests.keys().cloned().chain(h.world.unreadable.keys().cloned()).collect();
                if !known.is_empty() {
                    let r = rng.pick(&known).clone();
                    h.delete(&r);
                }
            }
        }
    }

    #[test]
    fn updates_always_equal_a_computation_from_scratch() {
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut h = Harness::new();
            for step in 0..80 {
                // Sometimes several changes land in one batch.
                for _ in 0..1 + rng.below(3) {
                    random_change(&mut h, &mut rng);
                }
                let before = h.tracker.desired();
                let sent = h.publish();
                let fresh = h.computed_from_scratch();
                assert_eq!(h.tracker.desired(), fresh, "seed {seed} step {step}");
                match sent {
                    Some(d) => assert_eq!(d, fresh, "seed {seed} step {step}: sent"),
                    None => assert_eq!(before, fresh, "seed {seed} step {step}: a change was not sent"),
                }
            }
        }
    }

    #[test]
    fn the_writer_is_woken_only_when_status_work_changed() {
        let mut h = Harness::new();
        h.apply(secret("a", "s", "k1"));
        let c = h.apply(consumer("a", "c", Some("kong"), &["s".into()], 1));
        let d = h.publish().expect("the first publish computes everything");
        assert_eq!(d.conditions.len(), 1);
        assert_eq!((d.conditions[0].want.status, d.conditions[0].want.reason), ("True", "Programmed"));

        // The echo of the write: nothing left to write.
        h.show_status(&c, "True", "Programmed", "", 1);
        assert!(h.publish().expect("the condition is no longer wanted").conditions.is_empty());

        // A rotated key changes nothing status reports on.
        h.apply(secret("a", "s", "k2"));
        assert_eq!(h.publish(), None);

        // A deleted Secret makes the consumer Invalid, with a problem to
        // report.
        h.delete(&ObjectRef::namespaced(Kind::Secret, "a", "s"));
        let d = h.publish().expect("a new problem");
        assert_eq!(d.conditions.len(), 1);
        assert_eq!(d.conditions[0].want.reason, "Invalid");
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].1.as_ref().map(|r| r.uid.as_str()), Some("uid-a-c"));

        // An event about one of our Ingresses, even one that changes nothing
        // we keep, has the writer look at its load-balancer status again
        // (the publish Service's address may have changed).
        let published = ingress("a", "i", "kong", "", Some("203.0.113.10"));
        h.apply(published.clone());
        assert!(h.publish().is_some());
        h.apply(published);
        assert!(h.publish().is_some_and(|d| d.ingresses.len() == 1));
        // Another controller's Ingress does not.
        let foreign = ingress("a", "j", "other", "", None);
        h.apply(foreign.clone());
        h.publish();
        h.apply(foreign);
        assert_eq!(h.publish(), None);
    }

    #[test]
    fn each_kong_object_gets_the_problems_about_it_and_no_others() {
        let mut world = World::new();
        for (ns, name) in [("default", "a"), ("default", "b"), ("default", "c"), ("other", "a")] {
            world.apply(Object::from_value(consumer(ns, name, Some("kong"), &[], 1)).unwrap()).unwrap();
        }
        let problem = |ns: &str, name: &str| {
            Problem::new(
                ObjectRef::new(Kind::KongConsumer, Some(ns.into()), name),
                "credentials[0]",
                Reason::CredentialNotFound,
                format!("about {ns}/{name}"),
            )
        };
        // A problem about an object that is not stored must not shift the walk.
        let problems: BTreeSet<Problem> =
            [problem("default", "b"), problem("default", "bb"), problem("other", "a")].into_iter().collect();
        let mut tracker = StatusTracker::new(Config::default());
        assert!(tracker.update(&world, &problems, &Outcome::default(), &Touched::default()));
        let d = tracker.desired();
        let got: Vec<(String, &str, &str)> =
            d.conditions.iter().map(|c| (c.object.to_string(), c.want.reason, c.want.message.as_str())).collect();
        assert_eq!(
            got,
            [
                ("KongConsumer default/a".to_string(), "Programmed", ""),
                ("KongConsumer default/b".to_string(), "Invalid", "credentials[0]: about default/b"),
                ("KongConsumer default/c".to_string(), "Programmed", ""),
                ("KongConsumer other/a".to_string(), "Invalid", "credentials[0]: about other/a"),
            ]
        );
        // The problem about a missing object is still reported (no object to attach it to).
        assert_eq!(d.problems.iter().filter(|(_, r)| r.is_none()).count(), 1);
    }
}
