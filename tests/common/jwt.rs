//! Tokens for the JWT suites (`security.rs`, `jwt.rs`, `jwks.rs`): hand-built HS256 tokens (any
//! header, any claims, any secret, so malformed and forged ones too), tokens signed with the
//! fixture keys, and the checks that a token opens, or is refused by, every door: REST, the agent
//! socket and SSE.

use super::{token_query, TestApp, JWT_SECRET};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::PathBuf;

pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The base64url HMAC-SHA256 of `input`.
pub fn hs256(input: &str, secret: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// An HS256 token with `header` over `claims`, signed with `secret`.
pub fn mint_raw(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = hs256(&input, secret);
    format!("{input}.{signature}")
}

/// An HS256 token over `claims`, signed with `secret`.
pub fn mint_with(claims: &Value, secret: &[u8]) -> String {
    mint_raw(&json!({"alg": "HS256", "typ": "JWT"}), claims, secret)
}

/// An HS256 token over `claims`, signed with the suite's shared secret.
pub fn mint(claims: &Value) -> String {
    mint_with(claims, JWT_SECRET.as_bytes())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token exactly as Tiledesk signs it: the user document's fields, `sub: "user"`, the user id
/// in `_id`, Tiledesk's audience and issuer, a `jti`.
pub fn tiledesk_claims(user_id: &str, email: &str) -> Value {
    json!({
        "_id": user_id,
        "email": email,
        "firstname": "Ann",
        "lastname": "Lee",
        "emailverified": true,
        "iat": now(),
        "aud": "https://tiledesk.com",
        "iss": "https://tiledesk.com",
        "sub": "user",
        "jti": uuid::Uuid::new_v4().to_string(),
        "exp": now() + 3600,
    })
}

/// `token` (a bare JWT) is 401 on REST (`JWT` and `Bearer`, with `WWW-Authenticate` and the
/// error shape), at the socket handshake and on the project's SSE stream.
pub async fn assert_refused_everywhere(app: &TestApp, pid: &str, what: &str, token: &str) {
    for scheme in ["JWT", "Bearer"] {
        let resp = app.get("/v3/users", &format!("{scheme} {token}")).await;
        assert_eq!(resp.status, 401, "{what} ({scheme}): {}", resp.text);
        assert!(
            resp.headers.contains_key("www-authenticate"),
            "{what}: no WWW-Authenticate"
        );
        resp.expect_error(401);
    }
    let status = app.ws_refused(&token_query(token)).await;
    assert_eq!(status, 401, "{what} on the socket handshake");
    match app
        .sse(pid, None, &token_query(&format!("JWT {token}")), None)
        .await
    {
        Ok(_) => panic!("{what}: the SSE stream opened"),
        Err(resp) => assert_eq!(resp.status, 401, "{what} on SSE: {}", resp.text),
    }
}

/// `token` (a bare JWT) speaks for `user_id` on REST (`JWT`, `Bearer`, bare), opens an agent
/// socket that answers heartbeats (`?token=JWT%20…` and bare), and opens the SSE stream of `pid`
/// (a project where the user is an agent or more) by header and by `?token=`.
pub async fn assert_accepted_everywhere(
    app: &TestApp,
    pid: &str,
    what: &str,
    token: &str,
    user_id: &str,
) {
    for auth in [
        format!("JWT {token}"),
        format!("Bearer {token}"),
        token.to_string(),
    ] {
        let me = app.get("/v3/users", &auth).await;
        assert_eq!(me.status, 200, "{what} ({auth:.12}…): {}", me.text);
        assert_eq!(me.body["_id"], json!(user_id), "{what}");
    }
    for query in [token_query(&format!("JWT {token}")), token_query(token)] {
        let mut agent = app.ws(&query).await;
        agent
            .send_json(json!({"action": "heartbeat", "payload": {"message": {"text": "ping"}}}))
            .await;
        let pong = agent.recv_json().await;
        assert_eq!(pong["payload"]["message"]["text"], json!("pong"), "{what}");
        agent.close().await;
    }
    let by_header = app.sse(pid, Some(&format!("JWT {token}")), "", None).await;
    assert!(
        by_header.is_ok(),
        "{what}: SSE by header: {:?}",
        by_header.err()
    );
    let by_query = app
        .sse(pid, None, &token_query(&format!("JWT {token}")), None)
        .await;
    assert!(
        by_query.is_ok(),
        "{what}: SSE by ?token=: {:?}",
        by_query.err()
    );
}

// ---- asymmetric keys (test-only fixtures, `tests/fixtures/jwks/`) -------------------------------

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks")).join(name)
}

pub fn fixture_path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// A copy of a fixture in a fresh temporary file, for a test to rewrite.
pub fn scratch(fixture_name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pg-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::copy(fixture(fixture_name), &path).unwrap();
    path
}

/// A token signed with a fixture's private key (`rsa*.pem`, `ec.pem`, `ed25519.pem`), with
/// `kid` in its header.
pub fn sign(alg: Algorithm, kid: Option<&str>, private_pem: &str, claims: &Value) -> String {
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
