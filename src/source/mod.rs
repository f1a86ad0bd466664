//! Sources turn the outside world into World updates: a manifests folder
//! (local mode) or Kubernetes watches (cluster mode).

pub mod cluster;
pub mod files;
pub mod manifest;
pub mod watch;
pub mod world_loop;
