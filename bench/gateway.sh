#!/usr/bin/env bash
# Runs one loadtest measurement against fresh gateway process(es) and prints its JSON report.
#
#   bench/gateway.sh idle    [ENGINE]   # 15,000 idle sockets on one node (1875 teammates x 8 tabs)
#   bench/gateway.sh churn   [ENGINE]   # 10 s of connect+disconnect loops, 64 at once, one node
#   bench/gateway.sh latency [ENGINE]   # 300 transitions, tab on node A, watched on node B
#   bench/gateway.sh fanout  [ENGINE]   # 100 transitions, tab on node A, 1,000 topic subscribers on B
#   bench/gateway.sh webhooks [ENGINE]  # 2,000 events x 10 subscriptions to a local receiver
# ENGINE is `redis` (default: a private redis-server on a free port) or `memory` (one node).
# Builds the release binaries first. Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?mode: idle, churn, latency, fanout or webhooks}
engine=${2:-redis}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p presence-gateway -p loadtest
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PRESENCE_JWT_SECRET=bench-secret PRESENCE_LOG_LEVEL=warn PRESENCE_OFFLINE_GRACE_MS=0
export PRESENCE_MAX_CONNECTIONS_PER_USER=2000 PRESENCE_WEBHOOK_ALLOW_PRIVATE=true
if [ "$engine" = redis ]; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export PRESENCE_REDIS_URL="redis://127.0.0.1:$rport"
fi
nodes=1; case "$mode" in latency|fanout) [ "$engine" = redis ] && nodes=2 ;; esac
addrs=(); gpids=()
for _ in $(seq "$nodes"); do
  port=$(free_port)
  PRESENCE_LISTEN="127.0.0.1:$port" target/release/presence-gateway >>"$tmp/gateway.log" 2>&1 &
  pids+=($!); gpids+=($!); addrs+=("127.0.0.1:$port")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
join() { local IFS=,; echo "$*"; }
case "$mode" in
  idle)    args=(idle --teammates 1875 --tabs 8) ;;
  churn)   args=(churn --secs 10 --concurrency 64) ;;
  latency) args=(latency --samples 300) ;;
  fanout)  args=(fanout --subscribers ${SUBSCRIBERS:-1000} --samples ${SAMPLES:-100}) ;;
  webhooks) args=(webhooks --events 2000 --subscriptions 10) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
timeout 600 target/release/loadtest --nodes "$(join "${addrs[@]}")" --gateway-pid "$(join "${gpids[@]}")" "${args[@]}"
