// One open board: its client and team view, the teams for the filter, and the table.

import { AuthError, PresenceClient, isOnline, userOf } from '/board/index.js';
import { $, cell, cellWith, lastSeen, notice, setConnection, stack, status, text, withTitle } from '/board/ui.js';

/** How often connection counts and channels are re-read (they change without events). */
const CONNECTIONS_REFRESH_MS = 3_000;

/** One open board: its client, team view, teams, and rendering. */
export class Board {
  /** `onExpired` is called when the gateway refuses the credential. */
  constructor(token, projectId, onExpired) {
    this.projectId = projectId;
    this.onExpired = onExpired;
    this.client = new PresenceClient({
      url: location.origin,
      token,
      projectId,
      presence: false,
      channel: 'board',
    });
    this.canToggle = false;
    this.teams = [];
    this.teamsOf = new Map();
    this.rows = new Map();
  }

  async start() {
    this.client.on('state', (change) => this.connectionChanged(change));
    this.client.on('error', (error) => {
      if (error instanceof AuthError) this.onExpired();
      else if (error.status) notice(error.message);
    });
    this.team = this.client.team(this.projectId);
    this.team.on('snapshot', () => {
      this.renderAll();
      this.loadTeams();
    });
    this.team.on('update', (teammate, { event, removed }) => {
      if (removed) this.removeRow(teammate);
      else this.renderRow(teammate);
      this.renderSummary();
      if (event?.type === 'project_user.update') this.loadTeamsSoon();
    });
    this.team.on('error', (error) => notice(`The team cannot be shown: ${error.message}`));
    this.ticker = setInterval(() => this.refreshTimes(), 15_000);
    this.refresher = setInterval(() => this.refreshConnections(), CONNECTIONS_REFRESH_MS);
    this.client.connect();
    await Promise.all([this.loadProject(), this.loadRole()]);
  }

  stop() {
    clearInterval(this.ticker);
    clearInterval(this.refresher);
    clearTimeout(this.teamsTimer);
    this.client.close();
    $('rows').replaceChildren();
  }

  /** Hidden tab: close the socket (nothing to draw); shown again: reconnect and catch up. */
  visibility() {
    if (document.hidden) {
      this.paused = true;
      this.client.close();
      setConnection('paused', 'Paused while the tab is hidden');
    } else if (this.paused) {
      this.paused = false;
      this.client.connect();
      this.loadTeams();
    }
  }

  /** Connection counts and channels change without events: re-read them while shown. */
  refreshConnections() {
    if (this.paused || this.client.state !== 'connected' || !this.team.ready) return;
    this.team.refreshConnections().catch(() => {});
  }

  connectionChanged({ state, delayMs }) {
    if (state === 'connected') setConnection('live', 'Live');
    else if (state === 'connecting') setConnection('connecting', 'Connecting…');
    else if (state === 'reconnecting') {
      const seconds = delayMs ? ` in ${Math.max(1, Math.round(delayMs / 1000))} s` : '';
      setConnection('reconnecting', `Reconnecting${seconds}…`);
    } else if (!this.paused) setConnection('closed', 'Disconnected');
  }

  async loadProject() {
    try {
      const project = await this.client.request('GET', `/v3/projects/${this.projectId}`);
      $('project-name').textContent = project.name;
      document.title = `${project.name} · Team presence`;
    } catch (e) {
      if (e.status === 401) this.onExpired();
      else if (e.status === 403 || e.status === 404 || e.status === 400) {
        notice(`This project cannot be shown: ${e.message}`);
      }
    }
  }

  /**
   * Admins and owners get the availability toggle. A user's role is on its teammate; an API
   * key has no teammate, and is an admin key if it may list the project's keys.
   */
  async loadRole() {
    const request = (route) => this.client.request('GET', route);
    let admin = false;
    if (isJwt(this.client.options.token)) {
      const [me] = await request(`/v3/${this.projectId}/project_users/me`).catch(() => []);
      admin = me?.role === 'admin' || me?.role === 'owner';
    } else {
      admin = await request(`/v3/${this.projectId}/keys`).then(() => true, () => false);
    }
    this.canToggle = admin;
    $('actions-header').firstElementChild.textContent = admin ? 'Actions' : 'No actions';
    this.renderAll();
  }

  async loadTeams() {
    try {
      this.teams = await this.client.request('GET', `/v3/${this.projectId}/teams`);
    } catch {
      return;
    }
    this.teamsOf = new Map();
    for (const team of this.teams) {
      for (const userId of team.members) {
        if (!this.teamsOf.has(userId)) this.teamsOf.set(userId, new Set());
        this.teamsOf.get(userId).add(team.id);
      }
    }
    const select = $('filter-team');
    const chosen = select.value;
    select.replaceChildren(new Option('All teams', ''));
    for (const team of this.teams) select.append(new Option(team.name, team.id));
    select.value = this.teams.some((t) => t.id === chosen) ? chosen : '';
    this.renderAll();
  }

  /** Team membership changes arrive as `project_user.update` events: re-read, once. */
  loadTeamsSoon() {
    clearTimeout(this.teamsTimer);
    this.teamsTimer = setTimeout(() => this.loadTeams(), 300);
  }

  matches(teammate) {
    const team = $('filter-team').value;
    const presence = $('filter-presence').value;
    if (team && !this.teamsOf.get(userOf(teammate))?.has(team)) return false;
    if (presence && teammate.presence?.status !== presence) return false;
    return true;
  }

  renderAll() {
    if (!this.team) return;
    const rows = $('rows');
    const sorted = this.team.list().sort(byPresenceThenName);
    const wanted = new Set(sorted.map((t) => t._id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    for (const teammate of sorted) rows.append(this.row(teammate));
    this.renderSummary();
  }

  renderRow(teammate) {
    const existed = this.rows.has(teammate._id);
    const row = this.row(teammate);
    if (!existed) $('rows').append(row);
  }

  removeRow(teammate) {
    this.rows.get(teammate._id)?.remove();
    this.rows.delete(teammate._id);
  }

  renderSummary() {
    const all = this.team.list();
    const online = all.filter(isOnline);
    $('count-online').textContent = online.length;
    $('count-available').textContent = online.filter((t) => t.user_available).length;
    $('count-busy').textContent = all.filter((t) => t.isBusy).length;
    $('count-total').textContent = all.length;
    const shown = [...this.rows.values()].filter((row) => !row.hidden).length;
    $('empty').hidden = shown > 0;
  }

  refreshTimes() {
    for (const [id, row] of this.rows) {
      const teammate = this.team.get(id);
      if (teammate) row.querySelector('.last-seen').replaceChildren(lastSeen(teammate));
    }
  }

  /** The teammate's row, created or brought up to date. */
  row(teammate) {
    let row = this.rows.get(teammate._id);
    if (!row) {
      row = document.createElement('tr');
      this.rows.set(teammate._id, row);
    }
    const user = teammate.id_user ?? {};
    const online = isOnline(teammate);
    const presence = teammate.presence ?? {};
    row.dataset.userId = userOf(teammate);
    row.dataset.teammateId = teammate._id;
    row.dataset.presence = online ? 'online' : 'offline';
    row.dataset.available = String(Boolean(teammate.user_available));
    row.hidden = !this.matches(teammate);
    const name = [user.firstname, user.lastname].filter(Boolean).join(' ') || user.email || 'Unknown';
    const reconnecting = online && presence.connections === 0;
    row.replaceChildren(
      cell(text('span', name, 'name'), withTitle(text('span', user.email ?? '', 'email'), user.email)),
      cell(text('span', teammate.role, 'badge role')),
      cell(
        status(
          online ? 'online' : 'offline',
          reconnecting ? 'Online (reconnecting)' : online ? 'Online' : 'Offline',
        ),
      ),
      cell(
        status(teammate.user_available ? 'available' : 'away', teammate.user_available ? 'Available' : 'Unavailable'),
        teammate.profileStatus ? text('span', teammate.profileStatus, 'profile-status') : '',
      ),
      cell(
        stack(
          text('span', `${teammate.number_assigned_requests ?? 0} / ${teammate.max_served_chat || '∞'}`, 'chats'),
          teammate.isBusy ? text('span', 'Busy', 'badge busy') : '',
        ),
      ),
      cell(
        stack(
          text('span', String(presence.connections ?? 0), 'connections'),
          ...[...(presence.channels ?? [])].sort().map((c) => text('span', c, 'chip')),
        ),
      ),
      cellWith('last-seen', lastSeen(teammate)),
      cell(this.canToggle ? this.toggle(teammate, name) : ''),
    );
    return row;
  }

  toggle(teammate, name) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'toggle';
    button.dataset.action = 'toggle-availability';
    const available = Boolean(teammate.user_available);
    button.textContent = available ? 'Set unavailable' : 'Set available';
    button.setAttribute('aria-label', `${button.textContent}: ${name}`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await this.client.request('PUT', `/v3/${this.projectId}/project_users/${teammate._id}`, {
          user_available: !available,
        });
        notice(null);
      } catch (e) {
        notice(`Could not change ${name}'s availability: ${e.message}`);
        button.disabled = false;
      }
      // The row is redrawn by the event the change produces.
    });
    return button;
  }
}

/** A JWT (bare, or as `JWT ...` / `Bearer ...`) rather than an API key. */
function isJwt(token) {
  return /^((JWT|Bearer) )?[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

function byPresenceThenName(a, b) {
  const online = Number(isOnline(b)) - Number(isOnline(a));
  if (online) return online;
  const name = (t) => `${t.id_user?.firstname ?? ''} ${t.id_user?.lastname ?? ''} ${t.id_user?.email ?? ''}`;
  return name(a).localeCompare(name(b));
}
