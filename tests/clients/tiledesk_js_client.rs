//! Drives the real `@tiledesk/tiledesk-client` npm package (tests/js/) against the gateway on
//! both engines: sign-in, team, own update, teammate lookup and update, available agents.
//!
//! Needs `node` and `npm` on PATH; installs the pinned client with `npm ci` on first run.

use crate::common;

use common::{spawn_app, Engine};
use std::path::PathBuf;
use tokio::process::Command;
use tokio::sync::OnceCell;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// `npm ci` once per test process (both engine variants wait for the same install), if the
/// client is not installed yet.
async fn install_client() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            common::node::npm_ci_unless_installed(&js_dir(), "@tiledesk/tiledesk-client").await
        })
        .await;
}

async fn the_tiledesk_client_works(engine: Engine) {
    install_client().await;
    let app = spawn_app(engine).await;
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tiledesk-client.test.mjs"])
        .current_dir(js_dir())
        .env("GATEWAY_URL", &app.address)
        .output()
        .await
        .expect("node is on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Tiledesk client test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("pass 8"),
        "expected all 8 client checks to pass:\n{stdout}"
    );
}

engine_tests!(the_tiledesk_client_works);
