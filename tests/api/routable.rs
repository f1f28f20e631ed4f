//! `routable` in teammate JSON and `GET /v3/{pid}/project_users/routable` (docs/protocol.md §3),
//! on every engine, over real HTTP and real agent WebSockets: who can take a chat now, least
//! loaded first; and `previous.routable` on the events that flip it.

use crate::common;

use common::{token_query, Engine, TeamApp, TestUser};
use serde_json::{json, Value};
use std::time::Duration;

const FAST: &[(&str, &str)] = &[
    ("offline_grace_ms", "300"),
    ("heartbeat_ms", "500"),
    ("node_ttl_ms", "1500"),
];
const WAIT: Duration = Duration::from_secs(5);

/// The ids of the routable list, in order.
async fn routable(s: &TeamApp, query: &str, auth: &str) -> Vec<String> {
    let list = s
        .app
        .get(
            &format!("/v3/{}/project_users/routable{query}", s.pid),
            auth,
        )
        .await
        .expect(200);
    let list = list.as_array().expect("an array").clone();
    for teammate in &list {
        assert_eq!(teammate["routable"], json!(true), "{teammate}");
    }
    list.iter()
        .map(|t| t["_id"].as_str().unwrap().to_string())
        .collect()
}

async fn set(s: &TeamApp, puid: &str, body: Value) {
    s.app
        .put(
            &format!("/v3/{}/project_users/{puid}", s.pid),
            &s.owner.token,
            body,
        )
        .await
        .expect(200);
}

async fn routable_teammates_are_online_available_and_not_busy(engine: Engine) {
    let s = TeamApp::spawn(engine, FAST).await;
    let bob: TestUser = s.app.new_user("bob").await;
    let bob_puid = s.app.add_member(&s.owner, &s.pid, &bob, "agent").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = s.owner.token.clone();
    assert!(routable(&s, "", &owner).await.is_empty(), "nobody online");
    let agent_json = s
        .app
        .get(&format!("/v3/{}/project_users/{}", s.pid, s.puid), &owner)
        .await
        .expect(200);
    assert_eq!(agent_json["routable"], json!(false), "offline");

    let _agent_tab = s.app.ws(&token_query(&s.agent.token)).await;
    s.app
        .wait_status(&s.pid, &s.puid, &owner, "online", WAIT)
        .await;
    assert_eq!(routable(&s, "", &owner).await, vec![s.puid.clone()]);
    let _bob_tab = s
        .app
        .ws(&format!("{}&channel=mobile", token_query(&bob.token)))
        .await;
    s.app
        .wait_status(&s.pid, &bob_puid, &owner, "online", WAIT)
        .await;

    // Least loaded first.
    set(&s, &s.puid, json!({"number_assigned_requests": 5})).await;
    set(&s, &bob_puid, json!({"number_assigned_requests": 1})).await;
    assert_eq!(
        routable(&s, "", &owner).await,
        vec![bob_puid.clone(), s.puid.clone()]
    );
    // A live connection on the channel.
    assert_eq!(
        routable(&s, "?channel=mobile", &owner).await,
        vec![bob_puid.clone()]
    );
    assert!(routable(&s, "?channel=whatsapp", &owner).await.is_empty());
    // An API key of the project reads it too.
    let key = s.app.new_key(&s.pid, &owner, "agent").await;
    assert_eq!(routable(&s, "", &key).await.len(), 2);

    // Unavailable, or busy: not routable.
    s.app
        .put(
            &format!("/v3/{}/project_users", s.pid),
            &s.agent.token,
            json!({"user_available": false}),
        )
        .await
        .expect(200);
    assert_eq!(routable(&s, "", &owner).await, vec![bob_puid.clone()]);
    set(&s, &bob_puid, json!({"max_served_chat": 1})).await;
    assert!(routable(&s, "", &owner).await.is_empty(), "bob is busy");
    set(&s, &bob_puid, json!({"max_served_chat": 0})).await;
    assert_eq!(routable(&s, "", &owner).await, vec![bob_puid.clone()]);

    // Bad filters are 400; a user who is not a member is refused.
    let bad = s
        .app
        .get(
            &format!("/v3/{}/project_users/routable?team=nope", s.pid),
            &owner,
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let stranger = s.app.new_user("stranger").await;
    let refused = s
        .app
        .get(
            &format!("/v3/{}/project_users/routable", s.pid),
            &stranger.token,
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}

async fn the_team_filter_keeps_its_members(engine: Engine) {
    let s = TeamApp::spawn(engine, FAST).await;
    let owner = s.owner.token.clone();
    let key = s.app.new_key(&s.pid, &owner, "admin").await;
    let team = s
        .app
        .post("/beta/teams", &key, json!({"name": "Tier 1"}))
        .await
        .expect(201);
    let team_id = team["data"]["id"].as_str().unwrap().to_string();
    let _agent_tab = s.app.ws(&token_query(&s.agent.token)).await;
    s.app
        .wait_status(&s.pid, &s.puid, &owner, "online", WAIT)
        .await;
    let query = format!("?team={team_id}");
    assert!(
        routable(&s, &query, &owner).await.is_empty(),
        "no members yet"
    );
    s.app
        .request(
            reqwest::Method::PATCH,
            &format!("/beta/teams/{team_id}/agents"),
            Some(&key),
            Some(json!({"agentIds": [s.agent.id]})),
        )
        .await
        .expect(200);
    assert_eq!(routable(&s, &query, &owner).await, vec![s.puid.clone()]);
}

async fn previous_shows_routable_when_a_change_flips_it(engine: Engine) {
    let s = TeamApp::spawn(engine, FAST).await;
    let mut observer = s
        .app
        .ws(&format!("{}&presence=false", token_query(&s.owner.token)))
        .await;
    observer
        .subscribe(&format!("/{}/project_users/{}", s.pid, s.puid), None)
        .await;

    let _agent_tab = s.app.ws(&token_query(&s.agent.token)).await;
    let online = observer.next_event().await;
    assert_eq!(online["type"], json!("presence.online"), "{online}");
    assert_eq!(online["payload"]["routable"], json!(true));
    assert_eq!(online["previous"]["routable"], json!(false), "{online}");

    let path = format!("/v3/{}/project_users", s.pid);
    let change = |body: Value| s.app.put(&path, &s.agent.token, body);
    change(json!({"user_available": false})).await.expect(200);
    let unavailable = observer.next_event().await;
    assert_eq!(unavailable["payload"]["routable"], json!(false));
    assert_eq!(
        unavailable["previous"]["routable"],
        json!(true),
        "{unavailable}"
    );

    // A change that leaves it as it was does not name it.
    change(json!({"profileStatus": "lunch"})).await.expect(200);
    let unchanged = observer.next_event().await;
    assert_eq!(unchanged["previous"].get("routable"), None, "{unchanged}");
}

engine_tests!(
    routable_teammates_are_online_available_and_not_busy,
    the_team_filter_keeps_its_members,
    previous_shows_routable_when_a_change_flips_it,
);
