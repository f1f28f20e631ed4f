#!/usr/bin/env python3
"""Bounded flood checks of the gateway's limits (docs/security.md, "Flood checks").

Each check floods a running gateway within a bound and prints one JSON line with what it saw.
Start the gateway first, for example (a release build, the memory engine or a private Redis):

    cargo build --release
    PRESENCE_LISTEN=127.0.0.1:18080 PRESENCE_JWT_SECRET=flood-check-secret \\
      target/release/presence-gateway &
    bench/flood.py silent --connections 2000
    bench/flood.py slowloris --connections 40
    bench/flood.py attributes --puts 30 --redis 127.0.0.1:6379   # with PRESENCE_REDIS_URL set
    bench/flood.py subscribes --frames 1500

`--base` (default http://127.0.0.1:18080) names the gateway; `--pid` its process id for RSS
(default: found with pgrep). Only the standard library is used.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def gateway_pid(given):
    if given:
        return given
    out = subprocess.run(["pgrep", "-n", "presence-gatewa"], capture_output=True, text=True)
    return int(out.stdout.strip()) if out.stdout.strip() else None


def host_port(base):
    hostport = base.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def healthz_ms(base):
    started = time.monotonic()
    with urllib.request.urlopen(base + "/healthz", timeout=30) as response:
        response.read()
    return round((time.monotonic() - started) * 1000, 1)


def api(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def team(base):
    """An owner with a project and an agent in it; returns (owner token, agent token, pid)."""
    tokens = []
    for name in ("owner", "agent"):
        email = f"{name}-{uuid.uuid4().hex}@example.com"
        api(base, "POST", "/v3/auth/signup", {"email": email, "password": "flood-check-1"})
        _, signin = api(base, "POST", "/v3/auth/signin", {"email": email, "password": "flood-check-1"})
        tokens.append((email, signin["token"]))
    (_, owner), (agent_email, agent) = tokens
    _, project = api(base, "POST", "/v3/projects", {"name": "Flood"}, owner)
    pid = project["_id"]
    api(base, "POST", f"/v3/{pid}/project_users/invite", {"email": agent_email, "role": "agent"}, owner)
    return owner, agent, pid


def wait_closed(sockets, connected, deadline):
    """Seconds from each socket's connect until the server closed it (None if still open at the
    deadline)."""
    closed_at = [None] * len(sockets)
    for s in sockets:
        s.setblocking(False)
    while time.monotonic() < deadline and None in closed_at:
        for i, s in enumerate(sockets):
            if closed_at[i] is not None:
                continue
            try:
                if s.recv(4096) == b"":
                    closed_at[i] = time.monotonic() - connected[i]
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic() - connected[i]
        time.sleep(0.05)
    return closed_at


def silent(args):
    """N TCP connections that never send a byte: all closed within the header timeout."""
    host, port = host_port(args.base)
    pid = gateway_pid(args.pid)
    before = rss_kib(pid) if pid else None
    sockets, connected = [], []
    for _ in range(args.connections):
        sockets.append(socket.create_connection((host, port)))
        connected.append(time.monotonic())
    opened = time.monotonic()
    held = rss_kib(pid) if pid else None
    health = healthz_ms(args.base)
    closed = wait_closed(sockets, connected, opened + args.timeout)
    done = [c for c in closed if c is not None]
    time.sleep(1)
    print(json.dumps({
        "check": "silent", "connections": args.connections, "closed": len(done),
        "connect_all_s": round(opened - connected[0], 2),
        "first_closed_s": round(min(done), 2) if done else None,
        "last_closed_s": round(max(done), 2) if done else None,
        "healthz_ms_while_held": health,
        "rss_kib_before": before, "rss_kib_held": held, "rss_kib_after": rss_kib(pid) if pid else None,
    }))


def slowloris(args):
    """N connections sending a request head one byte every 0.5 s: each closed when its header
    timeout (counted from the accept) runs out."""
    host, port = host_port(args.base)
    head = b"GET /ws?token=x HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    sockets = [socket.create_connection((host, port)) for _ in range(args.connections)]
    opened = time.monotonic()
    closed_at = [None] * len(sockets)
    i = 0
    while time.monotonic() < opened + args.timeout and None in closed_at:
        for n, s in enumerate(sockets):
            if closed_at[n] is not None:
                continue
            try:
                s.send(head[i % len(head):i % len(head) + 1])
                s.setblocking(False)
                if s.recv(4096) == b"":
                    closed_at[n] = time.monotonic() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed_at[n] = time.monotonic() - opened
            finally:
                s.setblocking(True)
        i += 1
        time.sleep(0.5)
    done = [c for c in closed_at if c is not None]
    print(json.dumps({
        "check": "slowloris", "connections": args.connections, "closed": len(done),
        "bytes_sent_each": i, "last_closed_s": round(max(done), 2) if done else None,
    }))


def redis_used_memory(redis):
    host, port = redis.rsplit(":", 1)
    out = subprocess.run(["redis-cli", "-h", host, "-p", port, "info", "memory"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return None


def attributes(args):
    """An agent's attribute writes: over the limit refused, at the limit accepted; Redis memory
    growth per accepted write."""
    _, agent, pid = team(args.base)
    path = f"/v3/{pid}/project_users/"
    huge, _ = api(args.base, "PUT", path, {"attributes": {"b": "x" * 900_000}}, agent)
    before = redis_used_memory(args.redis) if args.redis else None
    statuses = []
    for n in range(args.puts):
        status, _ = api(args.base, "PUT", path, {"attributes": {"b": "x" * (16 * 1024 - 24), "n": n % 10}}, agent)
        statuses.append(status)
    after = redis_used_memory(args.redis) if args.redis else None
    print(json.dumps({
        "check": "attributes", "status_900kb": huge, "puts_at_limit": args.puts,
        "statuses": sorted(set(statuses)),
        "redis_used_memory_before": before, "redis_used_memory_after": after,
        "bytes_per_put": (after - before) // args.puts if before and after else None,
    }))


def subscribes(args):
    """A socket re-subscribing to the team topic it holds: bytes in against bytes out."""
    owner, _, pid = team(args.base)
    host, port = host_port(args.base)
    s = socket.create_connection((host, port))
    key = b64encode(os.urandom(16)).decode()
    token = urllib.parse.quote(owner)
    s.sendall((f"GET /ws?token={token}&presence=false HTTP/1.1\r\nHost: g\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(4096)
    assert b" 101 " in response.split(b"\r\n")[0], response

    def frame(text):
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else \
            bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
        return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def drain(wait):
        """Bytes the gateway sent within `wait` seconds."""
        time.sleep(wait)
        s.setblocking(False)
        received = 0
        try:
            while chunk := s.recv(65536):
                received += len(chunk)
        except BlockingIOError:
            pass
        s.setblocking(True)
        return received

    topic = json.dumps({"action": "subscribe", "payload": {"topic": f"/{pid}/project_users"}})
    s.sendall(frame(topic))
    first = drain(0.5)
    sent = 0
    for _ in range(args.frames):
        data = frame(topic)
        sent += len(data)
        s.sendall(data)
    received = drain(1)
    print(json.dumps({
        "check": "subscribes", "first_subscribe_bytes_out": first, "repeats": args.frames,
        "bytes_in": sent, "bytes_out": received,
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="http://127.0.0.1:18080")
    parser.add_argument("--pid", type=int)
    sub = parser.add_subparsers(dest="check", required=True)
    p = sub.add_parser("silent")
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=15)
    p = sub.add_parser("slowloris")
    p.add_argument("--connections", type=int, default=40)
    p.add_argument("--timeout", type=float, default=15)
    p = sub.add_parser("attributes")
    p.add_argument("--puts", type=int, default=30)
    p.add_argument("--redis", help="HOST:PORT of the gateway's Redis, for used_memory")
    p = sub.add_parser("subscribes")
    p.add_argument("--frames", type=int, default=1500)
    args = parser.parse_args()
    {"silent": silent, "slowloris": slowloris, "attributes": attributes, "subscribes": subscribes}[args.check](args)


if __name__ == "__main__":
    sys.exit(main())
