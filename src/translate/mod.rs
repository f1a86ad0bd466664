//! World -> (Snapshot, Problems). Pure and synchronous: no I/O, no clock, no
//! tokio. Routes and consumers are translated separately so a credential
//! change never rebuilds the router (and vice versa).

mod problem;

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
    let _ = (world, cfg);
    (RouteTable::default(), Vec::new())
}

/// Consumers and the credential index: reads KongConsumer, Secret and
/// IngressClass.
pub fn consumers(world: &World, cfg: &Config) -> (ConsumerIndex, Vec<Problem>) {
    let _ = (world, cfg);
    (ConsumerIndex::default(), Vec::new())
}
