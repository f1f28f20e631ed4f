// Drives the real `@tiledesk/tiledesk-client` npm package (pinned in package.json) against a
// running presence-gateway. `cargo test --test tiledesk_js_client` runs it against an in-process
// gateway on both engines; by hand:
//
//   GATEWAY_URL=http://127.0.0.1:8080 node --test tests/js/*.test.mjs
//
// Facts about the client (0.10.13, index.js) that this test and the gateway depend on:
// - Every URL is built as `${APIURL}/...`, so APIURL is `<gateway>/v3` WITHOUT a trailing slash.
// - `Authorization` is `TiledeskClient.fixToken(token)`: the token as given if it starts with
//   "JWT ", otherwise "JWT " + token. Sign-in must therefore hand back "JWT <jwt>".
// - A call succeeds only if `res.status == 200 && res.data` (anything else is an error), and the
//   callback receives the whole parsed body.
// - Only getProjectAvailableAgents returns a Promise; authEmailPassword (static), getTeam,
//   getProjectUser, updateProjectUserCurrentlyLoggedIn and updateProjectUser are callback-only.
// - `APIKEY` is mandatory in the constructor and in authEmailPassword, but never sent anywhere.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import tiledesk from '@tiledesk/tiledesk-client';

const { TiledeskClient } = tiledesk;

const RAW_GATEWAY_URL = process.env.GATEWAY_URL;
if (!RAW_GATEWAY_URL) {
  throw new Error('GATEWAY_URL is not set (e.g. GATEWAY_URL=http://127.0.0.1:8080); see tests/tiledesk_js_client.rs');
}
const GATEWAY_URL = RAW_GATEWAY_URL.replace(/\/+$/, '');
const APIURL = `${GATEWAY_URL}/v3`; // the client appends "/..." itself
const APIKEY = 'unused-by-the-client'; // mandatory option, never sent on the wire
const PASSWORD = 'Secret-pass-123!';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HTTP_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------------------------
// helpers

/** Plain fetch, for setup calls the client has no method for. Expects a 200 JSON answer. */
async function api(method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = token;
  const res = await fetch(`${APIURL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  assert.equal(res.status, 200, `${method} ${path} answered ${res.status}: ${text}`);
  assert.ok(json !== undefined, `${method} ${path} did not answer JSON: ${text}`);
  return json;
}

/** Makes the client's (err, body) errors readable: axios errors or {http_err,http_request,http_response}. */
function describeClientError(err) {
  if (err instanceof Error) {
    const r = err.response;
    if (r) {
      const cfg = err.config || {};
      return `${String(cfg.method).toUpperCase()} ${cfg.url} -> HTTP ${r.status}: ${JSON.stringify(r.data)}`;
    }
    return `${err.message}${err.code ? ` (${err.code})` : ''}`;
  }
  if (err && err.http_request) {
    const req = err.http_request;
    const res = err.http_response || {};
    return `${req.method} ${req.url} -> ${err.http_err && err.http_err.message}: HTTP ${res.status} body=${JSON.stringify(res.data)}`;
  }
  return JSON.stringify(err);
}

/**
 * Calls a callback-style client method and returns a Promise of its body.
 * Nothing but resolve/reject runs inside the callback: the client calls the callback from inside
 * an axios `.then` whose `.catch` calls the callback a second time if the first call throws.
 */
function viaCallback(label, invoke) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label}: no callback within ${HTTP_TIMEOUT_MS} ms`)),
      HTTP_TIMEOUT_MS,
    );
    invoke((err, body) => {
      clearTimeout(timer);
      if (err) reject(new Error(`${label} failed: ${describeClientError(err)}`));
      else resolve(body);
    });
  });
}

function assertTeammateShape(pu, label) {
  for (const f of [
    '_id', 'id', 'id_project', 'id_user', 'role', 'user_available', 'profileStatus',
    'max_served_chat', 'number_assigned_requests', 'isBusy', 'status', 'trashed',
    'isAuthenticated', 'presence', 'attributes', 'tags', 'settings', 'createdBy',
    'createdAt', 'updatedAt',
  ]) {
    assert.ok(Object.hasOwn(pu, f), `${label}: teammate JSON lacks "${f}": ${JSON.stringify(pu)}`);
  }
  assert.match(pu._id, UUID_RE, `${label}: _id`);
  assert.equal(pu.id, pu._id, `${label}: id == _id`);
  assert.equal(typeof pu.id_user, 'object', `${label}: id_user must be an object`);
  assert.match(pu.id_user._id, UUID_RE, `${label}: id_user._id`);
  assert.equal(typeof pu.user_available, 'boolean', `${label}: user_available`);
  assert.ok(['online', 'offline'].includes(pu.presence.status), `${label}: presence.status`);
}

// ---------------------------------------------------------------------------------------------

describe('@tiledesk/tiledesk-client against presence-gateway', { timeout: 20_000 }, () => {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 12);
  const owner = { email: `owner-${suffix}@example.test`, firstname: 'Olga', lastname: 'Owner' };
  const agent = { email: `agent-${suffix}@example.test`, firstname: 'Arto', lastname: 'Agent' };
  let token; // "JWT <jwt>" of the owner, as returned by the sign-in
  let projectId;
  let client; // TiledeskClient acting as the owner
  let ownerPuid;
  let agentPuid;
  let broken = null; // name of the first failed step; later steps are skipped

  // Runs steps in order; once one fails the following ones are skipped instead of cascading.
  function step(name, fn) {
    it(name, async (t) => {
      if (broken) {
        t.skip(`skipped: earlier step "${broken}" failed`);
        return;
      }
      try {
        await fn(t);
      } catch (e) {
        broken = name;
        throw e;
      }
    });
  }

  before(async () => {
    for (const u of [owner, agent]) {
      const body = await api('POST', '/auth/signup', {
        body: { email: u.email, password: PASSWORD, firstname: u.firstname, lastname: u.lastname },
      });
      assert.equal(body.success, true, `signup ${u.email}: ${JSON.stringify(body)}`);
      assert.match(body.user?._id, UUID_RE, `signup ${u.email}: user._id`);
      assert.equal(body.user.email, u.email);
      u.id = body.user._id;
    }
    assert.notEqual(owner.id, agent.id);
  });

  step('authEmailPassword signs the owner in and returns "JWT <jwt>"', async () => {
    const body = await viaCallback('authEmailPassword', (cb) =>
      TiledeskClient.authEmailPassword(APIKEY, owner.email, PASSWORD, { APIURL }, cb),
    );
    assert.equal(body.success, true);
    assert.equal(typeof body.token, 'string');
    assert.match(body.token, /^JWT [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/);
    assert.equal(body.user._id, owner.id);
    assert.equal(body.user.email, owner.email);
    token = body.token;

    // a wrong password is an error for the client (401, not 200)
    await assert.rejects(
      viaCallback('authEmailPassword(bad password)', (cb) =>
        TiledeskClient.authEmailPassword(APIKEY, owner.email, 'wrong-password', { APIURL }, cb),
      ),
      /HTTP 401/,
    );
  });

  step('setup: create a project and invite the agent (plain fetch)', async () => {
    const project = await api('POST', '/projects', { token, body: { name: `js-client-${suffix}` } });
    assert.match(project._id, UUID_RE);
    assert.equal(project.name, `js-client-${suffix}`);
    projectId = project._id;

    const invited = await api('POST', `/${projectId}/project_users/invite`, {
      token,
      body: { email: agent.email, role: 'agent' },
    });
    assertTeammateShape(invited, 'invite');
    assert.equal(invited.role, 'agent');
    assert.equal(invited.id_user._id, agent.id);
    assert.equal(invited.id_project, projectId);
    assert.equal(invited.status, 'active');
    agentPuid = invited._id;

    client = new TiledeskClient({ APIKEY, APIURL, projectId, token });
    assert.equal(client.jwt_token, token, 'fixToken keeps a token that already starts with "JWT "');
  });

  step('getTeam lists the owner and the agent', async () => {
    const team = await viaCallback('getTeam', (cb) => client.getTeam(cb));
    assert.ok(Array.isArray(team), `getTeam must answer an array: ${JSON.stringify(team)}`);
    assert.equal(team.length, 2);
    team.forEach((pu, i) => assertTeammateShape(pu, `team[${i}]`));
    const byUser = new Map(team.map((pu) => [pu.id_user._id, pu]));
    assert.equal(byUser.get(owner.id)?.role, 'owner');
    assert.equal(byUser.get(agent.id)?.role, 'agent');
    assert.equal(byUser.get(agent.id)._id, agentPuid);
    assert.equal(byUser.get(owner.id).id_user.email, owner.email);
    assert.equal(byUser.get(agent.id).id_user.firstname, agent.firstname);
    for (const pu of team) {
      assert.equal(pu.id_project, projectId);
      assert.equal(pu.status, 'active');
      assert.equal(pu.trashed, false);
    }
    ownerPuid = byUser.get(owner.id)._id;
  });

  step('updateProjectUserCurrentlyLoggedIn sets the owner unavailable', async () => {
    const pu = await viaCallback('updateProjectUserCurrentlyLoggedIn', (cb) =>
      client.updateProjectUserCurrentlyLoggedIn({ user_available: false, max_served_chat: 3 }, cb),
    );
    assertTeammateShape(pu, 'PUT project_users/');
    assert.equal(pu._id, ownerPuid);
    assert.equal(pu.id_user._id, owner.id);
    assert.equal(pu.role, 'owner');
    assert.equal(pu.user_available, false);
    assert.equal(pu.max_served_chat, 3);
  });

  step('getProjectUser returns an array with the agent', async () => {
    const arr = await viaCallback('getProjectUser', (cb) => client.getProjectUser(agent.id, cb));
    assert.ok(Array.isArray(arr), `project_users/users/:user_id must answer an array: ${JSON.stringify(arr)}`);
    assert.equal(arr.length, 1);
    assertTeammateShape(arr[0], 'project_users/users/:user_id');
    assert.equal(arr[0]._id, agentPuid);
    assert.equal(arr[0].id_user._id, agent.id);
    assert.equal(arr[0].id_user.email, agent.email);
    assert.equal(arr[0].role, 'agent');
    assert.equal(arr[0].id_project, projectId);
  });

  step('updateProjectUser makes the agent unavailable; nobody is available', async () => {
    const pu = await viaCallback('updateProjectUser', (cb) =>
      client.updateProjectUser(agentPuid, { user_available: false }, cb),
    );
    assertTeammateShape(pu, 'PUT project_users/:puid');
    assert.equal(pu._id, agentPuid);
    assert.equal(pu.user_available, false);
    assert.equal(pu.role, 'agent');

    const available = await client.getProjectAvailableAgents();
    assert.deepEqual(available, []);
  });

  step('updateProjectUser promotes the agent to admin and makes them available', async () => {
    const pu = await viaCallback('updateProjectUser', (cb) =>
      client.updateProjectUser(
        agentPuid,
        { role: 'admin', user_available: true, max_served_chat: 5, number_assigned_requests: 2 },
        cb,
      ),
    );
    assertTeammateShape(pu, 'PUT project_users/:puid');
    assert.equal(pu._id, agentPuid);
    assert.equal(pu.id_user._id, agent.id);
    assert.equal(pu.id_project, projectId);
    assert.equal(pu.role, 'admin');
    assert.equal(pu.user_available, true);
    assert.equal(pu.max_served_chat, 5);
    assert.equal(pu.number_assigned_requests, 2);
    assert.equal(pu.isBusy, false); // 2 < 5
    assert.equal(pu.status, 'active');
  });

  step('getProjectAvailableAgents lists exactly the available teammates', async () => {
    // promise style ...
    const available = await client.getProjectAvailableAgents();
    assert.ok(Array.isArray(available), `availables must be an array: ${JSON.stringify(available)}`);
    // owner: user_available=false (PUT project_users/); agent: user_available=true (PUT :puid)
    assert.deepEqual(available, [
      {
        id: agent.id,
        fullname: `${agent.firstname} ${agent.lastname}`,
        email: agent.email,
        assigned_request: 2,
      },
    ]);

    // ... and callback style give the same answer
    const viaCb = await viaCallback('getProjectAvailableAgents', (cb) => {
      client.getProjectAvailableAgents(cb).catch(() => {}); // the error also reaches cb
    });
    assert.deepEqual(viaCb, available);

    // the team as seen again through getTeam agrees with the availables
    const team = await viaCallback('getTeam', (cb) => client.getTeam(cb));
    const availableUserIds = team
      .filter((pu) => pu.user_available && pu.status === 'active' && !pu.trashed)
      .map((pu) => pu.id_user._id);
    assert.deepEqual(availableUserIds, [agent.id]);
  });
});
