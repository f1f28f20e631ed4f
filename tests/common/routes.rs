//! The routes the router declares, read from the router sources' `.route(...)` calls. Two
//! suites compare tables of theirs with it: the authorization matrix (`tests/api/security/`) and
//! the OpenAPI document (`tests/api/openapi.rs`).

#![allow(dead_code)]

use std::collections::BTreeSet;

/// The router sources whose `.route(...)` calls the table must cover.
pub const ROUTER_SOURCES: [(&str, &str); 8] = [
    (
        "src/http/board/mod.rs",
        include_str!("../../src/http/board/mod.rs"),
    ),
    (
        "src/http/tiledesk/mod.rs",
        include_str!("../../src/http/tiledesk/mod.rs"),
    ),
    (
        "src/http/dixa/mod.rs",
        include_str!("../../src/http/dixa/mod.rs"),
    ),
    (
        "src/http/desk/mod.rs",
        include_str!("../../src/http/desk/mod.rs"),
    ),
    ("src/http/ops.rs", include_str!("../../src/http/ops.rs")),
    ("src/http/docs.rs", include_str!("../../src/http/docs.rs")),
    (
        "src/http/openapi/mod.rs",
        include_str!("../../src/http/openapi/mod.rs"),
    ),
    ("src/ws/mod.rs", include_str!("../../src/ws/mod.rs")),
];

/// A path with its query removed and every segment holding a parameter replaced by `*`, so that
/// `/v3/{pid}/keys/{key_id}` and `/v3/{pid}/keys/{fresh_key}` compare equal.
pub fn pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|segment| if segment.contains('{') { "*" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(METHOD, pattern)` of every `.route("path", get(..).post(..)...)` call in `source`.
pub fn declared_routes(source: &str) -> Vec<(String, String)> {
    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    let mut routes = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        let after = &rest[start + ".route(".len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let call = &after[..end];
        let open = call.find('"').expect("a route path literal");
        let close = open + 1 + call[open + 1..].find('"').expect("a closed literal");
        let path = &call[open + 1..close];
        let handlers = &call[close + 1..];
        for method in METHODS {
            let needle = format!("{method}(");
            let found = handlers.match_indices(&needle).any(|(i, _)| {
                handlers[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
            });
            if found {
                routes.push((method.to_ascii_uppercase(), pattern(path)));
            }
        }
        rest = &after[end..];
    }
    routes
}

/// The files under `src/` that declare routes (`.route(`), found on disk: each must be one of
/// [`ROUTER_SOURCES`], so that a new router file cannot go unseen.
fn router_files_on_disk() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).unwrap().contains(".route(")
            {
                let relative = path.strip_prefix(root).unwrap();
                found.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeSet::new();
    walk(&root.join("src"), root, &mut found);
    found
}

/// `(METHOD, pattern)` of every route of every router source.
pub fn declared() -> BTreeSet<(String, String)> {
    let listed: BTreeSet<String> = ROUTER_SOURCES.iter().map(|(f, _)| f.to_string()).collect();
    let on_disk = router_files_on_disk();
    assert_eq!(
        on_disk, listed,
        "ROUTER_SOURCES must list exactly the files under src/ that call .route("
    );
    let mut declared = BTreeSet::new();
    for (file, source) in ROUTER_SOURCES {
        let routes = declared_routes(source);
        assert!(!routes.is_empty(), "no .route( calls parsed from {file}");
        declared.extend(routes);
    }
    declared
}
