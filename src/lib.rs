pub mod api;
pub mod snapshot;
pub mod translate;
pub mod world;
