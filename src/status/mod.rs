//! Reporting back to Kubernetes (cluster mode): Ingress load-balancer
//! status, `Programmed` conditions on Kong objects, and Warning Events for
//! problems. Only the replica holding the Lease writes; every replica serves.

mod desired;
mod leader;
mod tracker;
mod writer;

pub use desired::{Desired, IngressTarget, Regarding, Want, WantedCondition};
pub use leader::{LeaderConfig, spawn_leader_election};
pub use tracker::StatusTracker;
pub use writer::{StatusConfig, spawn_status_writer};

/// Event reason used by KIC for translation problems (dashboards and alerts
/// built for KIC keep working).
pub const EVENT_REASON: &str = "KongConfigurationTranslationFailed";
