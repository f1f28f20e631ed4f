//! The Teamwork-Desk-compatible user update, `PATCH /desk/api/v2/users/{id}.json` (docs/rest.md),
//! through real HTTP against both engines: the mapping onto the user, the teammate and its
//! `settings.desk`; validation (one entry per invalid field, and then nothing changed); 404s and
//! project isolation; authentication; the teammate events; owner protection; email changes.

use crate::common;

use common::{spawn_app, token_query, Agent, Engine, Resp, TestApp, TestUser, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// Every Desk preference, set to a value other than its default.
fn all_preferences() -> Value {
    json!({
        "timezoneId": 42,
        "editMethod": "markdown",
        "ticketReplyRedirect": "Next",
        "isPartTime": true,
        "reviewer": true,
        "sendPushNotifications": false,
        "sendWebNotifications": false,
        "autoFollowOnCC": true,
    })
}

/// An owner and an agent in a project, and an admin API key of that project.
struct Desk {
    app: TestApp,
    owner: TestUser,
    agent: TestUser,
    pid: String,
    /// The agent's teammate id.
    puid: String,
    /// An admin API key of the project.
    key: String,
}

async fn setup(engine: Engine) -> Desk {
    let app = spawn_app(engine).await;
    let common::OwnerAndAgent {
        owner,
        agent,
        pid,
        puid,
    } = app.owner_and_agent().await;
    let key = create_key(&app, &pid, &owner, "admin").await;
    Desk {
        app,
        owner,
        agent,
        pid,
        puid,
        key,
    }
}

/// Creates an API key with `role` in `pid`; returns its value.
async fn create_key(app: &TestApp, pid: &str, admin: &TestUser, role: &str) -> String {
    let created = app
        .post(
            &format!("/v3/{pid}/keys"),
            &admin.token,
            json!({"name": "k", "role": role}),
        )
        .await
        .expect(200);
    assert_eq!(created["role"], json!(role), "{created}");
    created["key"]
        .as_str()
        .expect("the key's value")
        .to_string()
}

fn desk_path(user_id: &str) -> String {
    format!("/desk/api/v2/users/{user_id}.json")
}

async fn patch_as(app: &TestApp, auth: Option<&str>, path: &str, body: Value) -> Resp {
    app.request(Method::PATCH, path, auth, Some(body)).await
}

/// The user's teammate in `pid`, read over `/v3` by `viewer`.
async fn teammate_of(app: &TestApp, pid: &str, viewer: &TestUser, user_id: &str) -> Value {
    let list = app
        .get(
            &format!("/v3/{pid}/project_users/users/{user_id}"),
            &viewer.token,
        )
        .await
        .expect(200);
    let list = list.as_array().expect("an array with the teammate");
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

impl Desk {
    /// `PATCH`es `user_id` with the project's admin key.
    async fn patch(&self, user_id: &str, body: Value) -> Resp {
        patch_as(&self.app, Some(&self.key), &desk_path(user_id), body).await
    }

    /// The teammate of `user_id` in the project, as the owner sees it over `/v3`.
    async fn teammate(&self, user_id: &str) -> Value {
        teammate_of(&self.app, &self.pid, &self.owner, user_id).await
    }

    /// An owner socket (not counted for presence) subscribed to the project's events.
    async fn observer(&self) -> Agent {
        let mut watcher = self
            .app
            .ws(&format!(
                "{}&presence=false",
                token_query(&self.owner.token)
            ))
            .await;
        let frames = watcher
            .subscribe(&format!("/{}/events", self.pid), None)
            .await;
        assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        watcher
    }
}

/// Asserts an error status with the Desk error shape (a non-empty `errors` array).
#[track_caller]
fn expect_desk_error(resp: Resp, status: u16) -> Value {
    let body = resp.expect(status);
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an `errors` array: {body}"));
    assert!(!errors.is_empty(), "{body}");
    for error in errors {
        assert!(error["code"].is_string(), "{body}");
        assert!(error["message"].is_string(), "{body}");
    }
    body
}

/// Asserts a 400 whose `errors` hold exactly one `invalid` entry per name in `fields`.
#[track_caller]
fn expect_field_errors(resp: Resp, fields: &[&str]) {
    let body = expect_desk_error(resp, 400);
    let errors = body["errors"].as_array().unwrap();
    for error in errors {
        assert_eq!(error["code"], json!("invalid"), "{body}");
    }
    let mut got: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().expect("a field name"))
        .collect();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{body}");
}

/// The names of the fields in an event's `previous`, sorted.
fn previous_fields(event: &Value) -> Vec<String> {
    let mut names: Vec<String> = event["previous"]
        .as_object()
        .unwrap_or_else(|| panic!("`previous` is an object: {event}"))
        .keys()
        .cloned()
        .collect();
    names.sort_unstable();
    names
}

#[track_caller]
fn assert_event(event: &Value, event_type: &str, d: &Desk) {
    assert_eq!(event["type"], json!(event_type), "{event}");
    assert_eq!(event["project_id"], json!(d.pid), "{event}");
    assert_eq!(event["project_user_id"], json!(d.puid), "{event}");
    assert_eq!(event["user_id"], json!(d.agent.id), "{event}");
    assert_eq!(event["payload"]["_id"], json!(d.puid), "{event}");
}

// ---- 1. happy paths ---------------------------------------------------------------------------

async fn user_wrapper_updates_names_role_and_every_preference(engine: Engine) {
    let d = setup(engine).await;
    let mut user = json!({"firstName": "Ada", "lastName": "Lovelace", "role": "admin"});
    for (name, value) in all_preferences().as_object().unwrap() {
        user[name] = value.clone();
    }
    let body = d
        .patch(&d.agent.id, json!({ "user": user }))
        .await
        .expect(200);
    assert_eq!(body["included"], json!({}), "{body}");
    let answered = &body["user"];
    assert_eq!(answered["id"], json!(d.agent.id));
    assert_eq!(answered["firstName"], json!("Ada"));
    assert_eq!(answered["lastName"], json!("Lovelace"));
    assert_eq!(answered["email"], json!(d.agent.email));
    assert_eq!(answered["role"], json!("admin"));
    assert_eq!(answered["state"], json!("active"));
    assert_eq!(answered["isAppOwner"], json!(false));
    for (name, value) in all_preferences().as_object().unwrap() {
        assert_eq!(&answered[name], value, "{name} in {answered}");
    }

    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(teammate["_id"], json!(d.puid));
    assert_eq!(teammate["role"], json!("admin"));
    assert_eq!(teammate["status"], json!("active"));
    assert_eq!(teammate["trashed"], json!(false));
    assert_eq!(teammate["id_user"]["firstname"], json!("Ada"));
    assert_eq!(teammate["id_user"]["lastname"], json!("Lovelace"));
    assert_eq!(teammate["id_user"]["email"], json!(d.agent.email));
    assert_eq!(teammate["settings"]["desk"], all_preferences());
}

async fn bare_object_is_accepted_and_roles_go_both_ways(engine: Engine) {
    let d = setup(engine).await;
    let body = d
        .patch(
            &d.agent.id,
            json!({"lastName": "Hopper", "role": "admin", "ticketReplyRedirect": "Inbox", "timezoneId": 0}),
        )
        .await
        .expect(200);
    assert_eq!(body["included"], json!({}));
    assert_eq!(body["user"]["lastName"], json!("Hopper"));
    assert_eq!(body["user"]["role"], json!("admin"));
    assert_eq!(body["user"]["ticketReplyRedirect"], json!("Inbox"));
    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(teammate["role"], json!("admin"));
    assert_eq!(teammate["id_user"]["lastname"], json!("Hopper"));
    assert_eq!(
        teammate["settings"]["desk"],
        json!({"ticketReplyRedirect": "Inbox", "timezoneId": 0})
    );

    let body = d
        .patch(&d.agent.id, json!({"role": "agent", "firstName": "Grace"}))
        .await
        .expect(200);
    assert_eq!(body["user"]["role"], json!("agent"));
    assert_eq!(body["user"]["firstName"], json!("Grace"));
    assert_eq!(body["user"]["lastName"], json!("Hopper"));
    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(teammate["role"], json!("agent"));
    assert_eq!(teammate["id_user"]["firstname"], json!("Grace"));
    assert_eq!(teammate["id_user"]["lastname"], json!("Hopper"));
}

async fn preferences_merge_and_keep_other_settings(engine: Engine) {
    let d = setup(engine).await;
    // A setting outside the Desk preferences, through the Tiledesk route.
    d.app
        .put(
            &format!("/v3/{}/project_users/{}", d.pid, d.puid),
            &d.owner.token,
            json!({"settings": {"theme": "dark"}}),
        )
        .await
        .expect(200);
    d.patch(
        &d.agent.id,
        json!({"user": {"editMethod": "markdown", "reviewer": true, "timezoneId": 7}}),
    )
    .await
    .expect(200);
    let body = d
        .patch(&d.agent.id, json!({"user": {"reviewer": false}}))
        .await
        .expect(200);
    assert_eq!(body["user"]["editMethod"], json!("markdown"));
    assert_eq!(body["user"]["timezoneId"], json!(7));
    assert_eq!(body["user"]["reviewer"], json!(false));
    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(
        teammate["settings"],
        json!({"theme": "dark", "desk": {"editMethod": "markdown", "reviewer": false, "timezoneId": 7}})
    );
}

/// Preferences stored through the Tiledesk route that this API would refuse are shown as the
/// Desk defaults, so the answer always matches its documented schema.
async fn invalid_stored_preferences_show_as_defaults(engine: Engine) {
    let d = setup(engine).await;
    d.app
        .put(
            &format!("/v3/{}/project_users/{}", d.pid, d.puid),
            &d.owner.token,
            json!({"settings": {"desk": {
                "editMethod": 5, "timezoneId": "x", "reviewer": "yes", "ticketReplyRedirect": "Next"
            }}}),
        )
        .await
        .expect(200);
    let body = d.patch(&d.agent.id, json!({"user": {}})).await.expect(200);
    assert_eq!(body["user"]["editMethod"], json!("html"));
    assert_eq!(body["user"]["timezoneId"], json!(0));
    assert_eq!(body["user"]["reviewer"], json!(false));
    assert_eq!(
        body["user"]["ticketReplyRedirect"],
        json!("Next"),
        "a valid one is kept"
    );
}

async fn read_only_unknown_and_null_fields_are_ignored(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    let long_ago = "2000-01-01T00:00:00.000Z";
    let read_only = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "createdAt": long_ago,
        "updatedAt": long_ago,
        "avatarURL": "https://example.com/evil.png",
        "isAppOwner": true,
        "deletedAt": long_ago,
        "ldKey": "x",
        "projectsCompanyId": 9,
        "favouriteColour": "blue",
        "firstName": null,
        "role": null,
        "state": null,
        "reviewer": null,
    });
    let body = d
        .patch(&d.agent.id, json!({ "user": read_only }))
        .await
        .expect(200);
    let answered = &body["user"];
    assert_eq!(answered["id"], json!(d.agent.id));
    assert_eq!(answered["isAppOwner"], json!(false));
    assert_eq!(answered["state"], json!("active"));
    assert_eq!(answered["role"], json!("agent"));
    assert_eq!(answered["firstName"], json!("agent"));
    assert_eq!(answered["deletedAt"], Value::Null);
    assert_ne!(answered["avatarURL"], json!("https://example.com/evil.png"));
    assert_ne!(answered["createdAt"], json!(long_ago));
    assert_ne!(answered["updatedAt"], json!(long_ago));
    assert!(answered.get("favouriteColour").is_none(), "{answered}");
    // Nothing was written at all.
    assert_eq!(d.teammate(&d.agent.id).await, before);

    // Alongside a real change, they are still ignored.
    let mut with_change = read_only.clone();
    with_change["lastName"] = json!("Changed");
    let body = d
        .patch(&d.agent.id, json!({ "user": with_change }))
        .await
        .expect(200);
    assert_eq!(body["user"]["id"], json!(d.agent.id));
    assert_eq!(body["user"]["isAppOwner"], json!(false));
    let after = d.teammate(&d.agent.id).await;
    assert_eq!(after["id_user"]["lastname"], json!("Changed"));
    assert_eq!(after["settings"], json!({}));
    assert_eq!(after["role"], json!("agent"));
    assert_eq!(after["trashed"], json!(false));
}

// ---- 2. validation --------------------------------------------------------------------------

async fn invalid_fields_get_one_error_each_and_change_nothing(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    let resp = d
        .patch(
            &d.agent.id,
            json!({"user": {
                "firstName": 5,
                "lastName": "Valid",
                "role": "boss",
                "state": 3,
                "editMethod": "rtf",
                "ticketReplyRedirect": "Later",
                "isPartTime": "yes",
                "timezoneId": -1,
                "email": "not-an-email",
                "reviewer": true,
                "sendWebNotifications": false,
            }}),
        )
        .await;
    expect_field_errors(
        resp,
        &[
            "firstName",
            "role",
            "state",
            "editMethod",
            "ticketReplyRedirect",
            "isPartTime",
            "timezoneId",
            "email",
        ],
    );
    // A timezone that is not a number at all, with valid fields beside it.
    let resp = d
        .patch(
            &d.agent.id,
            json!({"timezoneId": "x", "role": "admin", "autoFollowOnCC": true, "firstName": "Ok"}),
        )
        .await;
    expect_field_errors(resp, &["timezoneId"]);
    // Names are limited to 200 characters (not bytes).
    let resp = d
        .patch(
            &d.agent.id,
            json!({"firstName": "é".repeat(200), "lastName": "x".repeat(201), "reviewer": true}),
        )
        .await;
    expect_field_errors(resp, &["lastName"]);
    // Not even the valid fields of those bodies were applied.
    let after = d.teammate(&d.agent.id).await;
    assert_eq!(after, before);
    assert_eq!(after["role"], json!("agent"));
    assert_eq!(after["settings"], json!({}));
    assert_eq!(after["id_user"]["firstname"], json!("agent"));
    assert_eq!(after["id_user"]["lastname"], json!("Test"));
    assert_eq!(after["id_user"]["email"], json!(d.agent.email));
}

async fn malformed_json_is_400(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    let path = desk_path(&d.agent.id);
    for raw in [
        &br#"{"user": {"firstName": "Ada""#[..],
        b"not json",
        b"{\"role\": \"admin\",}",
        b"",
    ] {
        let resp = d
            .app
            .raw(Method::PATCH, &path, Some(&d.key), raw.to_vec())
            .await;
        expect_desk_error(resp, 400);
    }
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

async fn user_that_is_not_an_object_is_400(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    for user in [
        json!("Ada"),
        json!(5),
        json!(true),
        json!([{"firstName": "Ada", "role": "admin"}]),
    ] {
        let resp = d.patch(&d.agent.id, json!({ "user": user })).await;
        expect_field_errors(resp, &["user"]);
    }
    // A body that is no object at all.
    for body in [json!([{"role": "admin"}]), json!("admin"), json!(1)] {
        let resp = d.patch(&d.agent.id, body).await;
        expect_desk_error(resp, 400);
    }
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

// ---- 3. not found and isolation ---------------------------------------------------------------

async fn unknown_user_is_404(engine: Engine) {
    let d = setup(engine).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let resp = d
        .patch(&unknown, json!({"user": {"firstName": "Nobody"}}))
        .await;
    expect_desk_error(resp, 404);
}

async fn path_without_json_suffix_is_404(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    for path in [
        format!("/desk/api/v2/users/{}", d.agent.id),
        format!("/desk/api/v2/users/{}.xml", d.agent.id),
    ] {
        let resp = patch_as(
            &d.app,
            Some(&d.key),
            &path,
            json!({"user": {"role": "admin"}}),
        )
        .await;
        expect_desk_error(resp, 404);
    }
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

async fn non_uuid_user_id_is_404(engine: Engine) {
    let d = setup(engine).await;
    for id in ["42", "not-a-uuid", "0"] {
        let resp = d.patch(id, json!({"user": {"firstName": "Nobody"}})).await;
        expect_desk_error(resp, 404);
    }
}

async fn users_of_another_project_are_invisible_and_unchanged(engine: Engine) {
    let d = setup(engine).await;
    let bob = d.app.new_user("bob").await;
    let pid_b = d.app.new_project(&bob).await;
    let carol = d.app.new_user("carol").await;
    d.app.add_member(&bob, &pid_b, &carol, "agent").await;
    let carol_before = teammate_of(&d.app, &pid_b, &bob, &carol.id).await;
    let bob_before = teammate_of(&d.app, &pid_b, &bob, &bob.id).await;

    let hostile = json!({"user": {"firstName": "Hacked", "role": "admin", "state": "deleted", "reviewer": true}});
    for user_id in [&carol.id, &bob.id] {
        let resp = d.patch(user_id, hostile.clone()).await;
        expect_desk_error(resp, 404);
    }
    assert_eq!(
        teammate_of(&d.app, &pid_b, &bob, &carol.id).await,
        carol_before
    );
    assert_eq!(teammate_of(&d.app, &pid_b, &bob, &bob.id).await, bob_before);
    assert_eq!(carol_before["id_user"]["firstname"], json!("carol"));

    // Nor can the key read B's team over /v3.
    d.app
        .get(&format!("/v3/{pid_b}/project_users"), &d.key)
        .await
        .expect_error(403);
    d.app
        .get(
            &format!("/v3/{pid_b}/project_users/users/{}", carol.id),
            &d.key,
        )
        .await
        .expect_error(403);
    // And B's key does not reach A's users either.
    let key_b = create_key(&d.app, &pid_b, &bob, "admin").await;
    let resp = patch_as(
        &d.app,
        Some(&key_b),
        &desk_path(&d.agent.id),
        json!({"role": "admin"}),
    )
    .await;
    expect_desk_error(resp, 404);
    assert_eq!(d.teammate(&d.agent.id).await["role"], json!("agent"));
}

// ---- 4. authentication ------------------------------------------------------------------------

async fn no_credentials_is_401(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    let resp = patch_as(
        &d.app,
        None,
        &desk_path(&d.agent.id),
        json!({"user": {"role": "admin"}}),
    )
    .await;
    assert!(
        resp.headers.contains_key("www-authenticate"),
        "{:?}",
        resp.headers
    );
    expect_desk_error(resp, 401);
    let resp = patch_as(
        &d.app,
        Some("pgk_not-a-real-key"),
        &desk_path(&d.agent.id),
        json!({"user": {"role": "admin"}}),
    )
    .await;
    expect_desk_error(resp, 401);
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

async fn user_credentials_are_401(engine: Engine) {
    use base64::Engine as _;
    let d = setup(engine).await;
    let before = d.teammate(&d.agent.id).await;
    let jwt = d.owner.token.strip_prefix("JWT ").expect("a JWT token");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{PASSWORD}", d.owner.email));
    for auth in [
        d.owner.token.clone(),
        format!("Bearer {jwt}"),
        format!("Basic {basic}"),
    ] {
        let resp = patch_as(
            &d.app,
            Some(&auth),
            &desk_path(&d.agent.id),
            json!({"user": {"role": "admin"}}),
        )
        .await;
        expect_desk_error(resp, 401);
    }
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

async fn agent_key_is_403(engine: Engine) {
    let d = setup(engine).await;
    let agent_key = create_key(&d.app, &d.pid, &d.owner, "agent").await;
    let before = d.teammate(&d.agent.id).await;
    for user_id in [d.agent.id.clone(), uuid::Uuid::new_v4().to_string()] {
        let resp = patch_as(
            &d.app,
            Some(&agent_key),
            &desk_path(&user_id),
            json!({"user": {"role": "admin", "firstName": "Nope"}}),
        )
        .await;
        expect_desk_error(resp, 403);
    }
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

// ---- 5. state and events ----------------------------------------------------------------------

async fn state_deleted_trashes_with_one_delete_event(engine: Engine) {
    let d = setup(engine).await;
    let mut watcher = d.observer().await;
    let body = d
        .patch(&d.agent.id, json!({"user": {"state": "deleted"}}))
        .await
        .expect(200);
    assert_eq!(body["user"]["state"], json!("deleted"));
    assert!(body["user"]["deletedAt"].is_string(), "{body}");

    let event = watcher.next_event().await;
    assert_event(&event, "project_user.delete", &d);
    assert_eq!(event["payload"]["trashed"], json!(true));
    assert_eq!(event["previous"]["trashed"], json!(false));
    assert_eq!(previous_fields(&event), ["trashed", "updatedAt"]);
    watcher.expect_silence(QUIET).await;

    let team = d
        .app
        .get(
            &format!("/v3/{}/project_users?trashed=true", d.pid),
            &d.owner.token,
        )
        .await
        .expect(200);
    let listed = team
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["_id"] == json!(d.puid))
        .expect("the trashed teammate is listed with trashed=true");
    assert_eq!(listed["trashed"], json!(true));
    let active_team = d
        .app
        .get(&format!("/v3/{}/project_users", d.pid), &d.owner.token)
        .await
        .expect(200);
    assert!(
        !active_team
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["_id"] == json!(d.puid)),
        "{active_team}"
    );
    d.app
        .get(&format!("/v3/{}/project_users", d.pid), &d.agent.token)
        .await
        .expect_error(403);

    // Deleting again is no change: 200, no event.
    let body = d
        .patch(&d.agent.id, json!({"user": {"state": "deleted"}}))
        .await
        .expect(200);
    assert_eq!(body["user"]["state"], json!("deleted"));
    watcher.expect_silence(QUIET).await;
}

async fn state_active_restores_with_one_restore_event(engine: Engine) {
    let d = setup(engine).await;
    let mut watcher = d.observer().await;
    d.patch(&d.agent.id, json!({"user": {"state": "deleted"}}))
        .await
        .expect(200);
    assert_event(&watcher.next_event().await, "project_user.delete", &d);

    let body = d
        .patch(&d.agent.id, json!({"user": {"state": "active"}}))
        .await
        .expect(200);
    assert_eq!(body["user"]["state"], json!("active"));
    assert_eq!(body["user"]["deletedAt"], Value::Null);
    let event = watcher.next_event().await;
    assert_event(&event, "project_user.restore", &d);
    assert_eq!(event["payload"]["trashed"], json!(false));
    assert_eq!(event["payload"]["status"], json!("active"));
    assert_eq!(event["previous"]["trashed"], json!(true));
    watcher.expect_silence(QUIET).await;

    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(teammate["trashed"], json!(false));
    assert_eq!(teammate["status"], json!("active"));
    d.app
        .get(&format!("/v3/{}/project_users", d.pid), &d.agent.token)
        .await
        .expect(200);
}

async fn role_change_emits_one_update_with_previous_role(engine: Engine) {
    let d = setup(engine).await;
    let mut watcher = d.observer().await;
    d.patch(&d.agent.id, json!({"user": {"role": "admin"}}))
        .await
        .expect(200);
    let event = watcher.next_event().await;
    assert_event(&event, "project_user.update", &d);
    assert_eq!(event["payload"]["role"], json!("admin"));
    assert_eq!(event["previous"]["role"], json!("agent"));
    assert_eq!(previous_fields(&event), ["role", "updatedAt"]);
    watcher.expect_silence(QUIET).await;
}

async fn preferences_change_emits_one_update(engine: Engine) {
    let d = setup(engine).await;
    let mut watcher = d.observer().await;
    d.patch(
        &d.agent.id,
        json!({"user": {"reviewer": true, "editMethod": "markdown"}}),
    )
    .await
    .expect(200);
    let event = watcher.next_event().await;
    assert_event(&event, "project_user.update", &d);
    assert_eq!(
        event["payload"]["settings"]["desk"],
        json!({"reviewer": true, "editMethod": "markdown"})
    );
    assert_eq!(event["previous"]["settings"], json!({}));
    assert_eq!(previous_fields(&event), ["settings", "updatedAt"]);
    watcher.expect_silence(QUIET).await;
}

async fn patch_that_changes_nothing_emits_no_event(engine: Engine) {
    let d = setup(engine).await;
    d.patch(&d.agent.id, json!({"user": {"reviewer": true}}))
        .await
        .expect(200);
    let before = d.teammate(&d.agent.id).await;
    let mut watcher = d.observer().await;
    for body in [
        json!({"user": {}}),
        json!({}),
        json!({"user": {
            "role": "agent",
            "state": "active",
            "reviewer": true,
            "firstName": "agent",
            "lastName": "Test",
            "email": d.agent.email,
        }}),
    ] {
        let answered = d.patch(&d.agent.id, body).await.expect(200);
        assert_eq!(answered["user"]["reviewer"], json!(true));
    }
    watcher.expect_silence(QUIET).await;
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

async fn names_only_change_emits_no_teammate_event(engine: Engine) {
    let d = setup(engine).await;
    let mut watcher = d.observer().await;
    let body = d
        .patch(
            &d.agent.id,
            json!({"user": {"firstName": "Renamed", "lastName": "Person"}}),
        )
        .await
        .expect(200);
    assert_eq!(body["user"]["firstName"], json!("Renamed"));
    watcher.expect_silence(QUIET).await;
    let teammate = d.teammate(&d.agent.id).await;
    assert_eq!(teammate["id_user"]["firstname"], json!("Renamed"));
    assert_eq!(teammate["id_user"]["lastname"], json!("Person"));
}

// ---- 6. owner protection ----------------------------------------------------------------------

async fn admin_key_cannot_demote_the_owner(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.owner.id).await;
    let mut watcher = d.observer().await;
    for body in [
        json!({"user": {"role": "agent"}}),
        json!({"user": {"role": "agent", "firstName": "Demoted", "reviewer": true}}),
    ] {
        let resp = d.patch(&d.owner.id, body).await;
        expect_desk_error(resp, 403);
    }
    watcher.expect_silence(QUIET).await;
    let after = d.teammate(&d.owner.id).await;
    assert_eq!(after, before);
    assert_eq!(after["role"], json!("owner"));
}

async fn admin_key_cannot_delete_the_owner(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.owner.id).await;
    let mut watcher = d.observer().await;
    for body in [
        json!({"user": {"state": "deleted"}}),
        json!({"user": {"state": "deleted", "lastName": "Gone", "timezoneId": 3}}),
    ] {
        let resp = d.patch(&d.owner.id, body).await;
        expect_desk_error(resp, 403);
    }
    watcher.expect_silence(QUIET).await;
    let after = d.teammate(&d.owner.id).await;
    assert_eq!(after, before);
    assert_eq!(after["trashed"], json!(false));
    d.app
        .get(&format!("/v3/{}/project_users", d.pid), &d.owner.token)
        .await
        .expect(200);
}

async fn owner_role_admin_is_no_change(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.owner.id).await;
    let mut watcher = d.observer().await;
    for body in [
        json!({"user": {"role": "admin"}}),
        json!({"role": "admin", "state": "active"}),
    ] {
        let answered = d.patch(&d.owner.id, body).await.expect(200);
        assert_eq!(answered["user"]["role"], json!("admin"));
        assert_eq!(answered["user"]["isAppOwner"], json!(true));
        assert_eq!(answered["user"]["state"], json!("active"));
    }
    watcher.expect_silence(QUIET).await;
    let after = d.teammate(&d.owner.id).await;
    assert_eq!(after, before);
    assert_eq!(after["role"], json!("owner"));
}

// ---- 7. email ---------------------------------------------------------------------------------

async fn email_change_moves_sign_in_for_a_single_project_user(engine: Engine) {
    let d = setup(engine).await;
    let fresh = format!("renamed-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = d
        .patch(
            &d.agent.id,
            json!({"user": {"email": format!(" {} ", fresh.to_uppercase())}}),
        )
        .await
        .expect(200);
    assert_eq!(body["user"]["email"], json!(fresh));
    assert_eq!(
        d.teammate(&d.agent.id).await["id_user"]["email"],
        json!(fresh)
    );

    let signed_in = d.app.signin(&fresh, PASSWORD).await.expect(200);
    assert_eq!(signed_in["user"]["_id"], json!(d.agent.id));
    d.app
        .signin(&fresh.to_uppercase(), PASSWORD)
        .await
        .expect(200);
    let old = d.app.signin(&d.agent.email, PASSWORD).await;
    assert_eq!(
        old.status, 401,
        "the old email no longer signs in: {}",
        old.text
    );
    // The old email is free again.
    d.app.signup(&d.agent.email, "newcomer").await.expect(200);
}

async fn email_of_another_account_is_400(engine: Engine) {
    let d = setup(engine).await;
    let dave = d.app.new_user("dave").await;
    let before = d.teammate(&d.agent.id).await;
    let resp = d
        .patch(
            &d.agent.id,
            json!({"user": {"email": dave.email.to_uppercase(), "firstName": "Taken", "reviewer": true}}),
        )
        .await;
    expect_field_errors(resp, &["email"]);
    assert_eq!(d.teammate(&d.agent.id).await, before);
    d.app.signin(&d.agent.email, PASSWORD).await.expect(200);
    let dave_in = d.app.signin(&dave.email, PASSWORD).await.expect(200);
    assert_eq!(dave_in["user"]["_id"], json!(dave.id));
}

async fn email_of_a_user_active_in_another_project_is_400(engine: Engine) {
    let d = setup(engine).await;
    let bob = d.app.new_user("bob").await;
    let pid_b = d.app.new_project(&bob).await;
    d.app.add_member(&bob, &pid_b, &d.agent, "agent").await;
    let before = d.teammate(&d.agent.id).await;
    let before_b = teammate_of(&d.app, &pid_b, &bob, &d.agent.id).await;
    let fresh = format!("moved-{}@example.com", uuid::Uuid::new_v4().simple());
    let resp = d
        .patch(
            &d.agent.id,
            json!({"user": {"email": fresh, "role": "admin"}}),
        )
        .await;
    expect_field_errors(resp, &["email"]);
    assert_eq!(d.teammate(&d.agent.id).await, before);
    assert_eq!(
        teammate_of(&d.app, &pid_b, &bob, &d.agent.id).await,
        before_b
    );
    d.app.signin(&d.agent.email, PASSWORD).await.expect(200);
    assert_eq!(d.app.signin(&fresh, PASSWORD).await.status, 401);

    // Sending the current email (in any case) is no change, so it is accepted.
    let body = d
        .patch(
            &d.agent.id,
            json!({"user": {"email": d.agent.email.to_uppercase()}}),
        )
        .await
        .expect(200);
    assert_eq!(body["user"]["email"], json!(d.agent.email));
}

async fn admin_key_cannot_change_the_owners_account(engine: Engine) {
    let d = setup(engine).await;
    let before = d.teammate(&d.owner.id).await;
    for body in [
        json!({"user": {"email": "attacker@example.com"}}),
        json!({"user": {"firstName": "Pwned"}}),
    ] {
        let resp = d.patch(&d.owner.id, body).await;
        expect_desk_error(resp, 403);
    }
    assert_eq!(d.teammate(&d.owner.id).await, before);
    d.app.signin(&d.owner.email, PASSWORD).await.expect(200);
}

async fn names_of_a_user_active_in_another_project_are_400(engine: Engine) {
    let d = setup(engine).await;
    let bob = d.app.new_user("bob").await;
    let pid_b = d.app.new_project(&bob).await;
    d.app.add_member(&bob, &pid_b, &d.agent, "agent").await;
    let before = d.teammate(&d.agent.id).await;
    let resp = d
        .patch(
            &d.agent.id,
            json!({"user": {"firstName": "Renamed", "lastName": "Elsewhere"}}),
        )
        .await;
    expect_field_errors(resp, &["firstName", "lastName"]);
    assert_eq!(d.teammate(&d.agent.id).await, before);
}

engine_tests!(
    user_wrapper_updates_names_role_and_every_preference,
    bare_object_is_accepted_and_roles_go_both_ways,
    preferences_merge_and_keep_other_settings,
    invalid_stored_preferences_show_as_defaults,
    read_only_unknown_and_null_fields_are_ignored,
    invalid_fields_get_one_error_each_and_change_nothing,
    malformed_json_is_400,
    user_that_is_not_an_object_is_400,
    unknown_user_is_404,
    path_without_json_suffix_is_404,
    non_uuid_user_id_is_404,
    users_of_another_project_are_invisible_and_unchanged,
    no_credentials_is_401,
    user_credentials_are_401,
    agent_key_is_403,
    state_deleted_trashes_with_one_delete_event,
    state_active_restores_with_one_restore_event,
    role_change_emits_one_update_with_previous_role,
    preferences_change_emits_one_update,
    patch_that_changes_nothing_emits_no_event,
    names_only_change_emits_no_teammate_event,
    admin_key_cannot_demote_the_owner,
    admin_key_cannot_delete_the_owner,
    owner_role_admin_is_no_change,
    email_change_moves_sign_in_for_a_single_project_user,
    email_of_another_account_is_400,
    email_of_a_user_active_in_another_project_is_400,
    admin_key_cannot_change_the_owners_account,
    names_of_a_user_active_in_another_project_are_400,
);
