//! The attack generators: malformed JSON, wrong JSON types per field, raw, huge and deep bodies,
//! invalid UTF-8, malformed and unknown ids.

use super::*;

/// Malformed JSON, in every family answered 400.
pub(super) fn malformed(route: &Route, fx: &Fx) -> Vec<Attack> {
    let mut bodies: Vec<(&str, Vec<u8>)> = vec![
        ("unclosed object", b"{".to_vec()),
        ("missing value", b"{\"a\":}".to_vec()),
        ("not JSON", b"not json".to_vec()),
        ("trailing comma", b"{\"a\":1,}".to_vec()),
        ("single quotes", b"{'a':1}".to_vec()),
        ("trailing garbage", b"{\"a\":1} trailing".to_vec()),
        ("two documents", b"{}{}".to_vec()),
        ("byte order mark", b"\xef\xbb\xbf{}".to_vec()),
        ("NaN", b"{\"a\":NaN}".to_vec()),
        ("unterminated string", b"{\"a\":\"abc}".to_vec()),
        ("NUL byte", b"\x00".to_vec()),
        ("unclosed array", b"[1,2".to_vec()),
        (
            "control character in a string",
            b"{\"a\":\"x\x01y\"}".to_vec(),
        ),
    ];
    if !route.empty_ok {
        bodies.push(("empty", b"".to_vec()));
        bodies.push(("whitespace", b"  \n ".to_vec()));
    }
    let path = fx.path(route.template, None);
    bodies
        .into_iter()
        .map(|(label, body)| Attack {
            label: format!("malformed JSON: {label}"),
            path: path.clone(),
            body,
            expect: Expect::status(400),
        })
        .collect()
}

/// The body with `field` set to `value` (under the Desk wrapper when `wrapped`).
pub(super) fn with_field(route: &Route, field: &str, value: Value, wrapped: bool) -> Value {
    let mut inner = route.base.clone();
    inner[field] = value;
    match (route.wrapper, wrapped) {
        (Some(wrapper), true) => json!({ wrapper: inner }),
        _ => inner,
    }
}

/// Each field with each wrong type; and bodies that are not objects.
pub(super) fn wrong_types(route: &Route, fx: &Fx) -> Vec<Attack> {
    let path = fx.path(route.template, None);
    let status = if route.family == Family::Auth {
        422
    } else {
        400
    };
    let dixa_message = (route.family == Family::Dixa).then_some("Invalid value for: body");
    let forms: &[bool] = if route.wrapper.is_some() {
        &[true, false]
    } else {
        &[false]
    };
    let mut attacks = Vec::new();
    for &(field, ty) in &route.fields {
        for value in wrong_values(ty, fx) {
            for &wrapped in forms {
                let body = with_field(route, field, value.clone(), wrapped);
                attacks.push(Attack {
                    label: format!("{field} = {value} (wrapped: {wrapped})"),
                    path: path.clone(),
                    body: body.to_string().into_bytes(),
                    expect: Expect {
                        statuses: vec![status],
                        desk_field: (route.family == Family::Desk).then_some(field),
                        dixa_message,
                    },
                });
            }
        }
    }
    let mut not_objects = vec![json!(5), json!("text"), json!(true), json!([])];
    if !route.empty_ok {
        // `null`, like an empty body, is a valid request where the body is optional.
        not_objects.push(json!(null));
    }
    if let Some(wrapper) = route.wrapper {
        for value in [json!(5), json!("text"), json!(true), json!([]), json!([1])] {
            attacks.push(Attack {
                label: format!("{wrapper} = {value}"),
                path: path.clone(),
                body: json!({ wrapper: value }).to_string().into_bytes(),
                expect: Expect {
                    statuses: vec![400],
                    desk_field: Some(wrapper),
                    dixa_message: None,
                },
            });
        }
    } else {
        not_objects.push(json!([{}]));
    }
    for value in not_objects {
        attacks.push(Attack {
            label: format!("body = {value}"),
            path: path.clone(),
            body: value.to_string().into_bytes(),
            expect: Expect {
                statuses: vec![status],
                desk_field: None,
                dixa_message,
            },
        });
    }
    attacks
}

/// `{"<field>": <value>}` as bytes, for the byte-level attacks: the first string field (so that
/// the value is decoded as a string, not skipped or refused for its type), inside an array for
/// `agentIds`, under the wrapper for Desk; a filler key if the route has no fields.
pub(super) fn raw_body(route: &Route, value: &[u8]) -> Vec<u8> {
    let target = route
        .fields
        .iter()
        .find(|(_, ty)| matches!(ty, Ty::Str))
        .or_else(|| route.fields.first());
    let (field, in_array) = match target {
        Some((field, ty)) => (*field, matches!(ty, Ty::Ids)),
        None => ("x", false),
    };
    let mut body = Vec::new();
    if let Some(wrapper) = route.wrapper {
        body.extend_from_slice(format!("{{\"{wrapper}\":").as_bytes());
    }
    body.extend_from_slice(format!("{{\"{field}\":").as_bytes());
    if in_array {
        body.push(b'[');
    }
    body.extend_from_slice(value);
    if in_array {
        body.push(b']');
    }
    body.push(b'}');
    if route.wrapper.is_some() {
        body.push(b'}');
    }
    body
}

/// `nested` where the route really decodes it: inside its first object field (`attributes`,
/// `settings`), else as [`raw_body`] does. (A deep value under an unknown key is skipped without
/// recursion, like any unknown field, and the request is valid.)
pub(super) fn deep_body(route: &Route, nested: &[u8]) -> Vec<u8> {
    match route.fields.iter().find(|(_, ty)| matches!(ty, Ty::Obj)) {
        Some((field, _)) => {
            let mut body = format!("{{\"{field}\":{{\"a\":").into_bytes();
            body.extend_from_slice(nested);
            body.extend_from_slice(b"}}");
            body
        }
        None => raw_body(route, nested),
    }
}

/// Over 1 MiB (413), 10,000-deep nesting and invalid UTF-8 (400).
pub(super) fn bytes_attacks(route: &Route, fx: &Fx) -> Vec<Attack> {
    let path = fx.path(route.template, None);
    let attack = |label: &str, body: Vec<u8>, status: u16| Attack {
        label: label.to_string(),
        path: path.clone(),
        body,
        expect: Expect::status(status),
    };
    let huge_string = format!("\"{}\"", "x".repeat(OVERSIZED));
    let deep_arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    vec![
        attack("over 1 MiB", raw_body(route, huge_string.as_bytes()), 413),
        attack(
            "over 1 MiB of spaces",
            format!("{}{{}}", " ".repeat(OVERSIZED)).into_bytes(),
            413,
        ),
        attack(
            "10,000 nested arrays",
            deep_arrays.clone().into_bytes(),
            400,
        ),
        attack(
            "10,000 nested arrays in a field",
            deep_body(route, deep_arrays.as_bytes()),
            400,
        ),
        attack(
            "10,000 nested objects in a field",
            deep_body(route, deep_objects.as_bytes()),
            400,
        ),
        attack(
            "100,000 unclosed arrays",
            "[".repeat(100_000).into_bytes(),
            400,
        ),
        attack(
            "invalid UTF-8 in a string",
            raw_body(route, b"\"\xff\xfe\""),
            400,
        ),
        attack(
            "overlong UTF-8 encoding",
            raw_body(route, b"\"\xc0\xaf\""),
            400,
        ),
        attack(
            "UTF-8 encoded surrogate",
            raw_body(route, b"\"\xed\xa0\x80\""),
            400,
        ),
        attack(
            "truncated UTF-8 sequence",
            raw_body(route, b"\"\xe2\x82\""),
            400,
        ),
        attack(
            "lone surrogate escape",
            raw_body(route, br#""\ud800""#),
            400,
        ),
        attack("number out of range", raw_body(route, b"1e400"), 400),
        attack("invalid UTF-8 in a key", b"{\"\xc3\x28\":1}".to_vec(), 400),
        // JSON text must be UTF-8 (RFC 8259) even where the route ignores the field.
        attack(
            "invalid UTF-8 in an ignored field",
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            400,
        ),
        attack(
            "invalid UTF-8 deep in an ignored field",
            b"{\"zz_unknown\":[{\"a\":\"ok\"},{\"b\":\"\xc0\xaf\"}]}".to_vec(),
            400,
        ),
        attack("bare invalid bytes", b"\xff\xfe\xfd".to_vec(), 400),
    ]
}

/// Malformed ids that are valid UTF-8 once percent-decoded.
pub(super) fn malformed_ids(valid: &str) -> Vec<String> {
    vec![
        "not-a-uuid".to_string(),
        "12345".to_string(),
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".to_string(),
        format!("{valid}0"),
        valid[..valid.len() - 1].to_string(),
        "%00".to_string(),
        "a%20b".to_string(),
        "9".repeat(2_000),
    ]
}

/// Ids whose percent-decoding is not UTF-8 (see `non_utf8_ids_in_paths`).
pub(super) fn non_utf8_ids(_valid: &str) -> Vec<String> {
    vec![
        "%FF".to_string(),
        "%C3%28".to_string(),
        "%ED%A0%80".to_string(),
    ]
}

/// Each id of the path replaced by each of `bad` (400; Desk: 404 or 400, its id is part of
/// `{id}.json`), and, with `unknown`, by a well-formed unknown UUID (404).
pub(super) fn id_attacks_with(
    route: &Route,
    fx: &Fx,
    bad: fn(&str) -> Vec<String>,
    unknown: bool,
) -> Vec<Attack> {
    let body = match &route.base {
        Value::Null => Vec::new(),
        base => base.to_string().into_bytes(),
    };
    let mut attacks = Vec::new();
    for placeholder in PLACEHOLDERS {
        if !route.template.contains(placeholder) {
            continue;
        }
        for value in bad(fx.id_of(placeholder)) {
            let (statuses, dixa_message) = match route.family {
                Family::Desk => (vec![400, 404], None),
                Family::Dixa => (vec![400], Some("Invalid value for: path parameter teamId")),
                _ => (vec![400], None),
            };
            attacks.push(Attack {
                label: format!(
                    "malformed {placeholder} `{}`",
                    value.chars().take(40).collect::<String>()
                ),
                path: fx.path(route.template, Some((placeholder, &value))),
                body: body.clone(),
                expect: Expect {
                    statuses,
                    desk_field: None,
                    dixa_message,
                },
            });
        }
        if unknown {
            let unknown = uuid::Uuid::new_v4().to_string();
            attacks.push(Attack {
                label: format!("unknown {placeholder}"),
                path: fx.path(route.template, Some((placeholder, &unknown))),
                body: body.clone(),
                expect: Expect::status(404),
            });
        }
    }
    attacks
}

pub(super) fn id_attacks(route: &Route, fx: &Fx) -> Vec<Attack> {
    id_attacks_with(route, fx, malformed_ids, true)
}
