//! Accounts and authentication, against both engines: sign-up, sign-in, the current user,
//! every credential scheme, and their failures.

use crate::common;

use base64::Engine as _;
use common::{spawn_app, spawn_app_with, Engine, PASSWORD};
use reqwest::Method;
use serde_json::json;

async fn signup_normalizes_email_and_never_shows_password(engine: Engine) {
    let app = spawn_app(engine).await;
    let email = format!("Ann.{}@Example.COM", uuid::Uuid::new_v4().simple());
    let resp = app.signup(&email, "Ann").await;
    assert!(!resp.text.contains("password"), "{}", resp.text);
    let body = resp.expect(200);
    assert_eq!(body["success"], json!(true));
    let user = &body["user"];
    assert_eq!(user["email"], json!(email.to_lowercase()));
    assert_eq!(user["firstname"], json!("Ann"));
    assert_eq!(user["_id"], user["id"]);
    assert!(user["_id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());

    // The same email in another case is taken.
    app.signup(&email.to_uppercase(), "Ann")
        .await
        .expect_error(422);

    // Sign-in matches the email case-insensitively and returns a `JWT ` token.
    let resp = app.signin(&email.to_uppercase(), PASSWORD).await;
    assert!(!resp.text.contains("password"), "{}", resp.text);
    let body = resp.expect(200);
    assert_eq!(body["success"], json!(true));
    assert!(body["token"].as_str().unwrap().starts_with("JWT "));
    assert_eq!(body["user"]["_id"], user["_id"]);
}

async fn signup_rejects_invalid_bodies(engine: Engine) {
    let app = spawn_app(engine).await;
    let bad = [
        json!({"password": PASSWORD}),
        json!({"email": "not-an-email", "password": PASSWORD}),
        json!({"email": "a@example.com", "password": "short"}),
        json!({"email": 42, "password": PASSWORD}),
        json!({"email": "a@example.com", "password": ["x"]}),
        json!({"email": "a@example.com", "password": PASSWORD, "firstname": 1}),
        json!(["email"]),
    ];
    for body in bad {
        let resp = app
            .request(Method::POST, "/v3/auth/signup", None, Some(body.clone()))
            .await;
        assert_eq!(resp.status, 422, "{body} -> {}", resp.text);
        resp.expect_error(422);
    }
    app.raw(
        Method::POST,
        "/v3/auth/signup",
        None,
        b"{\"email\":".to_vec(),
    )
    .await
    .expect_error(400);
    // Nothing was created by the failures.
    app.signin("a@example.com", PASSWORD)
        .await
        .expect_error(401);
}

async fn signin_failures(engine: Engine) {
    let app = spawn_app(engine).await;
    let user = app.new_user("bob").await;
    let resp = app.signin(&user.email, "wrong-password").await;
    assert!(resp.headers.contains_key("www-authenticate"));
    resp.expect_error(401);
    app.signin("nobody@example.com", PASSWORD)
        .await
        .expect_error(401);
    app.request(
        Method::POST,
        "/v3/auth/signin",
        None,
        Some(json!({"email": user.email})),
    )
    .await
    .expect_error(422);
}

async fn every_credential_scheme_reaches_the_current_user(engine: Engine) {
    let app = spawn_app(engine).await;
    let user = app.new_user("carol").await;
    let jwt = user.token.strip_prefix("JWT ").unwrap();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{PASSWORD}", user.email));
    for auth in [
        user.token.clone(),
        format!("Bearer {jwt}"),
        jwt.to_string(),
        format!("Basic {basic}"),
    ] {
        let me = app.get("/v3/users", &auth).await.expect(200);
        assert_eq!(me["_id"], json!(user.id), "{auth}");
        assert!(me.get("password").is_none() && me.get("password_hash").is_none());
    }
}

async fn bad_credentials_are_401_with_challenge(engine: Engine) {
    let app = spawn_app(engine.clone()).await;
    let user = app.new_user("dave").await;
    let resp = app.request(Method::GET, "/v3/users", None, None).await;
    assert!(resp.headers.contains_key("www-authenticate"));
    resp.expect_error(401);

    // A token signed with another secret.
    let other = spawn_app_with(
        Engine::Memory,
        &[("jwt_secret", "a-completely-different-secret")],
    )
    .await;
    let stranger = other.new_user("eve").await;
    app.get("/v3/users", &stranger.token)
        .await
        .expect_error(401);

    let wrong_basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:nope", user.email));
    for auth in [
        "JWT not.a.jwt".to_string(),
        "JWT ".to_string(),
        "Digest abc".to_string(),
        format!("Basic {wrong_basic}"),
        "Basic !!!".to_string(),
        "pgk_unknownkey".to_string(),
    ] {
        app.get("/v3/users", &auth).await.expect_error(401);
    }
}

async fn current_user_update(engine: Engine) {
    let app = spawn_app(engine).await;
    let user = app.new_user("fay").await;
    let updated = app
        .put(
            "/v3/users",
            &user.token,
            json!({"firstname": "Faye", "lastname": "Doe", "attributes": {"tz": "UTC"}, "email": "hijack@example.com"}),
        )
        .await
        .expect(200);
    assert_eq!(updated["firstname"], json!("Faye"));
    assert_eq!(updated["lastname"], json!("Doe"));
    assert_eq!(updated["attributes"], json!({"tz": "UTC"}));
    assert_eq!(
        updated["email"],
        json!(user.email),
        "email is not changeable here"
    );
    let me = app.get("/v3/users/", &user.token).await.expect(200);
    assert_eq!(me["firstname"], json!("Faye"));
    app.put("/v3/users", &user.token, json!({"firstname": 7}))
        .await
        .expect_error(400);
}

async fn signin_is_rate_limited_per_email(engine: Engine) {
    let app = spawn_app(engine).await;
    let user = app.new_user("gus").await;
    for attempt in 1..=10 {
        let resp = app.signin(&user.email, "wrong-password").await;
        assert_eq!(resp.status, 401, "attempt {attempt}");
    }
    let resp = app.signin(&user.email, "wrong-password").await;
    let retry_after: u64 = resp.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    resp.expect_error(429);
    // Other emails are unaffected, and a correct password still signs in.
    app.signin("someone-else@example.com", "x")
        .await
        .expect_error(401);
    app.signin(&user.email, PASSWORD).await.expect(200);
    // The success reset the counter.
    app.signin(&user.email, "wrong-password")
        .await
        .expect_error(401);
}

engine_tests!(
    signup_normalizes_email_and_never_shows_password,
    signup_rejects_invalid_bodies,
    signin_failures,
    every_credential_scheme_reaches_the_current_user,
    bad_credentials_are_401_with_challenge,
    current_user_update,
    signin_is_rate_limited_per_email,
);
