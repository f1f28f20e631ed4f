//! What only a Redis Cluster (or the partitioned layout) can show: projects spread over masters,
//! start-up against a cluster that is not up yet or a malformed URL, the layout check, and the
//! steps that span slots (sign-ups racing for one email, claims left by a crash).

use crate::common;

use common::cluster::RedisCluster;
use common::{
    eventually, redis_keys, spawn_app, spawn_app_with, unique_prefix, Backend, Engine,
    GatewayProcess, PASSWORD,
};
use presence_gateway::store::redis::slot_of;
use presence_gateway::{App, Config};
use reqwest::Method;
use std::collections::BTreeSet;
use std::time::Duration;

fn engine_on(backend: &Backend, prefix: &str) -> Engine {
    Engine::RedisAt {
        url: backend.url(),
        prefix: prefix.to_string(),
    }
}

/// Projects land on every master, and two gateway nodes share presence for all of them.
#[tokio::test]
async fn projects_spread_over_every_master_and_presence_is_shared() {
    let cluster = RedisCluster::start(3, 0, 2000);
    let backend = Backend::Cluster(cluster);
    let prefix = unique_prefix();
    let fast = [("offline_grace_ms", "200")];
    let a = spawn_app_with(engine_on(&backend, &prefix), &fast).await;
    let b = spawn_app_with(engine_on(&backend, &prefix), &fast).await;
    let Backend::Cluster(cluster) = &backend else {
        unreachable!()
    };
    let keys = redis_keys(&prefix);
    let owner = a.new_user("owner").await;
    let mut masters = BTreeSet::new();
    let mut projects = Vec::new();
    // Project ids are random, so a fixed number of projects could miss a master by chance
    // (12 did, about once in 50 runs). Each new project reaches a master that has none yet
    // with probability at least 5/16, so 64 of them fail to reach all three about once in
    // 10^10 runs; a layout that leaves a master out fails every time.
    while masters.len() < 3 && projects.len() < 64 {
        let pid = a.new_project(&owner).await;
        let slot = slot_of(keys.of_project(pid.parse().unwrap()).events().as_bytes());
        masters.insert(
            cluster
                .master_of(slot as u16)
                .expect("a master owns the slot"),
        );
        projects.push(pid);
    }
    assert_eq!(
        masters.len(),
        3,
        "{} projects over 16 partitions reach all 3 masters",
        projects.len()
    );
    // An agent in each of three projects: online through node b, seen on node a.
    for pid in projects.iter().take(3) {
        let agent = a.new_user("agent").await;
        let puid = a.add_member(&owner, pid, &agent, "agent").await["_id"]
            .as_str()
            .unwrap()
            .to_string();
        let tab = b.ws(&common::token_query(&agent.token)).await;
        a.wait_status(pid, &puid, &owner.token, "online", Duration::from_secs(5))
            .await;
        tab.close().await;
        a.wait_status(pid, &puid, &owner.token, "offline", Duration::from_secs(10))
            .await;
    }
}

/// A malformed `redis+cluster://` URL stops the binary with exit code 2 and a message naming the
/// setting, without echoing the password.
#[test]
fn a_malformed_cluster_url_exits_2() {
    for url in [
        "redis+cluster://",
        "redis+cluster://127.0.0.1",
        "redis+cluster://127.0.0.1:7000,,127.0.0.1:7001",
        "redis+cluster://:hunter2@127.0.0.1:notaport",
    ] {
        let (code, stderr) = GatewayProcess::run_to_exit(&[("PRESENCE_REDIS_URL", url)], &[]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains("redis_url"), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
    }
}

/// A gateway started before its cluster answers 503, and becomes ready (and works) once the
/// cluster is up, without a restart.
#[tokio::test]
async fn a_gateway_started_before_its_cluster_is_ready_once_it_is_up() {
    let mut cluster = RedisCluster::plan(3, 2000);
    let app = spawn_app(Engine::RedisAt {
        url: cluster.url(),
        prefix: unique_prefix(),
    })
    .await;
    app.request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    app.request(Method::GET, "/readyz", None, None)
        .await
        .expect(503);
    app.signup("early@example.com", "Early").await.expect(503);
    cluster.create(0);
    let ready = eventually(Duration::from_secs(15), || async {
        app.request(Method::GET, "/readyz", None, None).await.status == 200
    })
    .await;
    assert!(ready, "ready once the cluster is up");
    app.new_user("late").await;
}

async fn build(url: &str, prefix: &str, overrides: &[(&str, &str)]) -> anyhow::Result<App> {
    let mut settings = vec![
        ("listen", "127.0.0.1:0".to_string()),
        ("jwt_secret", common::JWT_SECRET.to_string()),
        ("redis_url", url.to_string()),
        ("redis_prefix", prefix.to_string()),
    ];
    settings.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
    App::build(Config::with_overrides(settings).unwrap()).await
}

/// A Redis holding the layout from before partitions is refused at start, and so is a node
/// configured with another partition count than the deployment's; neither writes anything.
async fn the_layout_is_checked_before_anything_is_written(backend: Backend) {
    let url = backend.url();
    // The earlier layout's salt key (its one global key every deployment had).
    let old = unique_prefix();
    let mut con = connection(&backend);
    let _: () = redis::cmd("SET")
        .arg(format!("{old}:event_salt"))
        .arg("42")
        .query(&mut *con)
        .unwrap();
    let refused = build(&url, &old, &[]).await.err().expect("refused");
    let message = format!("{refused:#}");
    assert!(message.contains("earlier version"), "{message}");
    let layout: bool = redis::cmd("EXISTS")
        .arg(format!("{old}:layout"))
        .query(&mut *con)
        .unwrap();
    assert!(!layout, "nothing was written next to the old layout");

    let prefix = unique_prefix();
    let first = spawn_app_with(engine_on(&backend, &prefix), &[("redis_partitions", "8")]).await;
    first.new_user("owner").await;
    let refused = build(&url, &prefix, &[("redis_partitions", "16")])
        .await
        .err()
        .expect("another partition count is refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("8 partitions") && message.contains("redis_partitions"),
        "{message}"
    );
    // The same count is fine.
    build(&url, &prefix, &[("redis_partitions", "8")])
        .await
        .expect("the deployment's own count");
}

/// Two sign-ups with one email, at once: exactly one account exists afterwards, and it is the
/// one that answered 200.
async fn racing_sign_ups_with_one_email_make_one_account(backend: Backend) {
    let prefix = unique_prefix();
    let nodes = [
        spawn_app(engine_on(&backend, &prefix)).await,
        spawn_app(engine_on(&backend, &prefix)).await,
    ];
    for round in 0..5 {
        let email = format!("race-{round}-{}@example.com", uuid::Uuid::new_v4().simple());
        let answers = futures::future::join_all((0..6).map(|i| {
            let node = &nodes[i % 2];
            let email = email.clone();
            async move { node.signup(&email, &format!("Racer{i}")).await }
        }))
        .await;
        let winners: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for loser in answers.iter().filter(|r| r.status != 200) {
            assert_eq!(loser.status, 422, "round {round}: {loser:?}");
        }
        let winner_id = winners[0].body["user"]["_id"].clone();
        for node in &nodes {
            let signed_in = node.signin(&email, PASSWORD).await.expect(200);
            assert_eq!(signed_in["user"]["_id"], winner_id, "round {round}");
        }
    }
}

/// A claim left by a sign-up that crashed between its steps (the claim points at a user whose
/// record does not exist) stops no one for long: once it is older than the takeover delay, the
/// email can be signed up; a fresh one still answers "taken".
async fn a_claim_left_by_a_crash_is_taken_over(backend: Backend) {
    let prefix = unique_prefix();
    let app = spawn_app(engine_on(&backend, &prefix)).await;
    let keys = redis_keys(&prefix);
    let mut con = connection(&backend);
    let ghost = uuid::Uuid::new_v4();
    let old_email = format!("old-{}@example.com", uuid::Uuid::new_v4().simple());
    let fresh_email = format!("fresh-{}@example.com", uuid::Uuid::new_v4().simple());
    // Claimed at 0 ms (long ago) and just now, by a user with no record.
    let _: () = redis::cmd("SET")
        .arg(keys.email(&old_email))
        .arg(format!("{ghost}|0"))
        .query(&mut *con)
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let _: () = redis::cmd("SET")
        .arg(keys.email(&fresh_email))
        .arg(format!("{ghost}|{now_ms}"))
        .query(&mut *con)
        .unwrap();
    // Nobody is found by either email.
    app.signin(&old_email, PASSWORD).await.expect(401);
    app.signup(&fresh_email, "Fresh").await.expect(422);
    let user = app.signup(&old_email, "Old").await.expect(200);
    let signed_in = app.signin(&old_email, PASSWORD).await.expect(200);
    assert_eq!(signed_in["user"]["_id"], user["user"]["_id"]);
}

/// A plain (blocking) connection that follows keys to their node on a cluster.
fn connection(backend: &Backend) -> Box<dyn redis::ConnectionLike> {
    match backend {
        Backend::Single(redis) => Box::new(
            redis::Client::open(redis.url())
                .unwrap()
                .get_connection()
                .unwrap(),
        ),
        Backend::Cluster(cluster) => Box::new(
            redis::cluster::ClusterClient::new(
                cluster.nodes.iter().map(|n| n.url()).collect::<Vec<_>>(),
            )
            .unwrap()
            .get_connection()
            .unwrap(),
        ),
    }
}

backend_tests!(
    the_layout_is_checked_before_anything_is_written,
    racing_sign_ups_with_one_email_make_one_account,
    a_claim_left_by_a_crash_is_taken_over,
);
