import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { cleanUp, cliOk, docker, makeRepo, REPO_ROOT, sh, tomlWith, waitFor } from './helpers';

after(cleanUp);

/*
 * Restarting the engine needs an engine this test may restart: the one scripts/engine.sh started (as the
 * README's test command and CI do). Elsewhere (Docker Desktop, a shared engine) it is left out, but never on CI.
 */
const restartable = process.env.AGENT_SANDBOX_TEST_ENGINE_RESTART === '1';
if (process.env.CI && !restartable) throw new Error('CI must run the engine-restart test: set AGENT_SANDBOX_TEST_ENGINE_RESTART=1');

test('a restart of the engine loses no sandbox: ls, logs and start work afterwards', { skip: !restartable && 'set AGENT_SANDBOX_TEST_ENGINE_RESTART=1 to let this test restart dockerd' }, async () => {
  const repo = await makeRepo(tomlWith('echo "started $(cat /proc/uptime)"; echo ready; sleep 300'));
  await cliOk(['up', 'survivor', '--agent', 'engineer', '--task', 'outlive the engine'], { cwd: repo });
  await waitFor('the agent to print', async () => ((await cliOk(['logs', 'survivor'], { cwd: repo })).stdout.includes('ready') ? true : undefined));

  await sh(`bash ${path.join(REPO_ROOT, 'scripts', 'engine.sh')} restart`);
  await waitFor('the engine to answer', () => docker.ping().then(() => true, () => undefined), 60_000);

  const [after] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
  assert.equal(after.name, 'survivor');
  assert.equal(after.state, 'exited', 'containers without a restart policy stop with the engine');
  assert.equal(after.task, 'outlive the engine');
  assert.match((await cliOk(['logs', 'survivor'], { cwd: repo })).stdout, /^started .*\nready\n$/);

  await cliOk(['start', 'survivor'], { cwd: repo });
  const [restarted] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
  assert.equal(restarted.state, 'running');
  const logs = await waitFor('the restarted agent to print', async () => {
    const out = (await cliOk(['logs', 'survivor'], { cwd: repo })).stdout;
    return out.split('ready').length === 3 ? out : undefined;
  });
  assert.match(logs, /^started .*\nready\nstarted .*\nready\n$/, 'the output of both runs, in order');
});
