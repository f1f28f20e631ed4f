//! Fuzzes the gateway's JSON body parsing with arbitrary bytes: the public
//! `http::extract::parse_json` helper (what every `/v3` body goes through) into
//! `serde_json::Value` and into a JSON object, the way the Dixa and Desk handlers read bodies
//! (`serde_json::from_slice`), and, when the bytes are UTF-8, the socket's frame decoder.
//!
//! The typed body structs are private to the gateway, so the target parses into `Value`.
//! Invariants: nothing panics or overflows the stack (deep nesting included); a body that parses
//! re-serializes to JSON that parses back to the same value (floats up to the last bits: without
//! serde_json's `float_roundtrip` feature, its fast float parser may land one ulp away, e.g.
//! `1222222222222222222222222`); an object body is exactly a `Value::Object`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_gateway::http::extract::parse_json;
use serde_json::{Map, Value};

#[allow(dead_code)]
#[path = "../../src/ws/frames.rs"]
mod frames;

fuzz_target!(|data: &[u8]| {
    let as_value = parse_json::<Value>(data);
    let as_object = parse_json::<Map<String, Value>>(data);
    match &as_value {
        Ok(value) => {
            let text = serde_json::to_string(value).expect("a parsed value serializes");
            let again: Value = serde_json::from_str(&text).expect("re-serialized JSON parses");
            assert!(same(&again, value), "{again} != {value}");
            assert_eq!(as_object.is_ok(), value.is_object());
        }
        Err(_) => assert!(as_object.is_err()),
    }
    // The Dixa and Desk handlers parse with serde_json directly: same verdict.
    assert_eq!(
        serde_json::from_slice::<Value>(data).is_ok(),
        as_value.is_ok()
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frames::parse(text);
    }
});

/// Equal, except that floats may differ in their last bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}
