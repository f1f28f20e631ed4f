#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod gateway;
mod redis_cluster;
