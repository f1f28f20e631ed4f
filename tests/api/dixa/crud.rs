//! Team CRUD on `/beta/teams`, and malformed bodies and ids on every route.

use super::*;

async fn create_list_get_and_delete_a_team(engine: Engine) {
    let fx = fixture(engine).await;
    let key = &fx.admin_key;
    assert_eq!(
        fx.app.get("/beta/teams", key).await.expect(200),
        json!({"data": []})
    );

    let resp = fx
        .app
        .post("/beta/teams", key, json!({"name": "Team A"}))
        .await;
    let created = resp.expect(201);
    let a = created["data"]["id"].as_str().expect("an id").to_string();
    assert!(a.parse::<uuid::Uuid>().is_ok(), "{a}");
    assert_eq!(created, json!({"data": {"id": a, "name": "Team A"}}));
    let b = fx.create_team("Team B").await;
    assert_ne!(a, b);

    let mut expected = vec![
        json!({"id": a, "name": "Team A"}),
        json!({"id": b, "name": "Team B"}),
    ];
    expected.sort_by_key(|t| t["id"].as_str().unwrap().to_string());
    assert_eq!(fx.team_list(key).await, expected);
    assert_eq!(
        fx.app.get(&fx.team_path(&a), key).await.expect(200),
        json!({"data": {"id": a, "name": "Team A"}})
    );

    let deleted = fx.app.delete(&fx.team_path(&a), key).await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text);
    assert!(deleted.text.is_empty(), "204 has no body: {}", deleted.text);
    message(fx.app.get(&fx.team_path(&a), key).await, 404);
    message(fx.app.delete(&fx.team_path(&a), key).await, 404);
    assert_eq!(
        fx.team_list(key).await,
        vec![json!({"id": b, "name": "Team B"})]
    );
    assert_eq!(
        fx.app.get(&fx.team_path(&b), key).await.expect(200)["data"]["name"],
        json!("Team B")
    );
}

async fn a_team_needs_a_name_in_a_well_formed_body(engine: Engine) {
    let fx = fixture(engine).await;
    let long = "x".repeat(201);
    let long_body = json!({ "name": long }).to_string();
    let bodies: [&[u8]; 12] = [
        b"{}",
        br#"{"name":""}"#,
        br#"{"name":"   "}"#,
        br#"{"name":null}"#,
        br#"{"name":5}"#,
        br#"{"title":"Team A"}"#,
        b"[]",
        br#""Team A""#,
        br#"{"name":"Team A""#,
        b"not json",
        b"",
        long_body.as_bytes(),
    ];
    for body in bodies {
        let case = String::from_utf8_lossy(body)
            .chars()
            .take(40)
            .collect::<String>();
        let resp = fx
            .app
            .raw(
                Method::POST,
                "/beta/teams",
                Some(&fx.admin_key),
                body.to_vec(),
            )
            .await;
        assert_invalid(resp, "body", &format!("body `{case}`"));
    }
    assert!(fx.team_list(&fx.admin_key).await.is_empty(), "no team made");
}

async fn a_malformed_team_id_is_an_invalid_path_parameter_on_every_route(engine: Engine) {
    let fx = fixture(engine).await;
    let team = fx.create_team("Real").await;
    let valid = agent_ids(&[&fx.owner.id]);
    let routes: [(Method, &str, Option<Value>); 6] = [
        (Method::GET, "", None),
        (Method::DELETE, "", None),
        (Method::GET, "/agents", None),
        (Method::PATCH, "/agents", Some(valid.clone())),
        (Method::DELETE, "/agents", Some(valid.clone())),
        (Method::GET, "/presence", None),
    ];
    let truncated = &team[..team.len() - 1];
    let bad_hex = format!("{truncated}g");
    let too_long = format!("{team}0");
    let bad_ids = [
        "not-a-uuid",
        "123",
        truncated,
        bad_hex.as_str(),
        too_long.as_str(),
        "%20",
    ];
    for bad in bad_ids {
        for (method, suffix, body) in &routes {
            let path = format!("/beta/teams/{bad}{suffix}");
            let resp = fx
                .app
                .request(method.clone(), &path, Some(&fx.admin_key), body.clone())
                .await;
            assert_invalid(resp, "path parameter teamId", &format!("{method} {path}"));
        }
    }
    // The path is checked before the body and the query.
    let resp = fx
        .app
        .raw(
            Method::PATCH,
            "/beta/teams/nope/agents",
            Some(&fx.admin_key),
            b"{oops".to_vec(),
        )
        .await;
    assert_invalid(resp, "path parameter teamId", "bad id and bad body");
    let resp = fx
        .app
        .get("/beta/teams/nope/presence?pageLimit=0", &fx.admin_key)
        .await;
    assert_invalid(resp, "path parameter teamId", "bad id and bad pageLimit");
    // Nothing happened to the real team.
    assert_eq!(fx.member_ids(&team).await, Vec::<String>::new());
    assert_eq!(fx.team_list(&fx.admin_key).await.len(), 1);
}

async fn an_unknown_team_id_is_not_found_on_every_route(engine: Engine) {
    let fx = fixture(engine).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let valid = agent_ids(&[&fx.owner.id]);
    let routes: [(Method, &str, Option<Value>); 6] = [
        (Method::GET, "", None),
        (Method::DELETE, "", None),
        (Method::GET, "/agents", None),
        (Method::PATCH, "/agents", Some(valid.clone())),
        (Method::DELETE, "/agents", Some(valid.clone())),
        (Method::GET, "/presence", None),
    ];
    for (method, suffix, body) in routes {
        let path = format!("/beta/teams/{unknown}{suffix}");
        let resp = fx
            .app
            .request(method.clone(), &path, Some(&fx.admin_key), body)
            .await;
        assert_eq!(resp.status.as_u16(), 404, "{method} {path}: {}", resp.text);
        message(resp, 404);
    }
    assert!(fx.team_list(&fx.admin_key).await.is_empty());
}

engine_tests!(
    create_list_get_and_delete_a_team,
    a_team_needs_a_name_in_a_well_formed_body,
    a_malformed_team_id_is_an_invalid_path_parameter_on_every_route,
    an_unknown_team_id_is_not_found_on_every_route,
);
