//! The JWKS (`jwt_jwks`, docs/protocol.md §1) through the real server and binary:
//!
//! 1. `a_rotated_key_*`: a key added to the JWKS file works after the re-read interval.
//! 2. `unusable_jwks_*`: the real binary exits 2 naming `jwt_jwks` and where it was set.
//! 3. `jwks_over_https`: the JWKS at an `https://` URL (a local TLS server with a test CA), its
//!    rate limit and single flight counted at the server, and an untrusted certificate refused.
//!
//! Which tokens the keys accept is in `jwt.rs`. The keys are test-only fixtures
//! (`tests/fixtures/jwks/README.md`).

use crate::common;

use common::jwt::{fixture, fixture_path, scratch, sign};
use common::{spawn_app_with, Engine, GatewayProcess, PASSWORD};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The gateway's minimum time between two reads of the JWKS.
const REFRESH: Duration = presence_gateway::auth::jwks::REFRESH_MIN_INTERVAL;

// ---- 1. rotation ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_rotated_key_works_after_the_reread_interval() {
    let path = scratch("jwks.json");
    let started = Instant::now();
    let app = spawn_app_with(Engine::Memory, &[("jwt_jwks", path.to_str().unwrap())]).await;
    let ann = app.new_user("ann").await;
    let claims = json!({"sub": ann.id});
    let next = format!(
        "JWT {}",
        sign(Algorithm::RS256, Some("rsa-next"), "rsa-next.pem", &claims)
    );
    app.get("/v3/users", &next).await.expect_error(401);

    std::fs::copy(fixture("jwks-rotated.json"), &path).unwrap();
    let early = app.get("/v3/users", &next).await;
    if started.elapsed() < REFRESH - Duration::from_secs(1) {
        assert_eq!(
            early.status, 401,
            "re-read before the interval: {}",
            early.text
        );
    }
    tokio::time::sleep(
        (started + REFRESH + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    )
    .await;
    app.get("/v3/users", &next).await.expect(200);
    let old = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &claims);
    app.get("/v3/users", &format!("JWT {old}"))
        .await
        .expect(200);
    let _ = std::fs::remove_file(&path);
}

// ---- 2. start-up refusals -------------------------------------------------------------------------

#[tokio::test]
async fn unusable_jwks_stop_the_binary_with_exit_2() {
    let bad_json = scratch("jwks.json");
    std::fs::write(&bad_json, "{\"keys\": [").unwrap();
    let symmetric = scratch("jwks.json");
    std::fs::write(
        &symmetric,
        r#"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0LXNlY3JldA"}]}"#,
    )
    .unwrap();
    let config = std::env::temp_dir().join(format!("pg-config-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&config, "jwt_jwks = \"/nonexistent/jwks.json\"\n").unwrap();
    let closed = format!("https://127.0.0.1:{}/jwks.json", common::free_port());
    let (bad_json, symmetric, config) = (
        bad_json.to_str().unwrap(),
        symmetric.to_str().unwrap(),
        config.to_str().unwrap(),
    );
    // PRESENCE_JWT_JWKS (or none), flags, and what the message must say besides `jwt_jwks`.
    let cases: [(Option<&str>, &[&str], &[&str]); 7] = [
        (
            Some("/nonexistent/jwks.json"),
            &[],
            &["environment variable PRESENCE_JWT_JWKS", "cannot read"],
        ),
        (Some(bad_json), &[], &["PRESENCE_JWT_JWKS", "not a JWKS"]),
        (
            Some(symmetric),
            &[],
            &["PRESENCE_JWT_JWKS", "no usable key", "oct"],
        ),
        (
            Some("http://127.0.0.1:1/jwks.json"),
            &[],
            &["PRESENCE_JWT_JWKS", "https://"],
        ),
        (Some(&closed), &[], &["PRESENCE_JWT_JWKS", "cannot fetch"]),
        (
            None,
            &["--jwt-jwks", "/nonexistent/jwks.json"],
            &["flag --jwt-jwks", "cannot read"],
        ),
        (None, &["--config", config], &["config file", "cannot read"]),
    ];
    for (jwks, args, expected) in cases {
        let env: Vec<(String, String)> = jwks
            .map(|value| ("PRESENCE_JWT_JWKS".to_string(), value.to_string()))
            .into_iter()
            .collect();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (code, stderr) = run_to_exit(env.clone(), args.clone()).await;
        assert_eq!(code, Some(2), "{env:?} {args:?}: {stderr}");
        for part in expected.iter().chain(&["`jwt_jwks`"]) {
            assert!(
                stderr.contains(part),
                "{env:?} {args:?}: `{part}` not in {stderr}"
            );
        }
    }
    for path in [bad_json, symmetric, config] {
        let _ = std::fs::remove_file(path);
    }
}

/// [`GatewayProcess::run_to_exit`] off the runtime's threads (it blocks while it waits).
async fn run_to_exit(env: Vec<(String, String)>, args: Vec<String>) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        GatewayProcess::run_to_exit(&env, &args)
    })
    .await
    .unwrap()
}

// ---- 3. https -------------------------------------------------------------------------------------

/// A local HTTPS server (certificate for 127.0.0.1 from the test CA) answering every request
/// with `body`, recording when each came.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<Mutex<Vec<Instant>>>,
}

async fn jwks_server(body: String) -> JwksServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = CertificateDer::pem_file_iter(fixture("tls/server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("tls/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/.well-known/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let server = JwksServer {
        url,
        body: Arc::new(Mutex::new(body)),
        hits: Arc::default(),
    };
    let (body, hits) = (server.body.clone(), server.hits.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body, hits) = (acceptor.clone(), body.clone(), hits.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                hits.lock().unwrap().push(Instant::now());
                let body = body.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_over_https() {
    // This test's own HTTP clients need the process TLS provider too (no in-process app here).
    presence_gateway::net::install_tls_provider();
    let server = jwks_server(std::fs::read_to_string(fixture("jwks.json")).unwrap()).await;
    let ca = fixture_path("tls/ca.pem");
    let log = std::env::temp_dir().join(format!("pg-jwks-https-{}.log", uuid::Uuid::new_v4()));
    println!("gateway log: {}", log.display());
    let gateway = GatewayProcess::start_logged(
        "",
        "unused",
        &[("PRESENCE_JWT_JWKS", &server.url), ("SSL_CERT_FILE", &ca)],
        &log,
    );
    gateway.wait_healthy().await;
    let hits = || server.hits.lock().unwrap().clone();
    assert_eq!(hits().len(), 1, "read once at start");

    let client = common::http();
    let base = gateway.address();
    let email = format!("ann-{}@example.com", uuid::Uuid::new_v4().simple());
    let signup =
        json!({"email": email, "password": PASSWORD, "firstname": "Ann", "lastname": "Lee"});
    let user: Value = client
        .post(format!("{base}/v3/auth/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = user["user"]["_id"].as_str().unwrap().to_string();
    let me = |token: String| {
        let (client, url) = (client.clone(), format!("{base}/v3/users"));
        async move {
            let response = client
                .get(url)
                .header("Authorization", format!("JWT {token}"))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    let claims = json!({"sub": id});
    assert_eq!(
        me(sign(Algorithm::EdDSA, Some("ed-1"), "ed25519.pem", &claims)).await,
        200
    );

    // A flood of unknown kids right after the start read causes no request to the JWKS host.
    let bogus = (0..20).map(|i| {
        me(sign(
            Algorithm::RS256,
            Some(&format!("bogus-{i}")),
            "rsa.pem",
            &claims,
        ))
    });
    assert!(futures::future::join_all(bogus)
        .await
        .iter()
        .all(|s| *s == 401));
    assert_eq!(hits().len(), 1, "rate-limited");

    // The key rotates; after the interval, 20 concurrent tokens with the new kid share one read.
    *server.body.lock().unwrap() = std::fs::read_to_string(fixture("jwks-rotated.json")).unwrap();
    tokio::time::sleep(
        (hits()[0] + REFRESH + Duration::from_millis(300))
            .saturating_duration_since(Instant::now()),
    )
    .await;
    let next = sign(Algorithm::RS256, Some("rsa-next"), "rsa-next.pem", &claims);
    let rotated = futures::future::join_all((0..20).map(|_| me(next.clone()))).await;
    assert!(rotated.iter().all(|s| *s == 200), "{rotated:?}");
    assert_eq!(hits().len(), 2, "single flight");

    // A certificate the gateway does not trust (here: the CA is not in its roots) stops it.
    let env = vec![
        ("PRESENCE_JWT_JWKS".to_string(), server.url.clone()),
        ("SSL_CERT_FILE".to_string(), fixture_path("tls/server.pem")),
    ];
    let (code, stderr) = run_to_exit(env, vec![]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`jwt_jwks`") && stderr.contains("cannot fetch"),
        "{stderr}"
    );
    assert_eq!(
        hits().len(),
        2,
        "no request got through the refused handshake"
    );
}
