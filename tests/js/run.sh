#!/usr/bin/env bash
# Runs the JavaScript client-compatibility tests (tests/js/*.test.mjs) against a freshly started
# presence-gateway binary.
#
#   GATEWAY_BIN=path/to/presence-gateway tests/js/run.sh
#
# GATEWAY_BIN defaults to <repo root>/target/release/presence-gateway (build it first with
# `cargo build --release`). Needs node >= 18 and npm. Exits with the test runner's status.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

GATEWAY_BIN="${GATEWAY_BIN:-$REPO_ROOT/target/release/presence-gateway}"
case "$GATEWAY_BIN" in
  /*) ;;
  *) GATEWAY_BIN="$PWD/$GATEWAY_BIN" ;; # relative to the caller's directory
esac
if [[ ! -x "$GATEWAY_BIN" ]]; then
  echo "run.sh: gateway binary not found or not executable: $GATEWAY_BIN" >&2
  echo "run.sh: build it with 'cargo build --release' or set GATEWAY_BIN" >&2
  exit 2
fi

command -v node >/dev/null || { echo "run.sh: node is required" >&2; exit 2; }

cd "$REPO_ROOT"

if [[ ! -d "$SCRIPT_DIR/node_modules" ]]; then
  echo "run.sh: installing test dependencies (npm ci)" >&2
  (cd "$SCRIPT_DIR" && npm ci --no-audit --no-fund)
fi

PORT="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')"
BASE_URL="http://127.0.0.1:$PORT"

GATEWAY_LOG="$(mktemp "${TMPDIR:-/tmp}/presence-gateway-js.log.XXXXXX")"
GATEWAY_PID=""
TEST_STATUS=1

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$GATEWAY_PID" ]] && kill -0 "$GATEWAY_PID" 2>/dev/null; then
    kill -TERM "$GATEWAY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do # up to 5 s for a graceful stop
      kill -0 "$GATEWAY_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$GATEWAY_PID" 2>/dev/null; then
      echo "run.sh: gateway did not stop after SIGTERM; killing it" >&2
      kill -KILL "$GATEWAY_PID" 2>/dev/null || true
    fi
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]]; then
    echo "----- presence-gateway log ($GATEWAY_LOG) -----" >&2
    cat "$GATEWAY_LOG" >&2 || true
    echo "----- end of presence-gateway log -----" >&2
  else
    rm -f "$GATEWAY_LOG"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "run.sh: starting $GATEWAY_BIN on 127.0.0.1:$PORT (log: $GATEWAY_LOG)" >&2
PRESENCE_LISTEN="127.0.0.1:$PORT" PRESENCE_JWT_SECRET="test-secret" \
  "$GATEWAY_BIN" >"$GATEWAY_LOG" 2>&1 &
GATEWAY_PID=$!

healthy() {
  if command -v curl >/dev/null; then
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE_URL/healthz" || true)" == "200" ]]
  else
    node -e '
      fetch(process.argv[1], { signal: AbortSignal.timeout(1000) })
        .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));
    ' "$BASE_URL/healthz"
  fi
}

deadline=$((SECONDS + 30))
until healthy; do
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    wait "$GATEWAY_PID" && rc=0 || rc=$?
    GATEWAY_PID=""
    echo "run.sh: the gateway exited (status $rc) before becoming healthy" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run.sh: $BASE_URL/healthz did not answer 200 within 30 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "run.sh: gateway healthy at $BASE_URL" >&2

# Explicit file list: `node --test tests/js/` only searches a directory on Node <= 20; Node 21+
# treats the argument as a glob and fails with MODULE_NOT_FOUND.
shopt -s nullglob
TEST_FILES=(tests/js/*.test.mjs)
shopt -u nullglob
if ((${#TEST_FILES[@]} == 0)); then
  echo "run.sh: no tests/js/*.test.mjs files found" >&2
  exit 1
fi

set +e
GATEWAY_URL="$BASE_URL" node --test "${TEST_FILES[@]}"
TEST_STATUS=$?
set -e

exit "$TEST_STATUS"
