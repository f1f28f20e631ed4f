//! `snapshot`: the time from a `subscribe` to the last part of a big team's snapshot, at one
//! subscriber of the team topic. The gateway sends a team over 256 KiB as numbered `CREATE`
//! parts; the sample ends when the part numbered `parts` (or an unnumbered snapshot) arrives,
//! and every teammate must be in it exactly once.

use crate::client;
use crate::setup;
use crate::stats::{cpu_split, summary};
use crate::Cli;
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn snapshot(cli: &Cli, teammates: usize, samples: usize) -> anyhow::Result<Value> {
    let setup_node = cli.setup_node.unwrap_or(cli.nodes[0]);
    let world = setup::world(
        setup_node,
        &cli.jwt_secret,
        teammates,
        cli.setup_concurrency,
    )
    .await?;
    let node = *cli.nodes.last().unwrap();
    let query = format!(
        "token={}&presence=false",
        world.owner_token.replace(' ', "%20")
    );
    let topic = format!("/{}/project_users", world.project_id);
    let cpu_before = cpu_split(cli.gateway_pid.last().copied());
    let mut times = Vec::with_capacity(samples);
    let (mut parts, mut bytes, mut members) = (0, 0, 0);
    for i in 0..samples {
        let mut ws = client::open(node, cli.sources[i % cli.sources.len()], &query).await?;
        let started = Instant::now();
        let subscribe = json!({"action": "subscribe", "payload": {"topic": topic}});
        ws.send(Message::text(subscribe.to_string())).await?;
        let mut ids = HashSet::new();
        (parts, bytes) = (0, 0);
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
                .await
                .context("the snapshot within 60 s")?
                .context("the socket closed")??;
            let Message::Text(text) = message else {
                continue;
            };
            if !text.contains(r#""method":"CREATE""#) {
                anyhow::ensure!(!text.contains(r#""action":"error""#), "refused: {text}");
                continue;
            }
            let frame: Value = serde_json::from_str(&text)?;
            let payload = &frame["payload"];
            parts += 1;
            bytes += text.len();
            for teammate in payload["message"]
                .as_array()
                .context("an array of teammates")?
            {
                anyhow::ensure!(ids.insert(teammate["_id"].to_string()), "a teammate twice");
            }
            if payload["part"].is_null() || payload["part"] == payload["parts"] {
                break;
            }
        }
        times.push(started.elapsed());
        members = ids.len();
        anyhow::ensure!(
            members == teammates + 1,
            "{members} of {} teammates",
            teammates + 1
        );
        client::close(ws).await?;
    }
    let cpu_after = cpu_split(cli.gateway_pid.last().copied());
    let gateway_cpu_s = match (cpu_before, cpu_after) {
        (Some((u0, s0)), Some((u1, s1))) => json!(((u1 + s1) - (u0 + s0)).as_secs_f64()),
        _ => Value::Null,
    };
    Ok(json!({
        "mode": "snapshot",
        "node": node.to_string(),
        "teammates": members,
        "parts": parts,
        "snapshot_bytes": bytes,
        "time_to_full_snapshot": summary(&mut times),
        "gateway_cpu_s": gateway_cpu_s,
    }))
}
