// The team presence board (README, "The team presence board"), built on the client library served beside it.
//
// The credential comes from the URL fragment (`#token=...&project=...`), or from the sign-in
// form, which keeps it in sessionStorage so that it does not sit in the browser's history.
// The board's socket observes (`presence=false`): a supervisor watching is not "online".

import { PresenceClient } from '/board/index.js';
import { Board } from '/board/team-board.js';
import { $, notice, setConnection, text } from '/board/ui.js';

const TOKEN_KEY = 'presence-board-token';

/** Everything about the board that is open now; null on the sign-in and picker screens. */
let current = null;

window.addEventListener('hashchange', route);
$('signin-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
$('switch-project').addEventListener('click', () => navigate({ project: null }));
$('filter-team').addEventListener('change', () => current?.renderAll());
$('filter-presence').addEventListener('change', () => current?.renderAll());
$('filters').addEventListener('submit', (e) => e.preventDefault());
document.addEventListener('visibilitychange', () => current?.visibility());

function fragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { token: params.get('token'), project: params.get('project') };
}

function credential() {
  return fragment().token ?? sessionStorage.getItem(TOKEN_KEY);
}

/** Rewrites the fragment (keeping a token that came in it) and routes. */
function navigate({ project }) {
  const params = new URLSearchParams();
  const { token } = fragment();
  if (token) params.set('token', token);
  if (project) params.set('project', project);
  location.hash = params.toString();
}

function show(screen) {
  for (const id of ['signin', 'picker', 'board']) $(id).hidden = id !== screen;
  const signedIn = screen !== 'signin';
  $('sign-out').hidden = !signedIn;
  $('switch-project').hidden = screen !== 'board' || Boolean(fragment().token && fragment().project);
}

async function route() {
  current?.stop();
  current = null;
  notice(null);
  setConnection('idle', 'Not connected');
  $('project-name').textContent = '';
  const token = credential();
  const { project } = fragment();
  if (!token) {
    show('signin');
    $('email').focus();
    return;
  }
  if (!project) return pickProject(token);
  show('board');
  current = new Board(token, project, expired);
  current.start();
}

async function signIn(event) {
  event.preventDefault();
  const email = $('email').value.trim();
  const password = $('password').value;
  $('signin-error').textContent = '';
  if (!email || !password) {
    $('signin-error').textContent = 'Enter your email and password.';
    return;
  }
  $('signin-submit').disabled = true;
  try {
    const response = await fetch('/v3/auth/signin', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $('signin-error').textContent =
        response.status === 401 ? 'Wrong email or password.' : body.msg ?? `Sign-in failed (${response.status}).`;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, body.token);
    $('password').value = '';
    route();
  } catch {
    $('signin-error').textContent = 'The gateway cannot be reached.';
  } finally {
    $('signin-submit').disabled = false;
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  history.replaceState(null, '', location.pathname);
  route();
}

async function pickProject(token) {
  show('picker');
  const client = new PresenceClient({ url: location.origin, token });
  const list = $('project-list');
  list.replaceChildren();
  let memberships;
  try {
    memberships = await client.request('GET', '/v3/projects');
  } catch (e) {
    if (e.status === 401) return expired();
    notice(
      e.status === 403
        ? 'An API key belongs to one project: open the board with #token=…&project=<project id>.'
        : `Cannot list your projects: ${e.message}`,
    );
    return;
  }
  $('picker-empty').hidden = memberships.length > 0;
  for (const membership of memberships) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'project';
    button.dataset.projectId = membership.id_project.id;
    button.append(text('span', membership.id_project.name, 'project-title'), text('span', membership.role, 'badge'));
    button.addEventListener('click', () => navigate({ project: membership.id_project.id }));
    item.append(button);
    list.append(item);
  }
  list.querySelector('button')?.focus();
}

function expired() {
  sessionStorage.removeItem(TOKEN_KEY);
  history.replaceState(null, '', location.pathname);
  route();
  notice('The credential was refused: sign in again.');
}

// Last, so that every declaration above is initialised.
route();
