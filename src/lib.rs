//! Portcullis: a Kubernetes ingress controller and key-auth API gateway in
//! one binary. See DESIGN.md for the data flow:
//! source -> World -> translate -> Snapshot -> proxy.

pub mod admin;
pub mod api;
pub mod at_once;
pub mod check;
pub mod cli;
pub mod code_pages;
pub mod controller;
pub mod echo;
pub mod metrics;
pub mod proxy;
pub mod publish;
pub mod run;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod translate;
pub mod world;
