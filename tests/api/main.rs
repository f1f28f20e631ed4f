#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod bad_input;
mod board_routes;
mod desk;
mod dixa;
mod events;
mod hostile_input;
mod jwks;
mod jwt;
mod openapi;
mod presence;
mod routable;
mod security;
mod store_presence;
mod team;
mod tracker_properties;
mod webhooks;
