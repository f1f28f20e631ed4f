// Test harness: real gateway processes (the binary the Rust build made), accounts made over
// REST, and small waiting helpers. Used by the client suite and the browser suite.
//
// GATEWAY_BIN names the binary (default: the workspace's target/debug/presence-gateway).
// Redis-engine gateways share the Redis at REDIS_URL (default 127.0.0.1:6379) under a key
// prefix unique to the test, so runs never collide.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GATEWAY_BIN =
  process.env.GATEWAY_BIN ?? path.resolve(here, '../../../target/debug/presence-gateway');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const JWT_SECRET = 'client-suite-secret';
export const PASSWORD = 'correct-horse-battery';
export { WebSocket };

/** Timings as small as the contract allows tests to use. */
const FAST = {
  PRESENCE_OFFLINE_GRACE_MS: '300',
  PRESENCE_NODE_TTL_MS: '1500',
  PRESENCE_HEARTBEAT_MS: '500',
};

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A gateway process. `kill()` is SIGKILL (a crash); `start()` again reuses the port. */
export class Gateway {
  /**
   * @param {{ redis?: boolean, prefix?: string, env?: Record<string, string>, port?: number }} options
   */
  constructor({ redis = false, prefix, env = {}, port } = {}) {
    this.redis = redis;
    this.prefix = prefix ?? `jsclient:${randomUUID()}:`;
    this.env = env;
    this.port = port;
    this.process = null;
    this.log = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port ??= await freePort();
    const env = {
      ...process.env,
      ...FAST,
      PRESENCE_LISTEN: `127.0.0.1:${this.port}`,
      PRESENCE_JWT_SECRET: JWT_SECRET,
      PRESENCE_LOG_LEVEL: 'warn',
      ...(this.redis ? { PRESENCE_REDIS_URL: REDIS_URL, PRESENCE_REDIS_PREFIX: this.prefix } : {}),
      ...this.env,
    };
    if (!this.redis) delete env.PRESENCE_REDIS_URL;
    const child = spawn(GATEWAY_BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    child.stdout.on('data', (d) => (this.log += d));
    child.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`the gateway exited:\n${this.log}`);
      const response = await fetch(`${this.url}/readyz`).catch(() => null);
      return response?.ok;
    }, { timeoutMs: 15_000, what: 'the gateway to be ready' });
    return this;
  }

  /** SIGKILL: no handover, no close frames. */
  async kill() {
    if (!this.process) return;
    this.process.kill('SIGKILL');
    await this.exited;
    this.process = null;
  }

  /** SIGTERM: a graceful stop (sockets closed with 1012). */
  async stop() {
    if (!this.process) return;
    this.process.kill('SIGTERM');
    await this.exited;
    this.process = null;
  }
}

/** Polls `check` until it returns a truthy value; throws after `timeoutMs`. */
export async function until(check, { timeoutMs = 5_000, intervalMs = 25, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
      if (e?.message?.startsWith('the gateway exited')) throw e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A JSON REST call; throws unless the status is `expect` (200 by default). */
export async function api(base, method, route, { token, body, expect = 200 } = {}) {
  const headers = {};
  if (token) headers.Authorization = /^(JWT|Bearer|Basic) /.test(token) ? token : `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(base + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== expect) {
    throw new Error(`${method} ${route}: expected ${expect}, got ${response.status}: ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** Signs up and signs in a new user; returns `{ id, email, token }` (token = `JWT <jwt>`). */
export async function newUser(base, firstname = 'Ada', lastname = 'Agent') {
  const local = firstname.toLowerCase().replace(/[^a-z0-9]/g, '') || 'user';
  const email = `${local}-${randomUUID()}@example.test`;
  const { user } = await api(base, 'POST', '/v3/auth/signup', {
    body: { email, password: PASSWORD, firstname, lastname },
  });
  const { token } = await api(base, 'POST', '/v3/auth/signin', { body: { email, password: PASSWORD } });
  return { id: user._id, email, token, firstname, lastname };
}

/**
 * A project owned by a new user, with `agents` more teammates invited as agents. Returns the
 * owner, the agents (each with `teammateId`), the project id and an admin API key.
 */
export async function newTeam(base, agentNames = ['Bea']) {
  const owner = await newUser(base, 'Olga', 'Owner');
  const project = await api(base, 'POST', '/v3/projects', { token: owner.token, body: { name: 'Support' } });
  const pid = project._id;
  const agents = [];
  for (const name of agentNames) {
    const agent = await newUser(base, name, 'Agent');
    const teammate = await api(base, 'POST', `/v3/${pid}/project_users/invite`, {
      token: owner.token,
      body: { email: agent.email, role: 'agent' },
    });
    agents.push({ ...agent, teammateId: teammate._id });
  }
  const [me] = await api(base, 'GET', `/v3/${pid}/project_users/me`, { token: owner.token });
  owner.teammateId = me._id;
  const key = await api(base, 'POST', `/v3/${pid}/keys`, {
    token: owner.token,
    body: { name: 'suite', role: 'admin' },
  });
  return { pid, owner, agents, apiKey: key.key };
}

/**
 * A team whose snapshot is too large for one frame (the gateway sends a team over 256 KiB in
 * parts): `agents` agents, each with 15 KB of attributes. Returns what `newTeam` returns.
 */
export async function largeTeam(base, agents = 20) {
  const names = Array.from({ length: agents }, (_, i) => `Member${i}`);
  const team = await newTeam(base, names);
  await Promise.all(
    team.agents.map((agent) =>
      api(base, 'PUT', `/v3/${team.pid}/project_users/`, {
        token: agent.token,
        body: { attributes: { notes: 'n'.repeat(15_000) } },
      }),
    ),
  );
  return team;
}

/** An agent tab: a raw socket that counts for the project (what an agent app holds). */
export async function openTab(base, token, { pid, channel = 'web' } = {}) {
  const params = new URLSearchParams({ token, channel });
  if (pid) params.set('project_id', pid);
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?${params}`);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  // Answers the gateway's heartbeats, as an agent app would.
  socket.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.action === 'heartbeat' && frame.payload?.message?.text === 'ping') {
      socket.send(JSON.stringify({ action: 'heartbeat', payload: { message: { text: 'pong' } } }));
    }
  });
  return socket;
}

export async function closeTab(socket) {
  if (socket.readyState === WebSocket.CLOSED) return;
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.close();
  await closed;
}
