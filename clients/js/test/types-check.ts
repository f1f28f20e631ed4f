// Compiled (never run) by `npm run typecheck` and by the suite: the declarations in
// src/index.d.ts must describe the API as an application uses it.

import {
  AuthError,
  PresenceClient,
  ServerError,
  type PresenceEvent,
  type StateChange,
  type Teammate,
} from 'presence-gateway-client';

const client = new PresenceClient({
  url: 'http://127.0.0.1:8080',
  token: 'JWT eyJ...',
  projectId: '6e0c0f4e-0000-4000-8000-000000000000',
  presence: false,
  backoff: { initialMs: 250, maxMs: 10_000 },
});
const off: () => void = client.on('state', (change: StateChange) => {
  const state: 'connecting' | 'connected' | 'reconnecting' | 'closed' = change.state;
  void state;
});
off();
client.on('error', (error) => {
  if (error instanceof AuthError) console.log(error.status);
  if (error instanceof ServerError) console.log(error.code, error.topic);
});

const team = client.team('6e0c0f4e-0000-4000-8000-000000000000');
team.on('join', (t: Teammate) => console.log(t.id_user.email, t.presence.connections));
team.on('change', (t, { fields, event }) => console.log(t._id, fields.join(), event?.seq));
team.on('snapshot', ({ teammates, resync }) => console.log(teammates.length, resync));

const subscription = client.subscribe('/p/events', {
  onEvent: (event: PresenceEvent) => console.log(event.type, event.seq, event.payload.user_available),
});
const last: string | null = subscription.lastEventId();
void last;

async function flip(): Promise<boolean> {
  const answer = await client.setAvailability({ user_available: false, profileStatus: 'lunch' });
  const teammates = await client.request<Teammate[]>('GET', '/v3/p/project_users');
  return answer.user_available || teammates.length > 0;
}
void flip;
client.connect().close();
