// The package as a user meets it: its declarations compile against typical use, and the
// README's runnable example prints a teammate going online.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, closeTab, newTeam, openTab, until } from './gateway.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

it('has TypeScript declarations that describe the API', async () => {
  const tsc = path.join(root, 'node_modules/.bin/tsc');
  const { stdout } = await promisify(execFile)(tsc, ['-p', 'test/tsconfig.json'], { cwd: root }).catch((e) => {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  });
  assert.equal(stdout, '');
});

it('runs the README example', async () => {
  const gateway = await new Gateway().start();
  try {
    const team = await newTeam(gateway.url, ['Gus']);
    const watcher = spawn(process.execPath, ['examples/watch-team.mjs'], {
      cwd: root,
      env: { ...process.env, GATEWAY_URL: gateway.url, TOKEN: team.owner.token, PROJECT: team.pid },
    });
    let output = '';
    watcher.stdout.on('data', (d) => (output += d));
    watcher.stderr.on('data', (d) => (output += d));
    try {
      await until(() => output.includes('loaded: 2 teammates'), { what: 'the snapshot', timeoutMs: 5_000 });
      const tab = await openTab(gateway.url, team.agents[0].token, { pid: team.pid });
      await until(() => output.includes(`online  Gus Agent <${team.agents[0].email}>`), { what: 'the join' });
      await closeTab(tab);
      await until(() => output.includes(`offline Gus Agent <${team.agents[0].email}>`), { what: 'the leave' });
    } finally {
      watcher.kill();
    }
  } finally {
    await gateway.stop();
  }
});
