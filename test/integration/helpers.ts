import { execFile, execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');
/**
 * The engine under test, as the CLI finds it: DOCKER_HOST (the suite runs once against Docker and once with
 * DOCKER_HOST at Podman's socket), else Docker's socket.
 */
export const ENGINE_HOST = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
export const docker = ENGINE_HOST.startsWith('unix://') ? new Docker({ socketPath: ENGINE_HOST.slice('unix://'.length) }) : new Docker();

let kind: Promise<'docker' | 'podman'> | undefined;

/** Which engine answers at ENGINE_HOST: tests assert what differs (image names, init, build output) per engine. */
export function engineKind(): Promise<'docker' | 'podman'> {
  kind ??= docker.version().then((v) => ((v.Components ?? []).some((c) => /podman/i.test(c.Name)) ? 'podman' : 'docker'));
  return kind;
}

/** The name an image built by Agent Sandboxes gets on the engine under test. */
export async function builtImagePattern(): Promise<RegExp> {
  return (await engineKind()) === 'podman' ? /^localhost\/agent-sandbox\/project:[0-9a-f]{16}$/ : /^agent-sandbox\/project:[0-9a-f]{16}$/;
}

/** A build step as the engine prints it: Docker "Step 2/3 : COPY ...", Podman "STEP 2/3: COPY ...". */
export function buildStep(step: string | number, instruction: string): RegExp {
  return new RegExp(`Step ${step}/\\d+ ?: ${instruction}`, 'i');
}

let imageContext: string | undefined;

/** A build context for an image made of this machine's busybox and git: no registry needed. */
export function testImageContext(): string {
  if (!imageContext) {
    imageContext = path.join(os.tmpdir(), `agent-sandboxes-test-image-${process.pid}`);
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'make-image-context.sh'), imageContext]);
  }
  return imageContext;
}

const made: string[] = [];

/**
 * A new git repository with one commit, the test image's context in `.sandbox/` and the given
 * sandbox.toml. Its folder is always called `project`, so that every test repository shares one image tag.
 */
export async function makeRepo(toml: string, files: Record<string, string> = {}): Promise<string> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-it-'));
  made.push(parent);
  const repo = path.join(parent, 'project');
  await fs.mkdir(repo);
  await fs.cp(testImageContext(), path.join(repo, '.sandbox'), { recursive: true });
  await fs.writeFile(path.join(repo, 'sandbox.toml'), toml);
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(repo, name)), { recursive: true });
    await fs.writeFile(path.join(repo, name), content);
  }
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'initial');
  return fs.realpath(repo);
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', '-c', 'safe.directory=*', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

/** sandbox.toml for the test image with one role running `script` in sh. */
export function tomlWith(script: string, extra = ''): string {
  return `[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
memory = "256m"
cpus = 1
pids = 256

[agents.engineer]
command = ["sh", "-c", ${JSON.stringify(script)}]
${extra}`;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a separate process, as a user would. */
export function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Like `cli`, but fails the test with the CLI's stderr unless it exits 0. */
export async function cliOk(args: string[], options: Parameters<typeof cli>[1] = {}): Promise<CliResult> {
  const result = await cli(args, options);
  if (result.code !== 0) throw new Error(`agent-sandbox ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  return result;
}

export function containersOf(repo: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`dev.agent-sandboxes.workspace=${repo}`] } });
}

/** Removes every container the tests made and their temporary folders. */
export async function cleanUp(): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: ['dev.agent-sandboxes.managed=true'] } });
  for (const c of containers) {
    if (made.some((parent) => (c.Labels['dev.agent-sandboxes.workspace'] ?? '').startsWith(parent))) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
  }
  // An allowlist's proxy and forwarder, and their volume, belong to their sandbox's workspace.
  const egressOf = (labels: Record<string, string> | null | undefined) => made.some((parent) => (labels?.['dev.agent-sandboxes.egress-workspace'] ?? '').startsWith(parent));
  for (const c of await docker.listContainers({ all: true, filters: { label: ['dev.agent-sandboxes.egress-workspace'] } })) {
    if (egressOf(c.Labels)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
  for (const v of (await docker.listVolumes({ filters: { label: ['dev.agent-sandboxes.egress-workspace'] } })).Volumes ?? []) {
    if (egressOf(v.Labels)) await docker.getVolume(v.Name).remove().catch(() => undefined);
  }
  for (const parent of made.splice(0)) await fs.rm(parent, { recursive: true, force: true });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', command], { encoding: 'utf8' }, (error, stdout, stderr) => (error ? reject(new Error(`${command}: ${stderr}`)) : resolve(stdout))),
  );
}
