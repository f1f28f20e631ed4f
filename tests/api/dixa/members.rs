//! Team members: added, listed by user id and removed; a non-teammate changes nothing.

use super::*;

async fn members_are_added_listed_by_user_id_and_removed(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "admin").await;
    let carol = fx.mate("carol", "supervisor").await;
    let team = fx.create_team("Support").await;
    assert!(fx.agents(&team).await.is_empty());

    let resp = fx
        .patch_agents(
            &fx.admin_key,
            &team,
            agent_ids(&[&alice.user.id, &bob.user.id]),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text);

    let mut expected = vec![
        json!({"id": alice.user.id, "name": "alice Test", "email": alice.user.email}),
        json!({"id": bob.user.id, "name": "bob Test", "email": bob.user.email}),
    ];
    expected.sort_by_key(|a| a["id"].as_str().unwrap().to_string());
    assert_eq!(fx.agents(&team).await, expected);

    // Re-adding a member (even twice in one body) is a no-op next to the new one.
    fx.add(&team, &[&alice.user.id, &carol.user.id, &alice.user.id])
        .await;
    fx.add(&team, &[&bob.user.id]).await;
    let ids = fx.member_ids(&team).await;
    assert_eq!(
        ids,
        sorted(vec![
            alice.user.id.clone(),
            bob.user.id.clone(),
            carol.user.id.clone()
        ]),
        "ordered by user id, each once"
    );
    // An empty list changes nothing.
    fx.add(&team, &[]).await;
    assert_eq!(fx.member_ids(&team).await, ids);

    let resp = fx
        .delete_agents(
            &fx.admin_key,
            &team,
            agent_ids(&[&alice.user.id, &carol.user.id]),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 204, "{}", resp.text);
    assert!(resp.text.is_empty(), "{}", resp.text);
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);
    // Removing a teammate that is not in the team is ignored.
    fx.remove(&team, &[&alice.user.id, &fx.owner.id]).await;
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);

    // Membership is per team.
    let other = fx.create_team("Sales").await;
    fx.add(&other, &[&alice.user.id]).await;
    assert_eq!(fx.member_ids(&other).await, vec![alice.user.id.clone()]);
    assert_eq!(fx.member_ids(&team).await, vec![bob.user.id.clone()]);
}

async fn adding_or_removing_a_non_teammate_changes_nothing(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let other = other_project(&fx.app).await;
    let team = fx.create_team("Support").await;
    let random = uuid::Uuid::new_v4().to_string();

    for (case, ids) in [
        (
            "a user of another project",
            vec![alice.user.id.as_str(), other.owner.id.as_str()],
        ),
        (
            "a random uuid",
            vec![random.as_str(), alice.user.id.as_str()],
        ),
        (
            "not a uuid",
            vec![alice.user.id.as_str(), "not-a-uuid", bob.user.id.as_str()],
        ),
    ] {
        let resp = fx.patch_agents(&fx.admin_key, &team, agent_ids(&ids)).await;
        assert_invalid(resp, "body", case);
        assert!(
            fx.member_ids(&team).await.is_empty(),
            "{case}: nothing added"
        );
    }
    let bodies: [&[u8]; 8] = [
        b"{}",
        br#"{"agentIds":null}"#,
        br#"{"agentIds":"x"}"#,
        br#"{"agentIds":[1]}"#,
        br#"{"agentIds":[null]}"#,
        br#"{"agentIds":["#,
        b"",
        b"nope",
    ];
    for body in bodies {
        let case = String::from_utf8_lossy(body).to_string();
        for method in [Method::PATCH, Method::DELETE] {
            let resp = fx
                .app
                .raw(
                    method.clone(),
                    &format!("/beta/teams/{team}/agents"),
                    Some(&fx.admin_key),
                    body.to_vec(),
                )
                .await;
            assert_invalid(resp, "body", &format!("{method} `{case}`"));
        }
    }
    assert!(fx.member_ids(&team).await.is_empty());

    // The same rule on removal: a bad id removes nobody.
    fx.add(&team, &[&alice.user.id, &bob.user.id]).await;
    let members = fx.member_ids(&team).await;
    for ids in [
        vec![alice.user.id.as_str(), random.as_str()],
        vec![bob.user.id.as_str(), other.owner.id.as_str()],
        vec![alice.user.id.as_str(), "12345"],
    ] {
        let resp = fx
            .delete_agents(&fx.admin_key, &team, agent_ids(&ids))
            .await;
        assert_invalid(resp, "body", &format!("remove {ids:?}"));
        assert_eq!(fx.member_ids(&team).await, members, "nothing removed");
    }
    // The other project's user is not in any team there either.
    let other_teams = fx
        .app
        .get("/beta/teams", &other.admin_key)
        .await
        .expect(200);
    assert_eq!(other_teams, json!({"data": []}));
}

engine_tests!(
    members_are_added_listed_by_user_id_and_removed,
    adding_or_removing_a_non_teammate_changes_nothing,
);
