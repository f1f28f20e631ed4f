//! Runs the JavaScript client's suites (`clients/js/test/`) with Node's test runner against
//! gateway processes of this build (`GATEWAY_BIN`): the client library, the package (types,
//! README example), and the board in Debian's Chromium through playwright-core.
//!
//! Needs `node`, `npm` and `/usr/bin/chromium` (`.ci/run` installs them); installs the pinned
//! dev dependencies with `npm ci` on first run. The suites start their own gateways, on the
//! memory engine or on the shared Redis under unique key prefixes.

use crate::common;

use std::path::PathBuf;
use tokio::process::Command;
use tokio::sync::OnceCell;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

/// `npm ci` once per test process, if the dev dependencies are not installed yet.
async fn install() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            common::node::npm_ci_unless_installed(&js_dir(), "playwright-core").await
        })
        .await;
}

/// Runs one suite file; every test in it must pass, and there must be at least `tests`.
async fn suite(file: &str, tests: usize) {
    install().await;
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(js_dir())
        .env("GATEWAY_BIN", env!("CARGO_BIN_EXE_presence-gateway"))
        .output()
        .await
        .expect("node is on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{file} failed:\n{report}");
    let passed = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("ℹ pass "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        passed >= tests && stdout.contains("ℹ fail 0"),
        "expected {tests} passing tests in {file}, saw {passed}:\n{report}"
    );
}

#[tokio::test]
async fn the_client_library_suite_passes() {
    suite("test/client.test.mjs", 12).await;
}

#[tokio::test]
async fn the_team_view_applies_each_change_once() {
    suite("test/team.test.mjs", 3).await;
}

#[tokio::test]
async fn the_package_types_and_example_work() {
    suite("test/package.test.mjs", 2).await;
}

#[tokio::test]
async fn the_board_works_in_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "the board suite needs Debian's Chromium: apt-get install chromium"
    );
    suite("test/board.test.mjs", 9).await;
}
