pub mod api;
pub mod echo;
pub mod proxy;
pub mod snapshot;
pub mod source;
pub mod translate;
pub mod world;
