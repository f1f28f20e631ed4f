// The client library against real gateway processes (and, for a dead peer, a fake server
// that never answers): tabs on two nodes, a crash mid-stream, resync, heartbeats, bad tokens.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { WebSocketServer } from 'ws';
import {
  AuthError,
  NotConnectedError,
  PresenceClient,
  RefusedError,
  ServerError,
  isOnline,
} from '../src/index.js';
import { Gateway, WebSocket, api, freePort, largeTeam, newTeam, newUser, sleep, until } from './gateway.mjs';

/** Fast timings for tests: quick retries and quick dead-socket detection. */
const FAST_CLIENT = {
  WebSocket,
  backoff: { initialMs: 100, maxMs: 1_000, stableMs: 2_000 },
  pingIntervalMs: 1_000,
  pongTimeoutMs: 1_000,
  connectTimeoutMs: 2_000,
};

const clients = [];
function client(options) {
  const c = new PresenceClient({ ...FAST_CLIENT, ...options });
  c.states = [];
  c.changes = [];
  c.errors = [];
  c.on('state', (s) => {
    c.states.push(s.state);
    c.changes.push(s);
  });
  c.on('error', (e) => c.errors.push(e));
  clients.push(c);
  return c;
}

after(() => {
  for (const c of clients) c.close();
});

async function connected(c) {
  await until(() => c.state === 'connected', { what: 'the client to connect', timeoutMs: 10_000 });
}

/** Counts a team view's callbacks. */
function record(team) {
  const seen = { join: [], leave: [], change: [], snapshot: [], update: [] };
  for (const name of Object.keys(seen)) team.on(name, (...args) => seen[name].push(args));
  return seen;
}

describe('tabs on two nodes (Redis engine)', () => {
  let a;
  let b;
  before(async () => {
    a = await new Gateway({ redis: true }).start();
    b = await new Gateway({ redis: true, prefix: a.prefix }).start();
  });
  after(async () => {
    await a.stop();
    await b.stop();
  });

  it('joins once, stays online while either tab is open, leaves after the last', async () => {
    const team = await newTeam(a.url, ['Bea']);
    const bea = team.agents[0];
    const watcher = client({ url: a.url, token: team.owner.token, projectId: team.pid, presence: false });
    const view = watcher.team(team.pid);
    const seen = record(view);
    watcher.connect();
    await until(() => view.ready, { what: 'the snapshot' });
    assert.equal(isOnline(view.get(bea.teammateId)), false);

    const tabA = client({ url: a.url, token: bea.token, projectId: team.pid, channel: 'web' }).connect();
    const tabB = client({ url: b.url, token: bea.token, projectId: team.pid, channel: 'mobile' }).connect();
    await connected(tabA);
    await connected(tabB);
    await until(() => isOnline(view.get(bea.teammateId)), { what: 'join' });
    await until(async () => (await view.refreshConnections()) >= 0 && view.get(bea.teammateId).presence.connections === 2, {
      what: 'two connections',
    });
    assert.deepEqual([...view.get(bea.teammateId).presence.channels].sort(), ['mobile', 'web']);

    tabA.close();
    await sleep(800); // past the 300 ms grace
    assert.equal(isOnline(view.get(bea.teammateId)), true, 'the tab on the other node still counts');
    tabB.close();
    await until(() => !isOnline(view.get(bea.teammateId)), { what: 'leave' });
    await sleep(300);
    const joins = seen.join.filter(([t]) => t._id === bea.teammateId);
    const leaves = seen.leave.filter(([t]) => t._id === bea.teammateId);
    assert.equal(joins.length, 1, 'exactly one join');
    assert.equal(leaves.length, 1, 'exactly one leave');
    assert.deepEqual(watcher.errors, []);
  });
});

describe('a gateway killed mid-stream (Redis engine)', () => {
  it('resumes from the last event: no gap, no duplicate', async () => {
    const a = await new Gateway({ redis: true }).start();
    const b = await new Gateway({ redis: true, prefix: a.prefix }).start();
    try {
      const team = await newTeam(a.url, ['Carl']);
      const carl = team.agents[0];
      const watcher = client({ url: a.url, token: team.owner.token, projectId: team.pid, presence: false });
      const seqs = [];
      const types = [];
      watcher.subscribe(`/${team.pid}/project_users/${carl.teammateId}`, {
        onEvent: (event) => {
          seqs.push(event.seq);
          types.push(event.type);
        },
      });
      const view = watcher.team(team.pid);
      const viewSeqs = [];
      view.on('update', (teammate, { event }) => {
        if (event && teammate._id === carl.teammateId) viewSeqs.push(event.seq);
      });
      watcher.connect();
      await until(() => view.ready, { what: 'the snapshot' });

      const changes = 30;
      for (let i = 1; i <= changes; i += 1) {
        await api(b.url, 'PUT', `/v3/${team.pid}/project_users/${carl.teammateId}`, {
          token: team.owner.token,
          body: { user_available: i % 2 === 0, profileStatus: `step-${i}` },
        });
        if (i === 10) {
          await a.kill();
          await until(() => watcher.state === 'reconnecting', { what: 'reconnecting' });
        }
        if (i === 20) await a.start();
        await sleep(20);
      }
      await until(() => seqs.length >= changes, { what: `${changes} events`, timeoutMs: 10_000 });
      await sleep(300);
      const first = seqs[0];
      assert.deepEqual(seqs, Array.from({ length: changes }, (_, i) => first + i), 'consecutive seqs');
      assert.deepEqual(viewSeqs, seqs, 'the team view applied each event once');
      assert.ok(types.every((t) => t === 'availability.update'), types.join());
      assert.equal(view.get(carl.teammateId).profileStatus, `step-${changes}`);
      assert.ok(watcher.states.includes('reconnecting'));
      assert.equal(watcher.state, 'connected');
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('resync after the gap outlived retention (memory engine)', () => {
  it('replaces the state with the snapshot and reports the differences once', async () => {
    const gateway = await new Gateway({ env: { PRESENCE_EVENT_RETENTION: '5' } }).start();
    try {
      const team = await newTeam(gateway.url, ['Dana', 'Eli']);
      const [dana, eli] = team.agents;
      const watcher = client({ url: gateway.url, token: team.owner.token, projectId: team.pid, presence: false });
      const view = watcher.team(team.pid);
      const seen = record(view);
      watcher.connect();
      await until(() => view.ready, { what: 'the snapshot' });
      // One live event, so that the client has a resume point.
      await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${eli.teammateId}`, {
        token: team.owner.token,
        body: { profileStatus: 'start' },
      });
      await until(() => view.get(eli.teammateId).profileStatus === 'start', { what: 'the live event' });

      watcher.close();
      for (let i = 0; i < 12; i += 1) {
        await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${eli.teammateId}`, {
          token: team.owner.token,
          body: { profileStatus: `away-${i}` },
        });
      }
      await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${dana.teammateId}`, {
        token: team.owner.token,
        body: { user_available: false },
      });
      const changesBefore = seen.change.length;
      watcher.connect();
      await until(() => seen.snapshot.length === 2, { what: 'the resync snapshot' });
      assert.equal(seen.snapshot[1][0].resync, true);
      const rest = await api(gateway.url, 'GET', `/v3/${team.pid}/project_users`, { token: team.owner.token });
      for (const teammate of rest) {
        const mine = view.get(teammate._id);
        assert.equal(mine.user_available, teammate.user_available, teammate._id);
        assert.equal(mine.profileStatus, teammate.profileStatus, teammate._id);
      }
      const changes = seen.change.slice(changesBefore).map(([t, { fields }]) => [t._id, fields]);
      assert.deepEqual(
        changes.sort(),
        [
          [dana.teammateId, ['user_available']],
          [eli.teammateId, ['profileStatus']],
        ].sort(),
        'each difference reported once',
      );
      // Live events follow.
      await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${eli.teammateId}`, {
        token: team.owner.token,
        body: { profileStatus: 'back' },
      });
      await until(() => view.get(eli.teammateId).profileStatus === 'back', { what: 'a live event after resync' });
    } finally {
      await gateway.stop();
    }
  });
});

describe('a team too large for one frame (memory engine)', () => {
  it('merges the snapshot parts into one snapshot, then applies live events', async () => {
    const gateway = await new Gateway().start();
    try {
      const team = await largeTeam(gateway.url, 20);
      const watcher = client({ url: gateway.url, token: team.owner.token, projectId: team.pid, presence: false });
      const parts = [];
      watcher.on('frame', (frame) => {
        if (frame.payload?.method === 'CREATE') parts.push(frame.payload);
      });
      const view = watcher.team(team.pid);
      const seen = record(view);
      watcher.connect();
      await until(() => view.ready, { what: 'the snapshot' });
      assert.ok(parts.length > 1, `the snapshot came in ${parts.length} part(s)`);
      parts.forEach((part, i) => {
        assert.equal(part.part, i + 1);
        assert.equal(part.parts, parts.length);
      });
      assert.equal(seen.snapshot.length, 1, 'one snapshot, whole');
      assert.equal(seen.snapshot[0][0].teammates.length, 21);
      assert.equal(view.list().length, 21);
      for (const agent of team.agents) {
        assert.equal(view.get(agent.teammateId).attributes.notes.length, 15_000, agent.teammateId);
      }
      assert.equal(seen.join.length + seen.leave.length + seen.change.length, 0, 'no differences reported');
      const last = team.agents.at(-1);
      await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${last.teammateId}`, {
        token: team.owner.token,
        body: { profileStatus: 'after the parts' },
      });
      await until(() => view.get(last.teammateId).profileStatus === 'after the parts', { what: 'a live event' });
    } finally {
      await gateway.stop();
    }
  });
});

describe('heartbeats and dead sockets', () => {
  it('answers the gateway heartbeats, so a quiet socket stays open', async () => {
    const gateway = await new Gateway().start(); // heartbeat every 500 ms: silent sockets close in 1-1.5 s
    try {
      // A socket needs a teammate: a user in no project is refused at the handshake.
      const { owner: user } = await newTeam(gateway.url, []);
      const c = client({ url: gateway.url, token: user.token, pingIntervalMs: 60_000 });
      c.connect();
      await connected(c);
      await sleep(2_500);
      assert.equal(c.state, 'connected');
      assert.deepEqual(c.states, ['connecting', 'connected']);
    } finally {
      await gateway.stop();
    }
  });

  it('gives up on a socket that never answers, and reconnects', async () => {
    const port = await freePort();
    const server = new WebSocketServer({ host: '127.0.0.1', port });
    const replies = [];
    let connections = 0;
    server.on('connection', (socket) => {
      connections += 1;
      // One ping from the "server"; afterwards it never says anything again.
      socket.send(JSON.stringify({ action: 'heartbeat', payload: { message: { text: 'ping' } } }));
      socket.on('message', (data) => replies.push(JSON.parse(String(data))));
    });
    try {
      const c = client({ url: `http://127.0.0.1:${port}`, token: 'JWT x.y.z', pingIntervalMs: 150, pongTimeoutMs: 150 });
      const started = Date.now();
      c.connect();
      await until(() => c.states.includes('reconnecting'), { what: 'the dead socket to be noticed' });
      assert.ok(Date.now() - started < 1_000, `noticed after ${Date.now() - started} ms`);
      await until(() => connections >= 2, { what: 'a new connection' });
      assert.ok(
        replies.some((f) => f.action === 'heartbeat' && f.payload.message.text === 'pong'),
        'the server ping was answered with pong',
      );
      assert.ok(replies.some((f) => f.action === 'heartbeat' && f.payload.message.text === 'ping'), 'the client pinged');
      c.close();
      assert.equal(c.state, 'closed');
    } finally {
      server.close();
    }
  });

  it('backs off with jitter up to the cap, and resets after a stable connection', async () => {
    const port = await freePort();
    const server = new WebSocketServer({ host: '127.0.0.1', port });
    let hold = false;
    server.on('connection', (socket) => {
      if (!hold) socket.close();
    });
    try {
      const backoff = { initialMs: 40, maxMs: 320, factor: 2, stableMs: 300 };
      const c = client({ url: `http://127.0.0.1:${port}`, token: 'JWT x.y.z', backoff });
      c.connect();
      const retries = () => c.changes.filter((s) => s.state === 'reconnecting');
      await until(() => retries().length >= 6, { what: 'six retries' });
      const ceilings = [40, 80, 160, 320, 320, 320];
      retries()
        .slice(0, 6)
        .forEach(({ delayMs }, i) => {
          assert.ok(delayMs >= ceilings[i] / 2 && delayMs <= ceilings[i], `retry ${i + 1}: ${delayMs} ms`);
        });
      // A connection that stays up past stableMs resets the backoff.
      hold = true;
      await until(() => c.state === 'connected', { what: 'a held connection' });
      await sleep(backoff.stableMs + 100);
      const before = retries().length;
      hold = false;
      for (const socket of server.clients) socket.close();
      await until(() => retries().length > before, { what: 'the retry after the drop' });
      const { delayMs } = retries()[before];
      assert.ok(delayMs >= 20 && delayMs <= 40, `after a stable connection: ${delayMs} ms`);
      c.close();
    } finally {
      server.close();
    }
  });

  it('abandons a handshake that never completes', async () => {
    const port = await freePort();
    const held = [];
    const server = createServer((socket) => held.push(socket)).listen(port, '127.0.0.1');
    try {
      // The handshake is abandoned, and so is the HTTP probe that asks why (same timeout).
      const c = client({ url: `http://127.0.0.1:${port}`, token: 'JWT x.y.z', connectTimeoutMs: 200 });
      c.connect();
      await until(() => c.states.includes('reconnecting'), { what: 'the connect timeout' });
      await until(() => held.length >= 2, { what: 'a second attempt' });
      c.close();
    } finally {
      for (const socket of held) socket.destroy();
      server.close();
    }
  });
});

describe('credentials and refusals', () => {
  let gateway;
  let team;
  before(async () => {
    gateway = await new Gateway().start();
    team = await newTeam(gateway.url, ['Finn']);
  });
  after(() => gateway.stop());

  for (const [name, token] of [
    ['a garbage JWT', 'JWT not.a.jwt'],
    ['a JWT signed with another secret', 'JWT eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl'],
    ['an unknown API key', 'pgk_not-a-real-key'],
  ]) {
    it(`stops with an AuthError on ${name}`, async () => {
      const c = client({ url: gateway.url, token });
      c.connect();
      await until(() => c.state === 'closed' && c.errors.length > 0, { what: 'the refusal' });
      assert.ok(c.errors[0] instanceof AuthError, String(c.errors[0]));
      assert.equal(c.errors[0].status, 401);
      await sleep(500);
      assert.equal(c.state, 'closed', 'no retry with a refused credential');
      assert.deepEqual(c.states, ['connecting', 'closed']);
    });
  }

  it('stops with a RefusedError for a project the user is not in', async () => {
    const outsider = await newUser(gateway.url, 'Olli', 'Outsider');
    const c = client({ url: gateway.url, token: outsider.token, projectId: team.pid });
    c.connect();
    await until(() => c.state === 'closed' && c.errors.length > 0, { what: 'the refusal' });
    assert.ok(c.errors[0] instanceof RefusedError, String(c.errors[0]));
    assert.equal(c.errors[0].status, 403);
  });

  it('delivers error frames as typed errors, and sets availability', async () => {
    const finn = team.agents[0];
    const c = client({ url: gateway.url, token: finn.token, projectId: team.pid });
    await assert.rejects(c.setAvailability({ user_available: false }), NotConnectedError);
    c.connect();
    await connected(c);
    const answer = await c.setAvailability({ user_available: false, profileStatus: 'lunch' });
    assert.deepEqual(answer, { project_id: team.pid, user_available: false, profileStatus: 'lunch' });
    const [rest] = await api(gateway.url, 'GET', `/v3/${team.pid}/project_users/me`, { token: finn.token });
    assert.equal(rest.user_available, false);
    const other = await newTeam(gateway.url, []);
    const notMine = await c.setAvailability({ user_available: false, projectId: other.pid }).catch((e) => e);
    assert.ok(notMine instanceof ServerError, String(notMine));
    assert.equal(notMine.code, 'forbidden');

    const refused = new Promise((resolve) => {
      c.subscribe(`/${other.pid}/project_users`, { onError: resolve });
    });
    const error = await refused;
    assert.ok(error instanceof ServerError);
    assert.equal(error.code, 'forbidden');
    assert.equal(error.topic, `/${other.pid}/project_users`);
    // The socket stays usable.
    assert.equal((await c.setAvailability({ user_available: true })).user_available, true);
  });
});
