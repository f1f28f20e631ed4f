//! Where the Redis engine connects: one Redis (`redis://`, `unix://`) or a Redis Cluster
//! (`redis+cluster://HOST:PORT[,HOST:PORT...]`), behind one [`Connection`] type, so every other
//! file of the engine is the same for both.
//!
//! Both kinds connect lazily: a gateway may start while Redis is down, and answers 503 until it
//! is up. A single Redis goes through a [`ConnectionManager`], which reconnects after restarts.
//! A cluster goes through the client's [`ClusterConnection`], which discovers the other nodes
//! from the seeds, routes each command by its first key's slot, follows `MOVED` and `ASK`
//! (slot migrations) and refreshes its slot map after a failover.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A parsed `redis_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// One Redis (with replicas if you like, but one master).
    Single(String),
    /// The seed nodes of a Redis Cluster, each as a `redis://` URL with the credentials.
    Cluster(Vec<String>),
}

/// Without the URLs: they may hold a password.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Single(_) => f.write_str("Target::Single(<redacted>)"),
            Target::Cluster(seeds) => write!(f, "Target::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl Target {
    /// Parses a `redis://`, `redis+unix://`, `unix://` or `redis+cluster://` URL. The error says
    /// what is wrong without repeating the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Target, String> {
        let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
            if ["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                redis::Client::open(url).map_err(|e| format!("not a usable Redis URL: {e}"))?;
                return Ok(Target::Single(url.to_string()));
            }
            return Err(
                "expected a redis://, unix:// or redis+cluster:// URL (TLS is not supported)"
                    .into(),
            );
        };
        // The path and query (`/db`, `?protocol=...`) apply to every seed; a cluster has db 0.
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
            None => (String::new(), authority),
        };
        if hosts.is_empty() {
            return Err("a redis+cluster:// URL names at least one HOST:PORT seed".into());
        }
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            let port = host.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            if !matches!(port, Some((h, Ok(p))) if !h.is_empty() && p > 0) {
                return Err(format!(
                    "cluster seed `{host}` is not HOST:PORT (seeds are comma-separated)"
                ));
            }
            let seed = format!("redis://{credentials}{host}{tail}");
            redis::Client::open(seed.as_str())
                .map_err(|e| format!("cluster seed `{host}` is not usable: {e}"))?;
            seeds.push(seed);
        }
        Ok(Target::Cluster(seeds))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }
}

/// One logical connection to the deployment's Redis, cheap to clone (clones share it).
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A lazy connection: nothing is opened until the first command. `response_timeout` bounds
    /// each reply (blocking reads pass their block time on top).
    pub fn open(
        target: &Target,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<Connection> {
        match target {
            Target::Single(url) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                let client = redis::Client::open(url.as_str())?;
                Ok(Connection::Single(ConnectionManager::new_lazy_with_config(
                    client, config,
                )?))
            }
            Target::Cluster(seeds) => {
                // Retries (redirects, a failover's TRYAGAIN or CLUSTERDOWN) wait 50–500 ms each;
                // the engine's fail-fast timeout bounds the whole call.
                let client = ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(connect_timeout)
                    .response_timeout(response_timeout)
                    .retries(8)
                    .min_retry_wait(50)
                    .max_retry_wait(500)
                    .build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(connect_timeout)
                    .set_response_timeout(response_timeout);
                Ok(Connection::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        }
    }

    /// `WAIT replicas timeout` on the connection that carried the last write to `key`'s slot:
    /// how many replicas have every write this connection sent so far.
    pub async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            Connection::Single(connection) => wait.query_async(connection).await,
            Connection::Cluster(connection) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = connection.route_command(wait, routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seeds_with_the_credentials() {
        assert_eq!(
            Target::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap(),
            Target::Cluster(vec![
                "redis://127.0.0.1:7000".into(),
                "redis://127.0.0.1:7001".into()
            ])
        );
        assert_eq!(
            Target::parse("redis+cluster://app:s3cr@t@10.0.0.1:6379/?protocol=3").unwrap(),
            Target::Cluster(vec!["redis://app:s3cr@t@10.0.0.1:6379/?protocol=3".into()])
        );
        assert!(Target::parse("redis://127.0.0.1:6379").is_ok());
        assert!(!Target::parse("unix:///tmp/redis.sock")
            .unwrap()
            .is_cluster());
    }

    #[test]
    fn malformed_cluster_urls_are_refused_without_echoing_them() {
        for url in [
            "redis+cluster://",
            "redis+cluster://:pw@",
            "redis+cluster://host",
            "redis+cluster://host:0",
            "redis+cluster://host:99999",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://:7000",
            "rediss://127.0.0.1:6379",
            "http://x",
        ] {
            let error = Target::parse(url).expect_err(url);
            assert!(!error.contains("pw@"), "{error}");
        }
    }
}
