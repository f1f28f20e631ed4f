#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod cluster_events;
mod redis_cluster;
mod redis_lifecycle;
