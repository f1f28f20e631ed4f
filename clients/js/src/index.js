// presence-gateway-client: the agent socket and a live team presence view for
// presence-gateway (its README). No dependencies; in Node < 22 pass the `ws` package as
// `WebSocket`. The types are in index.d.ts.

export { PresenceClient, States, authorization } from './client.js';
export { TeamPresence, isOnline, userOf } from './team.js';
export {
  PresenceError,
  AuthError,
  RefusedError,
  ServerError,
  RequestError,
  NotConnectedError,
} from './errors.js';
