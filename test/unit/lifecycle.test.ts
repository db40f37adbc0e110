import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { Engine, EngineInfo } from '../../src/core/engine/engine';
import { LABEL } from '../../src/core/engine/labels';
import { SandboxError } from '../../src/core/errors';
import { Sandboxes } from '../../src/core/sandboxes';

/*
 * up, start and remove against a fake engine: the Engine is the only door to the container engine, so an
 * object with its methods, holding containers in memory, stands in for Docker or Podman.
 */

interface FakeContainer {
  id: string;
  options: Docker.ContainerCreateOptions;
  running: boolean;
}

class FakeEngine {
  readonly endpoint = 'unix:///fake/engine.sock';
  readonly containers = new Map<string, FakeContainer>();
  readonly calls: string[] = [];
  private next = 1;

  async info(): Promise<EngineInfo> {
    return { kind: 'docker', version: '0.0-fake', apiVersion: '1.43', rootless: false, selinux: false };
  }

  call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    this.calls.push(what);
    return operation();
  }

  read<T>(what: string, operation: () => Promise<T>): Promise<T> {
    return this.call(what, operation);
  }

  translate(_what: string, error: unknown): Error {
    return error as Error;
  }

  async imageId(ref: string): Promise<string | undefined> {
    return ref === 'fake/agent:1' ? 'sha256:fake' : undefined;
  }

  async listContainers(labels: string[]): Promise<Docker.ContainerInfo[]> {
    const wanted = labels.map((label) => label.split('='));
    return [...this.containers.values()]
      .filter((c) => wanted.every(([key, value]) => c.options.Labels?.[key] === value))
      .map((c) => ({ Id: c.id, Labels: c.options.Labels ?? {}, State: c.running ? 'running' : 'exited', Image: c.options.Image, Ports: [], Created: 0 }) as unknown as Docker.ContainerInfo);
  }

  async inspectContainer(id: string): Promise<Docker.ContainerInspectInfo> {
    return this.inspect(id);
  }

  async createContainer(options: Docker.ContainerCreateOptions, what: string): Promise<Docker.Container> {
    this.calls.push(what);
    const id = `fake${this.next++}`;
    this.containers.set(id, { id, options, running: false });
    return this.container(id);
  }

  async removeContainer(id: string, what: string): Promise<void> {
    this.calls.push(what);
    if (!this.containers.delete(id)) throw new SandboxError(`${what}: no such container: ${id}`);
  }

  async removeVolume(name: string, what: string): Promise<void> {
    this.calls.push(what);
    throw new SandboxError(`${what}: no such volume: ${name}`);
  }

  container(id: string): Docker.Container {
    const handle = {
      id,
      inspect: async () => this.inspect(id),
      start: async () => {
        this.found(id).running = true;
      },
      stop: async () => {
        this.found(id).running = false;
      },
    };
    return handle as unknown as Docker.Container;
  }

  private found(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new SandboxError(`no such container: ${id}`);
    return c;
  }

  private inspect(id: string): Docker.ContainerInspectInfo {
    const c = this.found(id);
    return {
      Id: id,
      State: { Status: c.running ? 'running' : 'exited', Running: c.running, Restarting: false, ExitCode: 0, OOMKilled: false },
      Config: { Labels: c.options.Labels ?? {} },
      HostConfig: c.options.HostConfig ?? {},
    } as unknown as Docker.ContainerInspectInfo;
  }
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-lifecycle-unit-'));
const savedEnv = { ...process.env };
const repo = path.join(scratch, 'repo');

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

before(() => {
  const globalConfig = path.join(scratch, 'gitconfig');
  writeFileSync(globalConfig, '[user]\n\tname = User\n\temail = user@example.invalid\n[init]\n\tdefaultBranch = main\n');
  Object.assign(process.env, { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: globalConfig });
  execFileSync('git', ['init', '-q', repo]);
  writeFileSync(path.join(repo, 'sandbox.toml'), '[sandbox.container]\nimage = "fake/agent:1"\n\n[agents.engineer]\ncommand = ["true"]\n');
  git(['add', '.']);
  git(['commit', '-q', '-m', 'initial']);
});

after(() => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  rmSync(scratch, { recursive: true, force: true });
});

describe('up, start and remove through the Engine alone', () => {
  test('up creates and starts one labelled container on a new worktree; start starts it again; remove takes it all away', async () => {
    const engine = new FakeEngine();
    const sandboxes = await Sandboxes.open(repo, { engine: engine as unknown as Engine });

    const info = await sandboxes.up({ name: 'one', agent: 'engineer', task: 'a task' });
    assert.equal(info.state, 'running');
    assert.equal(info.branch, 'sandbox/one');
    assert.equal(info.image, 'fake/agent:1');
    assert.ok(existsSync(info.worktree), 'the worktree is made');
    const [created] = engine.containers.values();
    assert.equal(engine.containers.size, 1);
    assert.equal(created.options.Labels?.[LABEL.workspace], sandboxes.repo.root);
    assert.equal(created.options.Labels?.[LABEL.name], 'one');
    assert.equal(created.options.name, sandboxes.containerName('one'));
    assert.ok(engine.calls.includes('Creating the container for "one"') && engine.calls.includes('Starting the sandbox "one"'));

    await assert.rejects(sandboxes.up({ name: 'one', agent: 'engineer' }), SandboxError, 'a name is taken once');

    created.running = false;
    await sandboxes.start('one');
    assert.equal(created.running, true);
    assert.equal((await sandboxes.get('one')).state, 'running');

    await sandboxes.remove('one', { force: true });
    assert.equal(engine.containers.size, 0);
    assert.ok(!existsSync(info.worktree), 'the worktree is gone');
    assert.equal(git(['branch', '--list', 'sandbox/one']).trim(), '', 'the branch is gone');
    assert.deepEqual(await sandboxes.list(), []);
  });
});
