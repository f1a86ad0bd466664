//! Sources turn the outside world into World updates: a manifests folder
//! (local mode) or Kubernetes watches (cluster mode).

pub mod cluster;
pub mod files;
mod folder_records;
mod free_memory;
pub mod manifest;
mod node_de;
mod node_object;
pub mod plain_yaml;
pub mod watch;
pub mod world_loop;
