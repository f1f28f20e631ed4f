//! Property tests: `parse` never panics, whatever a client sends, and answers either a known
//! frame or an error with one of the codes the socket documents; valid frames round-trip.

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
