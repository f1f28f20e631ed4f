// The agent socket (the gateway's docs/protocol.md §4): connect, heartbeats both ways, reconnect with jittered
// exponential backoff, and topic subscriptions that resume from the last event they saw.

import { Emitter } from './emitter.js';
import {
  AuthError,
  NotConnectedError,
  PresenceError,
  RefusedError,
  RequestError,
  ServerError,
} from './errors.js';
import { TeamPresence } from './team.js';

const DEFAULTS = {
  channel: 'web',
  presence: true,
  pingIntervalMs: 20_000,
  pongTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  backoff: { initialMs: 500, maxMs: 30_000, factor: 2, stableMs: 10_000 },
};

/** The socket's states, in the order a first connection passes through them. */
export const States = Object.freeze({
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  closed: 'closed',
});

/**
 * One agent socket to a gateway, kept alive until `close()`.
 *
 * Events: `state` ({state, previous, attempt, delayMs?, reason?}), `error` (a PresenceError),
 * `frame` (every parsed frame, for debugging).
 */
export class PresenceClient extends Emitter {
  /** @param {import('./index.js').ClientOptions} options */
  constructor(options) {
    super();
    if (!options?.url) throw new TypeError('options.url is required');
    if (!options.token) throw new TypeError('options.token is required');
    this.options = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
    };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (!this.WebSocket) {
      throw new TypeError('no WebSocket: pass options.WebSocket (in Node < 22, the `ws` package)');
    }
    this.httpBase = String(options.url).replace(/^ws/, 'http').replace(/\/+$/, '');
    this.state = States.closed;
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map();
    this.pending = [];
    this.attempt = 0;
    this.socket = null;
    this.timers = {};
    this.wanted = false;
  }

  /** Opens the socket (again, after `close()`), keeping every subscription. */
  connect() {
    if (this.wanted) return this;
    this.wanted = true;
    this.attempt = 0;
    this.#open(States.connecting);
    return this;
  }

  /**
   * Closes the socket and stops reconnecting. Subscriptions are kept with their resume
   * points, so a later `connect()` catches up on what happened meanwhile.
   */
  close() {
    this.wanted = false;
    this.#drop();
    this.#setState(States.closed, { reason: 'closed by the application' });
  }

  /**
   * Subscribes to a topic; on every (re)connection it is subscribed again, from the last
   * event it saw (`since`), or from a fresh snapshot if it saw none since its last snapshot.
   *
   * @param {string} topic e.g. `/{pid}/project_users`
   * @param {import('./index.js').TopicHandlers} handlers
   * @returns {{ unsubscribe(): void, topic: string, lastEventId: () => string | null }}
   */
  subscribe(topic, handlers = {}, { since = null } = {}) {
    if (this.subscriptions.has(topic)) throw new PresenceError('duplicate', `already subscribed to ${topic}`);
    const subscription = { topic, handlers, lastEventId: since };
    this.subscriptions.set(topic, subscription);
    if (this.state === States.connected) this.#sendSubscribe(subscription);
    return {
      topic,
      lastEventId: () => subscription.lastEventId,
      unsubscribe: () => {
        if (this.subscriptions.get(topic) !== subscription) return;
        this.subscriptions.delete(topic);
        if (this.state === States.connected) {
          this.#send({ action: 'unsubscribe', payload: { topic } });
        }
      },
    };
  }

  /** A live view of a project's team (see TeamPresence). */
  team(projectId) {
    return new TeamPresence(this, projectId);
  }

  /**
   * Sets the caller's own availability over the socket (like `PUT /v3/{pid}/project_users/`).
   * Resolves with the gateway's answer, `{project_id, user_available, profileStatus}`.
   *
   * @param {{ user_available?: boolean, profileStatus?: string, projectId?: string }} change
   */
  setAvailability({ user_available, profileStatus, projectId } = {}) {
    if (this.state !== States.connected) return Promise.reject(new NotConnectedError());
    const payload = {};
    if (projectId ?? this.options.projectId) payload.project_id = projectId ?? this.options.projectId;
    if (user_available !== undefined) payload.user_available = user_available;
    if (profileStatus !== undefined) payload.profileStatus = profileStatus;
    return new Promise((resolve, reject) => {
      // The gateway answers a socket's frames in order: the oldest request gets the next
      // `availability` answer, or the next `error` frame that names no topic.
      this.pending.push({ resolve, reject });
      this.#send({ action: 'availability', payload });
    });
  }

  /**
   * A REST call to the gateway with this client's credential. Resolves with the JSON body;
   * rejects with a RequestError on a status other than 2xx.
   */
  async request(method, path, body) {
    if (!this.fetch) throw new PresenceError('no_fetch', 'no fetch: pass options.fetch');
    const headers = { Authorization: authorization(this.options.token) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await this.fetch(this.httpBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const message = parsed?.msg ?? parsed?.message ?? `${method} ${path}: ${response.status}`;
      throw new RequestError(response.status, message, parsed);
    }
    return parsed;
  }

  // ---- the connection ------------------------------------------------------------------

  #socketUrl() {
    const params = new URLSearchParams({ token: this.options.token });
    if (this.options.projectId) params.set('project_id', this.options.projectId);
    params.set('channel', this.options.channel);
    if (!this.options.presence) params.set('presence', 'false');
    return `${this.httpBase.replace(/^http/, 'ws')}/ws?${params}`;
  }

  #open(state) {
    this.#setState(state, { attempt: this.attempt });
    let socket;
    try {
      socket = new this.WebSocket(this.#socketUrl());
    } catch (e) {
      this.#fail(new PresenceError('connect_failed', e.message), false);
      return;
    }
    this.socket = socket;
    let opened = false;
    this.timers.connect = setTimeout(() => {
      this.#lost('connection timed out', opened);
    }, this.options.connectTimeoutMs);
    socket.onopen = () => {
      opened = true;
      clearTimeout(this.timers.connect);
      this.lastHeard = Date.now();
      this.#setState(States.connected, { attempt: this.attempt });
      // Reset the backoff only once the connection has proved stable: a gateway that accepts
      // and then drops every socket is not hammered at the initial delay.
      this.timers.stable = setTimeout(() => (this.attempt = 0), this.options.backoff.stableMs);
      this.timers.ping = setInterval(() => this.#ping(), this.options.pingIntervalMs);
      for (const subscription of this.subscriptions.values()) this.#sendSubscribe(subscription);
    };
    socket.onmessage = (message) => this.#receive(message.data);
    socket.onerror = () => {};
    socket.onclose = (close) => {
      const reason = close.reason || `socket closed (${close.code})`;
      this.#lost(reason, opened, close.code);
    };
  }

  /** The socket ended (or was given up on). Decides between reconnecting and stopping. */
  async #lost(reason, opened, code) {
    if (!this.socket) return;
    this.#drop();
    if (!this.wanted) return;
    // A socket that never opened may have been refused at the handshake, which a browser
    // does not reveal: the same request over plain HTTP answers the status that says why.
    if (!opened && (await this.#refusal())) return;
    if (!this.wanted || this.socket) return;
    this.#scheduleReconnect(reason, code);
  }

  #scheduleReconnect(reason, code) {
    const { initialMs, maxMs, factor } = this.options.backoff;
    const ceiling = Math.min(maxMs, initialMs * factor ** this.attempt);
    // "Equal jitter": at least half the step, so delays still grow, and spread over the other
    // half, so that the agents of a restarted gateway do not come back all at once.
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this.#setState(States.reconnecting, { attempt: this.attempt, delayMs, reason, code }, true);
    this.timers.retry = setTimeout(() => {
      if (this.wanted && !this.socket) this.#open(States.reconnecting);
    }, delayMs);
  }

  /** Asks the handshake over HTTP; true if it was a lasting refusal (then the client stops). */
  async #refusal() {
    if (!this.fetch) return false;
    let status;
    try {
      const response = await this.fetch(this.#socketUrl().replace(/^ws/, 'http'), {
        signal: AbortSignal.timeout(this.options.connectTimeoutMs),
      });
      status = response.status;
      const body = await response.json().catch(() => ({}));
      if (status === 401) return this.#fail(new AuthError(body.msg ?? 'invalid credentials'), true);
      if (status === 400 || status === 403 || status === 404) {
        return this.#fail(new RefusedError(status, body.msg ?? `refused (${status})`), true);
      }
    } catch {
      // Unreachable: an ordinary outage, retried.
    }
    return false;
  }

  /** Reports an error; a fatal one stops the client. Returns `fatal`. */
  #fail(error, fatal) {
    if (fatal) {
      this.wanted = false;
      this.#drop();
      this.#setState(States.closed, { reason: error.message, error });
    }
    this.emit('error', error);
    if (!fatal) this.#scheduleReconnect(error.message);
    return fatal;
  }

  /** Detaches and closes the current socket, stops its timers, fails pending requests. */
  #drop() {
    for (const timer of Object.values(this.timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this.timers = {};
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.onerror = () => {};
      try {
        socket.close(1000);
      } catch {
        // Already closed.
      }
    }
    for (const { reject } of this.pending.splice(0)) reject(new NotConnectedError());
  }

  /**
   * Every ping interval: a socket that stayed silent since the last ping is dead (a gateway
   * that vanished without closing, a stuck proxy), so it is dropped and replaced.
   */
  #ping() {
    if (this.timers.pong) return;
    const sentAt = Date.now();
    this.#send(heartbeat('ping'));
    this.timers.pong = setTimeout(() => {
      if (this.lastHeard < sentAt) this.#lost('no answer to heartbeats', true);
      else delete this.timers.pong;
    }, this.options.pongTimeoutMs);
  }

  #send(frame) {
    if (this.socket?.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  #sendSubscribe(subscription) {
    subscription.parts = null;
    const payload = { topic: subscription.topic };
    if (subscription.lastEventId) payload.since = subscription.lastEventId;
    this.#send({ action: 'subscribe', payload });
  }

  /** Emits `state` on a change; `always` also emits a repeat (each scheduled retry). */
  #setState(state, details = {}, always = false) {
    const previous = this.state;
    this.state = state;
    if (previous !== state || always) this.emit('state', { state, previous, ...details });
  }

  // ---- frames ----------------------------------------------------------------------------

  #receive(data) {
    this.lastHeard = Date.now();
    if (this.timers.pong) {
      clearTimeout(this.timers.pong);
      delete this.timers.pong;
    }
    let frame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      this.emit('error', new PresenceError('invalid_frame', 'the gateway sent a frame that is not JSON'));
      return;
    }
    this.emit('frame', frame);
    const payload = frame?.payload ?? {};
    switch (frame?.action) {
      case 'heartbeat':
        if (payload.message?.text === 'ping') this.#send(heartbeat('pong'));
        break;
      case 'publish':
        this.#publish(payload);
        break;
      case 'availability':
        this.pending.shift()?.resolve(payload);
        break;
      case 'error':
        this.#error(payload);
        break;
      default:
        // `subscribed` and `unsubscribed`: nothing to do.
        break;
    }
  }

  #publish(payload) {
    const subscription = this.subscriptions.get(payload.topic);
    if (!subscription) return;
    if (payload.method === 'CREATE') {
      let message = payload.message;
      // A large team comes as consecutive parts (`part` 1..`parts`), each an array of whole
      // teammates: the snapshot is handed over once, whole, when the last part arrives.
      if (payload.parts > 1 && Array.isArray(message)) {
        if (payload.part === 1 || !subscription.parts) subscription.parts = [];
        for (const teammate of message) subscription.parts.push(teammate);
        if (payload.part < payload.parts) return;
        message = subscription.parts;
        subscription.parts = null;
      }
      // A snapshot has no position in the log: until an event arrives, a reconnection asks
      // for a fresh snapshot rather than replaying events the snapshot already holds.
      subscription.lastEventId = null;
      subscription.handlers.onSnapshot?.(message, { resync: payload.resync === true });
    } else if (payload.event) {
      subscription.lastEventId = payload.event.id;
      subscription.handlers.onEvent?.(payload.event, payload.message);
    }
  }

  #error(payload) {
    const error = new ServerError(payload.code ?? 'error', payload.message ?? 'error', payload.topic);
    const subscription = payload.topic && this.subscriptions.get(payload.topic);
    if (subscription) {
      subscription.handlers.onError?.(error);
    } else if (!payload.topic && payload.code !== 'rate_limited' && this.pending.length) {
      this.pending.shift().reject(error);
      return;
    }
    this.emit('error', error);
  }
}

function heartbeat(text) {
  return { action: 'heartbeat', payload: { message: { text } } };
}

/**
 * The `Authorization` header for a credential: kept as given when it names its scheme
 * (`JWT ...`, `Bearer ...`, `Basic ...`), else `Bearer <token>`, which the gateway takes for a
 * bare JWT and for an API key alike.
 */
export function authorization(token) {
  return /^(JWT|Bearer|Basic) /i.test(token) ? token : `Bearer ${token}`;
}
