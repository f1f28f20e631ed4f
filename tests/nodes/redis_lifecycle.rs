//! The Redis engine across process and Redis restarts, with private redis-server instances.

use crate::common;

use common::{eventually, spawn_app, unique_prefix, Engine, RedisServer, PASSWORD};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Everything written through one gateway is read back by a new gateway on the same Redis.
#[tokio::test]
async fn a_restarted_gateway_loses_nothing() {
    let redis = RedisServer::start(false);
    let engine = Engine::RedisAt {
        url: redis.url(),
        prefix: unique_prefix(),
    };
    let first = spawn_app(engine.clone()).await;
    let owner = first.new_user("owner").await;
    let agent = first.new_user("agent").await;
    let pid = first.new_project(&owner).await;
    let agent_tm = first.add_member(&owner, &pid, &agent, "agent").await;
    let puid = agent_tm["_id"].as_str().unwrap().to_string();
    first
        .put(
            &format!("/v3/{pid}/project_users/{puid}"),
            &owner.token,
            json!({"profileStatus": "lunch", "max_served_chat": 4}),
        )
        .await
        .expect(200);
    let key = first
        .post(
            &format!("/v3/{pid}/keys"),
            &owner.token,
            json!({"name": "bot"}),
        )
        .await
        .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let pending_email = format!("pending-{}@example.com", uuid::Uuid::new_v4().simple());
    let invite_token = first
        .post(
            &format!("/v3/{pid}/project_users/invite"),
            &owner.token,
            json!({"email": pending_email, "role": "supervisor"}),
        )
        .await
        .expect(200)["pendingInvitation"]["token"]
        .clone();
    let team_before = first
        .get(&format!("/v3/{pid}/project_users"), &owner.token)
        .await
        .expect(200);
    first.stop().await;

    let second = spawn_app(engine).await;
    // Users (passwords), tokens (same secret), projects, teammates, keys all survive.
    second.signin(&owner.email, PASSWORD).await.expect(200);
    let team_after = second
        .get(&format!("/v3/{pid}/project_users"), &owner.token)
        .await
        .expect(200);
    assert_eq!(team_after, team_before);
    let tm = second
        .get(&format!("/v3/{pid}/project_users/{puid}"), &key)
        .await
        .expect(200);
    assert_eq!(tm["profileStatus"], json!("lunch"));
    assert_eq!(tm["max_served_chat"], json!(4));
    assert_eq!(
        second
            .get(&format!("/v3/{pid}/keys"), &owner.token)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The pending invitation (with its token) survives and converts at a sign-up with the token.
    let signup =
        json!({"email": pending_email, "password": PASSWORD, "invite_token": invite_token});
    let late = second
        .request(reqwest::Method::POST, "/v3/auth/signup", None, Some(signup))
        .await
        .expect(200)["user"]["_id"]
        .clone();
    let late_tm = second
        .get(
            &format!("/v3/{pid}/project_users/users/{}", late.as_str().unwrap()),
            &owner.token,
        )
        .await
        .expect(200);
    assert_eq!(late_tm[0]["role"], json!("supervisor"));
    // Uniqueness survives too.
    second.signup(&owner.email, "Again").await.expect_error(422);
}

/// While Redis is down: requests fail fast with 503 and `/readyz` is 503. When it is back, both
/// recover without restarting the gateway, and persisted data is intact.
#[tokio::test]
async fn the_gateway_rides_out_a_redis_outage() {
    let mut redis = RedisServer::start(true);
    let app = spawn_app(Engine::RedisAt {
        url: redis.url(),
        prefix: unique_prefix(),
    })
    .await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    app.request(Method::GET, "/readyz", None, None)
        .await
        .expect(200);

    redis.kill();
    let started = Instant::now();
    let resp = app
        .get(&format!("/v3/{pid}/project_users"), &owner.token)
        .await;
    assert_eq!(resp.status, 503, "{}", resp.text);
    assert!(resp.headers.contains_key("retry-after"));
    assert_eq!(resp.body["success"], json!(false));
    assert!(
        !resp.text.contains("127.0.0.1"),
        "internal details stay internal: {}",
        resp.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "fails fast: {:?}",
        started.elapsed()
    );
    app.request(Method::GET, "/readyz", None, None)
        .await
        .expect(503);
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.signup("during@example.com", "During")
        .await
        .expect_error(503);

    redis.restart();
    let ready = eventually(Duration::from_secs(10), || async {
        app.request(Method::GET, "/readyz", None, None).await.status == 200
    })
    .await;
    assert!(ready, "/readyz recovers");
    let team = app
        .get(&format!("/v3/{pid}/project_users"), &owner.token)
        .await
        .expect(200);
    assert_eq!(
        team.as_array().unwrap().len(),
        1,
        "data written before the outage is intact"
    );
    app.signup("after@example.com", "After").await.expect(200);
}

/// A gateway can start while Redis is down and becomes ready when Redis appears.
#[tokio::test]
async fn the_gateway_starts_without_redis() {
    let mut redis = RedisServer::start(false);
    redis.kill();
    let app = spawn_app(Engine::RedisAt {
        url: redis.url(),
        prefix: unique_prefix(),
    })
    .await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.request(Method::GET, "/readyz", None, None)
        .await
        .expect(503);
    redis.restart();
    let ready = eventually(Duration::from_secs(10), || async {
        app.request(Method::GET, "/readyz", None, None).await.status == 200
    })
    .await;
    assert!(ready);
    app.new_user("late").await;
}
