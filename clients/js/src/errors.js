// Typed errors, so that an application can tell a bad credential (stop and ask again) from
// a refusal of one request (show it) and from a connection that is merely down (wait).

/** The base of every error this library raises or emits. */
export class PresenceError extends Error {
  /**
   * @param {string} code a machine-readable reason, e.g. `forbidden` or `unauthorized`
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'PresenceError';
    this.code = code;
  }
}

/** The gateway refused the credential (HTTP 401): retrying with it cannot succeed. */
export class AuthError extends PresenceError {
  constructor(message) {
    super('unauthorized', message);
    this.name = 'AuthError';
    this.status = 401;
  }
}

/**
 * The gateway refused the connection for another lasting reason (400 bad option, 403 not a
 * member, 404 unknown project): retrying cannot succeed either.
 */
export class RefusedError extends PresenceError {
  constructor(status, message) {
    super(status === 403 ? 'forbidden' : status === 404 ? 'not_found' : 'invalid', message);
    this.name = 'RefusedError';
    this.status = status;
  }
}

/** An `error` frame from the gateway: `code` is its code, `topic` the topic it concerns. */
export class ServerError extends PresenceError {
  constructor(code, message, topic) {
    super(code, message);
    this.name = 'ServerError';
    this.topic = topic;
  }
}

/** A REST call answered with a status other than 2xx. */
export class RequestError extends PresenceError {
  constructor(status, message, body) {
    super(status === 401 ? 'unauthorized' : `http_${status}`, message);
    this.name = 'RequestError';
    this.status = status;
    this.body = body;
  }
}

/** A request that needs the socket, made while it is not connected. */
export class NotConnectedError extends PresenceError {
  constructor() {
    super('not_connected', 'the socket is not connected');
    this.name = 'NotConnectedError';
  }
}
