//! Revoked credentials lose access at once: a removed teammate's sockets and streams, and a
//! deleted API key's, end within a second.

use super::*;

/// Reads SSE events until one of `event_type`; panics after `WAIT`.
async fn sse_until(sse: &mut common::SseClient, event_type: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = sse.next(left).await;
        if event.event.as_deref() == Some(event_type) {
            return;
        }
    }
}

/// Reads socket frames until `n` `UPDATE`s of `event_type` (one per subscribed topic); panics
/// after 5 s without a frame.
async fn ws_until(agent: &mut common::Agent, event_type: &str, n: usize) {
    let mut seen = 0;
    while seen < n {
        let frame = agent.recv_json().await;
        if frame["payload"]["event"]["type"] == json!(event_type) {
            seen += 1;
        }
    }
}

/// Taking a credential away takes effect at once (attack-review finding 6, docs/security.md). For
/// each way of removing a teammate (disable, trash, hard delete): its counted socket and its
/// observing socket get the event that says so, then close with 4003; its SSE stream gets the event
/// and ends; all within 1 s. It is refused afterwards on the project's routes, socket and stream.
/// Brought back (re-enabled, restored, invited again), it reconnects and is counted (online) again.
/// A deleted API key's socket and stream end the same way, and the key is refused everywhere.
async fn revoked_credentials_lose_access(engine: Engine) {
    let app = spawn_app_with(engine, &[("offline_grace_ms", "0")]).await;
    let t = app.owner_and_agent().await;
    let mut puid = t.puid.clone();
    for (mode, query, back) in [
        ("disable", "", "enable"),
        ("trash", "?soft=true", "restore"),
        ("delete", "?hard=true", "invite"),
    ] {
        let mut sse = app
            .sse(&t.pid, Some(&t.agent.token), "", None)
            .await
            .expect("the agent's stream opens");
        let mut counted = app.ws(&token_query(&t.agent.token)).await;
        let mut watching = app
            .ws(&format!("{}&presence=false", token_query(&t.agent.token)))
            .await;
        for topic in [
            format!("/{}/events", t.pid),
            format!("/{}/project_users", t.pid),
        ] {
            let frames = watching.subscribe(&topic, None).await;
            assert_eq!(frames[0]["action"], json!("subscribed"), "{frames:?}");
        }
        app.wait_status(&t.pid, &puid, &t.owner.token, "online", WAIT)
            .await;
        let removed = Instant::now();
        app.delete(
            &format!("/v3/{}/project_users/{puid}{query}", t.pid),
            &t.owner.token,
        )
        .await
        .expect(200);
        let event = if mode == "disable" {
            "project_user.disable"
        } else {
            "project_user.delete"
        };
        ws_until(&mut watching, event, 2).await;
        assert_eq!(watching.closed_with().await, Some(4003), "{mode}");
        assert_eq!(counted.closed_with().await, Some(4003), "{mode}");
        sse_until(&mut sse, event).await;
        assert_eq!(
            sse.try_next(WAIT).await,
            Ok(None),
            "{mode}: the stream ends"
        );
        let took = removed.elapsed();
        println!("{mode}: sockets closed and stream ended {took:?} after the removal");
        assert!(took < Duration::from_secs(1), "{mode}: {took:?}");

        app.get(&format!("/v3/{}/project_users", t.pid), &t.agent.token)
            .await
            .expect_error(403);
        let refused = app.sse(&t.pid, Some(&t.agent.token), "", None).await;
        assert_eq!(refused.err().map(|r| r.status.as_u16()), Some(403));
        let with_project = format!("project_id={}&{}", t.pid, token_query(&t.agent.token));
        assert_eq!(app.ws_refused(&with_project).await, 403, "{mode}");
        if mode != "disable" {
            let view = app
                .get(
                    &format!("/v3/{}/project_users/{puid}", t.pid),
                    &t.owner.token,
                )
                .await;
            assert_eq!(
                view.status.as_u16(),
                if mode == "trash" { 200 } else { 404 }
            );
        }

        // Brought back, the teammate reconnects and is counted again.
        match back {
            "enable" => {
                app.put(
                    &format!("/v3/{}/project_users/{puid}", t.pid),
                    &t.owner.token,
                    json!({"status": "active"}),
                )
                .await
                .expect(200);
            }
            "restore" => {
                app.put(
                    &format!("/v3/{}/project_users/{puid}/restore", t.pid),
                    &t.owner.token,
                    json!({}),
                )
                .await
                .expect(200);
            }
            _ => {
                puid = app.add_member(&t.owner, &t.pid, &t.agent, "agent").await["_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
        }
        let mut again = app.ws(&token_query(&t.agent.token)).await;
        app.wait_status(&t.pid, &puid, &t.owner.token, "online", WAIT)
            .await;
        assert!(answers_heartbeat(&mut again.ws).await, "{mode}");
        again.ws.close(None).await.unwrap();
        app.wait_status(&t.pid, &puid, &t.owner.token, "offline", WAIT)
            .await;
    }

    // A deleted API key: its socket (subscribed) and its stream end within 1 s, and it is
    // refused on REST, the socket and SSE.
    let created = app
        .post(
            &format!("/v3/{}/keys", t.pid),
            &t.owner.token,
            json!({"role": "admin"}),
        )
        .await
        .expect(200);
    let key = created["key"].as_str().unwrap();
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect(200);
    let mut key_socket = app.ws(&token_query(key)).await;
    key_socket
        .subscribe(&format!("/{}/events", t.pid), None)
        .await;
    let mut idle_key_socket = app.ws(&token_query(key)).await;
    let mut key_sse = app.sse(&t.pid, Some(key), "", None).await.expect("opens");
    let deleted = Instant::now();
    app.delete(
        &format!("/v3/{}/keys/{}", t.pid, created["_id"].as_str().unwrap()),
        &t.owner.token,
    )
    .await
    .expect(200);
    assert_eq!(key_socket.closed_with().await, Some(4003));
    assert_eq!(idle_key_socket.closed_with().await, Some(4003));
    assert_eq!(
        key_sse.try_next(WAIT).await,
        Ok(None),
        "the key's stream ends"
    );
    assert!(
        deleted.elapsed() < Duration::from_secs(1),
        "{:?}",
        deleted.elapsed()
    );
    app.get(&format!("/v3/{}/project_users", t.pid), key)
        .await
        .expect_error(401);
    app.request(Method::GET, "/beta/teams", Some(key), None)
        .await
        .expect(401);
    assert_eq!(app.ws_refused(&token_query(key)).await, 401);
    let refused = app.sse(&t.pid, Some(key), "", None).await;
    assert_eq!(refused.err().map(|r| r.status.as_u16()), Some(401));
}

engine_tests!(revoked_credentials_lose_access,);
