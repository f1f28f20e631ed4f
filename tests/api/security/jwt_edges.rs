//! JWT edge cases: forged, expired, unsigned and foreign tokens are 401 on REST, SSE and the
//! socket handshake; a backend-minted token (Tiledesk `_id`) works.

use super::*;

fn hs512(input: &str, secret: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

async fn jwt_edge_cases(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let signup = |name: &'static str| {
        let app = &app;
        async move {
            let email = fresh_email(name);
            let user = app.signup(&email, name).await.expect(200)["user"].clone();
            user["_id"].as_str().unwrap().to_string()
        }
    };
    let (alice, bob) = tokio::join!(signup("alice"), signup("bob"));
    let exp = now() + 3600;

    // A backend-minted token works, with the id as `sub` or as Tiledesk's `_id`.
    let by_sub = mint(&json!({"sub": alice, "exp": exp}));
    let by_legacy_id = mint(&json!({"_id": alice, "exp": exp, "iat": now()}));
    let in_leeway = mint(&json!({"sub": alice, "exp": now() - 10}));
    for (what, token) in [
        ("sub", &by_sub),
        ("_id", &by_legacy_id),
        ("exp 10 s ago (30 s leeway)", &in_leeway),
    ] {
        let me = app.get("/v3/users", &format!("JWT {token}")).await;
        assert_eq!(me.status, 200, "{what}: {}", me.text);
        assert_eq!(me.body["_id"], json!(alice), "{what}");
    }
    let pid = app
        .new_project(&TestUser {
            id: alice.clone(),
            email: String::new(),
            token: format!("JWT {by_legacy_id}"),
        })
        .await;
    let mut ws = ws_connect(app.port, &format!("/ws?{}", token_query(&by_legacy_id)))
        .await
        .expect("a minted `_id` token opens a socket");
    assert!(answers_heartbeat(&mut ws).await);
    let _ = ws.close(None).await;

    // Everything else is 401.
    let header = |alg: &str| b64_json(&json!({"alg": alg, "typ": "JWT"}));
    let claims = b64_json(&json!({"sub": alice, "exp": exp}));
    let unsigned_input = format!("{}.{claims}", header("none"));
    let hs512_input = format!("{}.{claims}", header("HS512"));
    let (alice_head, alice_sig) = by_sub.rsplit_once('.').unwrap();
    let alice_header = alice_head.split('.').next().unwrap();
    let bob_claims = b64_json(&json!({"sub": bob, "exp": exp}));
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong secret",
            mint_with(&json!({"sub": alice, "exp": exp}), b"not-the-secret"),
        ),
        ("alg none, unsigned", format!("{unsigned_input}.")),
        (
            "alg none, signed with the right secret",
            format!(
                "{unsigned_input}.{}",
                hs256(&unsigned_input, JWT_SECRET.as_bytes())
            ),
        ),
        (
            "alg HS512 with the right secret",
            format!(
                "{hs512_input}.{}",
                hs512(&hs512_input, JWT_SECRET.as_bytes())
            ),
        ),
        ("HS256 without a signature", format!("{alice_head}.")),
        (
            "expired an hour ago",
            mint(&json!({"sub": alice, "exp": now() - 3600})),
        ),
        (
            "nbf in an hour",
            mint(&json!({"sub": alice, "exp": exp, "nbf": now() + 3600})),
        ),
        (
            "neither sub nor _id",
            mint(&json!({"email": "alice@example.com", "exp": exp})),
        ),
        ("empty sub", mint(&json!({"sub": "", "exp": exp}))),
        ("sub not a UUID", mint(&json!({"sub": "admin", "exp": exp}))),
        (
            "unknown user",
            mint(&json!({"sub": uuid::Uuid::new_v4().to_string(), "exp": exp})),
        ),
        (
            "payload swapped for another user's",
            format!("{alice_header}.{bob_claims}.{alice_sig}"),
        ),
        (
            "signature of another token",
            format!(
                "{alice_header}.{claims}.{}",
                mint(&json!({"sub": bob, "exp": exp}))
                    .rsplit_once('.')
                    .unwrap()
                    .1
            ),
        ),
    ];
    for (what, token) in &refused {
        assert_refused_everywhere(&app, &pid, what, token).await;
    }
}

engine_tests!(jwt_edge_cases,);
