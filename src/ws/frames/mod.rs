//! The Tiledesk realtime protocol's frames: what a client may send and what the server sends.

use crate::error::Error;
use crate::events::publish;
use serde::Deserialize;
use serde_json::value::{to_raw_value, RawValue};
use serde_json::{json, Value};

/// A frame from the client, after parsing and validation.
#[derive(Debug, PartialEq)]
pub enum ClientFrame {
    Subscribe {
        topic: String,
        since: Option<String>,
    },
    Unsubscribe {
        topic: String,
    },
    Heartbeat,
    /// A heartbeat whose text is `pong`: a client answering the server's `ping`. It counts as
    /// hearing from the client and is not answered, so that two peers that both answer
    /// heartbeats do not bounce frames forever.
    Pong,
    Availability(AvailabilityPayload),
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct AvailabilityPayload {
    pub project_id: Option<String>,
    pub user_available: Option<bool>,
    #[serde(rename = "profileStatus")]
    pub profile_status: Option<String>,
}

/// Why a frame was refused; becomes an `error` frame, and the socket stays open.
#[derive(Debug, PartialEq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
struct TopicPayload {
    topic: String,
    since: Option<String>,
}

/// Parses a text frame. Anything that is not a known client action is an error frame,
/// including `publish`: clients cannot forge events.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FrameError::new("invalid_frame", format!("not JSON: {e}")))?;
    let action = value
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| FrameError::new("invalid_frame", "a frame needs a string `action`"))?;
    let payload = value.get("payload").cloned().unwrap_or(Value::Null);
    let typed = |payload: Value| -> Result<TopicPayload, FrameError> {
        serde_json::from_value(payload)
            .map_err(|e| FrameError::new("invalid_payload", format!("invalid payload: {e}")))
    };
    match action {
        "subscribe" => {
            let p = typed(payload)?;
            Ok(ClientFrame::Subscribe {
                topic: p.topic,
                since: p.since,
            })
        }
        "unsubscribe" => Ok(ClientFrame::Unsubscribe {
            topic: typed(payload)?.topic,
        }),
        "heartbeat" if payload["message"]["text"] == "pong" => Ok(ClientFrame::Pong),
        "heartbeat" => Ok(ClientFrame::Heartbeat),
        "availability" => {
            let p: AvailabilityPayload = serde_json::from_value(payload)
                .map_err(|e| FrameError::new("invalid_payload", format!("invalid payload: {e}")))?;
            if p.user_available.is_none() && p.profile_status.is_none() {
                return Err(FrameError::new(
                    "invalid_payload",
                    "availability needs user_available or profileStatus",
                ));
            }
            Ok(ClientFrame::Availability(p))
        }
        "publish" => Err(FrameError::new(
            "forbidden",
            "clients cannot publish; events come from the gateway",
        )),
        other => Err(FrameError::new(
            "unknown_action",
            format!(
                "unknown action `{}`",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

pub fn heartbeat(text: &str) -> String {
    json!({"action": "heartbeat", "payload": {"message": {"text": text}}}).to_string()
}

pub fn error(e: &FrameError, topic: Option<&str>) -> String {
    let mut payload = json!({"code": e.code, "message": e.message});
    if let Some(topic) = topic {
        payload["topic"] = json!(topic);
    }
    json!({"action": "error", "payload": payload}).to_string()
}

pub fn subscribed(topic: &str) -> String {
    json!({"action": "subscribed", "payload": {"topic": topic}}).to_string()
}

pub fn unsubscribed(topic: &str) -> String {
    json!({"action": "unsubscribed", "payload": {"topic": topic}}).to_string()
}

/// The most a snapshot frame holds (unless one teammate alone is larger): well under the
/// socket's write buffer, so every part can be sent whatever the team's size.
pub const MAX_SNAPSHOT_FRAME_BYTES: usize = 256 * 1024;

/// The `CREATE` snapshot sent after `subscribed`; `resync` when a resume point was lost.
///
/// A team (an array) larger than [`MAX_SNAPSHOT_FRAME_BYTES`] goes as several consecutive
/// `CREATE` frames, each an array of whole teammates, numbered with `part` (from 1) and `parts`;
/// a client merges them. A snapshot that fits one frame carries neither field.
pub fn snapshot(topic: &str, message: Value, resync: bool) -> Vec<String> {
    let Value::Array(items) = message else {
        return vec![publish::create(topic, &message, resync, None)];
    };
    // Each teammate serialized once; parts are cut by the sizes of what they hold.
    let items: Vec<Box<RawValue>> = items.iter().filter_map(|i| to_raw_value(i).ok()).collect();
    let mut parts: Vec<&[Box<RawValue>]> = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let size = item.get().len() + 1;
        if i > start && bytes + size > MAX_SNAPSHOT_FRAME_BYTES {
            parts.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    parts.push(&items[start..]);
    let count = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let numbered = (count > 1).then_some((i + 1, count));
            publish::create(topic, part, resync, numbered)
        })
        .collect()
}

pub fn availability(project_id: &str, user_available: bool, profile_status: &str) -> String {
    json!({"action": "availability", "payload": {
        "project_id": project_id,
        "user_available": user_available,
        "profileStatus": profile_status,
    }})
    .to_string()
}

/// The `error` frame of a refused request: the code names the kind of refusal.
pub(super) fn frame_error(e: Error) -> FrameError {
    let code = match &e {
        Error::BadRequest(_)
        | Error::Unprocessable(_)
        | Error::PayloadTooLarge
        | Error::RequestTimeout => "invalid_payload",
        Error::Unauthorized(_) | Error::CredentialsLocked { .. } | Error::Forbidden { .. } => {
            "forbidden"
        }
        Error::NotFound(_) => "not_found",
        Error::Unavailable(_) => "unavailable",
        Error::Conflict(_) | Error::TooManyRequests { .. } => "conflict",
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error on an agent socket");
            "internal"
        }
    };
    FrameError::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_frames_parse() {
        assert_eq!(
            parse(r#"{"action":"heartbeat","payload":{"message":{"text":"ping"}}}"#),
            Ok(ClientFrame::Heartbeat)
        );
        assert_eq!(
            parse(r#"{"action":"heartbeat","payload":{"message":{"text":"pong"}}}"#),
            Ok(ClientFrame::Pong)
        );
        assert_eq!(
            parse(r#"{"action":"subscribe","payload":{"topic":"/p/project_users","since":"x"}}"#),
            Ok(ClientFrame::Subscribe {
                topic: "/p/project_users".into(),
                since: Some("x".into())
            })
        );
        assert_eq!(
            parse(r#"{"action":"availability","payload":{"user_available":false}}"#),
            Ok(ClientFrame::Availability(AvailabilityPayload {
                user_available: Some(false),
                ..Default::default()
            }))
        );
    }

    #[test]
    fn large_snapshots_go_in_numbered_parts_of_whole_teammates() {
        let teammate = |i: usize| json!({"_id": i.to_string(), "filler": "x".repeat(1000)});
        let small = snapshot("/t", Value::Array((0..3).map(teammate).collect()), true);
        assert_eq!(small.len(), 1);
        let frame: Value = serde_json::from_str(&small[0]).unwrap();
        assert_eq!(frame["payload"]["message"].as_array().unwrap().len(), 3);
        assert_eq!(frame["payload"]["resync"], json!(true));
        assert!(frame["payload"].get("part").is_none());

        let team: Vec<Value> = (0..1000).map(teammate).collect();
        let frames = snapshot("/t", Value::Array(team.clone()), false);
        assert!(frames.len() > 1);
        let mut merged = Vec::new();
        for (i, text) in frames.iter().enumerate() {
            assert!(
                text.len() <= MAX_SNAPSHOT_FRAME_BYTES + 200,
                "{}",
                text.len()
            );
            let frame: Value = serde_json::from_str(text).unwrap();
            let payload = &frame["payload"];
            assert_eq!(payload["method"], json!("CREATE"));
            assert_eq!(payload["topic"], json!("/t"));
            assert_eq!(payload["part"], json!(i + 1));
            assert_eq!(payload["parts"], json!(frames.len()));
            merged.extend(payload["message"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(merged, team, "every teammate once, in order");

        let one = snapshot("/t", json!({"_id": "a"}), false);
        assert_eq!(one.len(), 1);
        let frame: Value = serde_json::from_str(&one[0]).unwrap();
        assert_eq!(frame["payload"]["message"], json!({"_id": "a"}));
        let empty = snapshot("/t", json!([]), false);
        let frame: Value = serde_json::from_str(&empty[0]).unwrap();
        assert_eq!(frame["payload"]["message"], json!([]));
    }

    #[test]
    fn everything_else_is_an_error_with_a_code() {
        let cases = [
            ("not json", "invalid_frame"),
            ("[]", "invalid_frame"),
            (r#"{"action":5}"#, "invalid_frame"),
            (r#"{"action":"publish","payload":{}}"#, "forbidden"),
            (r#"{"action":"dance"}"#, "unknown_action"),
            (r#"{"action":"subscribe","payload":{}}"#, "invalid_payload"),
            (
                r#"{"action":"availability","payload":{}}"#,
                "invalid_payload",
            ),
            (
                r#"{"action":"availability","payload":{"user_available":"no"}}"#,
                "invalid_payload",
            ),
        ];
        for (text, code) in cases {
            assert_eq!(parse(text).unwrap_err().code, code, "{text}");
        }
    }
}

#[cfg(test)]
mod proptests;
