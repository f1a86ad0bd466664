//! What status Portcullis wants written, computed from the World and the
//! current problems. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;

use crate::api::ANN_INGRESS_CLASS;
use crate::translate::{Config, Problem, Reason};
use crate::world::{ConditionState, Kind, Meta, ObjectRef, World};

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
        observed.is_some_and(|o| {
            o.status == self.status
                && o.reason == self.reason
                && o.message == self.message
                && o.observed_generation == generation
        })
    }
}

#[derive(Clone, Debug)]
pub struct WantedCondition {
    pub regarding: Regarding,
    pub want: Want,
    pub observed: Option<ConditionState>,
}

#[derive(Clone, Debug)]
pub struct IngressTarget {
    pub regarding: Regarding,
    /// `status.loadBalancer.ingress` as last seen.
    pub observed: Vec<String>,
}

/// Everything the status writer should make true.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    /// Conditions the API does not show yet (satisfied ones are left out).
    pub conditions: Vec<WantedCondition>,
    /// Our Ingresses (their load-balancer status is the publish address).
    pub ingresses: Vec<IngressTarget>,
    /// Every current problem, with the object it is about (when it exists).
    pub problems: Vec<(Problem, Option<Regarding>)>,
}

pub fn desired(world: &World, problems: &[Problem], cfg: &Config) -> Desired {
    // Keyed by borrowed (kind, namespace, name): looking an object up must
    // not allocate, as every Kong object (100k consumers) is looked up on
    // every publish.
    let mut by_object: BTreeMap<(Kind, &str, &str), Vec<&Problem>> = BTreeMap::new();
    for p in problems {
        let o = &p.object;
        by_object.entry((o.kind, o.namespace.as_deref().unwrap_or(""), &o.name)).or_default().push(p);
    }

    let mut out = Desired::default();
    let kong: [(Kind, Box<dyn Iterator<Item = &Meta>>); 3] = [
        (Kind::KongConsumer, Box::new(world.consumers.values().map(|c| &c.meta))),
        (Kind::KongPlugin, Box::new(world.plugins.values().map(|p| &p.meta))),
        (Kind::KongClusterPlugin, Box::new(world.cluster_plugins.values().map(|p| &p.meta))),
    ];
    for (kind, metas) in kong {
        // Stores and problems are both sorted by (namespace, name): walk
        // them together instead of a lookup per object (100k consumers on
        // every batch).
        let mut found = by_object.range((kind, "", "")..).take_while(|((k, _, _), _)| *k == kind).peekable();
        for meta in metas {
            let at = (meta.namespace.as_deref().unwrap_or(""), meta.name.as_str());
            while found.next_if(|((_, ns, name), _)| (*ns, *name) < at).is_some() {}
            let mine = found.next_if(|((_, ns, name), _)| (*ns, *name) == at).map(|(_, ps)| ps.as_slice());
            push_condition(&mut out, kind, meta, mine.unwrap_or_default(), cfg);
        }
    }

    // Unreadable Kong objects without a last good version (never in the
    // stores above): Invalid.
    for (r, u) in &world.unreadable {
        let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
        let stored = match r.kind {
            Kind::KongConsumer => world.consumers.contains_key(&key),
            Kind::KongPlugin => world.plugins.contains_key(&key),
            Kind::KongClusterPlugin => world.cluster_plugins.contains_key(&key),
            _ => continue,
        };
        if !stored {
            out.conditions.push(WantedCondition {
                regarding: Regarding { object: r.clone(), uid: u.uid.clone(), generation: u.generation },
                want: Want { status: "False", reason: "Invalid", message: truncate(u.reason.clone()) },
                observed: None,
            });
        }
    }

    for ing in world.ingresses.values() {
        let ignored =
            problems_of(&by_object, Kind::Ingress, &ing.meta).iter().any(|p| p.reason == Reason::IgnoredClass);
        if !ignored {
            out.ingresses.push(IngressTarget {
                observed: ing.meta.observed.load_balancer.clone().unwrap_or_default(),
                regarding: regarding(Kind::Ingress, &ing.meta),
            });
        }
    }

    let lookup = |o: &ObjectRef| -> Option<Regarding> {
        let key = (o.namespace.clone().unwrap_or_default(), o.name.clone());
        let meta = match o.kind {
            Kind::Ingress => world.ingresses.get(&key).map(|x| &x.meta),
            Kind::IngressClass => world.ingress_classes.get(&key).map(|x| &x.meta),
            Kind::Service => world.services.get(&key).map(|x| &x.meta),
            Kind::EndpointSlice => world.endpoint_slices.get(&key).map(|x| &x.meta),
            Kind::Secret => world.secrets.get(&key).map(|x| &x.meta),
            Kind::KongConsumer => world.consumers.get(&key).map(|x| &x.meta),
            Kind::KongPlugin => world.plugins.get(&key).map(|x| &x.meta),
            Kind::KongClusterPlugin => world.cluster_plugins.get(&key).map(|x| &x.meta),
        };
        match meta {
            Some(meta) => Some(regarding(o.kind, meta)),
            None => world.unreadable.get(o).map(|u| Regarding {
                object: o.clone(),
                uid: u.uid.clone(),
                generation: u.generation,
            }),
        }
    };
    out.problems = problems.iter().map(|p| (p.clone(), lookup(&p.object))).collect();
    out
}

/// Adds the Programmed condition of one Kong object, unless the API shows it
/// already.
fn push_condition(out: &mut Desired, kind: Kind, meta: &Meta, problems: &[&Problem], cfg: &Config) {
    let Some(want) = want(meta, problems, cfg) else { return };
    // Only what the API does not already show: at 100k consumers, listing
    // the satisfied ones too cost ~100 ms per publish.
    if want.is_satisfied_by(meta.observed.programmed.as_ref(), meta.generation) {
        return;
    }
    out.conditions.push(WantedCondition {
        want,
        observed: meta.observed.programmed.clone(),
        regarding: regarding(kind, meta),
    });
}

fn regarding(kind: Kind, m: &Meta) -> Regarding {
    Regarding {
        object: ObjectRef::new(kind, m.namespace.clone(), m.name.clone()),
        uid: m.uid.to_string(),
        generation: m.generation,
    }
}

/// Problems about one object (none: an empty slice).
fn problems_of<'p>(
    by_object: &'p BTreeMap<(Kind, &str, &str), Vec<&'p Problem>>,
    kind: Kind,
    m: &'p Meta,
) -> &'p [&'p Problem] {
    by_object.get(&(kind, m.namespace.as_deref().unwrap_or(""), m.name.as_str())).map(Vec::as_slice).unwrap_or_default()
}

/// The condition for one Kong object; None for another controller's object
/// (its class annotation names another class): its status is not ours.
fn want(meta: &Meta, problems: &[&Problem], cfg: &Config) -> Option<Want> {
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
    use super::*;

    #[test]
    fn each_kong_object_gets_the_problems_about_it_and_no_others() {
        let mut world = World::new();
        let yaml: String = [("default", "a"), ("default", "b"), ("default", "c"), ("other", "a")]
            .iter()
            .map(|(ns, name)| {
                format!(
                    "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: {name}, namespace: {ns}, annotations: {{kubernetes.io/ingress.class: kong}}}}\nusername: {ns}-{name}\n---\n"
                )
            })
            .collect();
        for doc in crate::source::manifest::parse(&yaml).unwrap() {
            world.apply(doc.result.unwrap()).unwrap();
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
        let problems = [problem("default", "b"), problem("default", "bb"), problem("other", "a")];
        let d = desired(&world, &problems, &Config::default());
        let got: Vec<(String, &str, &str)> = d
            .conditions
            .iter()
            .map(|c| (c.regarding.object.to_string(), c.want.reason, c.want.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("KongConsumer default/a".to_string(), "Programmed", ""),
                ("KongConsumer default/b".to_string(), "Invalid", "credentials[0]: about default/b"),
                ("KongConsumer default/c".to_string(), "Programmed", ""),
                ("KongConsumer other/a".to_string(), "Invalid", "credentials[0]: about other/a"),
            ]
        );
    }
}
