import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanUp, cli, cliOk, containersOf, docker, ENGINE_HOST, git, makeRepo, sh, tomlWith } from './helpers';

after(cleanUp);

/** Nothing of a refused sandbox is left: no container, no worktree, no branch, no state. */
async function assertNothingMade(repo: string, name: string): Promise<void> {
  assert.deepEqual(await containersOf(repo), []);
  assert.equal(git(repo, 'branch', '--list', `sandbox/${name}`), '');
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', name)));
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'state', name)));
}

describe('volumes are checked before anything is made', () => {
  test('refused: outside the workspace, through a symlink, /, the home folder, the engine socket, .git read-write', async () => {
    const socket = ENGINE_HOST.startsWith('unix://') ? ENGINE_HOST.slice('unix://'.length) : '/var/run/docker.sock';
    const cases: Array<[string, RegExp]> = [
      ['../outside:/data', /outside the workspace/],
      ['./link:/data', /resolves to/],
      ['/:/host', /Volume \/:\/host/],
      ['~:/home-of-user', /home/],
      [`${socket}:/var/run/docker.sock`, /socket/],
      ['./.git:/repo-git', /\.git/],
      ['.:/src', /\.git/],
    ];
    for (const [volume, reason] of cases) {
      const repo = await makeRepo(tomlWith('sleep 300', `volumes = ["${volume}"]\n`));
      const outside = path.join(path.dirname(repo), 'outside');
      await fs.mkdir(outside);
      await fs.symlink(outside, path.join(repo, 'link'));
      const result = await cli(['up', 'vol', '--agent', 'engineer'], { cwd: repo });
      assert.notEqual(result.code, 0, `${volume} must be refused`);
      assert.match(result.stderr, reason, volume);
      await assertNothingMade(repo, 'vol');
    }
  });

  test('a folder outside the workspace is mounted once the user allows it (never by sandbox.toml); :ro holds', async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-allowed-'));
    // Readable by the agent's user (mkdtemp makes it the host user's alone).
    await fs.chmod(outside, 0o755);
    await fs.writeFile(path.join(outside, 'data.txt'), 'shared data\n');
    const repo = await makeRepo(tomlWith('sleep 300', `volumes = ["${outside}:/shared:ro"]\n`));
    assert.notEqual((await cli(['up', 'shared', '--agent', 'engineer'], { cwd: repo })).code, 0);
    await cliOk(['up', 'shared', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: outside } });
    assert.equal((await cliOk(['exec', 'shared', '--', 'cat', '/shared/data.txt'], { cwd: repo })).stdout, 'shared data\n');
    const write = await cli(['exec', 'shared', '--', 'sh', '-c', 'echo x > /shared/new.txt'], { cwd: repo });
    assert.notEqual(write.code, 0);
    await assert.rejects(fs.access(path.join(outside, 'new.txt')));
    await fs.rm(outside, { recursive: true, force: true });
  });
});

describe('secrets', () => {
  test('reach the agent from the host environment (names the user allowed), never the container config, labels, files or shown logs', async () => {
    const secret = `sk-test-${randomBytes(12).toString('hex')}`;
    const repo = await makeRepo(
      tomlWith('echo "run: token=$AGENT_TOKEN"; env | grep -c "^AGENT_TOKEN=" ; sleep 300', 'secrets = ["AGENT_TOKEN"]\n'),
    );
    const missing = await cli(['up', 'sec', '--agent', 'engineer'], { cwd: repo, env: { AGENT_TOKEN: '', AGENT_SANDBOX_SECRETS_FROM_ENV: 'AGENT_TOKEN' } });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /needs the secret AGENT_TOKEN, and it is not set/);
    await assertNothingMade(repo, 'sec');

    const env = { AGENT_TOKEN: secret, AGENT_SANDBOX_SECRETS_FROM_ENV: 'AGENT_TOKEN' };
    await cliOk(['up', 'sec', '--agent', 'engineer'], { cwd: repo, env });
    // The agent has it, in its environment.
    const seen = await cliOk(['exec', 'sec', '--', 'sh', '-c', `. /run/agent-sandbox/secrets/env; printf %s "$AGENT_TOKEN"`], { cwd: repo });
    assert.equal(seen.stdout, secret);
    // Not in what the engine keeps of the container.
    const [summary] = await containersOf(repo);
    const inspected = JSON.stringify(await docker.getContainer(summary.Id).inspect());
    assert.ok(!inspected.includes(secret), 'the container configuration holds the secret');
    // Not in any file of the repository, its worktrees and state.
    assert.equal((await sh(`grep -rl -- '${secret}' '${repo}' || true`)).trim(), '');
    // The agent printed it: the logs shown mask it.
    const logs = await waitForLogs(repo, 'sec', env, /run: token=/);
    assert.match(logs, /run: token=\*\*\*/);
    assert.ok(!logs.includes(secret));

    // Again after a stop and a start: secrets live in memory, so each start hands them over anew.
    await cliOk(['stop', 'sec'], { cwd: repo });
    await cliOk(['start', 'sec'], { cwd: repo, env });
    const again = await cliOk(['exec', 'sec', '--', 'sh', '-c', `. /run/agent-sandbox/secrets/env; printf %s "$AGENT_TOKEN"`], { cwd: repo });
    assert.equal(again.stdout, secret);
    const relogs = await waitForLogs(repo, 'sec', env, /run: token=[\s\S]*run: token=/);
    assert.equal(relogs.match(/run: token=\*\*\*/g)?.length, 2, relogs);
  });
});

describe('the engine socket', () => {
  test('is never inside, unless the user sets the loudly named opt-in', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'nosock', '--agent', 'engineer'], { cwd: repo });
    const without = await cli(['exec', 'nosock', '--', 'sh', '-c', 'find / -xdev -type s 2>/dev/null; test -e /var/run/docker.sock && echo FOUND'], { cwd: repo });
    assert.equal(without.stdout.trim(), '');

    const up = await cliOk(['up', 'sock', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_DANGEROUSLY_EXPOSE_ENGINE_SOCKET: '1' } });
    assert.match(up.stderr + up.stdout, /WARNING: this sandbox gets the engine's socket/);
    const withSocket = await cli(['exec', 'sock', '--', 'sh', '-c', 'test -S /var/run/docker.sock && echo SOCKET; echo "$DOCKER_HOST"'], { cwd: repo });
    assert.equal(withSocket.stdout, 'SOCKET\nunix:///var/run/docker.sock\n');
  });
});

async function waitForLogs(repo: string, name: string, env: NodeJS.ProcessEnv, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const logs = await cliOk(['logs', name], { cwd: repo, env });
    if (pattern.test(logs.stdout) || Date.now() > deadline) return logs.stdout + logs.stderr;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}


describe('the egress allowlist', () => {
  test('its proxy and forwarder stop once the agent has ended, and start again with the sandbox', async () => {
    const repo = await makeRepo(tomlWith('echo ran', 'allow = ["allowed.test"]\n').replace('network = "none"', 'network = "nat"'));
    const egressStates = async () =>
      (await docker.listContainers({ all: true, filters: { label: [`dev.agent-sandboxes.egress-workspace=${repo}`] } })).map((c) => c.State);
    await cliOk(['up', 'short', '--agent', 'engineer', '--wait'], { cwd: repo });
    const ended = await egressStates();
    assert.equal(ended.length, 2, 'a proxy and a forwarder');
    assert.deepEqual(ended.filter((state) => state === 'running'), [], 'neither runs once the agent has ended');
    await cliOk(['start', 'short'], { cwd: repo });
    assert.deepEqual(await egressStates(), ['running', 'running']);
    await cliOk(['rm', '--force', 'short'], { cwd: repo });
    assert.deepEqual(await egressStates(), []);
  });
});
