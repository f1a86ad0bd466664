pub mod api;
pub mod snapshot;
pub mod source;
pub mod translate;
pub mod world;
