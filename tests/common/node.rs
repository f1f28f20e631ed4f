//! Node.js suites: installing their pinned npm packages.

use std::path::Path;
use tokio::process::Command;

/// `npm ci` in `dir` unless `dir/node_modules/<installed>` exists already (a previous run, or
/// `.ci/run`, installed it). Callers run it once per test process, behind a `OnceCell`.
pub async fn npm_ci_unless_installed(dir: &Path, installed: &str) {
    if dir.join("node_modules").join(installed).exists() {
        return;
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .await
        .expect("npm is on PATH");
    assert!(
        output.status.success(),
        "npm ci in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
