//! Attack-review finding 4 (docs/security.md): "The node's socket cap can be filled by anyone". An
//! API key's sockets count against `max_connections_per_user` as a user's do, and an account that
//! is an active teammate of no project is refused at the handshake (403), so neither can fill the
//! node.

use super::*;

fn ws_path(token: &str, extra: &str) -> String {
    format!("/ws?{}{extra}", token_query(token))
}

/// Finding 4, API keys. Asserts that with `max_connections_per_user=2` one key holds two sockets
/// and its third handshake is refused with 429 (and `Retry-After`), while another key of the
/// same project still connects, and the held sockets keep working.
async fn api_key_sockets_are_capped_per_key(engine: Engine) {
    let app = spawn_app_with(engine, &[("max_connections_per_user", "2")]).await;
    let t = app.owner_and_agent().await;
    let (key, other) = (
        app.new_key(&t.pid, &t.owner.token, "agent").await,
        app.new_key(&t.pid, &t.owner.token, "agent").await,
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let ws = ws_connect(app.port, &ws_path(&key, ""))
            .await
            .expect("under the key's cap");
        held.push(ws);
    }
    let Err((status, headers)) = ws_connect(app.port, &ws_path(&key, "")).await else {
        panic!("a third socket of the same API key was admitted");
    };
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let mut second_key = ws_connect(app.port, &ws_path(&other, ""))
        .await
        .expect("another key is not limited by the first");
    assert!(answers_heartbeat(&mut second_key).await);
    for ws in &mut held {
        assert!(answers_heartbeat(ws).await, "the key's sockets still work");
    }
}

/// Finding 4, accounts in no project. Asserts that a user who is an active teammate of no
/// project gets 403 at the handshake, with and without `presence=false`, and so does an agent
/// whose only teammate was disabled; the project's owner still connects.
async fn users_in_no_project_are_refused_at_the_handshake(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let loner = app.new_user("loner").await;
    let t = app.owner_and_agent().await;
    app.delete(
        &format!("/v3/{}/project_users/{}", t.pid, t.puid),
        &t.owner.token,
    )
    .await
    .expect(200);
    for (who, user) in [("no project", &loner), ("disabled", &t.agent)] {
        for extra in ["", "&presence=false"] {
            let query = format!("{}{extra}", token_query(&user.token));
            assert_eq!(app.ws_refused(&query).await, 403, "{who}: /ws?{query}");
        }
    }
    let mut owner = ws_connect(app.port, &ws_path(&t.owner.token, ""))
        .await
        .expect("a teammate connects");
    assert!(answers_heartbeat(&mut owner).await);
}

/// Finding 4, the finding's scenario. On a node with `max_connections=6` and a per-user cap of
/// 100, three accounts in no project each try two `presence=false` sockets: asserts every one is
/// refused with 403 (none is held), and that a real agent then connects and answers a heartbeat
/// instead of being closed with 1013 (node full).
async fn accounts_in_no_project_cannot_fill_the_node(engine: Engine) {
    let app = spawn_app_with(
        engine,
        &[
            ("max_connections", "6"),
            ("max_connections_per_user", "100"),
        ],
    )
    .await;
    let t = app.owner_and_agent().await;
    let (a, b, c) = tokio::join!(
        app.new_user("squatter"),
        app.new_user("squatter"),
        app.new_user("squatter")
    );
    // The squatters' sockets are held (if admitted) while the agent connects.
    let mut admitted = Vec::new();
    let mut statuses = Vec::new();
    for squatter in [&a, &b, &c] {
        for _ in 0..2 {
            match ws_connect(app.port, &ws_path(&squatter.token, "&presence=false")).await {
                Ok(ws) => admitted.push(ws),
                Err((status, _)) => statuses.push(status),
            }
        }
    }
    let mut agent = ws_connect(app.port, &ws_path(&t.agent.token, ""))
        .await
        .expect("the agent's upgrade");
    let answered = answers_heartbeat(&mut agent).await;
    assert_eq!(
        admitted.len(),
        0,
        "sockets of accounts in no project were admitted"
    );
    assert_eq!(statuses, vec![403; 6]);
    assert!(answered, "the agent was refused: the node is full");
}

/// After finding 4's fix, the way around it: SSE streams, which held a connection open without
/// counting anywhere (one owner held 2,000). They count with sockets now: per user or key
/// (429) and per node (503).
async fn sse_streams_count_with_sockets(engine: Engine) {
    let app = spawn_app_with(
        engine,
        &[("max_connections_per_user", "2"), ("max_connections", "4")],
    )
    .await;
    let t = app.owner_and_agent().await;
    let socket = ws_connect(app.port, &ws_path(&t.agent.token, ""))
        .await
        .expect("the agent's socket");
    let stream = app
        .sse(&t.pid, Some(&t.agent.token), "", None)
        .await
        .expect("a socket and a stream: two, the cap");
    let refused = app.sse(&t.pid, Some(&t.agent.token), "", None).await;
    let refused = refused.err().expect("a third is refused");
    assert_eq!(refused.status.as_u16(), 429);
    assert!(refused.headers.contains_key("retry-after"));
    drop(stream);
    let stream = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(stream) = app.sse(&t.pid, Some(&t.agent.token), "", None).await {
                return stream;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a stream closed, another is admitted");
    // The node holds 4: two of the agent's, two of the owner's; a fifth is refused (503).
    let owner_streams = (
        app.sse(&t.pid, Some(&t.owner.token), "", None)
            .await
            .expect("3 of 4"),
        app.sse(&t.pid, Some(&t.owner.token), "", None)
            .await
            .expect("4 of 4"),
    );
    let key = app.new_key(&t.pid, &t.owner.token, "agent").await;
    let full = app.sse(&t.pid, Some(&key), "", None).await;
    assert_eq!(full.err().map(|r| r.status.as_u16()), Some(503));
    drop((socket, stream, owner_streams));
}

crate::engine_tests!(
    sse_streams_count_with_sockets,
    api_key_sockets_are_capped_per_key,
    users_in_no_project_are_refused_at_the_handshake,
    accounts_in_no_project_cannot_fill_the_node,
);
