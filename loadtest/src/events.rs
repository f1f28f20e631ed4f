//! Event measurements: `fanout` (a transition on node A reaching N topic subscribers on the last
//! node) and `webhooks` (deliveries per second to a local receiver).

use crate::client;
use crate::modes::{cpu_report, gateway_cpu};
use crate::setup::{self, call};
use crate::stats::{self, cpu_split, summary};
use crate::Cli;
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The `seq` of an event frame, found without parsing the whole frame (the loadtest shares the
/// machine with the gateway; 1,000 subscribers × full JSON parses would skew the figure).
fn frame_seq(text: &str) -> Option<u64> {
    if !text.contains(r#""method":"UPDATE""#) {
        return None;
    }
    let rest = &text[text.find(r#""seq":"#)? + 6..];
    rest[..rest.find(|c: char| !c.is_ascii_digit())?]
        .parse()
        .ok()
}

/// N subscribers on the teammate's topic on the last node; the teammate's only tab opens and
/// closes on the first node; each transition's latency is measured at every subscriber.
pub async fn fanout(
    cli: &Cli,
    subscribers: usize,
    samples: usize,
    warmup: usize,
) -> anyhow::Result<Value> {
    let world = setup::world(cli.nodes[0], &cli.jwt_secret, 1, 1).await?;
    let teammate = &world.teammates[0];
    let (actor, watcher) = (cli.nodes[0], *cli.nodes.last().unwrap());
    let topic = format!("/{}/project_users/{}", world.project_id, teammate.puid);
    let owner_query = format!(
        "token={}&presence=false",
        world.owner_token.replace(' ', "%20")
    );
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let bar = ProgressBar::new(subscribers as u64).with_message("subscribing");
    bar.set_style(stats::bar_style());
    for i in 0..subscribers {
        let mut ws = client::open(watcher, cli.sources[i % cli.sources.len()], &owner_query)
            .await
            .context("subscriber socket")?;
        let subscribe = json!({"action": "subscribe", "payload": {"topic": topic}});
        ws.send(Message::text(subscribe.to_string())).await?;
        // Wait for the snapshot, so the subscription is live before the first sample.
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .context("subscription answer")?
                .context("subscriber closed")??;
            if let Message::Text(text) = message {
                if text.contains(r#""method":"CREATE""#) {
                    break;
                }
                anyhow::ensure!(!text.contains(r#""action":"error""#), "refused: {text}");
            }
        }
        let seen = seen_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    if let Some(seq) = frame_seq(&text) {
                        let _ = seen.send((seq, Instant::now()));
                    }
                }
            }
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    let query = format!("token={}", teammate.query_token);
    let bar = ProgressBar::new((samples + warmup) as u64).with_message("transitions");
    bar.set_style(stats::bar_style());
    let self_before = cpu_split(None);
    let gateways_before = gateway_cpu(cli);
    let started = Instant::now();
    let mut latencies = Vec::new();
    // Per transition: when the first and the last subscriber saw it.
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    let mut expected_seq = 0;
    let mut socket = None;
    for i in 0..samples + warmup {
        let t0 = Instant::now();
        match socket.take() {
            None => {
                socket =
                    Some(client::open(actor, cli.sources[i % cli.sources.len()], &query).await?)
            }
            Some(ws) => {
                tokio::spawn(client::close(ws));
            }
        }
        expected_seq += 1;
        let mut received = 0;
        let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
        while received < subscribers {
            let (seq, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .context("subscribers did not all see the transition within 10 s (grace 0?)")?
                .context("every subscriber closed")?;
            if seq < expected_seq {
                continue;
            }
            expected_seq = expected_seq.max(seq);
            received += 1;
            first = first.min(at - t0);
            last = last.max(at - t0);
            if i >= warmup {
                latencies.push(at - t0);
            }
        }
        if i >= warmup {
            firsts.push(first);
            lasts.push(last);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let wall = started.elapsed();
    Ok(json!({
        "mode": "fanout",
        "actor_node": actor,
        "watcher_node": watcher,
        "subscribers": subscribers,
        "samples": samples,
        "observed_through": format!("WebSocket topic {topic} on the watcher node"),
        "latency": summary(&mut latencies),
        "first_subscriber": summary(&mut firsts),
        "last_subscriber": summary(&mut lasts),
        "cpu": cpu_report(cli, &gateways_before, self_before, wall),
    }))
}

/// `subscriptions` webhook subscriptions to a receiver in this process; `events` availability
/// changes spread over `teammates` teammates; reports deliveries per second, first event to last
/// delivery.
pub async fn webhooks(
    cli: &Cli,
    events: usize,
    subscriptions: usize,
    teammates: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let node = cli.nodes[0];
    let world = setup::world(node, &cli.jwt_secret, teammates, cli.setup_concurrency).await?;
    let ids: Arc<Mutex<HashSet<String>>> = Arc::default();
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let receiver = {
        let (ids, received) = (ids.clone(), received.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let (ids, received) = (ids.clone(), received.clone());
                async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        ids.lock().unwrap().insert(id.to_string());
                    }
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let base = format!("http://{node}/v3/{}", world.project_id);
    for _ in 0..subscriptions {
        call(
            &world.http,
            reqwest::Method::POST,
            format!("{base}/subscriptions"),
            Some(&world.owner_token),
            Some(json!({"event": "*", "target": target})),
        )
        .await
        .context("creating a subscription (is PRESENCE_WEBHOOK_ALLOW_PRIVATE=true?)")?;
    }
    let expected = (events * subscriptions) as u64;
    let bar = ProgressBar::new(expected).with_message("deliveries");
    bar.set_style(stats::bar_style());
    let self_before = cpu_split(None);
    let gateways_before = gateway_cpu(cli);
    let started = Instant::now();
    let puids: Vec<String> = world.teammates.iter().map(|t| t.puid.clone()).collect();
    let made = futures::stream::iter(0..events)
        .map(|i| {
            let (http, base, token, puids) = (&world.http, &base, &world.owner_token, &puids);
            async move {
                // A status no teammate had before: every call is a change, so one event, even
                // when calls for one teammate overlap (flipping a flag would not be).
                let puid = &puids[i % puids.len()];
                let status = format!("bench-{i}");
                call(
                    http,
                    reqwest::Method::PUT,
                    format!("{base}/project_users/{puid}"),
                    Some(token),
                    Some(json!({"profileStatus": status})),
                )
                .await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await;
    let events_done = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(std::sync::atomic::Ordering::Relaxed) < (made * subscriptions) as u64
        && Instant::now() < deadline
    {
        bar.set_position(received.load(std::sync::atomic::Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let delivered = received.load(std::sync::atomic::Ordering::Relaxed);
    let distinct_events = ids.lock().unwrap().len();
    Ok(json!({
        "mode": "webhooks",
        "events_made": made,
        "subscriptions": subscriptions,
        "deliveries_expected": made * subscriptions,
        "deliveries_received": delivered,
        "distinct_event_ids": distinct_events,
        "events_made_in_s": stats::round(events_done.as_secs_f64()),
        "wall_s": stats::round(wall.as_secs_f64()),
        "deliveries_per_s": stats::round(delivered as f64 / wall.as_secs_f64()),
        "cpu": cpu_report(cli, &gateways_before, self_before, wall),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_seq_of_update_frames_only() {
        let update = r#"{"action":"publish","payload":{"topic":"/p","method":"UPDATE","message":{},"event":{"id":"x","seq":42,"payload":{}}}}"#;
        assert_eq!(super::frame_seq(update), Some(42));
        assert_eq!(
            super::frame_seq(r#"{"action":"publish","payload":{"method":"CREATE"}}"#),
            None
        );
    }
}
