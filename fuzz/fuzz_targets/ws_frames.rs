//! Fuzzes the agent socket's frame decoder, `ws::frames::parse`, with arbitrary UTF-8 text (a
//! WebSocket text frame is always valid UTF-8).
//!
//! `ws::frames` is private to the gateway's library, so this target compiles the very same source
//! file as its own module (it depends only on serde and serde_json).
//!
//! Invariants: `parse` never panics; it returns a known frame or an error whose code is one of
//! the four the socket sends; an error renders as a JSON `error` frame carrying that code; an
//! `availability` frame always carries something to change.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/ws/frames.rs"]
mod frames;

use frames::ClientFrame;

const CODES: [&str; 4] = [
    "invalid_frame",
    "invalid_payload",
    "forbidden",
    "unknown_action",
];

fuzz_target!(|text: &str| {
    match frames::parse(text) {
        Ok(ClientFrame::Availability(payload)) => {
            assert!(payload.user_available.is_some() || payload.profile_status.is_some());
        }
        Ok(
            ClientFrame::Subscribe { .. }
            | ClientFrame::Unsubscribe { .. }
            | ClientFrame::Heartbeat,
        ) => {}
        Err(e) => {
            assert!(CODES.contains(&e.code), "unexpected code {}", e.code);
            assert!(!e.message.is_empty());
            let rendered: serde_json::Value =
                serde_json::from_str(&frames::error(&e, None)).expect("error frames are JSON");
            assert_eq!(rendered["payload"]["code"], e.code);
        }
    }
});
