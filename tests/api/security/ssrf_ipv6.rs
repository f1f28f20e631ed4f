//! Attack-review finding 9 (docs/security.md): "IPv6 forms of private addresses pass the webhook
//! SSRF guard". The guard judges IPv4-compatible, IPv4-mapped, SIIT and NAT64 addresses by the IPv4
//! host they reach, refuses 6to4 and Teredo whole, and refuses IANA's special-purpose IPv6 ranges
//! (and anything outside 2000::/3).

use super::*;

/// IPv6 literals that reach loopback or a non-public range, each of which the old guard (which
/// knew only `::1`, `fc00::/7`, `fe80::/10`, `2001:db8::/32` and IPv4-mapped) let through,
/// except `::ffff:127.0.0.1`, kept as the reference form.
const PRIVATE_TARGETS: [&str; 10] = [
    // IPv4-compatible ::127.0.0.1
    "http://[::127.0.0.1]/h",
    // SIIT (::ffff:0:0/96) to 127.0.0.1
    "http://[::ffff:0:127.0.0.1]/h",
    // NAT64 well-known prefix to 127.0.0.1
    "http://[64:ff9b::7f00:1]/h",
    // 6to4 of 127.0.0.1
    "http://[2002:7f00:1::]/h",
    // Teredo (2001::/32)
    "http://[2001::1]/h",
    // discard-only 100::/64
    "http://[100::1]/h",
    // IPv4-mapped 127.0.0.1 (refused before too)
    "http://[::ffff:127.0.0.1]/h",
    // site-local fec0::/10, deprecated and outside 2000::/3
    "http://[fec0::1]/h",
    // documentation 3fff::/20
    "http://[3fff::1]/h",
    // segment routing 5f00::/16
    "http://[5f00::1]/h",
];

async fn subscribe(app: &TestApp, t: &common::OwnerAndAgent, target: &str) -> Resp {
    app.post(
        &format!("/v3/{}/subscriptions", t.pid),
        &t.owner.token,
        json!({"event": "*", "target": target}),
    )
    .await
}

/// Finding 9. Asserts that with the default `webhook_allow_private=false` a subscription to each
/// IPv6 form of a loopback or special-purpose address is 400 (refused as private) and nothing is
/// saved, while a public IPv6 literal (the guard resolves, it does not connect) is accepted.
async fn webhook_ssrf_refuses_ipv6_forms_of_private_addresses(engine: Engine) {
    let app = spawn_app_with(engine, &[]).await;
    let t = app.owner_and_agent().await;
    for target in PRIVATE_TARGETS {
        let resp = subscribe(&app, &t, target).await;
        assert_eq!(resp.status, 400, "{target}: {}", resp.text);
        let body = resp.expect_error(400);
        assert!(
            body["msg"].as_str().unwrap().contains("private"),
            "{target}: refused as private: {body}"
        );
    }
    let list_path = format!("/v3/{}/subscriptions", t.pid);
    let list = app.get(&list_path, &t.owner.token).await.expect(200);
    assert_eq!(list, json!([]), "nothing refused is saved");

    let public = "http://[2606:4700:4700::1111]/h";
    subscribe(&app, &t, public).await.expect(200);
    let list = app.get(&list_path, &t.owner.token).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Finding 9, the opt-out: with `webhook_allow_private=true` an IPv4-compatible loopback target
/// is accepted (200), so the refusal above is the guard's and not a parsing failure.
async fn webhook_allow_private_accepts_ipv6_loopback_forms(engine: Engine) {
    let app = spawn_app_with(engine, &[("webhook_allow_private", "true")]).await;
    let t = app.owner_and_agent().await;
    subscribe(&app, &t, "http://[::127.0.0.1]/h")
        .await
        .expect(200);
}

crate::engine_tests!(
    webhook_ssrf_refuses_ipv6_forms_of_private_addresses,
    webhook_allow_private_accepts_ipv6_loopback_forms,
);
