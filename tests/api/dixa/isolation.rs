//! Isolation: a key never reaches another project's teams.

use super::*;

async fn a_key_never_reaches_another_projects_teams(engine: Engine) {
    let fx = fixture(engine).await;
    let ours = fx.create_team("Ours").await;
    let other = other_project(&fx.app).await;
    let created = fx
        .app
        .post("/beta/teams", &other.admin_key, json!({"name": "Theirs"}))
        .await
        .expect(201);
    let theirs = created["data"]["id"].as_str().unwrap().to_string();
    let add_theirs = fx
        .patch_agents(&other.admin_key, &theirs, agent_ids(&[&other.owner.id]))
        .await;
    assert_eq!(add_theirs.status.as_u16(), 200, "{}", add_theirs.text);

    for key in [&fx.admin_key, &fx.agent_key] {
        let routes: [(Method, String, Option<Value>); 8] = [
            (Method::GET, fx.team_path(&theirs), None),
            (Method::DELETE, fx.team_path(&theirs), None),
            (Method::GET, format!("/beta/teams/{theirs}/agents"), None),
            (
                Method::PATCH,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&fx.owner.id])),
            ),
            (
                Method::PATCH,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&other.owner.id])),
            ),
            (
                Method::DELETE,
                format!("/beta/teams/{theirs}/agents"),
                Some(agent_ids(&[&other.owner.id])),
            ),
            (Method::GET, format!("/beta/teams/{theirs}/presence"), None),
            (
                Method::GET,
                format!("/beta/teams/{theirs}/presence?pageLimit=10"),
                None,
            ),
        ];
        let admin = *key == fx.admin_key;
        for (method, path, body) in routes {
            let changes = method != Method::GET;
            let resp = fx.app.request(method.clone(), &path, Some(key), body).await;
            // An agent key is refused a change before the team is looked up (403); either way
            // the other project's team is never visible.
            let expected = if changes && !admin { 403 } else { 404 };
            assert_eq!(
                resp.status.as_u16(),
                expected,
                "{method} {path}: {}",
                resp.text
            );
            message(resp, expected);
        }
        assert_eq!(
            fx.team_list(key).await,
            vec![json!({"id": ours, "name": "Ours"})],
            "our list shows only our team"
        );
    }

    // Their team is untouched and their list never shows ours.
    let body = fx
        .app
        .get(&format!("/beta/teams/{theirs}/agents"), &other.admin_key)
        .await
        .expect(200);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![other.owner.id.as_str()]);
    assert_eq!(
        fx.app
            .get("/beta/teams", &other.admin_key)
            .await
            .expect(200),
        json!({"data": [{"id": theirs, "name": "Theirs"}]})
    );
    message(
        fx.app.get(&fx.team_path(&ours), &other.admin_key).await,
        404,
    );
    assert_ne!(other.pid, fx.pid);
}

engine_tests!(a_key_never_reaches_another_projects_teams,);
