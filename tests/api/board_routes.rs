//! The routes the board stands on: the page and its embedded assets (`/board`), the caller's
//! projects (`GET /v3/projects`), the teams with their members (`GET /v3/{pid}/teams`), and
//! the socket's `pong` heartbeat, which the gateway takes without answering.

use crate::common;

use common::{spawn_app, token_query, Engine};
use serde_json::json;

async fn the_board_and_its_assets_are_served(engine: Engine) {
    let app = spawn_app(engine).await;
    let page = app
        .raw(reqwest::Method::GET, "/board", None, Vec::new())
        .await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("/board/board.js"), "{}", page.text);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    // Every module the page loads, and the ones they import, are there.
    for file in [
        "board.js",
        "team-board.js",
        "ui.js",
        "board.css",
        "icon.svg",
        "index.js",
        "client.js",
        "team.js",
        "errors.js",
        "emitter.js",
    ] {
        let asset = app
            .raw(
                reqwest::Method::GET,
                &format!("/board/{file}"),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(asset.status, 200, "{file}");
        assert!(!asset.text.is_empty(), "{file}");
        for import in asset.text.lines().filter_map(|l| l.split(" from '").nth(1)) {
            let target = import
                .trim_end_matches("';")
                .trim_start_matches("./")
                .trim_start_matches("/board/");
            let imported = app
                .raw(
                    reqwest::Method::GET,
                    &format!("/board/{target}"),
                    None,
                    Vec::new(),
                )
                .await;
            assert_eq!(imported.status, 200, "{file} imports {target}");
        }
    }
    let missing = app
        .raw(reqwest::Method::GET, "/board/nope.js", None, Vec::new())
        .await;
    missing.expect_error(404);
    let traversal = app
        .raw(
            reqwest::Method::GET,
            "/board/..%2FCargo.toml",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(traversal.status, 404);
}

async fn projects_lists_the_callers_active_memberships(engine: Engine) {
    let app = spawn_app(engine).await;
    let owner = app.new_user("olga").await;
    let agent = app.new_user("bea").await;
    let first = app.new_project(&owner).await;
    let second = app.new_project(&owner).await;
    let teammate = app.add_member(&owner, &second, &agent, "agent").await;

    let mine = app.get("/v3/projects", &owner.token).await.expect(200);
    let ids: Vec<_> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id_project"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(first), json!(second)]);
    assert_eq!(mine[0]["role"], json!("owner"));
    assert_eq!(mine[0]["id_project"]["name"], json!("Support"));

    let theirs = app.get("/v3/projects", &agent.token).await.expect(200);
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    assert_eq!(theirs[0]["_id"], teammate["_id"]);
    assert_eq!(theirs[0]["role"], json!("agent"));

    // A disabled membership is not listed; no credentials is 401.
    let puid = teammate["_id"].as_str().unwrap();
    app.delete(&format!("/v3/{second}/project_users/{puid}"), &owner.token)
        .await
        .expect(200);
    let theirs = app.get("/v3/projects", &agent.token).await.expect(200);
    assert_eq!(theirs, json!([]));
    app.raw(reqwest::Method::GET, "/v3/projects", None, Vec::new())
        .await
        .expect_error(401);
}

async fn teams_lists_members_for_any_member(engine: Engine) {
    let app = spawn_app(engine).await;
    let owner = app.new_user("olga").await;
    let agent = app.new_user("bea").await;
    let pid = app.new_project(&owner).await;
    app.add_member(&owner, &pid, &agent, "agent").await;
    let key = app
        .post(
            &format!("/v3/{pid}/keys"),
            &owner.token,
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    let key = key["key"].as_str().unwrap();
    let team = app
        .post("/beta/teams", key, json!({"name": "Tier 1"}))
        .await
        .expect(201);
    let team_id = team["data"]["id"].as_str().unwrap();
    app.request(
        reqwest::Method::PATCH,
        &format!("/beta/teams/{team_id}/agents"),
        Some(key),
        Some(json!({"agentIds": [agent.id]})),
    )
    .await
    .expect(200);

    // A user's token and the API key see the same teams.
    for credential in [agent.token.as_str(), key] {
        let teams = app
            .get(&format!("/v3/{pid}/teams"), credential)
            .await
            .expect(200);
        assert_eq!(
            teams,
            json!([{"id": team_id, "name": "Tier 1", "members": [agent.id]}])
        );
    }
    let outsider = app.new_user("olli").await;
    app.get(&format!("/v3/{pid}/teams"), &outsider.token)
        .await
        .expect_error(403);
    app.get("/v3/not-a-uuid/teams", &owner.token)
        .await
        .expect_error(400);
}

async fn a_pong_heartbeat_is_taken_without_an_answer(engine: Engine) {
    let app = spawn_app(engine).await;
    let user = app.owner_and_agent().await.agent;
    let mut agent = app.ws(&token_query(&user.token)).await;
    agent
        .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "pong"}}}))
        .await;
    agent
        .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}))
        .await;
    agent
        .send_json(json!({"action": "subscribe", "payload": {"topic": "nowhere"}}))
        .await;
    // One answer for the ping, then the subscribe's error: the pong got none.
    let answer = agent.recv_json().await;
    assert_eq!(
        answer,
        json!({"action": "heartbeat", "payload": {"message": {"text": "pong"}}})
    );
    let next = agent.recv_json().await;
    assert_eq!(next["action"], json!("error"), "{next}");
    assert_eq!(next["payload"]["code"], json!("invalid_topic"), "{next}");
    agent.close().await;
}

engine_tests!(
    the_board_and_its_assets_are_served,
    projects_lists_the_callers_active_memberships,
    teams_lists_members_for_any_member,
    a_pong_heartbeat_is_taken_without_an_answer,
);
