//! Which objects are ours (KONG_COMPAT §3). KIC drops the others with a debug
//! log; we report each one with the reason and the fix (divergence).

use crate::api::{ANN_DEFAULT_CLASS, ANN_INGRESS_CLASS};
use crate::world::{IngressObj, Kind, Meta, ObjectRef, World};

use super::annotations::{field, object_ref, printable};
use super::{Config, Problem, Reason};

/// The ingress class rules for one translation.
pub struct ClassFilter<'a> {
    class: &'a str,
    /// Our IngressClass exists (name and controller match).
    ours_exists: bool,
    /// ... and is marked the cluster default.
    ours_is_default: bool,
    /// An IngressClass with our name exists but names another controller.
    name_taken: bool,
}

impl<'a> ClassFilter<'a> {
    pub fn new(world: &World, cfg: &'a Config) -> Self {
        let ours = world
            .ingress_classes
            .values()
            .find(|c| c.meta.name() == cfg.ingress_class && c.controller == cfg.controller_name);
        Self {
            class: &cfg.ingress_class,
            ours_exists: ours.is_some(),
            ours_is_default: ours.is_some_and(|c| c.is_default),
            name_taken: ours.is_none() && world.ingress_classes.values().any(|c| c.meta.name() == cfg.ingress_class),
        }
    }

    /// Whether an Ingress is ours. As KIC: a non-empty
    /// `kubernetes.io/ingress.class` annotation decides; without it
    /// `spec.ingressClassName`; with neither, our IngressClass being default.
    pub fn ingress(&self, ing: &IngressObj) -> Result<(), Problem> {
        let annotation = ing.meta.annotation(ANN_INGRESS_CLASS).filter(|c| !c.is_empty());
        let class_name = ing.spec.ingress_class_name.as_deref().filter(|c| !c.is_empty());
        let object = object_ref(Kind::Ingress, &ing.meta);
        match (annotation, class_name) {
            (Some(c), _) if c == self.class => Ok(()),
            // Another controller's object: say so briefly, it is not a mistake.
            (Some(other), _) => Err(self.other_class(object, field(ANN_INGRESS_CLASS), other)),
            (None, Some(c)) if c == self.class => Ok(()),
            (None, Some(other)) => Err(self.other_class(object, "spec.ingressClassName".into(), other)),
            (None, None) if self.ours_is_default => Ok(()),
            (None, None) => Err(Problem::new(
                object,
                "spec.ingressClassName",
                Reason::IgnoredClass,
                format!(
                    "ignored: no ingress class and {}; set spec.ingressClassName: {c} or annotate {ANN_INGRESS_CLASS}: {c}",
                    self.no_default(),
                    c = self.class
                ),
            )),
        }
    }

    /// Whether a KongConsumer or KongClusterPlugin is ours: the annotation,
    /// or (no annotation) our default IngressClass. KongPlugin needs no class.
    pub fn annotated(&self, kind: Kind, meta: &Meta) -> Result<(), Problem> {
        // Built only for a Problem: this runs for every consumer.
        let object = || object_ref(kind, meta);
        match meta.annotation(ANN_INGRESS_CLASS).filter(|c| !c.is_empty()) {
            Some(c) if c == self.class => Ok(()),
            Some(other) => Err(self.other_class(object(), field(ANN_INGRESS_CLASS), other)),
            None if self.ours_is_default => Ok(()),
            None => Err(Problem::new(
                object(),
                field(ANN_INGRESS_CLASS),
                Reason::IgnoredClass,
                format!(
                    "ignored: no {ANN_INGRESS_CLASS} annotation and {}; annotate {ANN_INGRESS_CLASS}: {}",
                    self.no_default(),
                    self.class
                ),
            )),
        }
    }

    fn other_class(&self, object: ObjectRef, field: String, other: &str) -> Problem {
        Problem::new(
            object,
            field,
            Reason::IgnoredClass,
            format!("ignored: class '{}' is not '{}'", printable(other), self.class),
        )
    }

    fn no_default(&self) -> String {
        if self.ours_exists {
            format!("IngressClass {} is not the cluster default ({ANN_DEFAULT_CLASS})", self.class)
        } else if self.name_taken {
            format!("IngressClass {} names another controller (see its problem)", self.class)
        } else {
            format!("there is no IngressClass {} to be the cluster default", self.class)
        }
    }
}

/// An IngressClass with our name but another controller: we still serve
/// objects naming the class, but never treat it as the default. Worth saying,
/// since it usually means a copy-pasted `spec.controller`.
pub fn ingress_class_problems(world: &World, cfg: &Config) -> Vec<Problem> {
    world
        .ingress_classes
        .values()
        .filter(|c| c.meta.name() == cfg.ingress_class && c.controller != cfg.controller_name)
        .map(|c| {
            Problem::new(
                object_ref(Kind::IngressClass, &c.meta),
                "spec.controller",
                Reason::IgnoredClass,
                format!(
                    "controller '{}' is not '{}', so this IngressClass is not ours and its default marking is ignored; set spec.controller: {}",
                    printable(&c.controller),
                    cfg.controller_name,
                    cfg.controller_name
                ),
            )
        })
        .collect()
}
