// TeamPresence's bookkeeping without a network: a stand-in client hands it snapshots and
// events, so that duplicates, out-of-order replays and resyncs can be fed on purpose.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { TeamPresence } from '../src/index.js';

/** Just enough of PresenceClient for TeamPresence: it records the topic's handlers. */
function standIn() {
  return {
    handlers: null,
    subscribe(topic, handlers) {
      this.topic = topic;
      this.handlers = handlers;
      return { unsubscribe: () => (this.handlers = null) };
    },
  };
}

function teammate(id, { online = false, available = true, status = '', channels = [] } = {}) {
  return {
    _id: id,
    id_user: { _id: `user-${id}`, email: `${id}@example.test`, firstname: id, lastname: '' },
    user_available: available,
    profileStatus: status,
    presence: { status: online ? 'online' : 'offline', connections: channels.length, channels },
  };
}

function event(seq, payload, type = 'availability.update') {
  return { id: `e${seq}-${payload._id}`, seq, type, project_user_id: payload._id, payload };
}

function recorder(team) {
  const calls = [];
  for (const name of ['snapshot', 'join', 'leave', 'change', 'remove']) {
    team.on(name, (t, info) => calls.push([name, name === 'snapshot' ? t.resync : t._id, info?.fields]));
  }
  return calls;
}

it('applies each event once, by per-teammate seq', () => {
  const client = standIn();
  const team = new TeamPresence(client, 'p1');
  assert.equal(client.topic, '/p1/project_users');
  const calls = recorder(team);
  client.handlers.onSnapshot([teammate('a'), teammate('b')], { resync: false });
  const online = teammate('a', { online: true, channels: ['web'] });
  client.handlers.onEvent(event(1, online, 'presence.online'));
  client.handlers.onEvent(event(1, online, 'presence.online')); // a duplicate
  client.handlers.onEvent(event(2, teammate('a', { online: true, channels: ['web'], status: 'x' })));
  client.handlers.onEvent(event(1, teammate('a'), 'presence.online')); // an old one, late
  assert.deepEqual(calls, [
    ['snapshot', false, undefined],
    ['join', 'a', undefined],
    ['change', 'a', ['connections', 'channels']],
    ['change', 'a', ['profileStatus']],
  ]);
  assert.equal(team.get('a').profileStatus, 'x');
  assert.equal(team.byUser('user-b')._id, 'b');
});

it('reports what a later snapshot changed, and nothing else', () => {
  const client = standIn();
  const team = new TeamPresence(client, 'p1');
  client.handlers.onSnapshot([teammate('a', { online: true }), teammate('b'), teammate('c')], { resync: false });
  const calls = recorder(team);
  client.handlers.onSnapshot(
    [teammate('a'), teammate('b', { available: false }), teammate('d', { online: true })],
    { resync: true },
  );
  assert.deepEqual(calls, [
    ['snapshot', true, undefined],
    ['remove', 'c', undefined],
    ['leave', 'a', undefined],
    ['change', 'b', ['user_available']],
    ['join', 'd', undefined],
  ]);
  assert.deepEqual(team.list().map((t) => t._id), ['a', 'b', 'd']);
});

it('drops deleted and trashed teammates', () => {
  const client = standIn();
  const team = new TeamPresence(client, 'p1');
  client.handlers.onSnapshot([teammate('a', { online: true }), teammate('b')], { resync: false });
  const calls = recorder(team);
  client.handlers.onEvent(event(5, { ...teammate('b'), trashed: true }, 'project_user.delete'));
  client.handlers.onEvent(event(3, teammate('a', { online: true }), 'project_user.delete'));
  assert.deepEqual(calls, [
    ['remove', 'b', undefined],
    ['leave', 'a', undefined],
    ['remove', 'a', undefined],
  ]);
  assert.equal(team.teammates.size, 0);
  team.close();
  assert.equal(client.handlers, null);
});
