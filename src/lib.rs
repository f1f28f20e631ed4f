//! presence-gateway: real-time presence and availability for customer-support teammates.
//!
//! See `docs/architecture.md` for how the modules fit together.

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod heartbeat;
pub mod http;
pub mod listener_session;
pub mod net;
pub mod presence;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod views;
pub mod webhooks;
pub mod ws;

pub use app::App;
pub use config::Config;
