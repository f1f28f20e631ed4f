//! Leaving the project leaves every team; deleting a team keeps its teammates.

use super::*;

async fn leaving_the_project_leaves_every_team(engine: Engine) {
    let fx = fixture(engine).await;
    let trashed = fx.mate("trashed", "agent").await;
    let deleted = fx.mate("deleted", "agent").await;
    let stays = fx.mate("stays", "agent").await;
    let one = fx.create_team("One").await;
    let two = fx.create_team("Two").await;
    let all = [
        trashed.user.id.as_str(),
        deleted.user.id.as_str(),
        stays.user.id.as_str(),
    ];
    fx.add(&one, &all).await;
    fx.add(&two, &all).await;

    let team_users = format!("/v3/{}/project_users", fx.pid);
    fx.app
        .delete(
            &format!("{team_users}/{}?soft=true", trashed.puid),
            &fx.owner.token,
        )
        .await
        .expect(200);
    let without_trashed = sorted(vec![deleted.user.id.clone(), stays.user.id.clone()]);
    assert_eq!(fx.member_ids(&one).await, without_trashed);
    assert_eq!(fx.member_ids(&two).await, without_trashed);

    fx.app
        .delete(
            &format!("{team_users}/{}?hard=true", deleted.puid),
            &fx.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);
    assert_eq!(fx.member_ids(&two).await, vec![stays.user.id.clone()]);
    let rows = fx.presence_rows(&one).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["userId"], json!(stays.user.id));

    // A trashed teammate cannot join; the hard-deleted one is no teammate at all.
    for id in [&trashed.user.id, &deleted.user.id] {
        let resp = fx.patch_agents(&fx.admin_key, &one, agent_ids(&[id])).await;
        assert_invalid(resp, "body", "a removed teammate joins");
    }
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);

    // Restored, it is back in the project but in no team until added again.
    fx.app
        .put(
            &format!("{team_users}/{}/restore", trashed.puid),
            &fx.owner.token,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(fx.member_ids(&one).await, vec![stays.user.id.clone()]);
    fx.add(&one, &[&trashed.user.id]).await;
    assert_eq!(
        fx.member_ids(&one).await,
        sorted(vec![trashed.user.id.clone(), stays.user.id.clone()])
    );
    assert_eq!(fx.member_ids(&two).await, vec![stays.user.id.clone()]);
}

async fn deleting_a_team_keeps_its_teammates(engine: Engine) {
    let fx = fixture(engine).await;
    let alice = fx.mate("alice", "agent").await;
    let bob = fx.mate("bob", "agent").await;
    let doomed = fx.create_team("Doomed").await;
    let kept = fx.create_team("Kept").await;
    fx.add(&doomed, &[&alice.user.id, &bob.user.id]).await;
    fx.add(&kept, &[&alice.user.id]).await;

    let resp = fx.app.delete(&fx.team_path(&doomed), &fx.admin_key).await;
    assert_eq!(resp.status.as_u16(), 204, "{}", resp.text);
    message(
        fx.app
            .get(&format!("/beta/teams/{doomed}/agents"), &fx.admin_key)
            .await,
        404,
    );

    let team = fx
        .app
        .get(&format!("/v3/{}/project_users", fx.pid), &fx.owner.token)
        .await
        .expect(200);
    let team = team.as_array().expect("an array of teammates");
    for mate in [&alice, &bob] {
        let teammate = team
            .iter()
            .find(|t| t["_id"] == json!(mate.puid))
            .unwrap_or_else(|| panic!("{} is still listed: {team:?}", mate.puid));
        assert_eq!(teammate["status"], json!("active"), "{teammate}");
        assert_eq!(teammate["trashed"], json!(false), "{teammate}");
    }
    assert_eq!(fx.member_ids(&kept).await, vec![alice.user.id.clone()]);
    // The teammates can join a new team.
    let fresh = fx.create_team("Fresh").await;
    fx.add(&fresh, &[&bob.user.id]).await;
    assert_eq!(fx.member_ids(&fresh).await, vec![bob.user.id.clone()]);
}

engine_tests!(
    leaving_the_project_leaves_every_team,
    deleting_a_team_keeps_its_teammates,
);
