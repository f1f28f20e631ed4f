//! Bad input gets a clear 4xx in the error shape, never a 500, and stores nothing half-way.
//! Also the operational endpoints.

use crate::common;

use common::{spawn_app, Engine};
use reqwest::Method;
use serde_json::json;

async fn malformed_bodies_are_rejected_cleanly(engine: Engine) {
    let app = spawn_app(engine).await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    let me = app
        .get(&format!("/v3/{pid}/project_users/me"), &owner.token)
        .await
        .expect(200);
    let puid = me[0]["_id"].as_str().unwrap().to_string();

    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_object = format!(
        "{{\"attributes\":{}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let cases: Vec<(Method, String, Vec<u8>, u16)> = vec![
        (
            Method::POST,
            "/v3/projects".into(),
            huge.clone().into_bytes(),
            413,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users"),
            huge.into_bytes(),
            413,
        ),
        (
            Method::POST,
            "/v3/projects".into(),
            b"{\"name\":".to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v3/projects".into(),
            b"not json".to_vec(),
            400,
        ),
        (Method::POST, "/v3/projects".into(), b"".to_vec(), 400),
        (
            Method::POST,
            "/v3/projects".into(),
            deep.clone().into_bytes(),
            400,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users"),
            nested_object.into_bytes(),
            400,
        ),
        (
            Method::POST,
            "/v3/projects".into(),
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v3/projects".into(),
            b"{\"name\":[1,2]}".to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users"),
            b"{\"user_available\":\"no\"}".to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users/{puid}"),
            b"{\"role\":{}}".to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users/{puid}"),
            b"[]".to_vec(),
            400,
        ),
        (
            Method::POST,
            format!("/v3/{pid}/project_users/invite"),
            b"{\"email\":null}".to_vec(),
            400,
        ),
        (
            Method::POST,
            format!("/v3/{pid}/keys"),
            b"{\"role\":5}".to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v3/auth/signin".into(),
            deep.into_bytes(),
            400,
        ),
        (Method::GET, "/v3/%ZZ/project_users".into(), vec![], 400),
        (
            Method::GET,
            format!("/v3/{pid}/project_users/{}", "9".repeat(40)),
            vec![],
            400,
        ),
        (
            Method::PUT,
            format!("/v3/{pid}/project_users/not-a-uuid/restore"),
            b"{}".to_vec(),
            400,
        ),
        (Method::DELETE, format!("/v3/{pid}/keys/zz"), vec![], 400),
    ];
    for (method, path, body, expected) in cases {
        let resp = app
            .raw(method.clone(), &path, Some(&owner.token), body)
            .await;
        assert_eq!(
            resp.status.as_u16(),
            expected,
            "{method} {path}: {}",
            resp.text
        );
        assert_eq!(
            resp.body["success"],
            json!(false),
            "{method} {path}: {}",
            resp.text
        );
    }
    // Nothing was stored by the failed requests.
    let me_after = app
        .get(&format!("/v3/{pid}/project_users/me"), &owner.token)
        .await
        .expect(200);
    assert_eq!(me_after[0]["user_available"], json!(true));
    assert_eq!(me_after[0]["updatedAt"], me[0]["updatedAt"]);
    assert_eq!(
        app.get(&format!("/v3/{pid}/keys"), &owner.token)
            .await
            .expect(200),
        json!([])
    );
}

async fn unknown_routes_and_methods_speak_json(engine: Engine) {
    let app = spawn_app(engine).await;
    let resp = app
        .request(Method::GET, "/v3/nothing/here/at/all", None, None)
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body["success"], json!(false));
    let resp = app
        .request(Method::PATCH, "/v3/auth/signin", None, None)
        .await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.body["success"], json!(false));
}

async fn operational_endpoints(engine: Engine) {
    let app = spawn_app(engine).await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.request(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    app.request(Method::GET, "/v3/users", None, None)
        .await
        .expect(401);
    let resp = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(resp.status, 200);
    assert!(resp.text.contains("http_requests_total"), "{}", resp.text);
    assert!(resp.text.contains("route=\"/v3/users\""), "{}", resp.text);
    assert!(
        resp.text.contains("http_request_duration_seconds_bucket"),
        "{}",
        resp.text
    );
    // Every response carries a request id.
    let resp = app.request(Method::GET, "/healthz", None, None).await;
    assert!(resp.headers.contains_key("x-request-id"));
}

engine_tests!(
    malformed_bodies_are_rejected_cleanly,
    unknown_routes_and_methods_speak_json,
    operational_endpoints,
);
