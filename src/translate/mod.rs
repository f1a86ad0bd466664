//! World -> (Snapshot, Problems). Pure and synchronous: no I/O, no clock, no
//! tokio. Routes and consumers are translated separately so a credential
//! change never rebuilds the router (and vice versa).

mod annotations;
mod backend;
mod class;
mod conflicts;
mod consumers;
mod credentials;
mod host;
mod ingress;
mod key_auth;
mod path;
mod plugins;
mod problem;
mod route_settings;
mod service_settings;

use std::sync::Arc;

pub use problem::{Problem, Reason};

use crate::snapshot::{ConsumerIndex, RouteTable, Snapshot};
use crate::world::World;

/// Settings that change how objects are read (from CLI flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `--ingress-class` (default `kong`).
    pub ingress_class: String,
    /// `--controller-name`: the IngressClass `spec.controller` we answer to.
    pub controller_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ingress_class: crate::api::DEFAULT_INGRESS_CLASS.into(),
            controller_name: crate::api::DEFAULT_CONTROLLER_NAME.into(),
        }
    }
}

/// A translated Snapshot and every Problem found on the way.
#[derive(Debug)]
pub struct Translation {
    pub snapshot: Snapshot,
    pub problems: Vec<Problem>,
}

/// Translates the whole World.
pub fn translate(world: &World, cfg: &Config) -> Translation {
    let (routes, mut problems) = routes(world, cfg);
    let (consumers, consumer_problems) = consumers(world, cfg);
    problems.extend(consumer_problems);
    problems.sort();
    problems.dedup();
    Translation { snapshot: Snapshot::new(Arc::new(routes), Arc::new(consumers)), problems }
}

/// Routes, backends and route auth: reads Ingress, IngressClass, Service,
/// EndpointSlice, KongPlugin and KongClusterPlugin.
pub fn routes(world: &World, cfg: &Config) -> (RouteTable, Vec<Problem>) {
    let mut problems = class::ingress_class_problems(world, cfg);
    let class = class::ClassFilter::new(world, cfg);
    let plugins = plugins::Plugins::new(world, &class, &mut problems);
    let mut backends = backend::Backends::new(world);
    let mut ingresses: Vec<_> = world.ingresses.values().collect();
    ingresses.sort_by(|a, b| a.meta.age_key().cmp(&b.meta.age_key()));
    let mut accepted = conflicts::Accepted::default();
    for ing in ingresses {
        match class.ingress(ing) {
            Ok(()) => accepted.add(ingress::translate(ing, &mut backends, &plugins, &mut problems), &mut problems),
            Err(p) => problems.push(p),
        }
    }
    problems.sort();
    problems.dedup();
    (accepted.into_table(), problems)
}

/// Consumers and the credential index: reads KongConsumer, Secret and
/// IngressClass.
pub fn consumers(world: &World, cfg: &Config) -> (ConsumerIndex, Vec<Problem>) {
    let (index, mut problems) = consumers::translate(world, cfg);
    problems.sort();
    problems.dedup();
    (index, problems)
}
