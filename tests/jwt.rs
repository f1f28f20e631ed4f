//! JWT verification through the real server (CONTRACT §1–2), on REST, the agent socket and SSE:
//!
//! 1. `tiledesk_tokens_work_everywhere`: a token shaped exactly like Tiledesk's (`sub: "user"`,
//!    the id in `_id`, `aud`, `iss`, `jti`) works; `sub` wins when it is a user id (both engines).
//! 2. `asymmetric_tokens_*`: RS256, ES256 and EdDSA tokens verified with the `jwt_jwks` key their
//!    `kid` names, beside HS256; every mismatch, forgery and algorithm confusion is 401.
//! 3. `a_rotated_key_*`: a key added to the JWKS file works after the re-read interval.
//! 4. `unusable_jwks_*`: the real binary exits 2 naming `jwt_jwks` and where it was set.
//! 5. `jwks_over_https`: the JWKS at an `https://` URL (a local TLS server with a test CA), its
//!    rate limit and single flight counted at the server, and an untrusted certificate refused.
//!
//! The keys are test-only fixtures (`tests/fixtures/jwks/README.md`). The edge cases of HS256
//! itself (`alg: none`, HS512, expiry, tampering) are in `security.rs`.

mod common;

use base64::Engine as _;
use common::jwt::{
    assert_accepted_everywhere, assert_refused_everywhere, mint, mint_raw, now, tiledesk_claims,
};
use common::{spawn_app_with, Engine, GatewayProcess, TestApp, TestUser, PASSWORD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The gateway's minimum time between two reads of the JWKS (`auth::jwks`).
const REFRESH: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks")).join(name)
}

fn fixture_path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// A token signed with a fixture's private key, with `kid` in its header.
fn sign(alg: Algorithm, kid: Option<&str>, private_pem: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(private_pem)).unwrap();
    let key = match private_pem {
        p if p.starts_with("rsa") => EncodingKey::from_rsa_pem(&pem),
        p if p.starts_with("ec") => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The DER inside a PEM file.
fn der(pem_file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(pem_file)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// A user who owns a project: the user, and the project (so SSE can be tried too).
async fn owner(app: &TestApp, name: &str) -> (TestUser, String) {
    let user = app.new_user(name).await;
    let pid = app.new_project(&user).await;
    (user, pid)
}

// ---- 1. Tiledesk tokens ---------------------------------------------------------------------------

async fn tiledesk_tokens_work_everywhere(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let (ann, pid) = owner(&app, "ann").await;
    let bob = app.new_user("bob").await;
    let token = mint(&tiledesk_claims(&ann.id, &ann.email));
    assert_accepted_everywhere(&app, &pid, "Tiledesk token", &token, &ann.id).await;

    // `sub` is the user when it is a user id, whatever `_id` says.
    let both = mint(&json!({"sub": ann.id, "_id": bob.id, "aud": "https://tiledesk.com"}));
    let me = app
        .get("/v3/users", &format!("JWT {both}"))
        .await
        .expect(200);
    assert_eq!(me["_id"], json!(ann.id));

    let mut no_id = tiledesk_claims(&ann.id, &ann.email);
    no_id.as_object_mut().unwrap().remove("_id");
    let mut odd_id = tiledesk_claims(&ann.id, &ann.email);
    odd_id["_id"] = json!("5e1c9b3f8e2a4b0017d1c0de");
    let stranger = uuid::Uuid::new_v4().to_string();
    let refused = [
        ("Tiledesk token without _id", mint(&no_id)),
        ("Tiledesk token with a Mongo-style _id", mint(&odd_id)),
        (
            "Tiledesk token of an unknown user",
            mint(&tiledesk_claims(&stranger, "x@y.z")),
        ),
        (
            "Tiledesk token with another secret",
            common::jwt::mint_with(&tiledesk_claims(&ann.id, &ann.email), b"tiledesk-secret"),
        ),
    ];
    for (what, token) in &refused {
        assert_refused_everywhere(&app, &pid, what, token).await;
    }
}

engine_tests!(tiledesk_tokens_work_everywhere);

// ---- 2. asymmetric tokens -------------------------------------------------------------------------

async fn jwks_app() -> TestApp {
    spawn_app_with(Engine::Memory, &[("jwt_jwks", &fixture_path("jwks.json"))]).await
}

#[tokio::test]
async fn asymmetric_tokens_are_verified_with_the_key_their_kid_names() {
    let app = jwks_app().await;
    let (ann, pid) = owner(&app, "ann").await;
    let claims = tiledesk_claims(&ann.id, &ann.email);
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", "rsa.pem"),
        (Algorithm::ES256, "ec-1", "ec.pem"),
        (Algorithm::EdDSA, "ed-1", "ed25519.pem"),
    ] {
        let token = sign(alg, Some(kid), pem, &claims);
        assert_accepted_everywhere(&app, &pid, &format!("{alg:?}"), &token, &ann.id).await;
    }
    // HS256 with the shared secret keeps working beside the JWKS (sign-in tokens are HS256).
    assert_accepted_everywhere(&app, &pid, "HS256", &mint(&claims), &ann.id).await;
    let signed_in = jsonwebtoken::decode_header(ann.token.strip_prefix("JWT ").unwrap()).unwrap();
    assert_eq!(signed_in.alg, Algorithm::HS256, "sign-in tokens are HS256");
    app.get("/v3/users", &ann.token).await.expect(200);
}

#[tokio::test]
async fn asymmetric_tokens_that_do_not_fit_their_key_are_refused() {
    let app = jwks_app().await;
    let (ann, pid) = owner(&app, "ann").await;
    let claims = json!({"sub": ann.id, "exp": now() + 3600});
    let good = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &claims);
    let (head, signature) = good.rsplit_once('.').unwrap();
    let header = head.split('.').next().unwrap();
    let other = common::jwt::b64_json(&json!({"sub": app.new_user("bob").await.id}));
    let hs256_kid = |kid: &str| json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let mut own_key = Header::new(Algorithm::RS256);
    own_key.kid = Some("rsa-next".into());
    let next_key = EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-next.pem")).unwrap());
    own_key.jwk = Some(
        jsonwebtoken::jwk::Jwk::from_encoding_key(next_key.as_ref().unwrap(), Algorithm::RS256)
            .unwrap(),
    );
    let refused: Vec<(&str, String)> = vec![
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-2"), "rsa.pem", &claims),
        ),
        (
            "RS256 without a kid",
            sign(Algorithm::RS256, None, "rsa.pem", &claims),
        ),
        (
            "kid of the RSA key, alg ES256",
            sign(Algorithm::ES256, Some("rsa-1"), "ec.pem", &claims),
        ),
        (
            "kid of the EC key, alg RS256",
            sign(Algorithm::RS256, Some("ec-1"), "rsa.pem", &claims),
        ),
        (
            "kid of the Ed key, alg ES256",
            sign(Algorithm::ES256, Some("ed-1"), "ec.pem", &claims),
        ),
        (
            "RS384 with the RSA key",
            sign(Algorithm::RS384, Some("rsa-1"), "rsa.pem", &claims),
        ),
        (
            "PS256 with the RSA key",
            sign(Algorithm::PS256, Some("rsa-1"), "rsa.pem", &claims),
        ),
        (
            "wrong signature",
            sign(Algorithm::RS256, Some("rsa-1"), "rsa-next.pem", &claims),
        ),
        ("tampered payload", format!("{header}.{other}.{signature}")),
        ("no signature", format!("{head}.")),
        (
            "a token that brings its own key (jwk header)",
            jsonwebtoken::encode(&own_key, &claims, next_key.as_ref().unwrap()).unwrap(),
        ),
        (
            "expired",
            sign(
                Algorithm::EdDSA,
                Some("ed-1"),
                "ed25519.pem",
                &json!({"sub": ann.id, "exp": now() - 3600}),
            ),
        ),
        (
            "nbf in an hour",
            sign(
                Algorithm::ES256,
                Some("ec-1"),
                "ec.pem",
                &json!({"sub": ann.id, "nbf": now() + 3600}),
            ),
        ),
        (
            "naming no user",
            sign(
                Algorithm::RS256,
                Some("rsa-1"),
                "rsa.pem",
                &json!({"sub": "user"}),
            ),
        ),
        (
            "an unknown user",
            sign(
                Algorithm::RS256,
                Some("rsa-1"),
                "rsa.pem",
                &json!({"sub": uuid::Uuid::new_v4()}),
            ),
        ),
        // Algorithm confusion: HS256 "signed" with the published public keys as HMAC secrets.
        (
            "HS256 keyed with the RSA public PEM",
            mint_raw(
                &hs256_kid("rsa-1"),
                &claims,
                &std::fs::read(fixture("rsa.pub.pem")).unwrap(),
            ),
        ),
        (
            "HS256 keyed with the RSA public DER",
            mint_raw(&hs256_kid("rsa-1"), &claims, &der("rsa.pub.pem")),
        ),
        (
            "HS256 keyed with the EC public PEM",
            mint_raw(
                &hs256_kid("ec-1"),
                &claims,
                &std::fs::read(fixture("ec.pub.pem")).unwrap(),
            ),
        ),
        (
            "HS256 keyed with the EC public DER",
            mint_raw(&hs256_kid("ec-1"), &claims, &der("ec.pub.pem")),
        ),
        (
            "HS256 keyed with the Ed public DER",
            mint_raw(&hs256_kid("ed-1"), &claims, &der("ed25519.pub.pem")),
        ),
        (
            "HS256 without kid keyed with the RSA public PEM",
            mint_raw(
                &json!({"alg": "HS256"}),
                &claims,
                &std::fs::read(fixture("rsa.pub.pem")).unwrap(),
            ),
        ),
    ];
    for (what, token) in &refused {
        assert_refused_everywhere(&app, &pid, what, token).await;
    }
    // The good token still works after all that.
    app.get("/v3/users", &format!("JWT {good}"))
        .await
        .expect(200);

    // Without a JWKS, no asymmetric token is accepted at all.
    let plain = spawn_app_with(Engine::Memory, &[]).await;
    let (bob, bob_pid) = owner(&plain, "bob").await;
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        "rsa.pem",
        &json!({"sub": bob.id}),
    );
    assert_refused_everywhere(&plain, &bob_pid, "RS256 without a JWKS", &token).await;
}

// ---- 3. rotation ----------------------------------------------------------------------------------

/// A copy of a fixture in a fresh temporary file.
fn scratch(fixture_name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pg-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::copy(fixture(fixture_name), &path).unwrap();
    path
}

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

// ---- 4. start-up refusals -------------------------------------------------------------------------

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
    let env = |value: &str| vec![("PRESENCE_JWT_JWKS".to_string(), value.to_string())];
    let flags = |flags: &[&str]| flags.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<(String, String)>, Vec<String>, &[&str])> = vec![
        (
            env("/nonexistent/jwks.json"),
            vec![],
            &["environment variable PRESENCE_JWT_JWKS", "cannot read"],
        ),
        (
            env(bad_json.to_str().unwrap()),
            vec![],
            &["PRESENCE_JWT_JWKS", "not a JWKS"],
        ),
        (
            env(symmetric.to_str().unwrap()),
            vec![],
            &["PRESENCE_JWT_JWKS", "no usable key", "oct"],
        ),
        (
            env("http://127.0.0.1:1/jwks.json"),
            vec![],
            &["PRESENCE_JWT_JWKS", "https"],
        ),
        (env(&closed), vec![], &["PRESENCE_JWT_JWKS", "cannot fetch"]),
        (
            vec![],
            flags(&["--jwt-jwks", "/nonexistent/jwks.json"]),
            &["flag --jwt-jwks"],
        ),
        (
            vec![],
            flags(&["--config", config.to_str().unwrap()]),
            &["config file"],
        ),
    ];
    for (env, args, expected) in cases {
        let (code, stderr) = run_to_exit(env.clone(), args.clone()).await;
        assert_eq!(code, Some(2), "{env:?} {args:?}: {stderr}");
        assert!(stderr.contains("`jwt_jwks`"), "{env:?} {args:?}: {stderr}");
        for part in expected {
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

// ---- 5. https -------------------------------------------------------------------------------------

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

    let client = reqwest::Client::new();
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
