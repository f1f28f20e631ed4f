//! Team membership events on `/{pid}/events`, and the team topic `/{pid}/teams/{team_id}`: who
//! may subscribe, what it carries, its replay.

use super::*;

async fn membership_changes_emit_one_team_event_per_member(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let team = fx.create_team("Support").await;

    let mut events = fx.observer(&fx.owner.token).await;
    events.subscribe(&format!("/{}/events", fx.pid), None).await;
    let mut watch = fx.observer(&fx.owner.token).await;
    let topic = fx.team_topic(&team);
    let frames = watch.subscribe(&topic, None).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        json!({"action": "subscribed", "payload": {"topic": topic}})
    );
    assert_eq!(frames[1]["payload"]["method"], json!("CREATE"));
    assert_eq!(frames[1]["payload"]["message"], json!([]), "no members yet");

    let puid_of = |user: &str| {
        [&alice, &bob]
            .into_iter()
            .find(|m| m.user.id == user)
            .map(|m| m.puid.clone())
            .unwrap_or_default()
    };
    let owner_puid = fx
        .app
        .get(&format!("/v3/{}/project_users/me", fx.pid), &fx.owner.token)
        .await
        .expect(200)[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();

    fx.add(&team, &[&alice.user.id, &bob.user.id, &fx.owner.id])
        .await;
    let everyone = sorted(vec![
        alice.user.id.clone(),
        bob.user.id.clone(),
        fx.owner.id.clone(),
    ]);
    for socket in [&mut events, &mut watch] {
        let added = events_by_user(socket, 3).await;
        let users: Vec<String> = added.iter().map(|(u, _)| u.clone()).collect();
        assert_eq!(users, everyone, "one event per added member");
        for (user, event) in &added {
            assert_membership(event, "team.member_added", &fx.pid, &team);
            assert_eq!(event["team"]["name"], json!("Support"), "{event}");
            let puid = if *user == fx.owner.id {
                owner_puid.clone()
            } else {
                puid_of(user)
            };
            assert_eq!(event["project_user_id"], json!(puid), "{event}");
            assert_eq!(event["payload"]["_id"], json!(puid), "{event}");
        }
        socket.expect_silence(QUIET).await;
    }

    // Re-adding members is no change: no event.
    fx.add(&team, &[&alice.user.id, &fx.owner.id]).await;
    events.expect_silence(QUIET).await;
    watch.expect_silence(Duration::from_millis(50)).await;

    // A fresh subscription's snapshot is the members.
    let mut late = fx.observer(&fx.owner.token).await;
    let frames = late.subscribe(&topic, None).await;
    let snapshot = frames.last().unwrap();
    assert_eq!(snapshot["payload"]["method"], json!("CREATE"), "{snapshot}");
    let members: BTreeSet<&str> = snapshot["payload"]["message"]
        .as_array()
        .expect("the members as an array")
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        BTreeSet::from([alice.puid.as_str(), bob.puid.as_str(), owner_puid.as_str()])
    );

    fx.remove(&team, &[&bob.user.id]).await;
    for socket in [&mut events, &mut watch, &mut late] {
        let event = socket.next_event().await;
        assert_membership(&event, "team.member_removed", &fx.pid, &team);
        assert_eq!(event["user_id"], json!(bob.user.id), "{event}");
        assert_eq!(event["project_user_id"], json!(bob.puid), "{event}");
        socket.expect_silence(QUIET).await;
    }
    // Removing a non-member is no change either.
    fx.remove(&team, &[&bob.user.id]).await;
    events.expect_silence(QUIET).await;

    // Deleting the team: one member_removed per member left.
    fx.app
        .delete(&fx.team_path(&team), &fx.admin_key)
        .await
        .expect(204);
    let remaining = sorted(vec![alice.user.id.clone(), fx.owner.id.clone()]);
    for socket in [&mut events, &mut watch] {
        let removed = events_by_user(socket, 2).await;
        let users: Vec<String> = removed.iter().map(|(u, _)| u.clone()).collect();
        assert_eq!(users, remaining);
        for (_, event) in &removed {
            assert_membership(event, "team.member_removed", &fx.pid, &team);
        }
        socket.expect_silence(QUIET).await;
    }
    // The teammates are still there; nothing else happened to them.
    let listed = fx
        .app
        .get(&format!("/v3/{}/project_users", fx.pid), &fx.owner.token)
        .await
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

async fn the_team_topic_carries_its_members_presence_only(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let carol = fx.mate("carol", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&alice.user.id]).await;

    let mut watch = fx.observer(&fx.owner.token).await;
    let frames = watch.subscribe(&fx.team_topic(&team), None).await;
    let snapshot = frames.last().unwrap();
    let members: Vec<&str> = snapshot["payload"]["message"]
        .as_array()
        .expect("the members as an array")
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec![alice.puid.as_str()], "{snapshot}");
    let mut events = fx.observer(&fx.owner.token).await;
    events.subscribe(&format!("/{}/events", fx.pid), None).await;

    // A non-member's presence reaches the event stream, not the team topic.
    let carol_tab = fx.app.ws(&token_query(&carol.user.token)).await;
    let online = events.next_event().await;
    assert_eq!(online["type"], json!("presence.online"), "{online}");
    assert_eq!(online["project_user_id"], json!(carol.puid));
    watch.expect_silence(QUIET).await;

    // A member's presence reaches both.
    let alice_tab = fx.app.ws(&token_query(&alice.user.token)).await;
    for socket in [&mut watch, &mut events] {
        let online = socket.next_event().await;
        assert_eq!(online["type"], json!("presence.online"), "{online}");
        assert_eq!(online["project_user_id"], json!(alice.puid), "{online}");
        assert_eq!(online["payload"]["presence"]["status"], json!("online"));
    }
    // So does a member's availability.
    fx.update_teammate(&alice.puid, json!({"user_available": false}))
        .await;
    for socket in [&mut watch, &mut events] {
        let event = socket.next_event().await;
        assert_eq!(event["type"], json!("availability.update"), "{event}");
        assert_eq!(event["project_user_id"], json!(alice.puid), "{event}");
    }
    // A non-member's availability does not.
    fx.update_teammate(&carol.puid, json!({"user_available": false}))
        .await;
    let event = events.next_event().await;
    assert_eq!(event["type"], json!("availability.update"), "{event}");
    assert_eq!(event["project_user_id"], json!(carol.puid), "{event}");
    watch.expect_silence(QUIET).await;

    alice_tab.close().await;
    for socket in [&mut watch, &mut events] {
        let offline = socket.next_event().await;
        assert_eq!(offline["type"], json!("presence.offline"), "{offline}");
        assert_eq!(offline["project_user_id"], json!(alice.puid), "{offline}");
    }
    carol_tab.close().await;
    let offline = events.next_event().await;
    assert_eq!(offline["type"], json!("presence.offline"), "{offline}");
    assert_eq!(offline["project_user_id"], json!(carol.puid));
    watch.expect_silence(QUIET).await;

    // Once alice leaves the team, her presence no longer reaches its topic.
    fx.remove(&team, &[&alice.user.id]).await;
    for socket in [&mut watch, &mut events] {
        let event = socket.next_event().await;
        assert_membership(&event, "team.member_removed", &fx.pid, &team);
    }
    let alice_tab = fx.app.ws(&token_query(&alice.user.token)).await;
    let online = events.next_event().await;
    assert_eq!(online["type"], json!("presence.online"), "{online}");
    assert_eq!(online["project_user_id"], json!(alice.puid));
    watch.expect_silence(QUIET).await;
    alice_tab.close().await;
}

async fn who_may_subscribe_to_a_team_topic(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&fx.owner.id]).await;
    let topic = fx.team_topic(&team);
    let other = other_project(&fx.app).await;
    let other_key_agent = api_key(&fx.app, &other.pid, &other.owner, "agent").await;

    // An agent (not admin), and an API key of the project, may subscribe.
    for token in [&alice.user.token, &fx.agent_key, &fx.admin_key] {
        let mut socket = fx.observer(token).await;
        let frames = socket.subscribe(&topic, None).await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        let members = frames[1]["payload"]["message"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{frames:?}");
        assert_eq!(members[0]["id_user"]["_id"], json!(fx.owner.id));
        socket.close().await;
    }

    // A user or key of another project may not.
    for token in [&other.owner.token, &other.admin_key, &other_key_agent] {
        let mut socket = fx.observer(token).await;
        let frames = socket.subscribe(&topic, None).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("error"), "{frames:?}");
        assert_eq!(
            frames[0]["payload"]["code"],
            json!("forbidden"),
            "{frames:?}"
        );
        // The socket stays usable after the refusal.
        let own = socket
            .subscribe(&format!("/{}/events", other.pid), None)
            .await;
        assert_eq!(own.last().unwrap()["payload"]["method"], json!("CREATE"));
        socket.close().await;
    }

    // Another project's team under our project id is not found, and an unknown team too.
    let theirs = fx
        .app
        .post("/beta/teams", &other.admin_key, json!({"name": "Theirs"}))
        .await
        .expect(201)["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = fx.observer(&fx.owner.token).await;
    for missing in [theirs.clone(), uuid::Uuid::new_v4().to_string()] {
        let frames = socket
            .subscribe(&format!("/{}/teams/{missing}", fx.pid), None)
            .await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["action"], json!("error"), "{frames:?}");
        assert_eq!(
            frames[0]["payload"]["code"],
            json!("not_found"),
            "{frames:?}"
        );
    }
    // And their project's topic is forbidden to us.
    let frames = socket
        .subscribe(&format!("/{}/teams/{theirs}", other.pid), None)
        .await;
    assert_eq!(
        frames[0]["payload"]["code"],
        json!("forbidden"),
        "{frames:?}"
    );
    // A malformed team id is not a topic.
    let frames = socket
        .subscribe(&format!("/{}/teams/not-a-uuid", fx.pid), None)
        .await;
    assert_eq!(
        frames[0]["payload"]["code"],
        json!("invalid_topic"),
        "{frames:?}"
    );
    socket.close().await;
}

async fn the_team_topic_replays_missed_events_since_an_event_id(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let carol = fx.mate("carol", "agent").await;
    let team = fx.create_team("Support").await;
    let topic = fx.team_topic(&team);

    let mut first = fx.observer(&fx.owner.token).await;
    first.subscribe(&topic, None).await;
    fx.add(&team, &[&alice.user.id]).await;
    let seen = first.next_event().await;
    assert_membership(&seen, "team.member_added", &fx.pid, &team);
    first.close().await;

    // Missed while away: alice leaves, carol (no member) changes, alice joins again.
    fx.remove(&team, &[&alice.user.id]).await;
    fx.update_teammate(&carol.puid, json!({"user_available": false}))
        .await;
    fx.add(&team, &[&alice.user.id]).await;

    let mut back = fx.observer(&fx.owner.token).await;
    back.send_json(json!({
        "action": "subscribe",
        "payload": {"topic": topic, "since": seen["id"]},
    }))
    .await;
    assert_eq!(
        back.recv_json().await,
        json!({"action": "subscribed", "payload": {"topic": topic}})
    );
    let removed = back.next_event().await;
    assert_membership(&removed, "team.member_removed", &fx.pid, &team);
    assert_eq!(removed["project_user_id"], json!(alice.puid));
    let added = back.next_event().await;
    assert_membership(&added, "team.member_added", &fx.pid, &team);
    assert_eq!(added["project_user_id"], json!(alice.puid));
    assert!(
        added["seq"].as_u64() > removed["seq"].as_u64(),
        "in order: {removed} then {added}"
    );
    // No snapshot after a replay, and nothing about carol.
    back.expect_silence(QUIET).await;
}

/// Trashing or deleting a member takes it out of the team (see
/// `leaving_the_project_leaves_every_team`), but a subscriber of the team topic is told nothing:
/// its member list goes stale.
async fn leaving_the_project_is_announced_on_the_team_topic(engine: Engine) {
    let fx = fixture_with(engine, FAST).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let team = fx.create_team("Support").await;
    fx.add(&team, &[&alice.user.id, &bob.user.id]).await;
    let mut watch = fx.observer(&fx.owner.token).await;
    let frames = watch.subscribe(&fx.team_topic(&team), None).await;
    assert_eq!(
        frames.last().unwrap()["payload"]["message"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let team_users = format!("/v3/{}/project_users", fx.pid);
    for (mate, mode) in [(&alice, "soft"), (&bob, "hard")] {
        fx.app
            .delete(
                &format!("{team_users}/{}?{mode}=true", mate.puid),
                &fx.owner.token,
            )
            .await
            .expect(200);
        let event = watch.next_event().await;
        assert_eq!(event["type"], json!("project_user.delete"), "{event}");
        assert_eq!(event["project_user_id"], json!(mate.puid), "{event}");
    }
    assert!(fx.member_ids(&team).await.is_empty());
}

engine_tests!(
    leaving_the_project_is_announced_on_the_team_topic,
    membership_changes_emit_one_team_event_per_member,
    the_team_topic_carries_its_members_presence_only,
    who_may_subscribe_to_a_team_topic,
    the_team_topic_replays_missed_events_since_an_event_id,
);
