//! The configuration's unit tests: layering, validation and the messages of refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Layers {
    Layers {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn defaults_match_the_contract() {
    let c = Config::load(&Layers::default()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert!(c.redis.is_none());
    assert!(c.jwt_secret.is_none());
    assert_eq!(c.offline_grace, Duration::from_millis(3000));
    assert_eq!(c.node_ttl, Duration::from_millis(10000));
    assert_eq!(c.heartbeat, Duration::from_millis(25000));
    assert_eq!(c.webhook.retry_schedule.len(), 11);
    assert_eq!(c.webhook.retry_schedule[1], Duration::from_millis(5000));
    assert_eq!(c.webhook.timeout, Duration::from_millis(10000));
    assert!(!c.webhook.allow_private);
    assert_eq!(c.max_connections_per_user, 100);
}

#[test]
fn layers_override_in_order() {
    let mut layers = env(&[
        ("PRESENCE_LISTEN", "127.0.0.1:9000"),
        ("PRESENCE_OFFLINE_GRACE_MS", "300"),
    ]);
    layers.file = Some((
        "test.toml".into(),
        "listen = \"127.0.0.1:7000\"\nnode_ttl_ms = 1500\nheartbeat_ms = 500".into(),
    ));
    layers.flags.insert("offline_grace_ms".into(), "100".into());
    let c = Config::load(&layers).unwrap();
    assert_eq!(c.listen.port(), 9000, "env beats file");
    assert_eq!(
        c.node_ttl,
        Duration::from_millis(1500),
        "file beats defaults"
    );
    assert_eq!(c.heartbeat, Duration::from_millis(500));
    assert_eq!(
        c.offline_grace,
        Duration::from_millis(100),
        "flag beats env"
    );
}

#[test]
fn bad_values_name_the_setting_and_source() {
    let err = Config::load(&env(&[("PRESENCE_NODE_TTL_MS", "50")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("node_ttl_ms"), "{err}");
    assert!(err.contains("PRESENCE_NODE_TTL_MS"), "{err}");

    let err = Config::load(&env(&[("PRESENCE_LISTEN", "nowhere")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");

    let err = Config::load(&env(&[("PRESENCE_WEBHOOK_RETRY_MS", "0,5s")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("webhook_retry_ms"), "{err}");

    let err = Config::load(&env(&[("PRESENCE_WEBHOOK_ALLOW_PRIVATE", "maybe")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("webhook_allow_private"), "{err}");

    for jwks in [
        "http://127.0.0.1/jwks.json",
        "ftp://x/jwks.json",
        "https://",
    ] {
        let err = Config::load(&env(&[("PRESENCE_JWT_JWKS", jwks)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt_jwks"), "{err}");
        assert!(err.contains("PRESENCE_JWT_JWKS"), "{err}");
    }

    for url in ["http://x", "rediss://127.0.0.1:6379"] {
        let err = Config::load(&env(&[("PRESENCE_REDIS_URL", url)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis_url"), "{err}");
    }
}

#[test]
fn unknown_file_keys_are_refused() {
    let layers = Layers {
        file: Some(("x.toml".into(), "listen_addr = \"1\"".into())),
        ..Default::default()
    };
    let err = Config::load(&layers).unwrap_err().to_string();
    assert!(err.contains("listen_addr"), "{err}");
}

#[test]
fn secrets_do_not_leak_through_debug() {
    let c = Config::load(&env(&[
        ("PRESENCE_JWT_SECRET", "supersecretvalue"),
        ("PRESENCE_REDIS_URL", "redis://:hunter2@127.0.0.1:6379"),
    ]))
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("supersecretvalue"));
    assert!(!debug.contains("hunter2"));
}

#[test]
fn every_setting_has_a_default() {
    let table: toml::Table = DEFAULT_TOML.parse().unwrap();
    for (key, _) in SETTINGS {
        assert!(
            table.contains_key(*key),
            "config/default.toml lacks `{key}`"
        );
    }
}
