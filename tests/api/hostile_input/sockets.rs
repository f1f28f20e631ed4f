//! Hostile socket frames get error frames; a flooding socket is rate limited while another
//! client's heartbeats on the same node stay fast.

use super::*;

const HEARTBEAT: &str = r#"{"action":"heartbeat","payload":{"message":{"text":"ping"}}}"#;

/// Hostile frames get error frames with a known code; the socket stays open and answers.
async fn hostile_frames_get_error_frames(engine: Engine) {
    let app = spawn_app(engine).await;
    let team = app.owner_and_agent().await;
    let mut agent = app.ws(&token_query(&team.agent.token)).await;
    let deep = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let frames: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid_frame"),
        ("".into(), "invalid_frame"),
        (deep.clone(), "invalid_frame"),
        (
            format!(r#"{{"action":"subscribe","payload":{deep}}}"#),
            "invalid_frame",
        ),
        (
            "[".repeat(100_000).chars().take(60_000).collect(),
            "invalid_frame",
        ),
        (r#"{"action":5}"#.into(), "invalid_frame"),
        (r#"{"action":{"a":1}}"#.into(), "invalid_frame"),
        (r#"{"action":"x","payload":1e400}"#.into(), "invalid_frame"),
        (
            r#"{"action":"publish","payload":{"topic":"/x","message":{}}}"#.into(),
            "forbidden",
        ),
        (
            format!(r#"{{"action":"{}"}}"#, "a".repeat(30_000)),
            "unknown_action",
        ),
        (
            r#"{"action":"subscribe","payload":{"topic":5}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"subscribe","payload":"x"}"#.into(),
            "invalid_payload",
        ),
        (r#"{"action":"unsubscribe"}"#.into(), "invalid_payload"),
        (
            r#"{"action":"availability","payload":{"user_available":"yes"}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"availability","payload":{"profileStatus":{}}}"#.into(),
            "invalid_payload",
        ),
        (
            r#"{"action":"availability","payload":{"project_id":7,"user_available":false}}"#.into(),
            "invalid_payload",
        ),
        ("\u{0}\u{feff}\u{10ffff}".into(), "invalid_frame"),
    ];
    for (text, code) in &frames {
        agent.send_text(text).await;
        let reply = agent.recv_json().await;
        let shown: String = text.chars().take(60).collect();
        assert_eq!(reply["action"], json!("error"), "{shown}: {reply}");
        assert_eq!(reply["payload"]["code"], json!(code), "{shown}: {reply}");
        assert!(reply["payload"]["message"].is_string(), "{shown}: {reply}");
    }
    agent
        .ws
        .send(Message::binary(b"\xff\xfe\x00{}".to_vec()))
        .await
        .unwrap();
    let reply = agent.recv_json().await;
    assert_eq!(reply["payload"]["code"], json!("invalid_frame"), "{reply}");
    // Still open and answering; nothing changed.
    agent.send_text(HEARTBEAT).await;
    let pong = agent.recv_json().await;
    assert_eq!(pong["payload"]["message"]["text"], json!("pong"), "{pong}");
    let tm = app
        .get(
            &format!("/v3/{}/project_users/{}", team.pid, team.puid),
            &team.owner.token,
        )
        .await
        .expect(200);
    assert_eq!(tm["user_available"], json!(true));
    agent.close().await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

/// One client floods its socket (a burst of 3,000 frames, then about 10,000 frames a second):
/// it gets `rate_limited` error frames. Meanwhile another client's heartbeat round trips on the
/// same node stay fast: p99 of 50 under 200 ms.
async fn socket_flood_is_limited_and_others_stay_fast(engine: Engine) {
    let app = spawn_app(engine).await;
    let team = app.owner_and_agent().await;
    let flooder = app
        .ws(&format!(
            "{}&presence=false",
            token_query(&team.owner.token)
        ))
        .await;
    let mut calm = app.ws(&token_query(&team.agent.token)).await;
    calm.send_text(HEARTBEAT).await;
    calm.recv_json().await;

    let (mut sink, mut stream) = flooder.ws.split();
    let limited = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let limited = limited.clone();
        tokio::spawn(async move {
            let (mut pongs, mut others, mut close) = (0usize, Vec::new(), None);
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Text(text) => {
                        let v: Value = serde_json::from_str(&text).expect("JSON frame");
                        if v["payload"]["code"] == json!("rate_limited") {
                            limited.fetch_add(1, Ordering::Relaxed);
                        } else if v["payload"]["message"]["text"] == json!("pong") {
                            pongs += 1;
                        } else if v["payload"]["message"]["text"] != json!("ping") {
                            others.push(v);
                        }
                    }
                    Message::Close(frame) => {
                        close = frame.map(|f| u16::from(f.code));
                        break;
                    }
                    _ => {}
                }
            }
            (pongs, others, close)
        })
    };
    let flood_started = Instant::now();
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0usize;
            for _ in 0..3_000 {
                sink.feed(Message::text(HEARTBEAT)).await.expect("flood");
                sent += 1;
            }
            sink.flush().await.expect("flood");
            // Bounded: at most 8 s of flooding (the limiter closes after 10 s).
            let deadline = Instant::now() + Duration::from_secs(8);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for _ in 0..50 {
                    sink.feed(Message::text(HEARTBEAT)).await.expect("flood");
                }
                sink.flush().await.expect("flood");
                sent += 50;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = sink.close().await;
            sent
        })
    };
    // Measure once the flooder is being refused.
    let refused = common::eventually(Duration::from_secs(10), || {
        let limited = limited.clone();
        async move { limited.load(Ordering::Relaxed) > 0 }
    })
    .await;
    assert!(refused, "the flood was never rate limited");
    let mut samples = Vec::with_capacity(50);
    for _ in 0..50 {
        let sent = Instant::now();
        calm.send_text(HEARTBEAT).await;
        let reply = calm.recv_json().await;
        samples.push(sent.elapsed());
        assert_eq!(
            reply["payload"]["message"]["text"],
            json!("pong"),
            "the calm client is never limited: {reply}"
        );
    }
    let limited_during = limited.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let sent = writer.await.expect("the flood writer");
    let (pongs, others, close) = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .expect("the flooder's socket closes")
        .expect("the flood reader");
    // Until the last answer: the limiter refills while the node works through the backlog.
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let limited = limited.load(Ordering::Relaxed);

    samples.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99).div_ceil(100) - 1];
    println!(
        "flood: {sent} frames in {flood_secs:.2} s ({:.0}/s), {pongs} answered, {limited} \
         rate_limited ({limited_during} while measuring); calm heartbeat p50 {p50:?}, p99 {p99:?}",
        sent as f64 / flood_secs
    );
    assert!(others.is_empty(), "unexpected frames: {others:?}");
    assert_ne!(close, Some(1008), "closed for flooding within 10 s");
    assert!(
        limited >= 500,
        "beyond the burst, frames are refused: {limited}"
    );
    let allowed = 2_000.0 + 50.0 * (flood_secs + 1.0);
    assert!(
        (pongs as f64) <= allowed,
        "{pongs} frames answered, the limit allows {allowed:.0}"
    );
    assert!(pongs >= 2_000, "the burst is answered: {pongs}");
    assert!(
        p99 < Duration::from_millis(200),
        "another client's heartbeat p99 {p99:?} during the flood"
    );
    // The calm client and the node are fine.
    calm.send_text(HEARTBEAT).await;
    assert_eq!(
        calm.recv_json().await["payload"]["message"]["text"],
        json!("pong")
    );
    calm.close().await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

engine_tests!(
    hostile_frames_get_error_frames,
    socket_flood_is_limited_and_others_stay_fast,
);
