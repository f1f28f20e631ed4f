//! The per-email sign-in limit, shared by sign-in and Basic credentials.

use super::*;

async fn signin_brute_force_is_limited(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let user = app.new_user("brute").await;
    let basic = |password: &str| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{password}", user.email))
        )
    };
    // Ten failures, spread over sign-in, an upper-cased email and Basic auth: one counter.
    for attempt in 0..10 {
        let resp = match attempt % 3 {
            0 => app.signin(&user.email, "wrong-password").await,
            1 => {
                app.signin(&user.email.to_uppercase(), "wrong-password")
                    .await
            }
            _ => app.get("/v3/users", &basic("wrong-password")).await,
        };
        assert_eq!(resp.status, 401, "attempt {attempt}: {}", resp.text);
    }
    // Sign-in answers 429 (Tiledesk); Basic auth on an API route 401, as for any refused
    // credentials. Both say when to retry.
    for (resp, status) in [
        (app.signin(&user.email, "wrong-password").await, 429),
        (app.get("/v3/users", &basic("wrong-password")).await, 401),
    ] {
        let retry_after: u64 = resp.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        assert!(
            resp.text.contains("too many failed sign-ins"),
            "{}",
            resp.text
        );
        resp.expect_error(status);
    }
    // The right password still gets in, while limited, by either route.
    app.get("/v3/users", &basic(PASSWORD)).await.expect(200);
    app.signin(&user.email, PASSWORD).await.expect(200);
}

engine_tests!(signin_brute_force_is_limited,);
