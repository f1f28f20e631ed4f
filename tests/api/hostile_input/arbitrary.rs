//! Arbitrary bytes as bodies (proptest) never get a 5xx.

use super::*;

/// Arbitrary bodies: raw bytes, arbitrary text, and JSON objects whose keys are the routes'
/// fields with arbitrary values.
fn arbitrary_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::from),
    ];
    let json = leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "profileStatus",
                "max_served_chat",
                "attributes",
                "agentIds",
                "user",
                "timezoneId",
                "isPartTime",
                "firstName",
            ])
            .prop_map(str::to_string),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|f| Value::Object(f.into_iter().collect())),
        ]
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
        json.prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// Proptest over arbitrary bodies on three routes (one per family): never a 5xx, never a dropped
/// connection, and every 4xx in the family's shape. Valid bodies may apply, so no snapshot.
async fn arbitrary_bytes_never_5xx(engine: Engine) {
    let fx = Arc::new(fixture(engine).await);
    let targets: Vec<(Method, String, Who, Family)> = vec![
        (
            Method::PUT,
            fx.path("/v3/{pid}/project_users/{puid}", None),
            Who::Owner,
            Family::Tiledesk,
        ),
        (
            Method::PATCH,
            fx.path("/beta/teams/{team}/agents", None),
            Who::AdminKey,
            Family::Dixa,
        ),
        (
            Method::PATCH,
            fx.path("/desk/api/v2/users/{user}.json", None),
            Who::AdminKey,
            Family::Desk,
        ),
    ];
    let handle = tokio::runtime::Handle::current();
    // The runner is synchronous; it runs on a blocking thread and drives each request on the
    // test's runtime (whose thread keeps driving I/O while it waits for this one).
    tokio::task::spawn_blocking(move || {
        for (method, path, who, family) in targets {
            let mut runner = TestRunner::new(ProptestConfig {
                cases: 32,
                failure_persistence: None,
                ..ProptestConfig::default()
            });
            let result = runner.run(&arbitrary_body(), |body| {
                let label = format!("{method} {path} with {} arbitrary bytes", body.len());
                let resp = handle.block_on(send(&fx, &method, &path, who, body, &label));
                let status = resp.status.as_u16();
                prop_assert!(status < 500, "{label}: {status} {}", resp.text);
                if status >= 400 {
                    let problem = shape_problem(family, &resp);
                    prop_assert!(problem.is_none(), "{label}: {problem:?}: {}", resp.text);
                }
                let health = handle.block_on(fx.app.request(Method::GET, "/healthz", None, None));
                prop_assert_eq!(health.status.as_u16(), 200);
                Ok::<(), TestCaseError>(())
            });
            if let Err(e) = result {
                panic!("{method} {path}: {e}");
            }
        }
    })
    .await
    .expect("the property runner");
}

engine_tests!(arbitrary_bytes_never_5xx,);
