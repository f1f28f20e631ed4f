#!/usr/bin/env bash
# Runs one loadtest measurement against fresh gateway process(es) and prints its JSON report.
#
#   bench/gateway.sh idle    [ENGINE]   # 15,000 idle sockets on one node (SHAPE=1875x8 or 200x75),
#                                       # RSS read at 1k, 5k, 10k and 15k; accounts made through a second
#                                       # node, so the measured one has served nothing before
#   bench/gateway.sh churn   [ENGINE]   # 10 s of connect+disconnect loops, 64 at once, one node
#   bench/gateway.sh latency [ENGINE]   # 300 transitions, tab on node A, watched on node B
#   bench/gateway.sh fanout  [ENGINE]   # 100 transitions, tab on node A, 1,000 topic subscribers on B
#   bench/gateway.sh webhooks [ENGINE]  # 2,000 events x 10 subscriptions to a local receiver
#   bench/gateway.sh quiet   [ENGINE]   # 10 s with no load: what one node's tailing costs
#   bench/gateway.sh snapshot [ENGINE]  # a team of 5,000 (TEAM=), its snapshot to one subscriber,
#                                       # 20 samples; accounts made through a second node
# ENGINE is `redis` (default: a private redis-server on a free port), `cluster` (a private
# 3-master Redis Cluster) or `memory` (one node). PARTITIONS sets redis_partitions, WAIT sets
# redis_wait_replicas (the cluster then gets one replica per master).
# With Redis, a second JSON line reports each Redis process's CPU seconds and commands during
# the run, and the gateway nodes' CPU seconds.
# GATEWAY=PATH runs another gateway binary (an older build, for A/B runs) instead of this one.
# Builds the release binaries first. Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?mode: idle, churn, latency, fanout, webhooks, snapshot or quiet}
engine=${2:-redis}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p presence-gateway -p loadtest ${HEAPTRACK:+--features presence-gateway/system-allocator}
tmp=$(mktemp -d); pids=(); gpids=()
cleanup() { for p in "${gpids[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PRESENCE_JWT_SECRET=bench-secret PRESENCE_LOG_LEVEL=warn PRESENCE_OFFLINE_GRACE_MS=0
export PRESENCE_MAX_CONNECTIONS_PER_USER=2000 PRESENCE_WEBHOOK_ALLOW_PRIVATE=true
[ -n "${PARTITIONS:-}" ] && export PRESENCE_REDIS_PARTITIONS=$PARTITIONS
[ -n "${WAIT:-}" ] && export PRESENCE_REDIS_WAIT_REPLICAS=$WAIT
# A cluster node's bus port is its port + 10,000, so cluster ports stay at or below 55,535.
cluster_port() { while :; do p=$((20000 + RANDOM % 35000)); python3 -c "import socket,sys
for q in ($p, $p + 10000):
    s = socket.socket(); s.bind(('127.0.0.1', q)); s.close()" 2>/dev/null && { echo "$p"; return; }; done; }
redis_start() { # port [cluster]
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    ${2:+--cluster-enabled yes --cluster-config-file "$tmp/nodes-$1.conf" --cluster-node-timeout 2000} >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
rports=()
if [ "$engine" = redis ]; then
  rports=("$(free_port)"); redis_start "${rports[0]}"
  export PRESENCE_REDIS_URL="redis://127.0.0.1:${rports[0]}"
elif [ "$engine" = cluster ]; then
  replicas=0; [ "${WAIT:-0}" != 0 ] && replicas=1
  for _ in $(seq $((3 * (1 + replicas)))); do p=$(cluster_port); rports+=("$p"); redis_start "$p" cluster; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${rports[@]}") --cluster-replicas "$replicas" --cluster-yes >/dev/null
  for p in "${rports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
    # A replica must be in sync before WAIT can count it.
    for _ in $(seq 100); do
      redis-cli -p "$p" info replication | grep -qE 'role:master|master_link_status:up' && break; sleep 0.1
    done
  done
  sleep 1
  export PRESENCE_REDIS_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${rports[@]}" | sed 's/,$//')"
fi
nodes=1; case "$mode" in latency|fanout|idle|snapshot) [ "$engine" != memory ] && nodes=2 ;; esac
addrs=(); gpids=(); gateway=${GATEWAY:-target/release/presence-gateway}
for n in $(seq "$nodes"); do
  port=$(free_port); wrap=()
  # HEAPTRACK=FILE profiles the last (measured) node's heap; the binary must then use the C
  # library's malloc (built here with --features system-allocator).
  [ -n "${HEAPTRACK:-}" ] && [ "$n" = "$nodes" ] && wrap=(heaptrack -o "$HEAPTRACK")
  PRESENCE_LISTEN="127.0.0.1:$port" "${wrap[@]}" "$gateway" >>"$tmp/gateway.log" 2>&1 &
  pid=$!; pids+=($pid)
  if [ ${#wrap[@]} -gt 0 ]; then
    for _ in $(seq 100); do child=$(pgrep -P "$pid" -f "$gateway") && break; sleep 0.1; done
    pid=$child
  fi
  gpids+=($pid); addrs+=("127.0.0.1:$port")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
join() { local IFS=,; echo "$*"; }
case "$mode" in
  idle)
    shape=${SHAPE:-1875x8}
    args=(idle --teammates "${shape%x*}" --tabs "${shape#*x}" --steps "${STEPS:-1000,5000,10000}" --open-concurrency "${OPEN:-256}")
    # A heap profile should show what the held sockets own: kill the node while they are open.
    [ -n "${HEAPTRACK:-}" ] && args+=(--kill-gateways)
    # The first node only creates the accounts (Argon2 sign-ups); the second is measured.
    if [ "$nodes" = 2 ]; then
      args=(--setup-node "${addrs[0]}" "${args[@]}"); addrs=("${addrs[1]}"); gpids=("${gpids[1]}")
    fi ;;
  churn)   args=(churn --secs 10 --concurrency 64) ;;
  latency) args=(latency --samples 300) ;;
  fanout)  args=(fanout --subscribers ${SUBSCRIBERS:-1000} --samples ${SAMPLES:-100}) ;;
  webhooks) args=(webhooks --events 2000 --subscriptions 10) ;;
  snapshot)
    args=(snapshot --teammates "${TEAM:-5000}" --samples "${SAMPLES:-20}")
    # The first node creates the accounts; the second, clean, is measured.
    if [ "$nodes" = 2 ]; then
      args=(--setup-node "${addrs[0]}" --setup-concurrency 8 "${args[@]}"); addrs=("${addrs[1]}"); gpids=("${gpids[1]}")
    fi ;;
  quiet) args=() ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
# CPU seconds of a process (user + system), and a Redis node's commands so far.
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
commands_of() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }'; }
# Client round trips that ran a script (commands inside scripts count in total_commands_processed).
scripts_of() { redis-cli -p "$1" info commandstats | awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3 + 0; exit } END { print 0 }' | head -1; }
redis_pid_of() { redis-cli -p "$1" info server | awk -F: '/^process_id/ { print $2 + 0 }'; }
declare -A cpu0 cmd0 evs0; gcpu0=()
for p in "${rports[@]}"; do
  cpu0[$p]=$(cpu_of "$(redis_pid_of "$p")"); cmd0[$p]=$(commands_of "$p"); evs0[$p]=$(scripts_of "$p")
done
for g in "${gpids[@]}"; do gcpu0+=("$(cpu_of "$g")"); done
started=$(date +%s.%N)
if [ "$mode" = quiet ]; then
  sleep 10
else
  timeout 600 target/release/loadtest --nodes "$(join "${addrs[@]}")" --gateway-pid "$(join "${gpids[@]}")" "${args[@]}"
fi
# bc prints .25 for 0.25: printf makes every number valid JSON.
secs=$(printf '%.3f' "$(echo "$(date +%s.%N) - $started" | bc)")
if [ "${#rports[@]}" -gt 0 ]; then
  shards=(); i=0
  for p in "${rports[@]}"; do
    role=$(redis-cli -p "$p" role | head -1)
    cpu=$(printf '%.2f' "$(echo "$(cpu_of "$(redis_pid_of "$p")") - ${cpu0[$p]}" | bc)")
    cmds=$(( $(commands_of "$p") - ${cmd0[$p]} ))
    evs=$(( $(scripts_of "$p") - ${evs0[$p]} ))
    shards+=("{\"port\":$p,\"role\":\"$role\",\"cpu_s\":$cpu,\"commands\":$cmds,\"evalsha\":$evs}")
  done
  gateways=()
  for g in "${gpids[@]}"; do gateways+=("$(printf '%.2f' "$(echo "$(cpu_of "$g") - ${gcpu0[$i]}" | bc)")"); i=$((i + 1)); done
  echo "{\"engine\":\"$engine\",\"partitions\":${PARTITIONS:-16},\"wait\":${WAIT:-0},\"secs\":$secs,\"redis\":[$(join "${shards[@]}")],\"gateway_cpu_s\":[$(join "${gateways[@]}")]}"
fi
