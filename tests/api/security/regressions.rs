//! Gateway bugs this suite found (now fixed), kept as regressions.

use super::*;

/// A backend may mint a token that never expires with the largest `exp` there is.
#[tokio::test]
async fn jwt_exp_near_i64_max_is_accepted() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let email = fresh_email("forever");
    let user = app.signup(&email, "forever").await.expect(200)["user"].clone();
    let token = mint(&json!({"sub": user["_id"], "exp": i64::MAX}));
    let me = app
        .get("/v3/users", &format!("JWT {token}"))
        .await
        .expect(200);
    assert_eq!(me["_id"], user["_id"]);
}

/// A deleted API key stops receiving the project's events on the stream and socket it opened
/// while it was valid, as a disabled teammate does (`revoked_credentials_lose_access`).
#[tokio::test]
async fn a_deleted_api_key_loses_its_live_streams() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let t = app.owner_and_agent().await;
    let created = app
        .post(
            &format!("/v3/{}/keys", t.pid),
            &t.owner.token,
            json!({"role": "agent"}),
        )
        .await
        .expect(200);
    let key = created["key"].as_str().unwrap();
    let mut sse = app
        .sse(&t.pid, Some(key), "", None)
        .await
        .expect("the key's stream opens");
    let mut ws = app.ws(&token_query(key)).await;
    let frames = ws.subscribe(&format!("/{}/events", t.pid), None).await;
    assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
    app.delete(
        &format!("/v3/{}/keys/{}", t.pid, created["_id"].as_str().unwrap()),
        &t.owner.token,
    )
    .await
    .expect(200);
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect_error(401);
    app.put(
        &format!("/v3/{}/project_users/{}", t.pid, t.puid),
        &t.owner.token,
        json!({"user_available": false}),
    )
    .await
    .expect(200);
    // Revoked on this node at once: neither the stream nor the socket gets the change.
    sse.expect_silence(Duration::from_millis(500)).await;
    ws.expect_silence(Duration::from_millis(200)).await;
}
