#!/usr/bin/env python3
"""Bytes per idle socket by owner, from a heaptrack profile of a gateway node that was killed
with its sockets open (`HEAPTRACK=FILE bench/gateway.sh idle redis`).

    bench/heap-owners.py FILE.zst [SOCKETS]

What the node still held when it was killed is what heaptrack reports as leaked. Every
allocation is put under the first owner whose frames its stack contains; what matches none is
process-wide (Redis connections, the runtime, the router) and not a per-socket cost.
"""
import subprocess
import sys
import tempfile

# (owner, frames that must all appear in the stack). First match wins.
OWNERS = [
    ("session task: the Session and its loop (tokio task cell)", ["bind_new_task", "(ws.rs)", "(session.rs)"]),
    ("session task: the Session and its loop (tokio task cell)", ["bind_new_task", "(ws.rs)"]),
    ("axum upgrade task (only until the session starts)", ["bind_new_task", "on_upgrade"]),
    ("heartbeat timer (tokio Interval)", ["(interval.rs)", "(session.rs)"]),
    ("tungstenite read buffer", ["(bytes_mut.rs)", "(handshake.rs)"]),
    ("tokio-tungstenite waker proxies (2 Arcs)", ["(compat.rs)"]),
    ("tokio I/O registration (ScheduledIo)", ["(registration_set.rs)"]),
    ("hyper upgrade: the boxed connection", ["(upgrade.rs)"]),
    ("registration: teammate keys and channel", ["(session.rs)", "new (tracker.rs)"]),
    ("registration: teammate keys and channel", ["from_iter", "agent_socket"]),
    ("tracker: per-teammate counts", ["(tracker.rs)"]),
    ("metrics: histogram samples not yet folded", ["(bucket.rs)"]),
    ("hyper: HTTP connection buffers (handshakes in flight)", ["(dispatch.rs)"]),
    ("hyper: HTTP connection buffers (handshakes in flight)", ["serve_connection"]),
]
OTHER = "process-wide (Redis connections, runtime, router, TLS roots)"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    profile = sys.argv[1]
    sockets = int(sys.argv[2]) if len(sys.argv) > 2 else 15000
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as stacks:
        subprocess.run(
            ["heaptrack_print", "-f", profile, "--flamegraph-cost-type", "leaked", "-F", stacks.name],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = stacks.read().splitlines()
    totals = {}
    for line in lines:
        stack, _, cost = line.rpartition(" ")
        if not cost.isdigit():
            continue
        owner = next(
            (name for name, frames in OWNERS if all(f in stack for f in frames)), OTHER
        )
        totals[owner] = totals.get(owner, 0) + int(cost)
    per_socket = 0.0
    print(f"| owner | bytes held at {sockets:,} sockets | per socket |")
    print("|---|---:|---:|")
    for owner, total in sorted(totals.items(), key=lambda kv: -kv[1]):
        if owner != OTHER:
            per_socket += total / sockets
            print(f"| {owner} | {total:,} | {total / sockets:,.0f} |")
    print(f"| **per-socket heap** | | **{per_socket:,.0f}** |")
    other = totals.get(OTHER, 0)
    print(f"| {OTHER} | {other:,} | ({other / sockets:,.0f}) |")


if __name__ == "__main__":
    main()
