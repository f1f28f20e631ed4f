//! The Tiledesk realtime protocol's frames: what a client may send and what the server sends.

use crate::error::Error;
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

/// The `error` frame of a refused request: the code names the kind of refusal.
pub(super) fn frame_error(e: Error) -> FrameError {
    let code = match &e {
        Error::BadRequest(_) | Error::Unprocessable(_) | Error::PayloadTooLarge => {
            "invalid_payload"
        }
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

/// Property tests: `parse` never panics, whatever a client sends, and answers either a known
/// frame or an error with one of the codes the socket documents; valid frames round-trip.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Every code `parse` may answer with.
    const CODES: [&str; 4] = [
        "invalid_frame",
        "invalid_payload",
        "forbidden",
        "unknown_action",
    ];
    const ACTIONS: [&str; 5] = [
        "subscribe",
        "unsubscribe",
        "heartbeat",
        "availability",
        "publish",
    ];
    /// Keys the decoder looks at, so that generated objects hit them often.
    const KEYS: [&str; 8] = [
        "action",
        "payload",
        "topic",
        "since",
        "project_id",
        "user_available",
        "profileStatus",
        "message",
    ];

    /// Checks what `parse` makes of `text`, and returns it.
    fn parse_checked(text: &str) -> Result<Result<ClientFrame, FrameError>, TestCaseError> {
        let outcome = parse(text);
        match &outcome {
            Ok(ClientFrame::Availability(p)) => {
                prop_assert!(p.user_available.is_some() || p.profile_status.is_some());
            }
            Ok(_) => {}
            Err(e) => {
                prop_assert!(CODES.contains(&e.code), "unknown code {}", e.code);
                prop_assert!(!e.message.is_empty());
                let rendered: Value = serde_json::from_str(&error(e, Some("/t")))
                    .map_err(|e| TestCaseError::fail(format!("error frame is not JSON: {e}")))?;
                prop_assert_eq!(&rendered["action"], &json!("error"));
                prop_assert_eq!(&rendered["payload"]["code"], &json!(e.code));
                prop_assert_eq!(&rendered["payload"]["topic"], &json!("/t"));
            }
        }
        Ok(outcome)
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(KEYS.to_vec()).prop_map(str::to_string),
            any::<String>(),
        ]
    }

    /// Arbitrary JSON: every kind of scalar (strings biased towards the actions), nested arrays
    /// and objects (keys biased towards the ones the decoder reads).
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            any::<String>().prop_map(Value::from),
            prop::sample::select(ACTIONS.to_vec()).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..8)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    fn action() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(ACTIONS.to_vec()).prop_map(str::to_string),
            1 => any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            let _ = parse_checked(&text)?;
        }

        #[test]
        fn json_looking_strings_never_panic(
            text in r#"[\[\]{}":,. 0-9a-z\\\-eE]{0,96}"#,
        ) {
            let _ = parse_checked(&text)?;
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let _ = parse_checked(&value.to_string())?;
        }

        /// Frames with an action (known or not) and any payload: the action decides the
        /// outcome's kind.
        #[test]
        fn frames_with_any_payload(
            action in action(),
            payload in json_value(),
            extra in prop::collection::vec((key(), json_value()), 0..3),
        ) {
            let mut frame = serde_json::Map::new();
            for (k, v) in extra {
                frame.insert(k, v);
            }
            frame.insert("action".into(), json!(action));
            frame.insert("payload".into(), payload);
            let outcome = parse_checked(&Value::Object(frame).to_string())?;
            let refused_payload = matches!(
                &outcome,
                Err(FrameError { code: "invalid_payload", .. })
            );
            match action.as_str() {
                "heartbeat" => prop_assert!(
                    matches!(outcome, Ok(ClientFrame::Heartbeat | ClientFrame::Pong)),
                    "heartbeat: {:?}", outcome
                ),
                "publish" => prop_assert_eq!(outcome.unwrap_err().code, "forbidden"),
                "subscribe" => {
                    let ok = matches!(outcome, Ok(ClientFrame::Subscribe { .. })) || refused_payload;
                    prop_assert!(ok, "subscribe: {:?}", outcome);
                }
                "unsubscribe" => {
                    let ok =
                        matches!(outcome, Ok(ClientFrame::Unsubscribe { .. })) || refused_payload;
                    prop_assert!(ok, "unsubscribe: {:?}", outcome);
                }
                "availability" => {
                    let ok = matches!(outcome, Ok(ClientFrame::Availability(_))) || refused_payload;
                    prop_assert!(ok, "availability: {:?}", outcome);
                }
                _ => prop_assert_eq!(outcome.unwrap_err().code, "unknown_action"),
            }
        }

        /// A frame whose `action` is not a string, or that is not an object, is `invalid_frame`.
        #[test]
        fn frames_without_a_string_action(value in json_value()) {
            let action_is_string = value.get("action").is_some_and(Value::is_string);
            let outcome = parse_checked(&value.to_string())?;
            if !action_is_string {
                prop_assert_eq!(outcome.unwrap_err().code, "invalid_frame");
            }
        }

        #[test]
        fn subscribe_round_trips(
            topic in any::<String>(),
            since in prop::option::of(any::<String>()),
            noise in prop::option::of(json_value()),
        ) {
            let mut payload = json!({"topic": topic, "since": since});
            if let Some(noise) = noise {
                payload["unknown_field"] = noise;
            }
            let text = json!({"action": "subscribe", "payload": payload}).to_string();
            prop_assert_eq!(parse_checked(&text)?, Ok(ClientFrame::Subscribe { topic, since }));
        }

        #[test]
        fn unsubscribe_round_trips(topic in any::<String>()) {
            let text = json!({"action": "unsubscribe", "payload": {"topic": topic}}).to_string();
            prop_assert_eq!(parse_checked(&text)?, Ok(ClientFrame::Unsubscribe { topic }));
        }

        /// Any heartbeat is a heartbeat, and the server's own heartbeat frames parse as one;
        /// only the text `pong` makes it an answer.
        #[test]
        fn heartbeat_round_trips(text in any::<String>(), payload in json_value()) {
            let expected = if text == "pong" { ClientFrame::Pong } else { ClientFrame::Heartbeat };
            prop_assert_eq!(parse_checked(&heartbeat(&text))?, Ok(expected));
            let is_pong = payload["message"]["text"] == "pong";
            let frame = json!({"action": "heartbeat", "payload": payload}).to_string();
            let expected = if is_pong { ClientFrame::Pong } else { ClientFrame::Heartbeat };
            prop_assert_eq!(parse_checked(&frame)?, Ok(expected));
        }

        #[test]
        fn availability_round_trips(
            project_id in prop::option::of(any::<String>()),
            user_available in prop::option::of(any::<bool>()),
            profile_status in prop::option::of(any::<String>()),
        ) {
            let text = json!({"action": "availability", "payload": {
                "project_id": project_id,
                "user_available": user_available,
                "profileStatus": profile_status,
            }})
            .to_string();
            let outcome = parse_checked(&text)?;
            if user_available.is_none() && profile_status.is_none() {
                prop_assert_eq!(outcome.unwrap_err().code, "invalid_payload");
            } else {
                prop_assert_eq!(
                    outcome,
                    Ok(ClientFrame::Availability(AvailabilityPayload {
                        project_id,
                        user_available,
                        profile_status,
                    }))
                );
            }
        }

        /// The server's `availability` answer parses back into the same values.
        #[test]
        fn server_availability_frames_parse_back(
            project_id in any::<String>(),
            user_available in any::<bool>(),
            profile_status in any::<String>(),
        ) {
            let text = availability(&project_id, user_available, &profile_status);
            prop_assert_eq!(
                parse_checked(&text)?,
                Ok(ClientFrame::Availability(AvailabilityPayload {
                    project_id: Some(project_id),
                    user_available: Some(user_available),
                    profile_status: Some(profile_status),
                }))
            );
        }

        /// Availability fields of the wrong type are refused, never coerced.
        #[test]
        fn availability_with_wrong_types_is_refused(
            user_available in json_value().prop_filter("not a bool or null", |v| !v.is_boolean() && !v.is_null()),
        ) {
            let text = json!({"action": "availability", "payload": {"user_available": user_available}})
                .to_string();
            prop_assert_eq!(parse_checked(&text)?.unwrap_err().code, "invalid_payload");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Deep nesting (top level or in the payload) is an error, never a stack overflow.
        #[test]
        fn deep_nesting_is_refused(depth in 200usize..100_000, in_payload in any::<bool>()) {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let text = if in_payload {
                format!(r#"{{"action":"subscribe","payload":{nested}}}"#)
            } else {
                nested
            };
            prop_assert_eq!(parse_checked(&text)?.unwrap_err().code, "invalid_frame");
        }
    }
}
