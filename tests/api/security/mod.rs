//! Security properties, black-box over real HTTP and WebSockets, a module per property:
//! `authorization` (the route × caller matrix), `jwt_edges`, `brute_force`, `revocation`,
//! `connection_limits` and `socket_caps`, `ssrf` and `ssrf_ipv6`, `secrets_in_logs`,
//! `invitations`, `emails`, and `regressions` (gateway bugs this suite found, now fixed).
//!
//! Constant-time comparisons are a code-review item and are not tested here.

mod authorization;
mod brute_force;
mod connection_limits;
mod emails;
mod invitations;
mod jwt_edges;
mod regressions;
mod revocation;
mod secrets_in_logs;
mod socket_caps;
mod ssrf;
mod ssrf_ipv6;

use crate::common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::jwt::{assert_refused_everywhere, b64_json, hs256, mint, mint_with, now};
use common::{
    spawn_app_with, token_query, Engine, GatewayProcess, Resp, TestApp, TestUser, JWT_SECRET,
    PASSWORD,
};
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(10);

// ---- shared helpers -----------------------------------------------------------------------------

fn fresh_email(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The outcome of a WebSocket handshake: the socket, or the refusal's status and headers.
async fn ws_connect(
    port: u16,
    path_and_query: &str,
) -> Result<common::WsStream, (u16, tungstenite::http::HeaderMap)> {
    let url = format!("ws://127.0.0.1:{port}{path_and_query}");
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, response)) => {
            assert_eq!(response.status().as_u16(), 101);
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            Err((response.status().as_u16(), response.headers().clone()))
        }
        Err(e) => panic!("unexpected handshake error on {path_and_query}: {e}"),
    }
}

/// Sends a heartbeat and reads until its pong (true) or a close frame (false).
async fn answers_heartbeat(ws: &mut common::WsStream) -> bool {
    let ping = json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}});
    if ws.send(Message::text(ping.to_string())).await.is_err() {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => panic!("no answer to a heartbeat within 5 s"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return false,
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["payload"]["message"]["text"] == json!("pong") {
                    return true;
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Reads until the server's close frame; its code.
async fn close_code(ws: &mut common::WsStream) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => panic!("the server did not close the socket within 5 s"),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
        }
    }
}
