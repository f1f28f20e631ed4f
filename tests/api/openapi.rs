//! The API description (`/openapi.json`): `/openapi.json` documents exactly the routes the router
//! has (the WebSocket aside), each documented operation is really served, and `/docs` works
//! from files in the binary.

use crate::common;

use common::{spawn_app, Engine};
use serde_json::Value;
use std::collections::BTreeSet;

/// Operations that take a user's credentials only (an API key has no user: 403).
const USER_ONLY: [(&str, &str); 6] = [
    ("get", "/v3/users"),
    ("put", "/v3/users"),
    ("post", "/v3/projects"),
    ("get", "/v3/projects"),
    ("get", "/v3/{pid}/project_users/me"),
    ("put", "/v3/{pid}/project_users"),
];

/// Routes that are not HTTP operations: the agent WebSocket (docs/protocol.md describes it).
const NOT_DOCUMENTED: [(&str, &str); 2] = [("GET", "/ws"), ("GET", "/")];

async fn document() -> (common::TestApp, Value) {
    let app = spawn_app(Engine::Memory).await;
    let resp = app.get("/openapi.json", "").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.headers["content-type"], "application/json");
    let doc: Value = serde_json::from_str(&resp.text).expect("the document is JSON");
    (app, doc)
}

/// `(METHOD, pattern)` of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                operations.insert((method.to_ascii_uppercase(), common::routes::pattern(path)));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_of_the_router() {
    let (_app, doc) = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    let mut declared = common::routes::declared();
    for (method, path) in NOT_DOCUMENTED {
        assert!(
            declared.remove(&(method.to_string(), path.to_string())),
            "{path}"
        );
    }
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes missing from the document: {missing:#?}\ndocumented but not routed: {extra:#?}"
    );
}

#[tokio::test]
async fn every_operation_has_answers_errors_and_security_by_family() {
    let (_app, doc) = document().await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["jwt"]["scheme"], "bearer");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["apiKey"]["in"], "header");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let answers = operation["responses"].as_object().unwrap();
            let success = answers.keys().any(|s| s.starts_with('2'));
            assert!(success, "{method} {path} documents no success answer");
            let security: Vec<&str> = operation["security"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let user_only = USER_ONLY.contains(&(method.as_str(), path.as_str()));
            let (expected, errors): (&[&str], &str) = if user_only {
                (&["jwt", "basic"], "Tiledesk")
            } else if path.starts_with("/v3/auth/") {
                (&[], "Tiledesk")
            } else if path.starts_with("/v3/") {
                (&["jwt", "basic", "apiKey"], "Tiledesk")
            } else if path.starts_with("/beta/") {
                (&["apiKey"], "Dixa")
            } else if path.starts_with("/desk/") {
                (&["apiKey"], "Desk")
            } else {
                (&[], "")
            };
            assert_eq!(security, expected, "{method} {path}");
            if errors.is_empty() {
                continue;
            }
            let mut statuses = vec!["400", "503"];
            if !expected.is_empty() {
                statuses.extend(["401", "403", "404"]);
            }
            for status in statuses {
                let answer = &answers[status];
                let named = answer["$ref"].as_str().is_some_and(|r| r.contains(errors));
                let own = answer["content"]["application/json"]["schema"].is_object();
                assert!(
                    named || own,
                    "{method} {path}: no {status} answer: {answer}"
                );
            }
        }
    }
    // Every shared error answer points at its family's error schema, and the schemas exist.
    for (name, answer) in doc["components"]["responses"].as_object().unwrap() {
        let schema = answer["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let schema = schema.rsplit('/').next().unwrap();
        assert!(
            name.starts_with(schema.trim_end_matches("Error")),
            "{name}: {schema}"
        );
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// Each documented operation reaches a handler: never the router's 404 / 405 fallbacks.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let (app, doc) = document().await;
    let client = common::http();
    let id = "00000000-0000-4000-8000-000000000000";
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = if path == "/docs/{file}" {
            "/docs/swagger-ui.css".to_string()
        } else {
            with_ids(path, id)
        };
        for method in item.as_object().unwrap().keys() {
            if path == "/v3/{pid}/events" {
                continue; // a stream: it answers 401 below without credentials anyway
            }
            let method: reqwest::Method = method.to_ascii_uppercase().parse().unwrap();
            let resp = client
                .request(method.clone(), format!("{}{concrete}", app.address))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert_ne!(status, 405, "{method} {concrete}: {body}");
            assert!(
                !body.contains("route not found"),
                "{method} {concrete} hit the fallback: {body}"
            );
        }
    }
}

/// `path` with every `{parameter}` replaced by `id`.
fn with_ids(path: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("a closed {parameter}");
        out.push_str(&rest[..open]);
        out.push_str(id);
        rest = &rest[close + 1..];
    }
    out + rest
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app(Engine::Memory).await;
    let page = app.get("/docs", "").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.text.contains(r#"<base href="/docs/" />"#),
        "{}",
        page.text
    );
    // Every file the page loads is served here: nothing comes from another host.
    for asset in [
        "swagger-ui.css",
        "index.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        assert!(page.text.contains(asset), "{asset}");
        let resp = app.get(&format!("/docs/{asset}"), "").await;
        assert_eq!(resp.status, 200, "{asset}");
        assert!(resp.text.len() > 100, "{asset}: {}", resp.text.len());
    }
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));
    let init = app.get("/docs/swagger-initializer.js", "").await;
    assert!(init.text.contains("/openapi.json"), "{}", init.text);
    // No validator badge, which Swagger UI would load from validator.swagger.io.
    assert!(
        init.text.contains(r#""validatorUrl": "none""#),
        "{}",
        init.text
    );
    let missing = app.get("/docs/no-such-file.js", "").await;
    assert_eq!(missing.status, 404);
}

/// What the document calls valid is accepted, and what it calls invalid is refused: the cases
/// schemathesis found where the two disagreed (the fuzzing run in `.ci/run` covers the rest).
#[tokio::test]
async fn the_gateway_reads_bodies_and_queries_as_the_document_describes_them() {
    let app = spawn_app(Engine::Memory).await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    // 3.0 is an integer in JSON Schema.
    let teammate = app
        .put(
            &format!("/v3/{pid}/project_users"),
            &owner.token,
            serde_json::json!({"max_served_chat": 3.0}),
        )
        .await
        .expect(200);
    assert_eq!(teammate["max_served_chat"], 3);
    for bad in [serde_json::json!(3.5), serde_json::json!(1e300)] {
        let body = serde_json::json!({ "max_served_chat": bad });
        let resp = app
            .put(&format!("/v3/{pid}/project_users"), &owner.token, body)
            .await;
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
    }
    // number_assigned_requests has `minimum: 0` on both update routes.
    let body = serde_json::json!({"number_assigned_requests": -1});
    let resp = app
        .put(&format!("/v3/{pid}/project_users"), &owner.token, body)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    // The key body is optional: `null` is the same as none.
    let client = common::http();
    let resp = client
        .post(format!("{}/v3/{pid}/keys", app.address))
        .header("Authorization", &owner.token)
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let key: Value = resp.json().await.unwrap();
    assert_eq!(key["role"], "agent");
    // A boolean query parameter with no value is not `false`.
    let resp = app
        .get(&format!("/v3/{pid}/project_users?trashed="), &owner.token)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
}
