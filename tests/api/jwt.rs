//! JWT verification through the real server (docs/protocol.md §1), on REST, the agent socket and SSE:
//!
//! 1. `tiledesk_tokens_work_everywhere`: a token shaped exactly like Tiledesk's (`sub: "user"`,
//!    the id in `_id`, `aud`, `iss`, `jti`) works; `sub` wins when it is a user id (both engines).
//! 2. `asymmetric_tokens_*`: RS256, ES256 and EdDSA tokens verified with the `jwt_jwks` key their
//!    `kid` names, beside HS256; every mismatch, forgery and algorithm confusion is 401.
//!
//! The JWKS itself (rotation, start-up failures, https) is in `jwks.rs`; the edge cases of HS256
//! (`alg: none`, HS512, expiry, tampering) are in `security/`. The keys are test-only fixtures
//! (`tests/fixtures/jwks/README.md`).

use crate::common;

use base64::Engine as _;
use common::jwt::{
    assert_accepted_everywhere, assert_refused_everywhere, fixture, fixture_path, mint, mint_raw,
    now, sign, tiledesk_claims,
};
use common::{spawn_app_with, Engine, TestApp, TestUser};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// A fixture file's bytes.
fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
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
    let rs256 = |kid: &str, pem: &str, claims: &serde_json::Value| {
        sign(Algorithm::RS256, Some(kid), pem, claims)
    };
    let good = rs256("rsa-1", "rsa.pem", &claims);
    let (head, signature) = good.rsplit_once('.').unwrap();
    let header = head.split('.').next().unwrap();
    let other = common::jwt::b64_json(&json!({"sub": app.new_user("bob").await.id}));
    // A token that brings its own key: signed with rsa-next, which it embeds as `jwk`.
    let next_key = EncodingKey::from_rsa_pem(&pem("rsa-next.pem")).unwrap();
    let mut own_key = Header::new(Algorithm::RS256);
    own_key.kid = Some("rsa-1".into());
    own_key.jwk = Some(Jwk::from_encoding_key(&next_key, Algorithm::RS256).unwrap());
    // Algorithm confusion: HS256 "signed" with a published public key as the HMAC secret.
    let confused = |kid: Option<&str>, secret: Vec<u8>| {
        let mut header = json!({"alg": "HS256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        mint_raw(&header, &claims, &secret)
    };
    let refused: Vec<(&str, String)> = vec![
        ("unknown kid", rs256("rsa-2", "rsa.pem", &claims)),
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
            rs256("ec-1", "rsa.pem", &claims),
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
        ("wrong signature", rs256("rsa-1", "rsa-next.pem", &claims)),
        ("tampered payload", format!("{header}.{other}.{signature}")),
        ("no signature", format!("{head}.")),
        (
            "its own jwk",
            jsonwebtoken::encode(&own_key, &claims, &next_key).unwrap(),
        ),
        (
            "expired",
            rs256(
                "rsa-1",
                "rsa.pem",
                &json!({"sub": ann.id, "exp": now() - 3600}),
            ),
        ),
        (
            "nbf in an hour",
            rs256(
                "rsa-1",
                "rsa.pem",
                &json!({"sub": ann.id, "nbf": now() + 3600}),
            ),
        ),
        (
            "naming no user",
            rs256("rsa-1", "rsa.pem", &json!({"sub": "user"})),
        ),
        (
            "an unknown user",
            rs256("rsa-1", "rsa.pem", &json!({"sub": uuid::Uuid::new_v4()})),
        ),
        (
            "HS256, RSA public PEM",
            confused(Some("rsa-1"), pem("rsa.pub.pem")),
        ),
        (
            "HS256, RSA public DER",
            confused(Some("rsa-1"), der("rsa.pub.pem")),
        ),
        (
            "HS256, EC public PEM",
            confused(Some("ec-1"), pem("ec.pub.pem")),
        ),
        (
            "HS256, EC public DER",
            confused(Some("ec-1"), der("ec.pub.pem")),
        ),
        (
            "HS256, Ed public DER",
            confused(Some("ed-1"), der("ed25519.pub.pem")),
        ),
        (
            "HS256 without kid, RSA public PEM",
            confused(None, pem("rsa.pub.pem")),
        ),
        (
            "HS256 without kid, RSA public DER",
            confused(None, der("rsa.pub.pem")),
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
    let token = rs256("rsa-1", "rsa.pem", &json!({"sub": bob.id}));
    assert_refused_everywhere(&plain, &bob_pid, "RS256 without a JWKS", &token).await;
}
