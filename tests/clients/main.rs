#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod js_client;
mod tiledesk_js_client;
