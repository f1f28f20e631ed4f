// The team presence board (`/board`) in Debian's Chromium, driven by
// playwright-core (never a downloaded browser). Screenshots go to ARTIFACTS_DIR (default
// clients/js/test-artifacts/), in light and dark.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { Gateway, PASSWORD, api, closeTab, largeTeam, newTeam, openTab, until } from './gateway.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS =
  process.env.ARTIFACTS_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test-artifacts');

let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
});

/** A page with the console's errors collected (a board that throws fails its test). */
async function openPage({ colorScheme = 'light', bypassCSP = false } = {}) {
  const context = await browser.newContext({ colorScheme, bypassCSP, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  return page;
}

function boardUrl(gateway, token, pid) {
  return `${gateway.url}/board#token=${encodeURIComponent(token)}&project=${pid}`;
}

/** A page on the board of `pid`, opened with `token` in the fragment. */
async function openBoard(gateway, token, pid, options) {
  const page = await openPage(options);
  await page.goto(boardUrl(gateway, token, pid));
  return page;
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/**
 * axe-core's WCAG 2.1 A/AA rules over the page as it is; returns the violations as lines.
 * The page's CSP admits only the gateway's scripts, so such pages are opened with bypassCSP.
 */
async function accessibilityViolations(page) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  return violations;
}

const row = (page, userId) => page.locator(`[data-user-id="${userId}"]`);

async function expectAttribute(page, userId, name, value, timeoutMs = 1_000) {
  await page.waitForSelector(`[data-user-id="${userId}"][${name}="${value}"]`, {
    state: 'attached',
    timeout: timeoutMs,
  });
}

describe('the board on the memory engine', () => {
  let gateway;
  let team;

  before(async () => {
    gateway = await new Gateway().start();
    team = await newTeam(gateway.url, ['Bea', 'Carl']);
  });
  after(() => gateway.stop());

  it('signs in through the form and picks the project', async () => {
    const page = await openPage();
    await page.goto(`${gateway.url}/board`);
    await page.getByLabel('Email').fill(team.owner.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong email or password.').waitFor();
    page.errors.length = 0; // the refused sign-in's 401, logged by the browser
    // The second attempt by keyboard only: Tab from the email to the password, Enter submits,
    // the picker's first project has the focus, Enter opens it.
    await page.getByLabel('Email').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
    await page.keyboard.press('Control+A');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.locator(`[data-project-id="${team.pid}"]`).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'board-picker.png') });
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.projectId), team.pid);
    await page.keyboard.press('Enter');
    await row(page, team.agents[0].id).waitFor();
    assert.equal(await page.locator('#project-name').textContent(), 'Support');
    // The token stays out of the address bar (and history): only the project is there.
    assert.ok(!page.url().includes('token'), page.url());
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('shows every teammate of a team whose snapshot comes in parts', async () => {
    const large = await largeTeam(gateway.url, 20);
    const page = await openBoard(gateway, large.owner.token, large.pid);
    await until(async () => (await page.locator('[data-user-id]').count()) === 21, {
      what: 'all 21 rows',
      timeoutMs: 5_000,
    });
    for (const agent of large.agents) await row(page, agent.id).waitFor({ state: 'attached' });
    assert.equal(await page.locator('#count-total').textContent(), '21');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('shows an agent going online within 1 s and offline after the grace period', async () => {
    const page = await openBoard(gateway, team.owner.token, team.pid);
    const bea = team.agents[0];
    await expectAttribute(page, bea.id, 'data-presence', 'offline', 5_000);
    await page.locator('#connection[data-state="live"]').waitFor();

    const opened = Date.now();
    const tab1 = await openTab(gateway.url, bea.token, { pid: team.pid, channel: 'web' });
    await expectAttribute(page, bea.id, 'data-presence', 'online');
    console.log(`# the board showed the agent online ${Date.now() - opened} ms after the tab opened`);
    const tab2 = await openTab(gateway.url, bea.token, { pid: team.pid, channel: 'mobile' });
    // A second connection is no event (the teammate was online already): the board's periodic
    // connection refresh shows it.
    await until(async () => (await row(page, bea.id).textContent()).includes('mobile'), {
      what: 'two channels',
      timeoutMs: 6_000,
    });
    assert.equal(await page.locator('#count-online').textContent(), '1');

    await closeTab(tab1);
    await new Promise((r) => setTimeout(r, 600)); // past the 300 ms grace
    assert.equal(await row(page, bea.id).getAttribute('data-presence'), 'online', 'one tab is still open');
    const closed = Date.now();
    await closeTab(tab2);
    // Offline after the grace period (300 ms), within 1 s of it.
    await expectAttribute(page, bea.id, 'data-presence', 'offline', 1_300);
    const after = Date.now() - closed;
    console.log(`# the board showed the agent offline ${after} ms after the last tab closed (grace 300 ms)`);
    assert.ok(after >= 300, `offline before the grace period ended (${after} ms)`);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('lets an admin toggle availability, and REST agrees', async () => {
    const page = await openBoard(gateway, team.owner.token, team.pid);
    const carl = team.agents[1];
    await expectAttribute(page, carl.id, 'data-available', 'true', 5_000);
    const toggle = row(page, carl.id).locator('[data-action="toggle-availability"]');
    await toggle.click();
    await expectAttribute(page, carl.id, 'data-available', 'false');
    const [rest] = await api(gateway.url, 'GET', `/v3/${team.pid}/project_users/users/${carl.id}`, {
      token: team.owner.token,
    });
    assert.equal(rest.user_available, false);
    // Keyboard: focus the toggle and press Enter.
    await row(page, carl.id).locator('[data-action="toggle-availability"]').focus();
    await page.keyboard.press('Enter');
    await expectAttribute(page, carl.id, 'data-available', 'true');
    const [again] = await api(gateway.url, 'GET', `/v3/${team.pid}/project_users/users/${carl.id}`, {
      token: team.owner.token,
    });
    assert.equal(again.user_available, true);
    // A change made elsewhere shows too.
    await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${carl.teammateId}`, {
      token: team.owner.token,
      body: { user_available: false, profileStatus: 'lunch' },
    });
    await expectAttribute(page, carl.id, 'data-available', 'false');
    await until(async () => (await row(page, carl.id).textContent()).includes('lunch'), { what: 'profileStatus' });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('gives an agent no toggle', async () => {
    const bea = team.agents[0];
    // A bare JWT, without the `JWT ` scheme, works as well.
    const page = await openBoard(gateway, bea.token.replace(/^JWT /, ''), team.pid);
    await row(page, team.agents[1].id).waitFor();
    await page.locator('#connection[data-state="live"]').waitFor();
    // Give the role check time to finish: the toggles would appear after it.
    await until(async () => (await page.locator('#actions-header').textContent()) === 'No actions', {
      what: 'the role check',
    });
    assert.equal(await page.locator('[data-action="toggle-availability"]').count(), 0);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('filters by Dixa team and by presence', async () => {
    const [bea, carl] = team.agents;
    const created = await fetch(`${gateway.url}/beta/teams`, {
      method: 'POST',
      headers: { Authorization: team.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Tier 1' }),
    }).then((r) => r.json());
    const tier1 = created.data.id;
    const added = await fetch(`${gateway.url}/beta/teams/${tier1}/agents`, {
      method: 'PATCH',
      headers: { Authorization: team.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agentIds: [bea.id] }),
    });
    assert.equal(added.status, 200);
    const page = await openBoard(gateway, team.apiKey, team.pid);
    await row(page, carl.id).waitFor();
    await page.locator(`#filter-team option[value="${tier1}"]`).waitFor({ state: 'attached' });
    await page.locator('#filter-team').selectOption(tier1);
    assert.equal(await row(page, bea.id).isVisible(), true);
    assert.equal(await row(page, carl.id).isVisible(), false);
    await page.locator('#filter-team').selectOption('');
    const tab = await openTab(gateway.url, carl.token, { pid: team.pid });
    await expectAttribute(page, carl.id, 'data-presence', 'online');
    await page.locator('#filter-presence').selectOption('online');
    assert.equal(await row(page, carl.id).isVisible(), true);
    assert.equal(await row(page, bea.id).isVisible(), false);
    // An admin API key gets the toggle too.
    assert.ok((await page.locator('[data-action="toggle-availability"]').count()) > 0);
    await closeTab(tab);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('shows names as text, never as markup', async () => {
    const name = '<img src=x onerror="window.__injected=1"><b>bold</b>';
    const own = await newTeam(gateway.url, [name]);
    const mallory = own.agents[0];
    const page = await openBoard(gateway, own.owner.token, own.pid);
    await row(page, mallory.id).waitFor();
    assert.equal(await row(page, mallory.id).locator('.name').textContent(), `${name} Agent`);
    assert.equal(await page.evaluate(() => window.__injected), undefined);
    assert.equal(await row(page, mallory.id).locator('img, b').count(), 0);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('pauses while the tab is hidden and catches up when shown', async () => {
    const page = await openBoard(gateway, team.owner.token, team.pid);
    const bea = team.agents[0];
    await row(page, bea.id).waitFor();
    await page.locator('#connection[data-state="live"]').waitFor();
    // Headless pages are always visible: make this one say it is hidden, as a background tab does.
    const setHidden = (hidden) =>
      page.evaluate((value) => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
        Object.defineProperty(document, 'visibilityState', {
          configurable: true,
          get: () => (value ? 'hidden' : 'visible'),
        });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    await page.locator('#connection[data-state="paused"]').waitFor();
    await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${bea.teammateId}`, {
      token: team.owner.token,
      body: { profileStatus: 'in a meeting' },
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!(await row(page, bea.id).textContent()).includes('in a meeting'), 'no updates while hidden');
    await setHidden(false);
    await page.locator('#connection[data-state="live"]').waitFor();
    await until(async () => (await row(page, bea.id).textContent()).includes('in a meeting'), {
      what: 'the catch-up',
    });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('looks right and passes axe-core in light and dark (screenshots)', async () => {
    const [bea, carl] = team.agents;
    const tabs = [
      await openTab(gateway.url, bea.token, { pid: team.pid, channel: 'web' }),
      await openTab(gateway.url, bea.token, { pid: team.pid, channel: 'mobile' }),
    ];
    await api(gateway.url, 'PUT', `/v3/${team.pid}/project_users/${bea.teammateId}`, {
      token: team.owner.token,
      body: { max_served_chat: 2, number_assigned_requests: 2 },
    });
    for (const colorScheme of ['light', 'dark']) {
      const page = await openBoard(gateway, team.owner.token, team.pid, { colorScheme, bypassCSP: true });
      await expectAttribute(page, bea.id, 'data-presence', 'online', 5_000);
      await row(page, carl.id).waitFor();
      await page.locator('#connection[data-state="live"]').waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, `board-${colorScheme}.png`), fullPage: true });
      // Contrast, names, labels, landmarks: in both schemes.
      assert.deepEqual(await accessibilityViolations(page), [], `accessibility (${colorScheme})`);
      assert.deepEqual(page.errors, []);
      await page.context().close();
    }
    for (const colorScheme of ['light', 'dark']) {
      const page = await openPage({ colorScheme, bypassCSP: true });
      await page.goto(`${gateway.url}/board`);
      await page.getByLabel('Email').waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, `board-signin-${colorScheme}.png`) });
      assert.deepEqual(await accessibilityViolations(page), [], `sign-in accessibility (${colorScheme})`);
      await page.context().close();
    }
    for (const tab of tabs) await closeTab(tab);
  });
});

describe('the board on the Redis engine', () => {
  it('recovers by itself after the gateway restarts, and keeps updating', async () => {
    const gateway = await new Gateway({ redis: true }).start();
    try {
      const team = await newTeam(gateway.url, ['Dana']);
      const dana = team.agents[0];
      const page = await openBoard(gateway, team.owner.token, team.pid);
      await page.locator('#connection[data-state="live"]').waitFor();
      await expectAttribute(page, dana.id, 'data-available', 'true', 5_000);

      await gateway.kill();
      await page.locator('#connection[data-state="reconnecting"]').waitFor({ timeout: 5_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'board-reconnecting.png') });
      // A change made while the gateway is down... (through a second node on the same Redis)
      const other = await new Gateway({ redis: true, prefix: gateway.prefix }).start();
      await api(other.url, 'PUT', `/v3/${team.pid}/project_users/${dana.teammateId}`, {
        token: team.owner.token,
        body: { user_available: false },
      });
      await other.stop();
      await gateway.start();
      const restarted = Date.now();
      // ...is caught up on after the reconnection, and live updates follow.
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
      await expectAttribute(page, dana.id, 'data-available', 'false');
      console.log(`# the board was live and caught up ${Date.now() - restarted} ms after the gateway was back`);
      const tab = await openTab(gateway.url, dana.token, { pid: team.pid });
      await expectAttribute(page, dana.id, 'data-presence', 'online');
      await closeTab(tab);
      assert.deepEqual(
        page.errors.filter((e) => !e.includes('WebSocket') && !e.includes('ERR_CONNECTION_REFUSED')),
        [],
      );
      await page.context().close();
    } finally {
      await gateway.stop();
    }
  });
});
