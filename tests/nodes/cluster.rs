//! Several gateway nodes on one private Redis or Redis Cluster: presence is shared, transitions
//! happen once, dead nodes stop counting, and Redis restarts and node shutdowns are ridden out.

use crate::common;

use common::{
    spawn_app_with, token_query, unique_prefix, Backend, Engine, RedisServer, TestApp, TestUser,
};
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(6);

struct Cluster {
    redis: Backend,
    nodes: Vec<TestApp>,
    pid: String,
    owner: TestUser,
    agent: TestUser,
    puid: String,
    url: String,
    prefix: String,
}

async fn cluster(redis: Backend, nodes: usize, overrides: &[(&str, &str)]) -> Cluster {
    let url = redis.url();
    let prefix = unique_prefix();
    let mut apps = Vec::new();
    for _ in 0..nodes {
        let engine = Engine::RedisAt {
            url: url.clone(),
            prefix: prefix.clone(),
        };
        apps.push(spawn_app_with(engine, overrides).await);
    }
    let app = &apps[0];
    let common::OwnerAndAgent {
        owner,
        agent,
        pid,
        puid,
    } = app.owner_and_agent().await;
    Cluster {
        redis,
        nodes: apps,
        pid,
        owner,
        agent,
        puid,
        url,
        prefix,
    }
}

impl Cluster {
    async fn presence_everywhere(&self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        for node in &self.nodes {
            all.push(
                node.presence(&self.pid, &self.puid, &self.owner.token)
                    .await,
            );
        }
        all
    }

    fn transitions(&self) -> (u64, u64) {
        self.nodes.iter().fold((0, 0), |(on, off), n| {
            let (a, b) = n.state.tracker.transitions();
            (on + a, off + b)
        })
    }
}

async fn tabs_on_several_nodes_keep_a_teammate_online_until_the_last_closes(backend: Backend) {
    let c = cluster(
        backend,
        3,
        &[("offline_grace_ms", "300"), ("node_ttl_ms", "1500")],
    )
    .await;
    let q = token_query(&c.agent.token);
    let on_a = c.nodes[0].ws(&q).await;
    let on_b = c.nodes[1].ws(&format!("{q}&channel=mobile")).await;
    let counted = common::eventually(WAIT, || async {
        c.presence_everywhere()
            .await
            .iter()
            .all(|p| p["connections"] == json!(2))
    })
    .await;
    assert!(counted, "{:?}", c.presence_everywhere().await);
    for p in c.presence_everywhere().await {
        assert_eq!(p["status"], json!("online"));
        assert_eq!(p["channels"], json!(["mobile", "web"]));
    }
    on_a.close().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    for p in c.presence_everywhere().await {
        assert_eq!(p["status"], json!("online"), "B still holds a tab");
        assert_eq!(p["connections"], json!(1));
        assert_eq!(p["channels"], json!(["mobile"]));
    }
    on_b.close().await;
    c.nodes[2]
        .wait_status(&c.pid, &c.puid, &c.owner.token, "offline", WAIT)
        .await;
    let all = c.presence_everywhere().await;
    assert!(
        all.iter().all(|p| *p == all[0]),
        "every node reports the same: {all:?}"
    );
    assert_eq!(c.transitions(), (1, 1));
}

/// A small deterministic PRNG, so a failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn racing_nodes_make_exactly_one_transition_each_way_per_cycle(backend: Backend) {
    let mut backend = Some(backend);
    for grace in ["0", "150"] {
        let redis = backend.take().expect("handed back by the previous round");
        let c = cluster(
            redis,
            3,
            &[("offline_grace_ms", grace), ("node_ttl_ms", "1500")],
        )
        .await;
        let seed = std::env::var("RACE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("race seed {seed}, grace {grace}");
        let mut rng = Rng(seed.max(1));
        let q = token_query(&c.agent.token);
        const CYCLES: u64 = 25;
        for cycle in 0..CYCLES {
            // 1 to 4 tabs, on random nodes, opened at once with random jitter.
            let tabs = 1 + rng.below(4) as usize;
            let plan: Vec<(usize, u64)> = (0..tabs)
                .map(|_| (rng.below(3) as usize, rng.below(20)))
                .collect();
            let opened = futures::future::join_all(plan.iter().map(|(node, jitter)| {
                let app = &c.nodes[*node];
                let q = q.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(*jitter)).await;
                    app.ws(&q).await
                }
            }))
            .await;
            c.nodes[0]
                .wait_status(&c.pid, &c.puid, &c.owner.token, "online", WAIT)
                .await;
            futures::future::join_all(opened.into_iter().map(|tab| {
                let jitter = rng.below(20);
                async move {
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                    tab.close().await;
                }
            }))
            .await;
            c.nodes[1]
                .wait_status(&c.pid, &c.puid, &c.owner.token, "offline", WAIT)
                .await;
            // Let any stray settle or flush land before counting.
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert_eq!(
                c.transitions(),
                (cycle + 1, cycle + 1),
                "seed {seed}, cycle {cycle}"
            );
        }
        // The next round runs on the same Redis, under a new prefix.
        backend = Some(c.redis);
    }
}

/// Starts the real binary as a separate process on the cluster's Redis.
fn spawn_process(c: &Cluster) -> common::GatewayProcess {
    common::GatewayProcess::start(
        &c.url,
        &c.prefix,
        &[
            ("PRESENCE_NODE_TTL_MS", "1500"),
            ("PRESENCE_OFFLINE_GRACE_MS", "300"),
            ("PRESENCE_HEARTBEAT_MS", "500"),
        ],
    )
}

async fn a_sigkilled_node_stops_counting_within_ttl_plus_grace_plus_one_second(backend: Backend) {
    let c = cluster(
        backend,
        1,
        &[("offline_grace_ms", "300"), ("node_ttl_ms", "1500")],
    )
    .await;
    let mut child = spawn_process(&c);
    child.wait_healthy().await;
    let url = format!(
        "ws://127.0.0.1:{}/ws?{}",
        child.port,
        token_query(&c.agent.token)
    );
    let (tab, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let observer = &c.nodes[0];
    observer
        .wait_status(&c.pid, &c.puid, &c.owner.token, "online", WAIT)
        .await;

    child.kill(); // SIGKILL: no handover, no goodbye.
    let killed = Instant::now();
    observer
        .wait_status(&c.pid, &c.puid, &c.owner.token, "offline", WAIT)
        .await;
    let took = killed.elapsed();
    println!("offline {took:?} after SIGKILL");
    assert!(
        took <= Duration::from_millis(1500 + 300 + 1000),
        "took {took:?}"
    );
    assert_eq!(
        observer.presence(&c.pid, &c.puid, &c.owner.token).await["connections"],
        json!(0)
    );
    drop(tab);
}

#[tokio::test]
async fn presence_is_right_again_after_a_redis_restart() {
    let mut c = cluster(
        Backend::Single(RedisServer::start(true)),
        2,
        &[("offline_grace_ms", "300"), ("node_ttl_ms", "1500")],
    )
    .await;
    // A second agent whose tab closes while Redis is down.
    let leaver = c.nodes[0].new_user("leaver").await;
    let leaver_puid = c.nodes[0]
        .add_member(&c.owner, &c.pid, &leaver, "agent")
        .await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let stays = c.nodes[0].ws(&token_query(&c.agent.token)).await;
    let leaves = c.nodes[1].ws(&token_query(&leaver.token)).await;
    c.nodes[0]
        .wait_status(&c.pid, &c.puid, &c.owner.token, "online", WAIT)
        .await;
    c.nodes[0]
        .wait_status(&c.pid, &leaver_puid, &c.owner.token, "online", WAIT)
        .await;

    let Backend::Single(redis) = &mut c.redis else {
        unreachable!("a single Redis")
    };
    redis.kill();
    leaves.close().await;
    tokio::time::sleep(Duration::from_millis(2000)).await; // longer than the node TTL
    redis.restart();

    let started = Instant::now();
    c.nodes[1]
        .wait_status(
            &c.pid,
            &leaver_puid,
            &c.owner.token,
            "offline",
            Duration::from_secs(5),
        )
        .await;
    let presence = c.nodes[1]
        .wait_status(
            &c.pid,
            &c.puid,
            &c.owner.token,
            "online",
            Duration::from_secs(5),
        )
        .await;
    let converged = common::eventually(Duration::from_secs(5), || async {
        c.nodes[1].presence(&c.pid, &c.puid, &c.owner.token).await["connections"] == json!(1)
    })
    .await;
    assert!(converged, "{presence}");
    println!("converged {:?} after Redis came back", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stays);
}

async fn a_node_shutdown_hands_its_sockets_over_without_an_offline(backend: Backend) {
    let c = cluster(
        backend,
        2,
        &[("offline_grace_ms", "1500"), ("node_ttl_ms", "1500")],
    )
    .await;
    let mut nodes = c.nodes;
    let survivor = nodes.pop().unwrap();
    let leaving = nodes.pop().unwrap();
    // Another agent on the leaving node who does not come back.
    let gone = survivor.new_user("gone").await;
    let gone_puid = survivor.add_member(&c.owner, &c.pid, &gone, "agent").await["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tab = leaving.ws(&token_query(&c.agent.token)).await;
    let gone_tab = leaving.ws(&token_query(&gone.token)).await;
    let online = survivor
        .wait_status(&c.pid, &c.puid, &c.owner.token, "online", WAIT)
        .await;
    survivor
        .wait_status(&c.pid, &gone_puid, &c.owner.token, "online", WAIT)
        .await;

    let stopping = tokio::spawn(leaving.stop());
    assert_eq!(tab.closed_with().await, Some(1012));
    // The client reconnects to the other node within the grace period.
    let _back = survivor.ws(&token_query(&c.agent.token)).await;
    stopping.await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let presence = survivor.presence(&c.pid, &c.puid, &c.owner.token).await;
    assert_eq!(presence["status"], json!("online"));
    assert_eq!(
        presence["changedAt"], online["changedAt"],
        "no offline in between"
    );
    // The one who did not come back goes offline once the grace period ends, settled by the survivor.
    survivor
        .wait_status(&c.pid, &gone_puid, &c.owner.token, "offline", WAIT)
        .await;
    drop(gone_tab);
}

backend_tests!(
    tabs_on_several_nodes_keep_a_teammate_online_until_the_last_closes,
    racing_nodes_make_exactly_one_transition_each_way_per_cycle,
    a_sigkilled_node_stops_counting_within_ttl_plus_grace_plus_one_second,
    a_node_shutdown_hands_its_sockets_over_without_an_offline,
);
