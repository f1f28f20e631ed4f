//! Attack-review finding 5 (docs/security.md): "Whoever signs up first with an invited email takes
//! the invitation, role included". A pending invitation is taken only by a sign-up that shows its
//! token (or, where a front end verified the address, by the email alone with
//! `signup_claims_invitations`).

use super::*;

/// `POST /v3/{pid}/project_users/invite` as `admin`.
async fn invite(app: &TestApp, admin: &TestUser, pid: &str, email: &str, role: &str) -> Resp {
    app.post(
        &format!("/v3/{pid}/project_users/invite"),
        &admin.token,
        json!({"email": email, "role": role}),
    )
    .await
}

/// Invites an email with no account; checks the pending-invitation answer and returns its token.
async fn invite_pending(
    app: &TestApp,
    admin: &TestUser,
    pid: &str,
    email: &str,
    role: &str,
) -> String {
    let body = invite(app, admin, pid, email, role).await.expect(200);
    assert_eq!(body["success"], json!(true), "{body}");
    assert!(body["msg"].is_string(), "{body}");
    let pending = &body["pendingInvitation"];
    assert_eq!(pending["email"], json!(email.to_lowercase()), "{body}");
    assert_eq!(pending["role"], json!(role), "{body}");
    let token = pending["token"].as_str().expect("the invitation's token");
    assert!(token.starts_with("pgi_"), "{token}");
    // 22 base64 characters carry at least 128 bits.
    assert!(token.len() >= 26, "a token of at least 128 bits: {token}");
    token.to_string()
}

/// `POST /v3/auth/signup`, with `invite_token` when given.
async fn signup(app: &TestApp, email: &str, invite_token: Option<&str>) -> Resp {
    let mut body = json!({"email": email, "password": PASSWORD, "firstname": "New",
        "lastname": "Hire"});
    if let Some(token) = invite_token {
        body["invite_token"] = json!(token);
    }
    app.request(Method::POST, "/v3/auth/signup", None, Some(body))
        .await
}

/// Signs in; the `JWT …` token.
async fn signin_token(app: &TestApp, email: &str) -> String {
    app.signin(email, PASSWORD).await.expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The caller's role in `pid` (`project_users/me` answers a one-teammate array, as Tiledesk).
async fn my_role(app: &TestApp, pid: &str, token: &str) -> Value {
    let me = app
        .get(&format!("/v3/{pid}/project_users/me"), token)
        .await
        .expect(200);
    assert_eq!(me.as_array().map(Vec::len), Some(1), "{me}");
    me[0]["role"].clone()
}

async fn pending_count(app: &TestApp, email: &str) -> usize {
    app.state
        .store
        .list_invitations(email)
        .await
        .expect("the store answers")
        .len()
}

/// Finding 5. Asserts that an invitation carries a fresh `pgi_` token of at least 128 bits
/// (a re-invite makes another); that a sign-up with a case variant of the invited email and no
/// token gets an account but no teammate (403 on the project's keys and team) and leaves the
/// invitation pending; and that a wrong, voided or other email's token is 422 and creates no
/// account, while the right token makes a teammate with the invited role and consumes the
/// invitation.
async fn invitations_are_taken_only_with_their_token(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    let uid = uuid::Uuid::new_v4().simple().to_string();

    // An admin invitation for an email with no account; a re-invite makes a new token.
    let email = format!("newhire-{uid}@example.com");
    let first = invite_pending(&app, &owner, &pid, &email, "admin").await;
    let again = invite_pending(&app, &owner, &pid, &email, "admin").await;
    assert_ne!(first, again, "a new invitation, a new token");

    // Whoever signs up first with the email (a case variant), without the token, gets an
    // account and nothing of the project.
    let twin = format!("NewHire-{}@Example.com", uid.to_uppercase());
    signup(&app, &twin, None).await.expect(200);
    let attacker = signin_token(&app, &twin).await;
    app.get(&format!("/v3/{pid}/keys"), &attacker)
        .await
        .expect_error(403);
    app.get(&format!("/v3/{pid}/project_users"), &attacker)
        .await
        .expect_error(403);
    assert_eq!(
        pending_count(&app, &email).await,
        1,
        "the invitation is still pending"
    );

    // The token path, on two more invited emails.
    let second = format!("second-{uid}@example.com");
    let voided = invite_pending(&app, &owner, &pid, &second, "supervisor").await;
    let token = invite_pending(&app, &owner, &pid, &second, "supervisor").await;
    let third = format!("third-{uid}@example.com");
    let foreign = invite_pending(&app, &owner, &pid, &third, "agent").await;
    let wrong = format!(
        "pgi_{}",
        URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
    );
    for (what, bad) in [
        ("an unknown token", wrong.as_str()),
        ("the token voided by the re-invite", voided.as_str()),
        ("another email's token", foreign.as_str()),
    ] {
        let refused = signup(&app, &second, Some(bad)).await;
        assert_eq!(refused.status, 422, "{what}: {}", refused.text);
        refused.expect_error(422);
        app.signin(&second, PASSWORD).await.expect_error(401);
    }
    assert_eq!(pending_count(&app, &second).await, 1);
    assert_eq!(pending_count(&app, &third).await, 1, "not taken by another");

    // The right token: a teammate with the invited role, and the invitation is gone.
    signup(&app, &second, Some(&token)).await.expect(200);
    let joined = signin_token(&app, &second).await;
    assert_eq!(my_role(&app, &pid, &joined).await, json!("supervisor"));
    assert_eq!(
        pending_count(&app, &second).await,
        0,
        "the invitation is used"
    );
}

/// Finding 5, the opt-in: with `signup_claims_invitations=true` (a front end verified the
/// address, Tiledesk's behaviour), a sign-up without a token converts its email's pending
/// invitation. Asserts the teammate exists with the invited role and the invitation is gone.
async fn signup_claims_invitations_converts_without_a_token(engine: Engine) {
    let app = spawn_app_with(engine, &[("signup_claims_invitations", "true")]).await;
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    let email = fresh_email("verified");
    invite_pending(&app, &owner, &pid, &email, "supervisor").await;
    signup(&app, &email, None).await.expect(200);
    let token = signin_token(&app, &email).await;
    assert_eq!(my_role(&app, &pid, &token).await, json!("supervisor"));
    assert_eq!(pending_count(&app, &email).await, 0);
}

crate::engine_tests!(
    invitations_are_taken_only_with_their_token,
    signup_claims_invitations_converts_without_a_token,
);
