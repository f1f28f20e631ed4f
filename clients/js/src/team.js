// A live view of one project's team: the snapshot, then every event applied once, in order.

import { Emitter } from './emitter.js';

/**
 * The teammates of a project, kept current from the `/{pid}/project_users` topic.
 *
 * Events:
 * - `snapshot` ({teammates, resync}): the whole team was (re)loaded;
 * - `join` (teammate): went online; `leave` (teammate): went offline;
 * - `change` (teammate, {previous, fields, event}): anything else changed (availability,
 *   profile status, channels, connections, role...);
 * - `remove` (teammate): deleted or trashed, no longer in the team;
 * - `update` (teammate, {previous, event}): after any of the above, once per teammate change;
 * - `error` (ServerError): the subscription was refused.
 *
 * Every event carries a per-teammate `seq`: one already applied (a replay overlapping what was
 * seen) is skipped, so no callback fires twice. After a snapshot (first load, reconnection
 * without a resume point, or `resync` because the gap outlived the gateway's retention), the
 * differences from the state before it are reported as join / leave / change / remove, so the
 * application sees no gap either.
 */
export class TeamPresence extends Emitter {
  constructor(client, projectId) {
    super();
    this.client = client;
    this.projectId = projectId;
    this.topic = `/${projectId}/project_users`;
    /** @type {Map<string, object>} teammate id -> teammate JSON */
    this.teammates = new Map();
    this.seqs = new Map();
    this.ready = false;
    this.subscription = client.subscribe(this.topic, {
      onSnapshot: (message, { resync }) => this.#snapshot(message, resync),
      onEvent: (event) => this.#event(event),
      onError: (error) => this.emit('error', error),
    });
  }

  /**
   * Re-reads the teammates' connection counts and channels over REST. Opening a second tab
   * or closing one of two is not an event (the teammate stays online), so these two figures
   * are only as fresh as the last refresh. Only they are taken, and only where the presence
   * status agrees with the live state: a REST answer may be older than the last event.
   * Resolves with the number of teammates whose figures changed.
   */
  async refreshConnections() {
    const current = await this.client.request('GET', `/v3/${this.projectId}/project_users`);
    let changed = 0;
    for (const fresh of current ?? []) {
      const teammate = this.teammates.get(fresh._id);
      const live = teammate?.presence;
      const read = fresh.presence;
      if (!live || !read || live.status !== read.status) continue;
      const fields = [];
      if (live.connections !== read.connections) fields.push('connections');
      if (!sameSet(live.channels, read.channels)) fields.push('channels');
      if (!fields.length) continue;
      const updated = {
        ...teammate,
        presence: { ...live, connections: read.connections, channels: read.channels },
      };
      this.teammates.set(fresh._id, updated);
      changed += 1;
      this.emit('change', updated, { previous: teammate, fields, event: null });
      this.emit('update', updated, { previous: teammate, event: null });
    }
    return changed;
  }

  /** Stops following the team. */
  close() {
    this.subscription.unsubscribe();
  }

  /** A teammate by teammate id. */
  get(teammateId) {
    return this.teammates.get(teammateId);
  }

  /** A teammate by user id. */
  byUser(userId) {
    for (const teammate of this.teammates.values()) {
      if (userOf(teammate) === userId) return teammate;
    }
    return undefined;
  }

  /** Every teammate, in snapshot order. */
  list() {
    return [...this.teammates.values()];
  }

  #snapshot(message, resync) {
    const incoming = new Map();
    for (const teammate of Array.isArray(message) ? message : []) {
      if (!teammate.trashed) incoming.set(teammate._id, teammate);
    }
    const before = this.teammates;
    const first = !this.ready;
    this.teammates = incoming;
    this.ready = true;
    this.emit('snapshot', { teammates: this.list(), resync });
    if (first) return;
    for (const [id, teammate] of before) {
      if (!incoming.has(id)) this.#removed(teammate, null);
    }
    for (const [id, teammate] of incoming) this.#changed(before.get(id), teammate, null);
  }

  #event(event) {
    const id = event.project_user_id;
    const seen = this.seqs.get(id);
    if (seen !== undefined && event.seq <= seen) return;
    this.seqs.set(id, event.seq);
    const previous = this.teammates.get(id);
    const teammate = event.payload;
    if (event.type === 'project_user.delete' || teammate?.trashed) {
      this.teammates.delete(id);
      if (previous) this.#removed(previous, event);
      return;
    }
    this.teammates.set(id, teammate);
    this.#changed(previous, teammate, event);
  }

  #removed(teammate, event) {
    if (isOnline(teammate)) this.emit('leave', teammate);
    this.emit('remove', teammate);
    this.emit('update', teammate, { previous: teammate, event, removed: true });
  }

  /** Reports how `previous` became `teammate`: join / leave, change, then update. */
  #changed(previous, teammate, event) {
    const fields = changedFields(previous, teammate);
    if (previous && fields.length === 0) return;
    const wasOnline = previous ? isOnline(previous) : false;
    const online = isOnline(teammate);
    if (!wasOnline && online) this.emit('join', teammate);
    if (wasOnline && !online) this.emit('leave', teammate);
    const others = fields.filter((f) => f !== 'presence');
    if (previous && others.length) this.emit('change', teammate, { previous, fields: others, event });
    this.emit('update', teammate, { previous, event });
  }
}

export function isOnline(teammate) {
  return teammate?.presence?.status === 'online';
}

export function userOf(teammate) {
  return typeof teammate?.id_user === 'object' ? teammate.id_user?._id : teammate?.id_user;
}

/** Fields worth reporting, with the presence object split into its parts. */
const WATCHED = [
  'user_available',
  'profileStatus',
  'role',
  'status',
  'isBusy',
  'number_assigned_requests',
  'max_served_chat',
  'id_user',
  'attributes',
];

function changedFields(previous, teammate) {
  if (!previous) return ['presence', ...WATCHED];
  const fields = [];
  const a = previous.presence ?? {};
  const b = teammate.presence ?? {};
  if (a.status !== b.status) fields.push('presence');
  if (a.connections !== b.connections) fields.push('connections');
  if (!sameSet(a.channels, b.channels)) fields.push('channels');
  if (a.lastSeenAt !== b.lastSeenAt) fields.push('lastSeenAt');
  for (const field of WATCHED) {
    if (JSON.stringify(previous[field]) !== JSON.stringify(teammate[field])) fields.push(field);
  }
  return fields;
}

function sameSet(a = [], b = []) {
  return a.length === b.length && a.every((x) => b.includes(x));
}
