/*
 * A repository's sandbox.toml is an attacker's input: it must not widen what leaves the machine (the build
 * context, the engine, the secrets). Each hostile file is refused through the real CLI, with its file, line and
 * key, before anything is made; and each is let through once the user's own setting (its environment
 * variable, here) allows it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanUp, cli, cliOk, containersOf, ENGINE_HOST, git, makeRepo, testImageContext, tomlWith } from './helpers';

after(cleanUp);

const outsideDirs: string[] = [];
after(async () => {
  for (const dir of outsideDirs) await fs.rm(dir, { recursive: true, force: true });
});

async function outsideDir(prefix: string): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  outsideDirs.push(dir);
  await fs.chmod(dir, 0o755);
  return dir;
}

async function assertNothingMade(repo: string, name: string): Promise<void> {
  assert.deepEqual(await containersOf(repo), []);
  assert.equal(git(repo, 'branch', '--list', `sandbox/${name}`), '');
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', name)));
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'state', name)));
}

/** The role's settings with the test image built from `dockerfile` (and `context`), one sandbox.toml line each. */
function buildToml(dockerfile: string, context?: string, extra = ''): string {
  return tomlWith('sleep 300', extra).replace('dockerfile = ".sandbox/Dockerfile"', `dockerfile = ${JSON.stringify(dockerfile)}${context === undefined ? '' : `\ncontext = ${JSON.stringify(context)}`}`);
}

describe('the build context and the Dockerfile (finding 5)', () => {
  test('context = "~" or "/" is refused with file, line and key, nothing is sent to the engine and nothing made', async () => {
    for (const [context, says] of [
      ['~', /is the home directory/],
      ['/', /is the root of the host file system/],
    ] as const) {
      const repo = await makeRepo(buildToml('.sandbox/Dockerfile', context));
      for (const command of [['up', 'ctx', '--agent', 'engineer'], ['build', '--agent', 'engineer']]) {
        const result = await cli(command, { cwd: repo });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /sandbox\.toml:3: sandbox\.container\.context: The build context /);
        assert.match(result.stderr, says);
        assert.doesNotMatch(result.stderr, /Building|build skipped/, 'no build was started');
      }
      // Even the user's allow-list cannot let the home folder or / through.
      const allowed = await cli(['up', 'ctx', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: '/' } });
      assert.match(allowed.stderr, says);
      await assertNothingMade(repo, 'ctx');
    }
  });

  test('a Dockerfile and context outside the workspace are refused until the user allows their folder', async () => {
    const outside = await outsideDir('agent-sandboxes-outside-context-');
    await fs.cp(testImageContext(), outside, { recursive: true });
    const repo = await makeRepo(buildToml(path.join(outside, 'Dockerfile')));
    const refused = await cli(['up', 'out', '--agent', 'engineer'], { cwd: repo });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sandbox\.toml:2: sandbox\.container\.dockerfile: The Dockerfile .* is outside the workspace/);
    assert.match(refused.stderr, /AGENT_SANDBOX_ALLOWED_VOLUME_PATHS/);
    await assertNothingMade(repo, 'out');
    await cliOk(['up', 'out', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: outside } });
    assert.equal((await containersOf(repo)).length, 1);
  });

  test('a link inside the workspace to the home folder, as context, is judged where it leads', async () => {
    const repo = await makeRepo(buildToml('.sandbox/Dockerfile', 'home-link'));
    await fs.symlink(os.homedir(), path.join(repo, 'home-link'));
    const result = await cli(['build', '--agent', 'engineer'], { cwd: repo });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /home-link resolves to /);
    assert.match(result.stderr, /is the home directory/);
  });

  test('a link in the context to a file outside is sent as a link: COPY of it gets nothing of the file', async () => {
    const outside = await outsideDir('agent-sandboxes-link-target-');
    const secret = `outside-secret-${randomBytes(12).toString('hex')}`;
    await fs.writeFile(path.join(outside, 'key'), `${secret}\n`, { mode: 0o644 });
    const repo = await makeRepo(tomlWith('sleep 300'));
    await fs.symlink(path.join(outside, 'key'), path.join(repo, '.sandbox', 'leak'));
    await fs.appendFile(path.join(repo, '.sandbox', 'Dockerfile'), 'COPY leak /leak\n');
    const built = await cli(['build', '--agent', 'engineer'], { cwd: repo, timeoutMs: 300_000 });
    assert.ok(!built.stderr.includes(secret) && !built.stdout.includes(secret));
    if (built.code !== 0) {
      // The engine resolves the link inside the context, where its target does not exist.
      assert.match(built.stderr, /leak|no such file|not found/i);
      return;
    }
    await cliOk(['up', 'link', '--agent', 'engineer'], { cwd: repo });
    const seen = await cli(['exec', 'link', '--', 'sh', '-c', 'cat /leak 2>&1; readlink /leak'], { cwd: repo });
    assert.ok(!seen.stdout.includes(secret), `the image holds the file the link points at: ${seen.stdout}`);
  });
});

describe('engine_host (finding 6)', () => {
  test('an engine only sandbox.toml names is refused before anything reaches it, not even a ping', async () => {
    const connections: net.Socket[] = [];
    const server = net.createServer((socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      const repo = await makeRepo(tomlWith('sleep 300', '').replace('[agents.engineer]', `[sandbox]\nengine_host = "${address}"\n\n[agents.engineer]`));
      for (const command of [['up', 'remote', '--agent', 'engineer'], ['ls'], ['build']]) {
        const result = await cli(command, { cwd: repo });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`sandbox\\.toml:\\d+: sandbox\\.engine_host: the engine ${address.replace(/[.]/g, '\\.')} is named by the repository only`));
        assert.match(result.stderr, /AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS=/);
        assert.doesNotMatch(result.stderr, /agentSandboxes\.allowedEngineHosts/, "the terminal names its variable, the editor its setting");
      }
      assert.equal(connections.length, 0, 'nothing was sent to the engine the repository named');
      await assertNothingMade(repo, 'remote');
      // Allowed by the user, it is used (and this one is no engine, so it fails there).
      const allowed = await cli(['ls'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS: address } });
      assert.equal(allowed.code, 1);
      assert.ok(connections.length > 0, 'the allowed engine was asked');
    } finally {
      server.close();
    }
  });

  test('an engine reached through another socket path works once the user allows it; this machine\'s own need no consent', async (t) => {
    if (!ENGINE_HOST.startsWith('unix://')) return t.skip('needs a unix socket engine');
    const dir = await outsideDir('agent-sandboxes-engine-link-');
    const socket = path.join(dir, 'engine.sock');
    await fs.symlink(ENGINE_HOST.slice('unix://'.length), socket);
    const repo = await makeRepo(tomlWith('sleep 300', '').replace('[agents.engineer]', `[sandbox]\nengine_host = "unix://${socket}"\n\n[agents.engineer]`));
    const refused = await cli(['up', 'linked', '--agent', 'engineer'], { cwd: repo });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sandbox\.engine_host: the engine unix:\/\/.* is named by the repository only/);
    await assertNothingMade(repo, 'linked');
    await cliOk(['up', 'linked', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS: `unix://${socket}` } });
    assert.equal((await containersOf(repo)).length, 1);
    // The engine under test by its own address (DOCKER_HOST or Docker's socket) is this machine's own.
    const own = await makeRepo(tomlWith('exit 0', '').replace('[agents.engineer]', `[sandbox]\nengine_host = "${ENGINE_HOST}"\n\n[agents.engineer]`));
    await cliOk(['up', 'own', '--agent', 'engineer', '--wait'], { cwd: own });
  });
});

describe('secrets from the environment (findings 7 and 17a)', () => {
  test('a secret sandbox.toml names is not taken from the environment unless the user allows its name', async () => {
    const value = `host-token-${randomBytes(12).toString('hex')}`;
    const repo = await makeRepo(tomlWith('echo "token=$HOST_TOKEN"; sleep 300', 'secrets = ["HOST_TOKEN"]\n'));
    const refused = await cli(['up', 'envsec', '--agent', 'engineer'], { cwd: repo, env: { HOST_TOKEN: value } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /needs the secret HOST_TOKEN, and it is not set/);
    assert.match(refused.stderr, /AGENT_SANDBOX_SECRETS_FROM_ENV=HOST_TOKEN/);
    // The terminal says it in its own terms; the editor offers Set Agent Secret and names its setting (unit-tested).
    assert.doesNotMatch(refused.stderr, /agentSandboxes\.secretsFromEnvironment|Set Agent Secret/);
    await assertNothingMade(repo, 'envsec');
    // Another name allowed does not let this one through.
    assert.equal((await cli(['up', 'envsec', '--agent', 'engineer'], { cwd: repo, env: { HOST_TOKEN: value, AGENT_SANDBOX_SECRETS_FROM_ENV: 'OTHER' } })).code, 1);
    await assertNothingMade(repo, 'envsec');

    const env = { HOST_TOKEN: value, AGENT_SANDBOX_SECRETS_FROM_ENV: 'HOST_TOKEN' };
    await cliOk(['up', 'envsec', '--agent', 'engineer'], { cwd: repo, env });
    const seen = await cliOk(['exec', 'envsec', '--', 'sh', '-c', '. /run/agent-sandbox/secrets/env; printf %s "$HOST_TOKEN"'], { cwd: repo });
    assert.equal(seen.stdout, value);
  });

  test('a log read again while one secret is missing still masks every other secret', async () => {
    const first = `first-${randomBytes(12).toString('hex')}`;
    const second = `second-${randomBytes(12).toString('hex')}`;
    const repo = await makeRepo(tomlWith('echo "a=$FIRST_TOKEN b=$SECOND_TOKEN"; sleep 300', 'secrets = ["FIRST_TOKEN", "SECOND_TOKEN"]\n'));
    const allow = 'FIRST_TOKEN,SECOND_TOKEN';
    await cliOk(['up', 'mask', '--agent', 'engineer'], { cwd: repo, env: { FIRST_TOKEN: first, SECOND_TOKEN: second, AGENT_SANDBOX_SECRETS_FROM_ENV: allow } });
    let logs = '';
    for (let attempt = 0; attempt < 100 && !/a=/.test(logs); attempt++) {
      logs = (await cliOk(['logs', 'mask'], { cwd: repo, env: { FIRST_TOKEN: first, AGENT_SANDBOX_SECRETS_FROM_ENV: allow, SECOND_TOKEN: '' } })).stdout;
      if (!/a=/.test(logs)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(logs, /a=\*\*\* b=/);
    assert.ok(!logs.includes(first), `the first secret shows while the second is missing: ${logs}`);
  });
});

describe('two ups of one name at the same moment (finding 12)', () => {
  test('exactly one wins, and the loser removes nothing of the winner\'s', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    // Built once first, so that both reach the claim at about the same moment.
    await cliOk(['build', '--agent', 'engineer'], { cwd: repo, timeoutMs: 300_000 });
    for (let round = 0; round < 3; round++) {
      const name = `race${round}`;
      const results = await Promise.all([cli(['up', name, '--agent', 'engineer'], { cwd: repo }), cli(['up', name, '--agent', 'engineer'], { cwd: repo })]);
      const codes = results.map((r) => r.code).sort();
      assert.deepEqual(codes, [0, 1], results.map((r) => r.stderr).join('\n---\n'));
      const loser = results.find((r) => r.code !== 0)!;
      // The winner's sandbox is whole: worktree, branch, state, container, and it runs.
      const state = path.join(repo, '.git', 'agent-sandboxes', 'state', name);
      await fs.access(path.join(state, 'sandbox.json'));
      await fs.access(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', name, 'sandbox.toml'));
      assert.notEqual(git(repo, 'branch', '--list', `sandbox/${name}`), '');
      const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout).filter((s: { name: string }) => s.name === name);
      assert.equal(info.state, 'running');
      assert.equal((await cliOk(['exec', name, '--', 'sh', '-c', 'git status --short | wc -l'], { cwd: repo })).stdout.trim(), '0');
      assert.match(loser.stderr, new RegExp(`A sandbox named "${name}" already exists`));
      await cliOk(['rm', '--force', name], { cwd: repo });
    }
  });
});

describe('the network sandbox.toml asks for', () => {
  test('network = "host" and a port on 0.0.0.0 are refused before anything is made, until the user allows them', async () => {
    const host = await makeRepo(tomlWith('exit 0').replace('network = "none"', 'network = "host"'));
    const refused = await cli(['up', 'hostnet', '--agent', 'engineer'], { cwd: host });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sandbox\.toml:3: sandbox\.container\.network: network = "host" gives the agent this machine's own network/);
    assert.match(refused.stderr, /AGENT_SANDBOX_ALLOW_HOST_NETWORK=1/);
    await assertNothingMade(host, 'hostnet');
    await cliOk(['up', 'hostnet', '--agent', 'engineer', '--wait'], { cwd: host, env: { AGENT_SANDBOX_ALLOW_HOST_NETWORK: '1' } });

    const ports = await makeRepo(tomlWith('exit 0').replace('network = "none"', 'network = "nat"\nports = ["0.0.0.0::80"]'));
    const open = await cli(['up', 'public', '--agent', 'engineer'], { cwd: ports });
    assert.equal(open.code, 1);
    assert.match(open.stderr, /sandbox\.toml:4: sandbox\.container\.ports: the port 80\/tcp is published on 0\.0\.0\.0/);
    assert.match(open.stderr, /AGENT_SANDBOX_ALLOW_PUBLIC_PORTS=1/);
    await assertNothingMade(ports, 'public');
  });

  test('a read-write volume of .vscode or .husky is refused; read-only it is mounted', async () => {
    const repo = await makeRepo(tomlWith('sleep 300', 'volumes = [".vscode:/editor"]\n'), { '.vscode/tasks.json': '{}\n' });
    const refused = await cli(['up', 'tools', '--agent', 'engineer'], { cwd: repo });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sandbox\.toml:\d+: agents\.engineer\.volumes: Volume .*\.vscode:\/editor is .*\.vscode, mounted read-write/);
    await assertNothingMade(repo, 'tools');
    await fs.writeFile(path.join(repo, 'sandbox.toml'), tomlWith('sleep 300', 'volumes = [".vscode:/editor:ro"]\n'));
    await cliOk(['up', 'tools', '--agent', 'engineer'], { cwd: repo });
    assert.equal((await cliOk(['exec', 'tools', '--', 'cat', '/editor/tasks.json'], { cwd: repo })).stdout, '{}\n');
  });
});
