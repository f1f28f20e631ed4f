//! Webhook SSRF: private targets refused unless allowed; redirects never followed.

use super::*;

#[tokio::test]
async fn webhook_ssrf_private_targets_are_refused_by_default() {
    let app = spawn_app_with(Engine::Memory, &[]).await;
    let t = app.owner_and_agent().await;
    let base = format!("/v3/{}/subscriptions", t.pid);
    for target in [
        "http://127.0.0.1:9/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://localhost/hook",
        "http://1.1.1.1@127.0.0.1/hook",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.20/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ftp://1.1.1.1/",
    ] {
        let resp = app
            .post(
                &base,
                &t.owner.token,
                json!({"event": "*", "target": target}),
            )
            .await;
        assert_eq!(resp.status, 400, "{target}: {}", resp.text);
        resp.expect_error(400);
    }
    let list = app.get(&base, &t.owner.token).await.expect(200);
    assert_eq!(list, json!([]), "nothing refused is saved");
}

/// A receiver that answers `/r302` and `/r307` with redirects to `/landing`, and records paths.
async fn redirecting_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(Vec::new()));
    let landing = format!("{base}/landing");
    let recorded = hits.clone();
    let router = axum::Router::new().fallback(move |uri: Uri| {
        let (hits, landing) = (recorded.clone(), landing.clone());
        async move {
            hits.lock().unwrap().push(uri.path().to_string());
            let status = match uri.path() {
                "/r302" => StatusCode::FOUND,
                "/r307" => StatusCode::TEMPORARY_REDIRECT,
                _ => return StatusCode::OK.into_response(),
            };
            (status, [(header::LOCATION, landing)]).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, hits)
}

#[tokio::test]
async fn webhook_ssrf_redirects_are_not_followed() {
    let app = spawn_app_with(
        Engine::Memory,
        &[
            ("webhook_allow_private", "true"),
            ("webhook_retry_ms", "0,50"),
        ],
    )
    .await;
    let (base, hits) = redirecting_receiver().await;
    let t = app.owner_and_agent().await;
    let mut subs = Vec::new();
    for path in ["/r302", "/r307"] {
        let sub = app
            .post(
                &format!("/v3/{}/subscriptions", t.pid),
                &t.owner.token,
                json!({"event": "*", "target": format!("{base}{path}")}),
            )
            .await
            .expect(200);
        subs.push((path, sub["_id"].as_str().unwrap().to_string()));
    }
    app.put(
        &format!("/v3/{}/project_users", t.pid),
        &t.owner.token,
        json!({"user_available": false}),
    )
    .await
    .expect(200);

    let history_url = format!("/v3/{}/subscriptions/history", t.pid);
    let deadline = Instant::now() + WAIT;
    let history = loop {
        let history = app.get(&history_url, &t.owner.token).await.expect(200);
        let ended = subs.iter().all(|(_, id)| {
            history
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id_subscription"] == json!(id) && d["status"] == json!("failed"))
        });
        if ended {
            break history;
        }
        assert!(
            Instant::now() < deadline,
            "no failed deliveries in time: {history:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (path, id) in &subs {
        let code: u16 = path[2..].parse().unwrap();
        let delivery = history
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id_subscription"] == json!(id))
            .unwrap();
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "two attempts (0, 50 ms): {delivery:#}");
        for attempt in attempts {
            assert_eq!(attempt["status_code"], json!(code), "{delivery:#}");
        }
    }
    let hits = hits.lock().unwrap().clone();
    let count = |p: &str| hits.iter().filter(|h| *h == p).count();
    assert_eq!(count("/r302"), 2, "{hits:?}");
    assert_eq!(count("/r307"), 2, "{hits:?}");
    assert_eq!(count("/landing"), 0, "a redirect was followed: {hits:?}");
}
