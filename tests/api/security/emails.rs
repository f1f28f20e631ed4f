//! Attack-review finding 10 (docs/security.md): "Look-alike emails become separate accounts".
//! Emails are matched in one normal form (invisible characters dropped, NFKC, lower case, no
//! trailing dot on the domain), for sign-up, sign-in and invitations alike.

use super::*;

/// The fullwidth twin (U+FF01…) of every ASCII letter, digit, `@`, `.` and `-`.
fn fullwidth(email: &str) -> String {
    email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-') {
                char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
            } else {
                c
            }
        })
        .collect()
}

/// Look-alikes of `email` (which starts with `newhire-`): fullwidth, a zero-width space in the
/// local part, the domain's trailing dot, upper case, and a leading byte-order mark.
fn look_alikes(email: &str) -> Vec<(&'static str, String)> {
    vec![
        ("fullwidth", fullwidth(email)),
        ("zero-width space", email.replacen("new", "new\u{200b}", 1)),
        ("trailing dot", format!("{email}.")),
        ("upper case", email.to_uppercase()),
        ("byte-order mark", format!("\u{feff}{email}")),
    ]
}

/// Finding 10. Asserts that once `newhire-…@example.com` has an account, signing up with any of
/// its look-alikes is 422 "already exists" (no second account), that signing in with a look-alike
/// and the right password signs in the same user, and that inviting a look-alike of a member's
/// email is 403 code 4001 (already a member), not a new pending invitation.
async fn look_alike_emails_are_one_account(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let email = fresh_email("newhire");
    let user_id = app.signup(&email, "New").await.expect(200)["user"]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let twins = look_alikes(&email);
    for (what, twin) in &twins {
        assert_ne!(twin, &email);
        let taken = app.signup(twin, "Twin").await;
        assert_eq!(taken.status, 422, "{what} {twin:?}: {}", taken.text);
        let body = taken.expect_error(422);
        assert!(
            body["msg"].as_str().unwrap().contains("already exists"),
            "{what} {twin:?}: refused as a duplicate, not as malformed: {body}"
        );
    }
    for (what, twin) in &twins {
        let signed_in = app.signin(twin, PASSWORD).await;
        assert_eq!(signed_in.status, 200, "{what} {twin:?}: {}", signed_in.text);
        assert_eq!(
            signed_in.body["user"]["_id"],
            json!(user_id),
            "{what} {twin:?}: the same account"
        );
    }

    // Inviting a look-alike of a member's email finds the member.
    let owner = app.new_user("owner").await;
    let pid = app.new_project(&owner).await;
    let base = format!("/v3/{pid}/project_users");
    let member = app
        .post(
            &format!("{base}/invite"),
            &owner.token,
            json!({"email": email, "role": "agent"}),
        )
        .await
        .expect(200);
    assert_eq!(member["id_user"]["_id"], json!(user_id), "{member}");
    for (what, twin) in &twins {
        let again = app
            .post(
                &format!("{base}/invite"),
                &owner.token,
                json!({"email": twin, "role": "admin"}),
            )
            .await;
        assert_eq!(again.status, 403, "{what} {twin:?}: {}", again.text);
        assert_eq!(again.expect_error(403)["code"], json!(4001), "{what}");
    }
    let team = app.get(&base, &owner.token).await.expect(200);
    assert_eq!(
        team.as_array().unwrap().len(),
        2,
        "the owner and the one member: {team}"
    );
    let invited = app.state.store.list_invitations(&email).await.unwrap();
    assert!(invited.is_empty(), "no pending invitation: {invited:?}");
}

crate::engine_tests!(look_alike_emails_are_one_account);
