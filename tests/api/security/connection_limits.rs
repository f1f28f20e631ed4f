//! Connection limits: per user 429 at the handshake, per node a close with 1013.

use super::*;

#[tokio::test]
async fn connection_limits_per_user_refuse_the_handshake_with_429() {
    let app = spawn_app_with(Engine::Memory, &[("max_connections_per_user", "2")]).await;
    let (ann, bob) = tokio::join!(app.new_user("ann"), app.new_user("bob"));
    let pid = app.new_project(&ann).await;
    app.add_member(&ann, &pid, &bob, "agent").await;
    let ann_ws = format!("/ws?{}", token_query(&ann.token));
    let mut first = ws_connect(app.port, &ann_ws).await.expect("first");
    let mut second = ws_connect(app.port, &ann_ws).await.expect("second");
    let Err((status, headers)) = ws_connect(app.port, &ann_ws).await else {
        panic!("a third socket of the same user was admitted");
    };
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    // The limit is per user: another user connects; the two sockets still work.
    let mut other = ws_connect(app.port, &format!("/ws?{}", token_query(&bob.token)))
        .await
        .expect("another user is not limited");
    assert!(answers_heartbeat(&mut other).await);
    assert!(answers_heartbeat(&mut second).await);
    // Once one socket closes, the user may open another.
    first.close(None).await.unwrap();
    let _ = close_code(&mut first).await;
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        match ws_connect(app.port, &ann_ws).await {
            Ok(ws) => break ws,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err((status, _)) => panic!("still refused ({status}) after a socket closed"),
        }
    };
    assert!(answers_heartbeat(&mut third).await);
}

#[tokio::test]
async fn connection_limits_per_node_close_the_extra_socket_with_1013() {
    let app = spawn_app_with(Engine::Memory, &[("max_connections", "3")]).await;
    let (owner, bob) = tokio::join!(app.new_user("owner"), app.new_user("bob"));
    let pid = app.new_project(&owner).await;
    app.add_member(&owner, &pid, &bob, "agent").await;
    let key = app.new_key(&pid, &owner.token, "agent").await;
    let queries = [
        format!("/ws?{}", token_query(&owner.token)),
        format!("/ws?{}", token_query(&bob.token)),
        format!("/ws?{}", token_query(&key)),
    ];
    let mut held = Vec::new();
    for query in &queries {
        let mut ws = ws_connect(app.port, query).await.expect("under the limit");
        assert!(answers_heartbeat(&mut ws).await, "{query}");
        held.push(ws);
    }
    // The node is full: a fourth socket, a key's or a user's, is accepted and closed with 1013.
    for query in [&queries[2], &queries[1]] {
        let mut refused = ws_connect(app.port, query)
            .await
            .expect("the upgrade itself succeeds");
        assert_eq!(close_code(&mut refused).await, Some(1013), "{query}");
    }
    for ws in &mut held {
        assert!(
            answers_heartbeat(ws).await,
            "the held sockets are untouched"
        );
    }
    // One closes: a new socket is admitted.
    let mut gone = held.remove(0);
    gone.close(None).await.unwrap();
    let _ = close_code(&mut gone).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut ws = ws_connect(app.port, &queries[1]).await.expect("upgrade");
        if answers_heartbeat(&mut ws).await {
            held.push(ws);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a socket closed but the node still refuses"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
