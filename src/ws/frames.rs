//! The Tiledesk realtime protocol's frames: what a client may send and what the server sends.

use serde::Deserialize;
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

/// The `CREATE` snapshot sent after `subscribed`; `resync` when a resume point was lost.
pub fn snapshot(topic: &str, message: Value, resync: bool) -> String {
    let mut payload = json!({"topic": topic, "method": "CREATE", "message": message});
    if resync {
        payload["resync"] = json!(true);
    }
    json!({"action": "publish", "payload": payload}).to_string()
}

pub fn availability(project_id: &str, user_available: bool, profile_status: &str) -> String {
    json!({"action": "availability", "payload": {
        "project_id": project_id,
        "user_available": user_available,
        "profileStatus": profile_status,
    }})
    .to_string()
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
