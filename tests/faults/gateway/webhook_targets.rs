//! Misbehaving webhook targets: they hang, answer slowly, reset the connection or answer garbage.

use super::*;

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Accepts the connection and never answers.
    Hang,
    /// Accepts and resets the connection at once.
    Reset,
    /// Reads the request, writes bytes that are not HTTP, closes.
    Garbage,
}

/// A raw TCP target; records when each connection was accepted.
struct RawTarget {
    url: String,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl Drop for RawTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_target(kind: Misbehaviour) -> RawTarget {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let task = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                accepted.lock().unwrap().push(Instant::now());
                match kind {
                    Misbehaviour::Hang => held.push(stream),
                    Misbehaviour::Reset => {
                        let _ = stream.set_zero_linger();
                        drop(stream);
                    }
                    Misbehaviour::Garbage => {
                        tokio::spawn(async move {
                            let mut request = Vec::new();
                            let mut buffer = [0u8; 4096];
                            let read = async {
                                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                                    match stream.read(&mut buffer).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                                    }
                                }
                            };
                            let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
                            let _ = stream
                                .write_all(
                                    b"\x00\x01\x02 SMTP ready, not HTTP at all \xff\xfe\r\n\r\n",
                                )
                                .await;
                            let _ = stream.shutdown().await;
                        });
                    }
                }
            }
        }
    });
    RawTarget {
        url,
        accepted,
        task,
    }
}

fn parse_time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp")).expect("RFC 3339")
}

/// Five subscriptions on one node: a healthy receiver, and targets that hang, answer after twice
/// the timeout, reset the connection, or answer garbage. The healthy one gets every change
/// within 1.5 s; the bad ones are retried on the schedule and end `failed`, each attempt
/// recorded with no status and an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_webhook_targets() {
    let _serial = exclusive().await;
    let test_started = Instant::now();
    let redis = RedisServer::start(false);
    let node = in_process_node(&redis.url(), &unique_prefix()).await;
    let api = Api::new(&node.address);
    let (owner, pid, _) = api.new_project().await;
    let mate = api.new_mate(&owner, &pid, "mate").await;

    let receiver = Receiver::start().await;
    receiver.delay("/slow", Duration::from_millis(2 * TIMEOUT_MS));
    let hang = raw_target(Misbehaviour::Hang).await;
    let reset = raw_target(Misbehaviour::Reset).await;
    let garbage = raw_target(Misbehaviour::Garbage).await;
    let mut subscriptions: Vec<(&str, String)> = Vec::new();
    for (name, target) in [
        ("healthy", receiver.url("/healthy")),
        ("slow", receiver.url("/slow")),
        ("hang", hang.url.clone()),
        ("reset", reset.url.clone()),
        ("garbage", garbage.url.clone()),
    ] {
        let (id, secret) =
            subscribe(&api, &pid, &owner.token, "availability.update", &target).await;
        if name == "healthy" || name == "slow" {
            receiver.set_secret(&format!("/{name}"), &secret);
        }
        subscriptions.push((name, id));
    }

    // Changes spread over a few seconds, while the bad targets are being retried.
    const CHANGES: usize = 8;
    let path = format!("/v3/{pid}/project_users/{}", mate.puid);
    let mut sent = Vec::new();
    for i in 0..CHANGES {
        sent.push(Instant::now());
        let answer = api
            .put(
                &path,
                &owner.token,
                json!({"profileStatus": format!("change-{i}")}),
            )
            .await;
        assert!(matches!(answer, Ok((200, _))), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let healthy = receiver.wait_hits("/healthy", CHANGES).await;
    let mut worst_healthy = Duration::ZERO;
    for (i, at) in sent.iter().enumerate() {
        let value = json!(format!("change-{i}"));
        let hit = healthy
            .iter()
            .find(|h| h.json["payload"]["profileStatus"] == value)
            .unwrap_or_else(|| panic!("the healthy target got change {i}"));
        hit.assert_signed();
        let took = hit.at.saturating_duration_since(*at);
        worst_healthy = worst_healthy.max(took);
        assert!(
            took < Duration::from_millis(1500),
            "change {i} reached the healthy target after {took:?}"
        );
    }

    // Each bad delivery makes every attempt of the schedule, then fails. The last change's
    // last attempt is due after the delays plus six attempts of up to the timeout each.
    let total_delays: u64 = RETRIES.iter().sum();
    let finish = Duration::from_millis(total_delays + RETRIES.len() as u64 * TIMEOUT_MS + 6000);
    let bad: Vec<&(&str, String)> = subscriptions
        .iter()
        .filter(|(n, _)| *n != "healthy")
        .collect();
    let all_ended = common::eventually(finish, || async {
        let list = history(&api, &pid, &owner.token).await;
        bad.iter().all(|(_, id)| {
            list.iter()
                .filter(|d| d["id_subscription"] == json!(id) && d["status"] != json!("pending"))
                .count()
                == CHANGES
        })
    })
    .await;
    let list = history(&api, &pid, &owner.token).await;
    assert!(all_ended, "every bad delivery ended: {:#}", json!(list));

    let tolerance = Duration::from_millis(700);
    let mut worst_late: BTreeMap<&str, i64> = BTreeMap::new();
    let mut errors: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for (name, id) in &subscriptions {
        let deliveries: Vec<&Value> = list
            .iter()
            .filter(|d| d["id_subscription"] == json!(id))
            .collect();
        assert_eq!(deliveries.len(), CHANGES, "{name}: one delivery per change");
        for delivery in deliveries {
            let attempts = delivery["attempts"].as_array().unwrap();
            if *name == "healthy" {
                assert_eq!(delivery["status"], json!("delivered"), "{delivery:#}");
                assert_eq!(attempts.len(), 1, "{delivery:#}");
                assert_eq!(attempts[0]["status_code"], json!(200));
                continue;
            }
            assert_eq!(delivery["status"], json!("failed"), "{name}: {delivery:#}");
            assert_eq!(
                attempts.len(),
                RETRIES.len(),
                "{name}: every attempt of the schedule: {delivery:#}"
            );
            for attempt in attempts {
                assert_eq!(
                    attempt["status_code"],
                    Value::Null,
                    "{name}: no answer, no status: {attempt}"
                );
                let error = attempt["error"].as_str().unwrap_or_default();
                assert!(
                    !error.is_empty(),
                    "{name}: the attempt's error is recorded: {attempt}"
                );
                errors.entry(*name).or_default().insert(error.to_string());
                if matches!(*name, "hang" | "slow") {
                    let duration = attempt["duration_ms"].as_u64().unwrap();
                    assert!(
                        (TIMEOUT_MS - 50..TIMEOUT_MS + 700).contains(&duration),
                        "{name}: an attempt ends at the timeout: {attempt}"
                    );
                }
            }
            // Attempt k starts retry[k] after attempt k-1 ended (within the 200 ms schedule tick
            // and some slack for a loaded machine).
            for k in 1..attempts.len() {
                let previous_end = parse_time(&attempts[k - 1]["at"])
                    + chrono::Duration::milliseconds(
                        attempts[k - 1]["duration_ms"].as_i64().unwrap(),
                    );
                let gap = (parse_time(&attempts[k]["at"]) - previous_end).num_milliseconds();
                let late = gap - RETRIES[k] as i64;
                assert!(
                    (-5..=tolerance.as_millis() as i64).contains(&late),
                    "{name}: attempt {k} came {gap} ms after the previous one ended, schedule \
                     says {} ms: {delivery:#}",
                    RETRIES[k]
                );
                let worst = worst_late.entry(*name).or_insert(i64::MIN);
                *worst = (*worst).max(late);
            }
        }
    }
    // Every attempt reached its target (a connection or a request each), with the same id on
    // every retry and a valid signature.
    let attempts = CHANGES * RETRIES.len();
    let mut connections = BTreeMap::new();
    for (name, target) in [("hang", &hang), ("reset", &reset), ("garbage", &garbage)] {
        let accepted = target.accepted.lock().unwrap().len();
        // At least one connection per attempt (the client could open a second one itself).
        assert!(
            accepted >= attempts,
            "{name}: {accepted} connections for {attempts} attempts"
        );
        connections.insert(name, accepted);
    }
    let slow = receiver.hits("/slow");
    assert_eq!(slow.len(), attempts, "slow: one request per attempt");
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for hit in &slow {
        hit.assert_signed();
        *per_id.entry(hit.header("webhook-id")).or_default() += 1;
    }
    assert!(
        per_id.values().all(|n| *n == RETRIES.len()),
        "the same webhook-id on every retry: {per_id:?}"
    );
    println!(
        "misbehaving targets: healthy deliveries at most {} ms after their change; bad ones \
         retried at most {worst_late:?} ms later than the schedule (after the previous attempt \
         ended); errors {errors:?}; connections {connections:?} for {attempts} attempts each; all \
         ended {} ms after the first change",
        ms(worst_healthy),
        ms(sent[0].elapsed())
    );
    println!("misbehaving targets test took {:?}", test_started.elapsed());
}
