//! The real binary, logging at `trace`, writes no credential to its log.

use super::*;

/// Removes ANSI colour sequences, so that a coloured value cannot hide a secret from `contains`.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let log =
        std::env::temp_dir().join(format!("pg-security-{}.log", uuid::Uuid::new_v4().simple()));
    let mut gateway = GatewayProcess::start_logged(
        "",
        "",
        &[
            ("PRESENCE_LOG_LEVEL", "trace"),
            ("PRESENCE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
        &log,
    );
    gateway.wait_healthy().await;
    let base = gateway.address();
    let port = gateway.port;
    let client = common::http();
    let call = |method: Method, path: &str, auth: Option<&str>, body: Option<Value>| {
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { TestApp::read(req.send().await.expect("request sent")).await }
    };

    let email = fresh_email("secretive");
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let wrong_password = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    call(
        Method::POST,
        "/v3/auth/signup",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
    .expect(200);
    call(
        Method::POST,
        "/v3/auth/signin",
        None,
        Some(json!({"email": email, "password": wrong_password})),
    )
    .await
    .expect_error(401);
    let token = call(
        Method::POST,
        "/v3/auth/signin",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwt = token.strip_prefix("JWT ").unwrap().to_string();
    let signature = jwt.rsplit_once('.').unwrap().1.to_string();

    // The JWT in a header, in `?token=` on the socket (both forms) and on SSE.
    call(Method::GET, "/v3/users", Some(&token), None)
        .await
        .expect(200);
    let pid = call(
        Method::POST,
        "/v3/projects",
        Some(&format!("Bearer {jwt}")),
        Some(json!({"name": "Secrets"})),
    )
    .await
    .expect(200)["_id"]
        .as_str()
        .unwrap()
        .to_string();
    for query in [token_query(&token), format!("token={jwt}")] {
        let mut ws = ws_connect(port, &format!("/ws?{query}"))
            .await
            .expect("socket");
        assert!(answers_heartbeat(&mut ws).await);
        let _ = ws.close(None).await;
    }
    let sse = |credential: String| {
        let url = format!("{base}/v3/{pid}/events?{}", token_query(&credential));
        let client = &client;
        async move {
            let response = client.get(url).send().await.expect("SSE");
            assert_eq!(response.status(), 200);
            drop(response);
        }
    };
    sse(token.clone()).await;

    // An API key: created, used in a header, on the socket and on SSE.
    let key = call(
        Method::POST,
        &format!("/v3/{pid}/keys"),
        Some(&token),
        Some(json!({"name": "crm", "role": "admin"})),
    )
    .await
    .expect(200)["key"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        Method::GET,
        &format!("/v3/{pid}/project_users"),
        Some(&key),
        None,
    )
    .await
    .expect(200);
    call(
        Method::GET,
        "/beta/teams",
        Some(&format!("Bearer {key}")),
        None,
    )
    .await
    .expect(200);
    let mut ws = ws_connect(port, &format!("/ws?{}", token_query(&key)))
        .await
        .expect("key socket");
    assert!(answers_heartbeat(&mut ws).await);
    let _ = ws.close(None).await;
    sse(key.clone()).await;

    // A webhook subscription: its secret signs a real delivery.
    let receiver = common::receiver::Receiver::start().await;
    let created = call(
        Method::POST,
        &format!("/v3/{pid}/subscriptions"),
        Some(&key),
        Some(json!({"event": "*", "target": receiver.url("/hook")})),
    )
    .await;
    let whsec = created.headers["x-hook-secret"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(created.expect(200)["secret"], json!(whsec));
    receiver.set_secret("/hook", &whsec);
    call(
        Method::PUT,
        &format!("/v3/{pid}/project_users"),
        Some(&token),
        Some(json!({"user_available": false})),
    )
    .await
    .expect(200);
    receiver.wait_hits("/hook", 1).await[0].assert_signed();

    // Basic auth, right and wrong; invalid credentials of every kind.
    let basic = STANDARD.encode(format!("{email}:{password}"));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("Basic {basic}")),
        None,
    )
    .await
    .expect(200);
    let wrong_basic = STANDARD.encode(format!("{email}:{wrong_password}"));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("Basic {wrong_basic}")),
        None,
    )
    .await
    .expect_error(401);
    let forged = format!("{}.{}", jwt.rsplit_once('.').unwrap().0, "AAAA".repeat(11));
    call(
        Method::GET,
        "/v3/users",
        Some(&format!("JWT {forged}")),
        None,
    )
    .await
    .expect_error(401);
    let bad_key = format!("pgk_{}", uuid::Uuid::new_v4().simple());
    call(Method::GET, "/v3/users", Some(&bad_key), None)
        .await
        .expect_error(401);
    assert_eq!(
        ws_connect(port, &format!("/ws?token={bad_key}"))
            .await
            .err()
            .map(|e| e.0),
        Some(401)
    );

    assert_eq!(gateway.terminate(), Some(0), "graceful exit");
    let text = strip_ansi(&std::fs::read_to_string(&log).expect("the log file"));
    assert!(!text.trim().is_empty(), "the log is empty");
    assert!(
        text.contains("/v3/auth/signin") && text.contains("/ws"),
        "requests are logged at trace level (else this test proves nothing): {} bytes",
        text.len()
    );
    let whsec_bytes = whsec.strip_prefix("whsec_").unwrap().to_string();
    let secrets = [
        ("password", password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("JWT", jwt.as_str()),
        ("JWT signature", signature.as_str()),
        ("API key", key.as_str()),
        ("invalid API key", bad_key.as_str()),
        ("forged JWT", forged.as_str()),
        ("webhook secret", whsec.as_str()),
        ("webhook secret bytes", whsec_bytes.as_str()),
        ("Basic credential", basic.as_str()),
        ("wrong Basic credential", wrong_basic.as_str()),
    ];
    // tungstenite logs frame payloads in hex at trace level: look for that form too.
    let leaked: Vec<String> = secrets
        .iter()
        .flat_map(|&(what, secret)| [(what, secret.to_string()), (what, hex::encode(secret))])
        .filter_map(|(what, secret)| {
            text.find(&secret).map(|at| {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                format!("{what}: {}", &text[line_start..line_end])
            })
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "secrets in the log ({}):\n{}",
        log.display(),
        leaked.join("\n")
    );
    let _ = std::fs::remove_file(&log);
}
