// What differs between Docker and Podman, and how Agent Sandboxes finds and talks to each. Runs against the engine
// under test (DOCKER_HOST, see helpers.ts); a few tests only mean something on Podman and skip elsewhere.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Engine, PODMAN_ROOTFUL_SOCKET, podmanInstalled, watchEngineEvents } from '../../src/core/engine/engine';
import type { EngineEvent } from '../../src/core/engine/engine';
import { startPodmanService } from '../../src/core/engine/podman';
import { cleanUp, cli, cliOk, docker, ENGINE_HOST, engineKind, git, makeRepo, tomlWith, waitFor } from './helpers';

after(cleanUp);

const started: ChildProcess[] = [];
const startedPids: number[] = [];
after(() => {
  for (const child of started) child.kill();
  for (const pid of startedPids) {
    try {
      process.kill(pid);
    } catch {
      // gone already
    }
  }
});

/** The other engine's name, for a selection that must not match the engine under test. */
async function otherKind(): Promise<'docker' | 'podman'> {
  return (await engineKind()) === 'podman' ? 'docker' : 'podman';
}

describe('finding the engine', () => {
  test('ls and the JSON say which engine the sandbox runs on; a sandbox made elsewhere keeps its engine', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'where', '--agent', 'engineer'], { cwd: repo });
    const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    assert.equal(info.engine, await engineKind());
    // The container is gone (removed behind our back): the record still says where it was made.
    await cliOk(['rm', '--force', 'where'], { cwd: repo });
    await cliOk(['up', 'gone', '--agent', 'engineer'], { cwd: repo });
    const [gone] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    await docker.getContainer(gone.containerId).remove({ force: true });
    const [missing] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    assert.deepEqual([missing.state, missing.engine], ['missing', await engineKind()]);
  });

  test('engine = "docker" or "podman" in sandbox.toml finds that engine\'s own socket, without DOCKER_HOST', async (t) => {
    const kind = await engineKind();
    const socket = kind === 'podman' ? PODMAN_ROOTFUL_SOCKET : '/var/run/docker.sock';
    if (ENGINE_HOST !== `unix://${socket}`) return t.skip(`the engine under test is not at ${socket}`);
    const repo = await makeRepo(tomlWith('exit 0', `[sandbox]\nengine = "${kind}"\n`));
    const result = await cliOk(['up', 'found', '--agent', 'engineer', '--wait'], { cwd: repo, env: { DOCKER_HOST: '' } });
    assert.match(result.stderr, /Sandbox found is/);
    const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo, env: { DOCKER_HOST: '' } })).stdout);
    assert.equal(info.engine, kind);
  });

  test('an engine that answers as the other one than sandbox.toml asks for is refused, saying which is which', async () => {
    const kind = await engineKind();
    const other = await otherKind();
    const repo = await makeRepo(tomlWith('exit 0', `[sandbox]\nengine = "${other}"\nengine_host = "${ENGINE_HOST}"\n`));
    const result = await cli(['up', 'wrong', '--agent', 'engineer'], { cwd: repo });
    assert.equal(result.code, 1);
    const name = (k: string) => (k === 'podman' ? 'Podman' : 'Docker');
    assert.match(result.stderr, new RegExp(`The engine at ${ENGINE_HOST.replace(/[/.]/g, '\\$&')} is ${name(kind)} [^,]+, but ${name(other)} was asked for \\(engine = "${other}"\\)`));
    assert.match(result.stderr, /set engine = "auto"/);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/wrong'), '');
  });
});

describe('the event stream the Sandboxes view follows', () => {
  test('create, start, die and destroy of a sandbox arrive in Docker\'s words, with its labels, on either engine', async () => {
    const repo = await makeRepo(tomlWith('echo hello; sleep 300'));
    const events: EngineEvent[] = [];
    const abort = new AbortController();
    let connected = false;
    watchEngineEvents(
      new Engine({ host: ENGINE_HOST }),
      [`dev.agent-sandboxes.workspace=${repo}`],
      (event) => events.push(event),
      (ok) => {
        connected = ok;
      },
      abort.signal,
    );
    try {
      await waitFor('the event stream', async () => connected || undefined);
      await cliOk(['up', 'watched', '--agent', 'engineer'], { cwd: repo });
      await cliOk(['stop', 'watched'], { cwd: repo });
      await cliOk(['rm', '--force', 'watched'], { cwd: repo });
      const actions = () => events.map((e) => e.Action);
      await waitFor(`destroy among ${JSON.stringify(actions())}`, async () => (actions().includes('destroy') ? true : undefined));
      for (const action of ['create', 'start', 'die', 'destroy']) assert.ok(actions().includes(action), `${action} is missing from ${JSON.stringify(actions())}`);
      assert.ok(actions().indexOf('create') < actions().indexOf('start') && actions().indexOf('start') < actions().indexOf('die') && actions().indexOf('die') < actions().indexOf('destroy'), JSON.stringify(actions()));
      assert.ok(!actions().includes('remove'), 'Podman\'s remove arrives as destroy');
      for (const event of events) {
        assert.equal(event.Type, 'container');
        assert.equal(event.Actor.Attributes['dev.agent-sandboxes.name'], 'watched');
        assert.equal(event.Actor.Attributes['dev.agent-sandboxes.workspace'], repo);
      }
    } finally {
      abort.abort();
    }
  });
});

describe('Podman', () => {
  test('images are named localhost/agent-sandbox/...; an unchanged build is skipped under that name', async (t) => {
    if ((await engineKind()) !== 'podman') return t.skip('Podman only');
    const repo = await makeRepo(tomlWith('exit 0'));
    await fs.appendFile(path.join(repo, '.sandbox', 'Dockerfile'), `ENV PODMAN_RUN=${process.pid}-${Date.now()}\n`);
    const first = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    const tag = first.stdout.trim();
    assert.match(tag, /^localhost\/agent-sandbox\/project:[0-9a-f]{16}$/);
    assert.match(first.stderr, /STEP 1\/\d+: FROM scratch/);
    const images = JSON.parse(execFileSync('podman', ['images', '--format', 'json', '--filter', `reference=${tag}`], { encoding: 'utf8' })) as Array<{ Names: string[] }>;
    assert.ok(images.some((i) => i.Names.includes(tag)), JSON.stringify(images));
    const second = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    assert.equal(second.stdout.trim(), tag);
    assert.match(second.stderr, /build skipped/);
  });

  test('Podman installed, its service not running: the message says so and how to start it; startPodmanService starts it', async (t) => {
    if (!podmanInstalled() || (await engineKind()) !== 'podman') return t.skip('Podman only');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-podman-'));
    const socket = path.join(dir, 'podman.sock');
    try {
      const repo = await makeRepo(tomlWith('exit 0', `[sandbox]\nengine = "podman"\nengine_host = "unix://${socket}"\n`));
      // A socket of its own, not one of Podman's usual ones: the user allows it.
      const allowed = { AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS: `unix://${socket}` };
      const down = await cli(['ls'], { cwd: repo, env: allowed });
      assert.equal(down.code, 1);
      assert.match(down.stderr, new RegExp(`Cannot reach the container engine at unix://${socket.replace(/[/.]/g, '\\$&')} \\(ENOENT\\)`));
      assert.match(down.stderr, /Podman is installed but its API service is not running: start it with .*podman system service --time=0 unix:\/\//);
      assert.doesNotMatch(down.stderr, /systemctl start docker/, 'engine = "podman" does not send the user to Docker');

      const service = await startPodmanService(socket);
      if (service.pid) startedPids.push(service.pid);
      assert.equal(service.endpoint, `unix://${socket}`);
      assert.equal(service.how, 'process');
      const up = await cliOk(['up', 'revived', '--agent', 'engineer', '--wait'], { cwd: repo, env: allowed });
      assert.match(up.stderr, /Sandbox revived is/);
      const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo, env: allowed })).stdout);
      assert.deepEqual([info.name, info.engine, info.exitCode], ['revived', 'podman', 0]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('without catatonit, Podman cannot give a sandbox its init: the error says to install it, and nothing is left', async (t) => {
    if ((await engineKind()) !== 'podman') return t.skip('Podman only');
    if (process.getuid?.() !== 0 || !existsSync('/usr/libexec/podman')) return t.skip('needs root, to hide catatonit in a mount namespace of its own');
    // A second API service that cannot see catatonit: a private mount namespace where /usr/libexec/podman is
    // empty and /usr/bin/catatonit is not executable. The machine's own files are untouched.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-nocatatonit-'));
    const socket = path.join(dir, 'podman.sock');
    const blank = path.join(dir, 'not-catatonit');
    await fs.writeFile(blank, '', { mode: 0o644 });
    const hide = [
      'mount -t tmpfs tmpfs /usr/libexec/podman',
      ...(existsSync('/usr/bin/catatonit') ? [`mount --bind ${blank} /usr/bin/catatonit`] : []),
      `exec podman system service --time=0 unix://${socket}`,
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', hide], { stdio: 'ignore' });
    started.push(child);
    try {
      const engine = new Engine({ host: `unix://${socket}` });
      await waitFor('the service without catatonit', async () => ((await engine.answers()) ? true : undefined), 20_000);
      const repo = await makeRepo(tomlWith('exit 0'));
      const result = await cli(['up', 'noinit', '--agent', 'engineer'], { cwd: repo, env: { DOCKER_HOST: `unix://${socket}` } });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /Creating the container for "noinit": Podman cannot run an init process as PID 1 in the sandbox: its init, catatonit, is missing/);
      assert.match(result.stderr, /apt-get install catatonit/);
      assert.equal(git(repo, 'branch', '--list', 'sandbox/noinit'), '', 'nothing half made');
      assert.equal(JSON.parse((await cliOk(['ls', '--json'], { cwd: repo, env: { DOCKER_HOST: `unix://${socket}` } })).stdout).length, 0);
    } finally {
      child.kill();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
