//! Private Redis Clusters made of real `redis-server` processes on free ports.
//!
//! * [`shared_cluster_url`]: the cluster of the `redis_cluster` engine of `engine_tests!` (each
//!   test keeps to its own key prefix): the one named by `PRESENCE_TEST_CLUSTER` (`.ci/run`
//!   starts one for the whole run), else a 3-master cluster per test process, started on first
//!   use.
//! * [`RedisCluster::start`]: a cluster a test owns (with replicas, to kill masters), stopped on
//!   drop.
//!
//! Every `redis-server` gets `PR_SET_PDEATHSIG`, so it dies with the thread that started it: a
//! crashed or killed test run leaves no servers behind. The shared cluster is therefore started
//! from a thread that lives as long as the process.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A cluster node's port must leave room for its bus port (port + 10,000).
const MAX_PORT: u16 = 55_535;

pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    dir: std::path::PathBuf,
    node_timeout_ms: u64,
}

pub struct ClusterNode {
    pub port: u16,
    child: Option<Child>,
}

impl ClusterNode {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// The `redis+cluster://` URL of the cluster shared by this run (`PRESENCE_TEST_CLUSTER`) or by
/// this process.
pub fn shared_cluster_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("PRESENCE_TEST_CLUSTER") {
            return url;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let cluster = RedisCluster::start(3, 0, 2000);
            tx.send(cluster.url()).unwrap();
            // Keep the servers (and this thread, their parent) for the life of the process.
            let _keep = cluster;
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the shared Redis Cluster started")
    })
    .clone()
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits until the cluster is
    /// ok everywhere (and every replica is in sync).
    pub fn start(masters: usize, replicas: usize, node_timeout_ms: u64) -> RedisCluster {
        let mut cluster = Self::plan(masters * (1 + replicas), node_timeout_ms);
        cluster.create(replicas);
        cluster
    }

    /// Picks free ports for `nodes` nodes without starting anything (so a gateway can be given
    /// the URL of a cluster that is not up yet); [`RedisCluster::create`] starts it.
    pub fn plan(nodes: usize, node_timeout_ms: u64) -> RedisCluster {
        let dir =
            std::env::temp_dir().join(format!("pg-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ports = Vec::new();
        while ports.len() < nodes {
            let port = free_cluster_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        RedisCluster {
            nodes: ports
                .into_iter()
                .map(|port| ClusterNode { port, child: None })
                .collect(),
            dir,
            node_timeout_ms,
        }
    }

    /// Starts the planned nodes and makes them a cluster with `replicas` replicas per master.
    pub fn create(&mut self, replicas: usize) {
        for i in 0..self.nodes.len() {
            self.launch(i);
        }
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("redis-cli is on PATH");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        self.wait_healthy(Duration::from_secs(30));
    }

    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    fn launch(&mut self, index: usize) {
        let port = self.nodes[index].port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", &self.node_timeout_ms.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.nodes[index].child = Some(command.spawn().expect("redis-server is on PATH"));
        let url = self.nodes[index].url();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if query::<String>(&url, redis::cmd("PING")).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("cluster node on port {port} did not start");
    }

    /// Waits until every running node says the cluster is ok and every replica's link is up.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.running().all(|n| node_is_healthy(&n.url())) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the Redis Cluster did not become healthy in {timeout:?}");
    }

    fn running(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// The index of the node that is master of `slot` now, as the running nodes see it.
    pub fn master_of(&self, slot: u16) -> Option<usize> {
        let node = self.running().next()?;
        let slots: redis::Value =
            query(&node.url(), redis::cmd("CLUSTER").arg("SLOTS").to_owned())?;
        let redis::Value::Array(ranges) = slots else {
            return None;
        };
        for range in ranges {
            let redis::Value::Array(fields) = range else {
                continue;
            };
            let (Some(redis::Value::Int(from)), Some(redis::Value::Int(to))) =
                (fields.first(), fields.get(1))
            else {
                continue;
            };
            if (*from..=*to).contains(&i64::from(slot)) {
                let Some(redis::Value::Array(master)) = fields.get(2) else {
                    return None;
                };
                let Some(redis::Value::Int(port)) = master.get(1) else {
                    return None;
                };
                return self.nodes.iter().position(|n| i64::from(n.port) == *port);
            }
        }
        None
    }

    /// Masters that own slots now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i].is_running()
                    && role_of(&self.nodes[*i].url()).as_deref() == Some("master")
            })
            .collect()
    }

    /// Starts a killed node again with its cluster configuration: it rejoins (a master that was
    /// failed over comes back as a replica of its successor).
    pub fn restart(&mut self, index: usize) {
        self.launch(index);
    }

    /// SIGKILLs a node.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn role_of(url: &str) -> Option<String> {
    let role: redis::Value = query(url, redis::cmd("ROLE").to_owned())?;
    match role {
        redis::Value::Array(fields) => match fields.first() {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        },
        _ => None,
    }
}

fn node_is_healthy(url: &str) -> bool {
    let Some(info) = query::<String>(url, redis::cmd("CLUSTER").arg("INFO").to_owned()) else {
        return false;
    };
    if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
        return false;
    }
    let Some(replication) = query::<String>(url, redis::cmd("INFO").arg("replication").to_owned())
    else {
        return false;
    };
    !replication.contains("role:slave") || replication.contains("master_link_status:up")
}

/// One command on a fresh connection; `None` if the node does not answer.
pub fn query<T: redis::FromRedisValue>(url: &str, cmd: redis::Cmd) -> Option<T> {
    let client = redis::Client::open(url).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(300))
        .ok()?;
    cmd.query(&mut con).ok()
}

/// A port whose bus port (+10,000) is free too, at most [`MAX_PORT`].
fn free_cluster_port() -> u16 {
    loop {
        let port = super::free_port() % (MAX_PORT - 20_000) + 20_000;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}
