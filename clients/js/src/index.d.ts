// Types of presence-gateway-client. The wire shapes follow the gateway's docs/protocol.md §3–§6.

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export declare const States: Readonly<Record<ConnectionState, ConnectionState>>;

export interface BackoffOptions {
  /** First delay step, in ms (the actual delay is jittered between half of it and all of it). Default 500. */
  initialMs?: number;
  /** The largest step, in ms. Default 30000. */
  maxMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** A connection that stays up this long resets the backoff. Default 10000. */
  stableMs?: number;
}

export interface ClientOptions {
  /** The gateway's base URL: `http(s)://host:port` or `ws(s)://host:port`. */
  url: string;
  /** `JWT <jwt>`, a bare JWT, or a project API key. */
  token: string;
  /** Count this connection for this project only (the handshake's `project_id`). */
  projectId?: string;
  /** The app or channel name shown in `presence.channels`. Default `web`. */
  channel?: string;
  /** `false` observes without counting as online (boards, dashboards). Default true. */
  presence?: boolean;
  /** A WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: unknown;
  /** A fetch function (REST calls, and telling a refused handshake from an outage). */
  fetch?: typeof globalThis.fetch;
  /** How often the client pings. Default 20000. */
  pingIntervalMs?: number;
  /** A ping unanswered this long marks the socket dead. Default 10000. */
  pongTimeoutMs?: number;
  /** A handshake that takes longer is abandoned and retried. Default 10000. */
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
}

/** One `state` event: on every change, and once per scheduled retry (`reconnecting`, with `delayMs`). */
export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  attempt?: number;
  /** When reconnecting: the delay before the next attempt. */
  delayMs?: number;
  reason?: string;
  code?: number;
  error?: PresenceError;
}

export interface Teammate {
  _id: string;
  id: string;
  id_project: string;
  id_user: { _id: string; id: string; email: string; firstname: string; lastname: string };
  role: 'owner' | 'admin' | 'supervisor' | 'agent' | 'user' | 'guest';
  user_available: boolean;
  profileStatus: string;
  max_served_chat: number;
  number_assigned_requests: number;
  isBusy: boolean;
  status: 'active' | 'disabled';
  trashed: boolean;
  presence: {
    status: 'online' | 'offline';
    changedAt: string;
    connections: number;
    channels: string[];
    lastSeenAt: string | null;
  };
  /** Online, available, not busy, active and not trashed: a router may hand it a chat now. */
  routable: boolean;
  attributes: Record<string, unknown>;
  [field: string]: unknown;
}

export interface PresenceEvent {
  id: string;
  type:
    | 'presence.online'
    | 'presence.offline'
    | 'availability.update'
    | 'project_user.invite'
    | 'project_user.update'
    | 'project_user.disable'
    | 'project_user.delete'
    | 'project_user.restore';
  timestamp: string;
  project_id: string;
  project_user_id: string;
  user_id: string;
  seq: number;
  payload: Teammate;
  previous: Partial<Teammate>;
}

export interface TopicHandlers {
  /**
   * The topic's state: after `subscribed`, after a reconnection without a resume point, or with
   * `resync`. A large team arrives in parts; they are merged, and this is called once, whole.
   */
  onSnapshot?(message: unknown, info: { resync: boolean }): void;
  /** One event, live or replayed after a reconnection. */
  onEvent?(event: PresenceEvent, message: unknown): void;
  /** The gateway refused the subscription (`forbidden`, `invalid_topic`, ...). */
  onError?(error: ServerError): void;
}

export interface Subscription {
  readonly topic: string;
  lastEventId(): string | null;
  unsubscribe(): void;
}

type Listener<A extends unknown[]> = (...args: A) => void;

declare class Emitter<Events extends Record<string, unknown[]>> {
  on<K extends keyof Events & string>(name: K, listener: Listener<Events[K]>): () => void;
  once<K extends keyof Events & string>(name: K, listener: Listener<Events[K]>): () => void;
  off<K extends keyof Events & string>(name: K, listener: Listener<Events[K]>): void;
}

export interface ClientEvents extends Record<string, unknown[]> {
  state: [StateChange];
  error: [PresenceError];
  frame: [unknown];
}

export declare class PresenceClient extends Emitter<ClientEvents> {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  connect(): this;
  close(): void;
  subscribe(topic: string, handlers?: TopicHandlers, options?: { since?: string | null }): Subscription;
  team(projectId: string): TeamPresence;
  setAvailability(change: {
    user_available?: boolean;
    profileStatus?: string;
    projectId?: string;
  }): Promise<{ project_id: string; user_available: boolean; profileStatus: string }>;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface TeamEvents extends Record<string, unknown[]> {
  snapshot: [{ teammates: Teammate[]; resync: boolean }];
  join: [Teammate];
  leave: [Teammate];
  change: [Teammate, { previous: Teammate; fields: string[]; event: PresenceEvent | null }];
  remove: [Teammate];
  update: [Teammate, { previous: Teammate | undefined; event: PresenceEvent | null; removed?: boolean }];
  error: [ServerError];
}

export declare class TeamPresence extends Emitter<TeamEvents> {
  readonly projectId: string;
  readonly topic: string;
  readonly teammates: Map<string, Teammate>;
  readonly ready: boolean;
  close(): void;
  get(teammateId: string): Teammate | undefined;
  byUser(userId: string): Teammate | undefined;
  list(): Teammate[];
  /** Re-reads connection counts and channels over REST (they change without events); resolves with how many changed. */
  refreshConnections(): Promise<number>;
}

export declare function isOnline(teammate: Teammate | undefined): boolean;
export declare function userOf(teammate: Teammate | undefined): string | undefined;
export declare function authorization(token: string): string;

export declare class PresenceError extends Error {
  readonly code: string;
}
export declare class AuthError extends PresenceError {
  readonly status: 401;
}
export declare class RefusedError extends PresenceError {
  readonly status: number;
}
export declare class ServerError extends PresenceError {
  readonly topic?: string;
}
export declare class RequestError extends PresenceError {
  readonly status: number;
  readonly body: unknown;
}
export declare class NotConnectedError extends PresenceError {}
