// Prints a project's team presence as it changes.
//
//   GATEWAY_URL=http://127.0.0.1:8080 TOKEN='JWT eyJ...' PROJECT=<project id> \
//     node examples/watch-team.mjs
//
// TOKEN is a sign-in token (`POST /v3/auth/signin` answers it as "JWT ...") or a project API
// key. The socket observes (`presence: false`), so watching does not make you "online".

import WebSocket from 'ws'; // Node 22+ and browsers have a WebSocket of their own
import { PresenceClient, isOnline } from 'presence-gateway-client';

const { GATEWAY_URL = 'http://127.0.0.1:8080', TOKEN, PROJECT } = process.env;
if (!TOKEN || !PROJECT) {
  console.error('set TOKEN and PROJECT (and GATEWAY_URL if not http://127.0.0.1:8080)');
  process.exit(2);
}

const client = new PresenceClient({
  url: GATEWAY_URL,
  token: TOKEN,
  projectId: PROJECT,
  presence: false,
  WebSocket,
});
const name = (t) => `${t.id_user.firstname} ${t.id_user.lastname} <${t.id_user.email}>`;

client.on('state', ({ state, delayMs }) =>
  console.log(`[${state}]${delayMs ? ` next attempt in ${delayMs} ms` : ''}`),
);
client.on('error', (error) => {
  console.error(`${error.name}: ${error.message}`);
  if (client.state === 'closed') process.exit(1);
});

const team = client.team(PROJECT);
team.on('snapshot', ({ teammates, resync }) => {
  console.log(`${resync ? 'resynced' : 'loaded'}: ${teammates.length} teammates`);
  for (const t of teammates) console.log(`  ${isOnline(t) ? 'online ' : 'offline'} ${name(t)}`);
});
team.on('join', (t) => console.log(`online  ${name(t)}`));
team.on('leave', (t) => console.log(`offline ${name(t)}`));
team.on('change', (t, { fields }) => console.log(`changed ${name(t)}: ${fields.join(', ')}`));

client.connect();
process.on('SIGINT', () => {
  client.close();
  process.exit(0);
});
