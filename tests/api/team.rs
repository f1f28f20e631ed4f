//! Projects, teammates and API keys through the Tiledesk REST API, against both engines.

use crate::common;

use common::{spawn_app, Engine, TestApp, TestUser};
use reqwest::Method;
use serde_json::{json, Value};

/// An owner, an admin and an agent in one project.
struct Team {
    app: TestApp,
    pid: String,
    owner: TestUser,
    admin: TestUser,
    agent: TestUser,
    agent_puid: String,
}

async fn team(engine: Engine) -> Team {
    let app = spawn_app(engine).await;
    let owner = app.new_user("owner").await;
    let admin = app.new_user("admin").await;
    let agent = app.new_user("agent").await;
    let pid = app.new_project(&owner).await;
    app.add_member(&owner, &pid, &admin, "admin").await;
    let agent_tm = app.add_member(&owner, &pid, &agent, "agent").await;
    Team {
        agent_puid: agent_tm["_id"].as_str().unwrap().to_string(),
        app,
        pid,
        owner,
        admin,
        agent,
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id_user"]["_id"].as_str().unwrap().to_string())
        .collect()
}

async fn project_creation_and_access(engine: Engine) {
    let app = spawn_app(engine).await;
    let owner = app.new_user("owner").await;
    let stranger = app.new_user("stranger").await;
    let project = app
        .post(
            "/v3/projects",
            &owner.token,
            json!({"name": "  Help desk "}),
        )
        .await
        .expect(200);
    assert_eq!(project["name"], json!("Help desk"));
    assert_eq!(project["_id"], project["id"]);
    assert_eq!(project["createdBy"], json!(owner.id));
    let pid = project["_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v3/projects/{pid}"), &owner.token)
            .await
            .expect(200)["name"],
        json!("Help desk")
    );
    app.get(&format!("/v3/projects/{pid}"), &stranger.token)
        .await
        .expect_error(403);
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/v3/projects/{unknown}"), &owner.token)
        .await
        .expect_error(404);
    app.get("/v3/projects/not-a-uuid", &owner.token)
        .await
        .expect_error(400);
    app.get(&format!("/v3/{unknown}/project_users"), &owner.token)
        .await
        .expect_error(404);
    for name in [json!(""), json!("   "), json!(5), json!(null)] {
        app.post("/v3/projects", &owner.token, json!({"name": name}))
            .await
            .expect_error(400);
    }
    // The creator is the owner teammate.
    let me = app
        .get(&format!("/v3/{pid}/project_users/me"), &owner.token)
        .await
        .expect(200);
    assert_eq!(me.as_array().unwrap().len(), 1);
    assert_eq!(me[0]["role"], json!("owner"));
}

async fn teammate_json_has_every_contract_field(engine: Engine) {
    let t = team(engine).await;
    let list = t
        .app
        .get(&format!("/v3/{}/project_users", t.pid), &t.agent.token)
        .await
        .expect(200);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let agent = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["_id"] == json!(t.agent_puid))
        .unwrap();
    let mut keys: Vec<&str> = agent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "_id",
        "id",
        "id_project",
        "id_user",
        "role",
        "user_available",
        "profileStatus",
        "max_served_chat",
        "number_assigned_requests",
        "isBusy",
        "status",
        "trashed",
        "isAuthenticated",
        "presence",
        "routable",
        "attributes",
        "tags",
        "settings",
        "createdBy",
        "createdAt",
        "updatedAt",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(agent["id"], agent["_id"]);
    assert_eq!(agent["id_project"], json!(t.pid));
    assert_eq!(agent["id_user"]["_id"], json!(t.agent.id));
    assert_eq!(agent["id_user"]["id"], json!(t.agent.id));
    assert_eq!(agent["id_user"]["email"], json!(t.agent.email));
    assert!(agent["id_user"].get("password").is_none());
    assert_eq!(agent["role"], json!("agent"));
    assert_eq!(agent["user_available"], json!(true));
    assert_eq!(agent["status"], json!("active"));
    assert_eq!(agent["trashed"], json!(false));
    assert_eq!(agent["isBusy"], json!(false));
    assert_eq!(agent["isAuthenticated"], json!(true));
    assert_eq!(agent["routable"], json!(false), "offline: not routable");
    assert_eq!(agent["createdBy"], json!(t.owner.id));
    let presence = &agent["presence"];
    assert_eq!(presence["status"], json!("offline"));
    assert_eq!(presence["connections"], json!(0));
    assert_eq!(presence["channels"], json!([]));
    assert!(presence.get("changedAt").is_some() && presence.get("lastSeenAt").is_some());
    let created = agent["createdAt"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 24,
        "RFC 3339 with ms: {created}"
    );
}

async fn lookups_are_scoped_to_the_project(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let one = app
        .get(
            &format!("/v3/{}/project_users/{}", t.pid, t.agent_puid),
            &t.agent.token,
        )
        .await
        .expect(200);
    assert_eq!(one["id_user"]["_id"], json!(t.agent.id));
    let by_user = app
        .get(
            &format!("/v3/{}/project_users/users/{}", t.pid, t.agent.id),
            &t.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(by_user.as_array().unwrap().len(), 1);
    assert_eq!(by_user[0]["_id"], json!(t.agent_puid));

    // A second project with its own teammate: its ids are 404 in the first project.
    let other_owner = app.new_user("other").await;
    let other_pid = app.new_project(&other_owner).await;
    let other_me = app
        .get(
            &format!("/v3/{other_pid}/project_users/me"),
            &other_owner.token,
        )
        .await
        .expect(200);
    let other_puid = other_me[0]["_id"].as_str().unwrap();
    app.get(
        &format!("/v3/{}/project_users/{other_puid}", t.pid),
        &t.owner.token,
    )
    .await
    .expect_error(404);
    app.get(
        &format!("/v3/{}/project_users/users/{}", t.pid, other_owner.id),
        &t.owner.token,
    )
    .await
    .expect_error(404);
    app.put(
        &format!("/v3/{}/project_users/{other_puid}", t.pid),
        &t.owner.token,
        json!({"user_available": false}),
    )
    .await
    .expect_error(404);
    app.delete(
        &format!("/v3/{}/project_users/{other_puid}?hard=true", t.pid),
        &t.owner.token,
    )
    .await
    .expect_error(404);
    // ... and were not touched or created.
    let still = app
        .get(
            &format!("/v3/{other_pid}/project_users/{other_puid}"),
            &other_owner.token,
        )
        .await
        .expect(200);
    assert_eq!(still["user_available"], json!(true));
    assert_eq!(
        app.get(&format!("/v3/{}/project_users", t.pid), &t.owner.token)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Members of one project are strangers to the other.
    app.get(&format!("/v3/{other_pid}/project_users"), &t.agent.token)
        .await
        .expect_error(403);
    // Malformed ids are 400.
    app.get(&format!("/v3/{}/project_users/123", t.pid), &t.owner.token)
        .await
        .expect_error(400);
    app.get(
        &format!("/v3/{}/project_users/users/xyz", t.pid),
        &t.owner.token,
    )
    .await
    .expect_error(400);
}

async fn invite_edge_cases(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let invite = |who: &TestUser, email: &str, role: &str| {
        let body = json!({"email": email, "role": role});
        let path = format!("/v3/{}/project_users/invite", t.pid);
        let token = who.token.clone();
        async move { app.post(&path, &token, body).await }
    };
    // Self-invitation and active members.
    assert_eq!(
        invite(&t.owner, &t.owner.email.to_uppercase(), "agent")
            .await
            .expect_error(403)["code"],
        json!(4000)
    );
    assert_eq!(
        invite(&t.owner, &t.agent.email, "admin")
            .await
            .expect_error(403)["code"],
        json!(4001)
    );
    // Roles and emails are validated.
    for role in ["owner", "root", "user", "guest", ""] {
        invite(&t.owner, "new@example.com", role)
            .await
            .expect_error(400);
    }
    invite(&t.owner, "not-an-email", "agent")
        .await
        .expect_error(400);
    app.post(
        &format!("/v3/{}/project_users/invite", t.pid),
        &t.owner.token,
        json!({"email": 3, "role": "agent"}),
    )
    .await
    .expect_error(400);
    // Agents cannot invite.
    invite(&t.agent, "new@example.com", "agent")
        .await
        .expect_error(403);

    // An unknown email gets a pending invitation with a token, replaced (not duplicated) by a
    // re-invite, whose new token voids the old one; a sign-up with the token turns it into a
    // teammate.
    let email = format!("late-{}@example.com", uuid::Uuid::new_v4().simple());
    let pending = invite(&t.admin, &email, "agent").await.expect(200);
    assert_eq!(pending["pendingInvitation"]["email"], json!(email));
    let first_token = pending["pendingInvitation"]["token"].as_str().unwrap();
    let again = invite(&t.admin, &email.to_uppercase(), "supervisor")
        .await
        .expect(200);
    let token = again["pendingInvitation"]["token"].as_str().unwrap();
    assert_ne!(token, first_token, "a new invitation, a new token");
    let signup = |token: &str| {
        app.request(
            Method::POST,
            "/v3/auth/signup",
            None,
            Some(
                json!({"email": email, "password": common::PASSWORD, "firstname": "Late",
                "invite_token": token}),
            ),
        )
    };
    signup(first_token).await.expect_error(422);
    let late = signup(token).await.expect(200)["user"]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = app
        .get(&format!("/v3/{}/project_users", t.pid), &t.owner.token)
        .await
        .expect(200);
    let late_tms: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id_user"]["_id"] == json!(late))
        .collect();
    assert_eq!(
        late_tms.len(),
        1,
        "exactly one teammate from the invitation"
    );
    assert_eq!(
        late_tms[0]["role"],
        json!("supervisor"),
        "the latest invitation wins"
    );
    assert_eq!(late_tms[0]["status"], json!("active"));

    // A disabled member is reactivated by an invite, never duplicated; the same for a trashed one.
    app.delete(
        &format!("/v3/{}/project_users/{}", t.pid, t.agent_puid),
        &t.owner.token,
    )
    .await
    .expect(200);
    let back = invite(&t.admin, &t.agent.email, "supervisor")
        .await
        .expect(200);
    assert_eq!(back["_id"], json!(t.agent_puid));
    assert_eq!(back["status"], json!("active"));
    assert_eq!(back["role"], json!("supervisor"));
    app.delete(
        &format!("/v3/{}/project_users/{}?soft=true", t.pid, t.agent_puid),
        &t.owner.token,
    )
    .await
    .expect(200);
    let back = invite(&t.admin, &t.agent.email, "agent").await.expect(200);
    assert_eq!(back["_id"], json!(t.agent_puid));
    assert_eq!(back["trashed"], json!(false));
    let list = app
        .get(
            &format!("/v3/{}/project_users?trashed=true", t.pid),
            &t.owner.token,
        )
        .await
        .expect(200);
    let agent_count = ids(&list).iter().filter(|id| **id == t.agent.id).count();
    assert_eq!(agent_count, 1);
}

async fn own_teammate_update(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let path = format!("/v3/{}/project_users/", t.pid);
    let me = app
        .put(
            &path,
            &t.agent.token,
            json!({
                "user_available": false, "profileStatus": "on the phone", "max_assigned_chat": 2,
                "attributes": {"lang": "it"}, "settings": {"sound": false},
                "status": "disabled", "number_assigned_requests": 99
            }),
        )
        .await
        .expect(200);
    assert_eq!(me["_id"], json!(t.agent_puid));
    assert_eq!(me["user_available"], json!(false));
    assert_eq!(me["profileStatus"], json!("on the phone"));
    assert_eq!(me["max_served_chat"], json!(2));
    assert_eq!(me["attributes"], json!({"lang": "it"}));
    assert_eq!(me["settings"], json!({"sound": false}));
    assert_eq!(
        me["status"],
        json!("active"),
        "admin-only fields are ignored on the self route"
    );
    assert_eq!(me["number_assigned_requests"], json!(0));
    // Without the trailing slash too.
    let me = app
        .put(
            &path[..path.len() - 1],
            &t.agent.token,
            json!({"user_available": true}),
        )
        .await
        .expect(200);
    assert_eq!(me["user_available"], json!(true));
    assert_eq!(
        me["profileStatus"],
        json!("on the phone"),
        "unnamed fields are kept"
    );
    // Agents cannot change their role; admins can (but not grant owner).
    app.put(&path, &t.agent.token, json!({"role": "admin"}))
        .await
        .expect_error(403);
    let admin = app
        .put(&path, &t.admin.token, json!({"role": "supervisor"}))
        .await
        .expect(200);
    assert_eq!(admin["role"], json!("supervisor"));
    app.put(&path, &t.owner.token, json!({"user_available": "yes"}))
        .await
        .expect_error(400);
    app.put(&path, &t.owner.token, json!({"role": "emperor"}))
        .await
        .expect_error(400);
}

async fn admin_teammate_update(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let path = format!("/v3/{}/project_users/{}", t.pid, t.agent_puid);
    let updated = app
        .put(
            &path,
            &t.admin.token,
            json!({"max_served_chat": 2, "number_assigned_requests": 2, "role": "supervisor"}),
        )
        .await
        .expect(200);
    assert_eq!(updated["isBusy"], json!(true));
    assert_eq!(updated["role"], json!("supervisor"));
    let updated = app
        .put(
            &path,
            &t.admin.token,
            json!({"number_assigned_requests": 1}),
        )
        .await
        .expect(200);
    assert_eq!(updated["isBusy"], json!(false));
    // Agents may not use the admin route, even on themselves.
    app.put(&path, &t.agent.token, json!({"user_available": false}))
        .await
        .expect_error(403);
    // Only owners grant or take ownership.
    app.put(&path, &t.admin.token, json!({"role": "owner"}))
        .await
        .expect_error(403);
    let owner_tm = app
        .get(&format!("/v3/{}/project_users/me", t.pid), &t.owner.token)
        .await
        .expect(200)[0]
        .clone();
    let owner_path = format!(
        "/v3/{}/project_users/{}",
        t.pid,
        owner_tm["_id"].as_str().unwrap()
    );
    app.put(&owner_path, &t.admin.token, json!({"role": "agent"}))
        .await
        .expect_error(403);
    let promoted = app
        .put(&path, &t.owner.token, json!({"role": "owner"}))
        .await
        .expect(200);
    assert_eq!(promoted["role"], json!("owner"));
    // Validation, and never creating a record.
    app.put(&path, &t.owner.token, json!({"status": "sleeping"}))
        .await
        .expect_error(400);
    app.put(
        &path,
        &t.owner.token,
        json!({"number_assigned_requests": -1}),
    )
    .await
    .expect_error(400);
    app.put(&path, &t.owner.token, json!({"max_served_chat": "many"}))
        .await
        .expect_error(400);
    let missing = format!("/v3/{}/project_users/{}", t.pid, uuid::Uuid::new_v4());
    app.put(&missing, &t.owner.token, json!({"user_available": false}))
        .await
        .expect_error(404);
    let list = app
        .get(&format!("/v3/{}/project_users", t.pid), &t.owner.token)
        .await
        .expect(200);
    assert_eq!(list.as_array().unwrap().len(), 3);
    // Disabling through status works and locks the teammate out.
    app.put(&path, &t.owner.token, json!({"status": "disabled"}))
        .await
        .expect(200);
    app.get(&format!("/v3/{}/project_users", t.pid), &t.agent.token)
        .await
        .expect_error(403);
}

async fn removal_modes_and_restore(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let path = format!("/v3/{}/project_users/{}", t.pid, t.agent_puid);
    let list_path = format!("/v3/{}/project_users", t.pid);
    app.delete(&path, &t.agent.token).await.expect_error(403);

    // Disable: visible, status disabled, unavailable, locked out.
    let disabled = app.delete(&path, &t.admin.token).await.expect(200);
    assert_eq!(disabled["status"], json!("disabled"));
    assert_eq!(disabled["user_available"], json!(false));
    assert!(ids(&app.get(&list_path, &t.owner.token).await.expect(200)).contains(&t.agent.id));
    app.get(&list_path, &t.agent.token).await.expect_error(403);
    app.put(&format!("{path}/restore"), &t.admin.token, json!({}))
        .await
        .expect_error(400);
    // Re-enable through the admin route.
    app.put(&path, &t.admin.token, json!({"status": "active"}))
        .await
        .expect(200);
    app.get(&list_path, &t.agent.token).await.expect(200);

    // Soft delete: trashed, hidden unless asked for, restorable.
    let trashed = app
        .delete(&format!("{path}?soft=true"), &t.admin.token)
        .await
        .expect(200);
    assert_eq!(trashed["trashed"], json!(true));
    assert!(!ids(&app.get(&list_path, &t.owner.token).await.expect(200)).contains(&t.agent.id));
    assert!(ids(&app
        .get(&format!("{list_path}?trashed=true"), &t.owner.token)
        .await
        .expect(200))
    .contains(&t.agent.id));
    app.get(&list_path, &t.agent.token).await.expect_error(403);
    let restored = app
        .put(&format!("{path}/restore"), &t.admin.token, json!({}))
        .await
        .expect(200);
    assert_eq!(restored["trashed"], json!(false));
    assert_eq!(restored["status"], json!("active"));
    app.get(&list_path, &t.agent.token).await.expect(200);

    // Hard delete: gone; restoring it is 404.
    app.delete(&format!("{path}?soft=true&hard=true"), &t.admin.token)
        .await
        .expect_error(400);
    let deleted = app
        .delete(&format!("{path}?hard=true"), &t.admin.token)
        .await
        .expect(200);
    assert_eq!(deleted["_id"], json!(t.agent_puid));
    app.get(&path, &t.owner.token).await.expect_error(404);
    app.put(&format!("{path}/restore"), &t.admin.token, json!({}))
        .await
        .expect_error(404);
    app.delete(&path, &t.admin.token).await.expect_error(404);
    app.get(&list_path, &t.agent.token).await.expect_error(403);
    // The user can be invited again as a fresh teammate.
    let again = app.add_member(&t.owner, &t.pid, &t.agent, "agent").await;
    assert_ne!(again["_id"], json!(t.agent_puid));
}

async fn the_last_owner_stays(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let owner_tm = app
        .get(&format!("/v3/{}/project_users/me", t.pid), &t.owner.token)
        .await
        .expect(200)[0]
        .clone();
    let owner_path = format!(
        "/v3/{}/project_users/{}",
        t.pid,
        owner_tm["_id"].as_str().unwrap()
    );
    for suffix in ["", "?soft=true", "?hard=true"] {
        app.delete(&format!("{owner_path}{suffix}"), &t.owner.token)
            .await
            .expect_error(403);
    }
    app.put(
        &format!("/v3/{}/project_users", t.pid),
        &t.owner.token,
        json!({"role": "admin"}),
    )
    .await
    .expect_error(403);
    app.put(&owner_path, &t.owner.token, json!({"status": "disabled"}))
        .await
        .expect_error(403);
    // With a second owner, the first may step down.
    let agent_path = format!("/v3/{}/project_users/{}", t.pid, t.agent_puid);
    app.put(&agent_path, &t.owner.token, json!({"role": "owner"}))
        .await
        .expect(200);
    let stepped = app
        .put(
            &format!("/v3/{}/project_users", t.pid),
            &t.owner.token,
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    assert_eq!(stepped["role"], json!("admin"));
    // Now the agent-turned-owner is the last one.
    app.delete(&agent_path, &t.agent.token)
        .await
        .expect_error(403);
}

async fn concurrent_owner_demotions_leave_one_owner(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let agent_path = format!("/v3/{}/project_users/{}", t.pid, t.agent_puid);
    app.put(&agent_path, &t.owner.token, json!({"role": "owner"}))
        .await
        .expect(200);
    let self_path = format!("/v3/{}/project_users", t.pid);
    for _ in 0..5 {
        // Both owners step down at once: exactly one may succeed.
        let (a, b) = tokio::join!(
            app.put(&self_path, &t.owner.token, json!({"role": "admin"})),
            app.put(&self_path, &t.agent.token, json!({"role": "admin"})),
        );
        let ok = [a.status.as_u16(), b.status.as_u16()]
            .iter()
            .filter(|s| **s == 200)
            .count();
        assert_eq!(ok, 1, "{} / {}", a.text, b.text);
        let owners = app
            .get(
                &format!("/v3/{}/project_users?role=owner", t.pid),
                &t.admin.token,
            )
            .await
            .expect(200);
        assert_eq!(owners.as_array().unwrap().len(), 1);
        // Restore two owners for the next round.
        let remaining = &owners[0];
        let other = if remaining["id_user"]["_id"] == json!(t.owner.id) {
            &t.agent
        } else {
            &t.owner
        };
        let who = if remaining["id_user"]["_id"] == json!(t.owner.id) {
            &t.owner
        } else {
            &t.agent
        };
        let other_tm = app
            .get(
                &format!("/v3/{}/project_users/users/{}", t.pid, other.id),
                &who.token,
            )
            .await
            .expect(200)[0]
            .clone();
        app.put(
            &format!(
                "/v3/{}/project_users/{}",
                t.pid,
                other_tm["_id"].as_str().unwrap()
            ),
            &who.token,
            json!({"role": "owner"}),
        )
        .await
        .expect(200);
    }
}

async fn list_filters(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let list = |query: &str| {
        let path = format!("/v3/{}/project_users{query}", t.pid);
        let token = t.owner.token.clone();
        async move { app.get(&path, &token).await }
    };
    assert_eq!(
        ids(&list("?role=agent").await.expect(200)),
        vec![t.agent.id.clone()]
    );
    let mut both = ids(&list("?role=agent&role=owner").await.expect(200));
    both.sort();
    let mut expected = vec![t.agent.id.clone(), t.owner.id.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(ids(&list("?role=agent,admin").await.expect(200)).len(), 2);
    assert_eq!(
        ids(&list("?presencestatus=offline").await.expect(200)).len(),
        3
    );
    assert!(ids(&list("?presencestatus=online").await.expect(200)).is_empty());
    app.delete(
        &format!("/v3/{}/project_users/{}", t.pid, t.agent_puid),
        &t.owner.token,
    )
    .await
    .expect(200);
    assert_eq!(
        ids(&list("?status=disabled").await.expect(200)),
        vec![t.agent.id.clone()]
    );
    assert_eq!(ids(&list("?status=active").await.expect(200)).len(), 2);
    for bad in [
        "?role=king",
        "?presencestatus=away",
        "?status=gone",
        "?trashed=maybe",
    ] {
        list(bad).await.expect_error(400);
    }
}

async fn available_agents(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let path = format!("/v3/projects/{}/users/availables", t.pid);
    let all = app.get(&path, &t.agent.token).await.expect(200);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == json!(t.agent.id))
        .unwrap();
    assert_eq!(entry["email"], json!(t.agent.email));
    assert_eq!(entry["fullname"], json!("agent Test"));
    assert_eq!(entry["assigned_request"], json!(0));
    app.put(
        &format!("/v3/{}/project_users", t.pid),
        &t.agent.token,
        json!({"user_available": false}),
    )
    .await
    .expect(200);
    app.delete(&format!("/v3/{}/project_users/me", t.pid), &t.owner.token)
        .await
        .expect_error(405);
    let admin_tm = app
        .get(
            &format!("/v3/{}/project_users/users/{}", t.pid, t.admin.id),
            &t.owner.token,
        )
        .await
        .expect(200)[0]
        .clone();
    app.delete(
        &format!(
            "/v3/{}/project_users/{}",
            t.pid,
            admin_tm["_id"].as_str().unwrap()
        ),
        &t.owner.token,
    )
    .await
    .expect(200);
    let left = app.get(&path, &t.owner.token).await.expect(200);
    let left_ids: Vec<&Value> = left.as_array().unwrap().iter().map(|a| &a["id"]).collect();
    assert_eq!(left_ids, vec![&json!(t.owner.id)]);
}

async fn api_keys(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    let keys_path = format!("/v3/{}/keys", t.pid);
    app.post(&keys_path, &t.agent.token, json!({"name": "ci"}))
        .await
        .expect_error(403);
    app.post(&keys_path, &t.admin.token, json!({"role": "owner"}))
        .await
        .expect_error(400);
    let agent_key = app
        .post(&keys_path, &t.admin.token, json!({"name": "bot"}))
        .await
        .expect(200);
    let secret = agent_key["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("pgk_"));
    assert_eq!(agent_key["role"], json!("agent"));
    let admin_key = app
        .post(
            &keys_path,
            &t.owner.token,
            json!({"name": "ops", "role": "admin"}),
        )
        .await
        .expect(200);
    let admin_secret = admin_key["key"].as_str().unwrap().to_string();

    // Listed without the secret.
    let listed = app.get(&keys_path, &t.admin.token).await;
    assert!(!listed.text.contains(&secret) && !listed.text.contains(&admin_secret));
    assert_eq!(listed.expect(200).as_array().unwrap().len(), 2);

    // Usable bare and as Bearer; the role applies.
    let team_path = format!("/v3/{}/project_users", t.pid);
    assert_eq!(
        app.get(&team_path, &secret)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        3
    );
    app.get(&team_path, &format!("Bearer {secret}"))
        .await
        .expect(200);
    let invite_path = format!("/v3/{}/project_users/invite", t.pid);
    let body = json!({"email": "keyed@example.com", "role": "agent"});
    app.post(&invite_path, &secret, body.clone())
        .await
        .expect_error(403);
    app.post(&invite_path, &admin_secret, body)
        .await
        .expect(200);
    // An API key has no teammate of its own, and no user.
    app.get(&format!("/v3/{}/project_users/me", t.pid), &secret)
        .await
        .expect_error(403);
    app.get("/v3/users", &secret).await.expect_error(403);
    // It is 403 on any other project.
    let other_owner = app.new_user("other").await;
    let other_pid = app.new_project(&other_owner).await;
    app.get(&format!("/v3/{other_pid}/project_users"), &admin_secret)
        .await
        .expect_error(403);

    // Deleted keys stop working.
    let key_id = agent_key["_id"].as_str().unwrap();
    app.delete(&format!("{keys_path}/{key_id}"), &t.agent.token)
        .await
        .expect_error(403);
    app.delete(&format!("{keys_path}/{key_id}"), &t.admin.token)
        .await
        .expect(200);
    app.delete(&format!("{keys_path}/{key_id}"), &t.admin.token)
        .await
        .expect_error(404);
    app.delete(&format!("{keys_path}/nope"), &t.admin.token)
        .await
        .expect_error(400);
    app.get(&team_path, &secret).await.expect_error(401);
    // A key id of another project is 404 here.
    let foreign = app
        .post(
            &format!("/v3/{other_pid}/keys"),
            &other_owner.token,
            json!({}),
        )
        .await
        .expect(200);
    app.delete(
        &format!("{keys_path}/{}", foreign["_id"].as_str().unwrap()),
        &t.owner.token,
    )
    .await
    .expect_error(404);
    app.get(
        &format!("/v3/{other_pid}/project_users"),
        foreign["key"].as_str().unwrap(),
    )
    .await
    .expect(200);
}

async fn no_password_anywhere(engine: Engine) {
    let t = team(engine).await;
    let app = &t.app;
    for path in [
        "/v3/users".to_string(),
        format!("/v3/{}/project_users", t.pid),
        format!("/v3/{}/project_users/me", t.pid),
        format!("/v3/{}/project_users/{}", t.pid, t.agent_puid),
        format!("/v3/projects/{}/users/availables", t.pid),
    ] {
        let resp = app
            .request(Method::GET, &path, Some(&t.owner.token), None)
            .await;
        assert_eq!(resp.status, 200, "{path}");
        assert!(
            !resp.text.contains("password") && !resp.text.contains("argon2"),
            "{path}: {}",
            resp.text
        );
    }
}

engine_tests!(
    project_creation_and_access,
    teammate_json_has_every_contract_field,
    lookups_are_scoped_to_the_project,
    invite_edge_cases,
    own_teammate_update,
    admin_teammate_update,
    removal_modes_and_restore,
    the_last_owner_stays,
    concurrent_owner_demotions_leave_one_owner,
    list_filters,
    available_agents,
    api_keys,
    no_password_anywhere,
);
