import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Engine, watchEngineEvents } from '../../src/core/engine/engine';
import type { EngineEvent } from '../../src/core/engine/engine';
import { cleanUp, cliOk, docker, ENGINE_HOST, engineKind, makeRepo, REPO_ROOT, sh, tomlWith, waitFor } from './helpers';

after(cleanUp);

/**
 * Whether this test may restart the engine, and how: through what runs it (scripts/engine.sh for dockerd,
 * scripts/podman.sh for Podman's API service): the script that started it, or systemd. A systemd engine is
 * restarted only on CI or with AGENT_SANDBOX_TEST_ENGINE_RESTART=1, since that stops every other container on the
 * machine; an engine started by hand or by another manager (Docker Desktop) is never restarted. Where the test
 * cannot run, it is skipped with the reason, never failed and never passed silently.
 */
function restartPlan(script: 'engine.sh' | 'podman.sh'): { skip?: string } {
  const consent = process.env.AGENT_SANDBOX_TEST_ENGINE_RESTART;
  if (consent === '0') return { skip: 'AGENT_SANDBOX_TEST_ENGINE_RESTART=0 leaves it out' };
  let method: string;
  try {
    method = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', script), 'restartable'], { encoding: 'utf8' }).trim();
  } catch (error) {
    return { skip: `the engine cannot be restarted safely here: ${String((error as { stdout?: string }).stdout ?? '').trim() || (error as Error).message}` };
  }
  if (method === 'systemd' && !process.env.CI && consent !== '1') {
    return { skip: 'the engine runs under systemd, and restarting it stops every container on this machine: set AGENT_SANDBOX_TEST_ENGINE_RESTART=1 to allow it (CI does)' };
  }
  return {};
}

test('a restart of the engine loses no sandbox: ls, logs and start work afterwards', async (t) => {
  if ((await engineKind()) !== 'docker') return t.skip('Docker only: Podman\'s containers do not stop with its API service (see the next test)');
  const plan = restartPlan('engine.sh');
  if (plan.skip) return t.skip(plan.skip);
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

test('a restart of Podman\'s API service loses nothing: the agent keeps running, the event stream comes back', async (t) => {
  if ((await engineKind()) !== 'podman') return t.skip('Podman only');
  const plan = restartPlan('podman.sh');
  if (plan.skip) return t.skip(plan.skip);
  const repo = await makeRepo(tomlWith('echo "started $(cat /proc/uptime)"; echo ready; sleep 300'));
  await cliOk(['up', 'survivor', '--agent', 'engineer', '--task', 'outlive the service'], { cwd: repo });
  await waitFor('the agent to print', async () => ((await cliOk(['logs', 'survivor'], { cwd: repo })).stdout.includes('ready') ? true : undefined));

  // The view's way of following the engine: it must notice the restart and reconnect by itself.
  const connections: boolean[] = [];
  const events: EngineEvent[] = [];
  const abort = new AbortController();
  watchEngineEvents(new Engine({ host: ENGINE_HOST }), [`dev.agent-sandboxes.workspace=${repo}`], (e) => events.push(e), (ok) => connections.push(ok), abort.signal);
  try {
    await waitFor('the event stream', async () => (connections.includes(true) ? true : undefined));

    await sh(`bash ${path.join(REPO_ROOT, 'scripts', 'podman.sh')} restart`);
    await waitFor('the service to answer', () => docker.ping().then(() => true, () => undefined), 60_000);
    await waitFor(`the event stream to come back (${JSON.stringify(connections)})`, async () => (connections.lastIndexOf(true) > connections.indexOf(false) && connections.includes(false) ? true : undefined), 30_000);

    const [after] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    assert.deepEqual([after.name, after.state, after.task, after.engine], ['survivor', 'running', 'outlive the service', 'podman'], 'conmon, not the API service, keeps the container');
    assert.match((await cliOk(['logs', 'survivor'], { cwd: repo })).stdout, /^started .*\nready\n$/);
    assert.equal((await cliOk(['exec', 'survivor', '--', 'echo', 'still here'], { cwd: repo })).stdout, 'still here\n');

    await cliOk(['stop', 'survivor'], { cwd: repo });
    await waitFor(`the reconnected stream to see the stop (${JSON.stringify(events.map((e) => e.Action))})`, async () => (events.some((e) => e.Action === 'die') ? true : undefined));
    await cliOk(['start', 'survivor'], { cwd: repo });
    const logs = await waitFor('the restarted agent to print', async () => {
      const out = (await cliOk(['logs', 'survivor'], { cwd: repo })).stdout;
      return out.split('ready').length === 3 ? out : undefined;
    });
    assert.match(logs, /^started .*\nready\nstarted .*\nready\n$/, 'the output of both runs, in order');
  } finally {
    abort.abort();
  }
});
