//! The one table of settings: every key, its environment variable and its flag derive from it.

/// Every setting: its file key and a one-line description (also the `--help` text).
pub const SETTINGS: &[(&str, &str)] = &[
    ("listen", "HTTP + WebSocket listen address"),
    (
        "redis_url",
        "Redis URL; empty = in-memory engine (one node, nothing persisted)",
    ),
    ("redis_prefix", "prefix of every Redis key"),
    (
        "redis_timeout_ms",
        "fail-fast timeout of one Redis call, in ms",
    ),
    (
        "redis_partitions",
        "partitions projects are spread over (fixed for a deployment's life), 1 to 1024",
    ),
    (
        "redis_wait_replicas",
        "replicas that must have a change before it is acknowledged (Redis WAIT); 0 = don't wait",
    ),
    (
        "jwt_secret",
        "HS256 secret shared by all nodes; empty = random per process",
    ),
    (
        "jwt_jwks",
        "JWKS file path or https:// URL for RS256, ES256 and EdDSA tokens; empty = none",
    ),
    (
        "jwt_ttl_secs",
        "lifetime of tokens issued at sign-in, in seconds",
    ),
    ("node_id", "this node's id in the cluster; empty = random"),
    (
        "offline_grace_ms",
        "delay before the last disconnect turns a teammate offline, in ms",
    ),
    (
        "node_ttl_ms",
        "node lease: a node silent this long is dead, in ms",
    ),
    (
        "heartbeat_ms",
        "WebSocket ping interval; a socket silent for 2 intervals is closed, in ms",
    ),
    (
        "webhook_retry_ms",
        "comma-separated delays between webhook delivery attempts, in ms",
    ),
    (
        "webhook_timeout_ms",
        "one webhook delivery attempt's timeout, in ms",
    ),
    (
        "webhook_allow_private",
        "allow webhook targets on loopback/private addresses",
    ),
    (
        "max_connections_per_user",
        "live agent sockets and SSE streams one user or API key may hold on one node",
    ),
    (
        "max_connections",
        "live agent sockets and SSE streams one node holds; more get 1013 (503 for streams)",
    ),
    (
        "http_header_timeout_ms",
        "time a connection has to send a complete request head, in ms",
    ),
    (
        "signup_claims_invitations",
        "a sign-up without invite_token converts its email's pending invitations (Tiledesk's way)",
    ),
    (
        "event_retention",
        "events kept in the log for replay (`since`, `Last-Event-ID`)",
    ),
    ("log_format", "`pretty` for humans or `json` for machines"),
    (
        "log_level",
        "tracing filter, e.g. `info` or `presence_gateway=debug,info`",
    ),
];

/// The environment variable of a setting: `PRESENCE_` + upper-cased key.
pub fn env_name(key: &str) -> String {
    format!("PRESENCE_{}", key.to_uppercase())
}

/// The command-line flag of a setting: the key with dashes.
pub fn flag_name(key: &str) -> String {
    key.replace('_', "-")
}
