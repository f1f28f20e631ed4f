//! Authentication and roles: the teams API takes a project API key; an agent key reads, only
//! an admin key changes.

use super::*;

async fn the_teams_api_takes_a_project_api_key(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Keys only").await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            fx.owner.email,
            common::PASSWORD
        ))
    );
    let bearer_jwt = fx.owner.token.replacen("JWT ", "Bearer ", 1);
    let paths = [
        "/beta/teams".to_string(),
        fx.team_path(&team),
        format!("/beta/teams/{team}/agents"),
        format!("/beta/teams/{team}/presence"),
    ];
    for path in &paths {
        let resp = fx.app.request(Method::GET, path, None, None).await;
        assert!(
            resp.headers.contains_key("www-authenticate"),
            "401 names the scheme: {:?}",
            resp.headers
        );
        message(resp, 401);
        for auth in [
            fx.owner.token.as_str(),
            bearer_jwt.as_str(),
            basic.as_str(),
            "pgk_not-a-real-key",
            "garbage",
        ] {
            let resp = fx.app.get(path, auth).await;
            assert_eq!(
                resp.status.as_u16(),
                401,
                "{path} with `{auth}`: {}",
                resp.text
            );
            message(resp, 401);
        }
    }
    // Changes are refused the same way.
    let resp = fx
        .app
        .request(
            Method::POST,
            "/beta/teams",
            Some(&fx.owner.token),
            Some(json!({"name": "by a user"})),
        )
        .await;
    message(resp, 401);
    let resp = fx
        .app
        .request(
            Method::POST,
            "/beta/teams",
            None,
            Some(json!({"name": "anon"})),
        )
        .await;
    message(resp, 401);
    let resp = fx
        .patch_agents(&fx.owner.token, &team, agent_ids(&[&fx.owner.id]))
        .await;
    message(resp, 401);
    assert!(fx.member_ids(&team).await.is_empty());

    // The key is accepted raw and as `Bearer <key>`.
    let bearer_key = format!("Bearer {}", fx.admin_key);
    let listed = fx.app.get("/beta/teams", &bearer_key).await.expect(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(fx.team_list(&fx.admin_key).await.len(), 1);
}

async fn an_agent_key_reads_and_only_an_admin_key_changes(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Readers").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let key = &fx.agent_key;

    let listed = fx.app.get("/beta/teams", key).await.expect(200);
    assert_eq!(listed, json!({"data": [{"id": team, "name": "Readers"}]}));
    assert_eq!(
        fx.app.get(&fx.team_path(&team), key).await.expect(200),
        json!({"data": {"id": team, "name": "Readers"}})
    );
    let agents = fx
        .app
        .get(&format!("/beta/teams/{team}/agents"), key)
        .await
        .expect(200);
    assert_eq!(agents["data"][0]["id"], json!(fx.owner.id), "{agents}");
    let presence = fx
        .app
        .get(&format!("/beta/teams/{team}/presence"), key)
        .await
        .expect(200);
    assert_eq!(presence["data"][0]["userId"], json!(fx.owner.id));

    let other = fx.mate("alice", "agent").await;
    message(
        fx.app
            .post("/beta/teams", key, json!({"name": "Not allowed"}))
            .await,
        403,
    );
    message(fx.app.delete(&fx.team_path(&team), key).await, 403);
    message(
        fx.patch_agents(key, &team, agent_ids(&[&other.user.id]))
            .await,
        403,
    );
    message(
        fx.delete_agents(key, &team, agent_ids(&[&fx.owner.id]))
            .await,
        403,
    );

    // Nothing changed.
    assert_eq!(
        fx.team_list(&fx.admin_key).await,
        vec![json!({"id": team, "name": "Readers"})]
    );
    assert_eq!(fx.member_ids(&team).await, vec![fx.owner.id.clone()]);
}

engine_tests!(
    the_teams_api_takes_a_project_api_key,
    an_agent_key_reads_and_only_an_admin_key_changes,
);
