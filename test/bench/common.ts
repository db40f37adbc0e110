/**
 * What the benchmark's parts share: processes bounded in time (all killed on abort), timing, medians and
 * ratios, tables, Docker, the workspace every part runs in, the raw floor, and the clean-up (the check after
 * every part, and the removal of everything at the end).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Sandboxes } from '../../src/core/sandboxes';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

export const WORKSPACE_LABEL = 'dev.agent-sandboxes.workspace';
export const EGRESS_WORKSPACE_LABEL = 'dev.agent-sandboxes.egress-workspace';

export const STEP_TIMEOUT_MS = 60_000;

export class BenchError extends Error {}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BenchError(message);
}

export function note(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Processes, bounded in time, and all killed on abort.

const children = new Set<ChildProcess>();
let abortReason: string | undefined;

export function abortAll(reason: string): void {
  abortReason ??= reason;
  for (const child of children) child.kill('SIGKILL');
}

function checkpoint(): void {
  if (abortReason) throw new BenchError(`aborted: ${abortReason}`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function describeCommand(command: string, args: string[]): string {
  const shown = command === process.execPath ? ['node', ...args.map((a) => (a === CLI ? 'dist/cli.js' : a))] : [command, ...args];
  return shown.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** 'inherit': the command's stderr goes to ours as it comes (then none is kept). */
  stderr?: 'pipe' | 'inherit';
}

interface Exited {
  code: number | null;
  stderr: string;
  /** process.hrtime.bigint() when it ended. */
  end: bigint;
}

/**
 * Spawns a command, hands its stdout to onStdout, and kills it after timeoutMs or on abort. Rejects when it
 * cannot start or does not end in time; its exit code is the caller's to judge.
 */
function spawnBounded(command: string, args: string[], options: SpawnOptions, onStdout: (chunk: Buffer) => void): Promise<Exited> {
  checkpoint();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', options.stderr ?? 'pipe'] });
    children.add(child);
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout!.on('data', onStdout);
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new BenchError(`${describeCommand(command, args)}: ${error.message}`));
    });
    child.on('close', (code) => {
      const end = process.hrtime.bigint();
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) reject(new BenchError(`${describeCommand(command, args)} did not end within ${options.timeoutMs / 1000} s`));
      else resolve({ code, stderr: Buffer.concat(err).toString('utf8'), end });
    });
  });
}

export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number; allowFail?: boolean; env?: NodeJS.ProcessEnv; stderr?: 'pipe' | 'inherit' } = {},
): Promise<RunResult> {
  const out: Buffer[] = [];
  const exited = await spawnBounded(command, args, { ...options, timeoutMs: options.timeoutMs ?? STEP_TIMEOUT_MS }, (d) => out.push(d));
  const result = { code: exited.code, stdout: Buffer.concat(out).toString('utf8'), stderr: exited.stderr };
  if (abortReason && result.code !== 0) throw new BenchError(`aborted: ${abortReason}`);
  if (result.code !== 0 && !options.allowFail) {
    throw new BenchError(`${describeCommand(command, args)} exited with ${result.code}: ${result.stderr.trim().split('\n').slice(-5).join(' / ')}`);
  }
  return result;
}

/** Runs a command and counts its stdout (lines, bytes, the last bytes) without storing it. */
export interface StreamCount {
  lines: number;
  bytes: number;
  tail: string;
  startWallMs: number;
  totalMs: number;
  /** From the start to the first byte of stdout. */
  firstByteMs: number;
  code: number | null;
  stderr: string;
}

export async function countOutput(command: string, args: string[], timeoutMs: number): Promise<StreamCount> {
  const startWallMs = Date.now();
  const start = process.hrtime.bigint();
  let firstByte: bigint | undefined;
  let lines = 0;
  let bytes = 0;
  let tail: Buffer = Buffer.alloc(0);
  const exited = await spawnBounded(command, args, { timeoutMs }, (chunk) => {
    firstByte ??= process.hrtime.bigint();
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    tail = chunk.length >= 256 ? chunk.subarray(chunk.length - 256) : Buffer.concat([tail, chunk]).subarray(-256);
  });
  if (abortReason) throw new BenchError(`aborted: ${abortReason}`);
  return {
    lines,
    bytes,
    tail: Buffer.from(tail).toString('utf8'),
    startWallMs,
    totalMs: msBetween(start, exited.end),
    firstByteMs: msBetween(start, firstByte ?? exited.end),
    code: exited.code,
    stderr: exited.stderr,
  };
}

/** Bounds an in-process operation in time (it cannot be killed; the benchmark goes on to clean up). */
export async function bounded<T>(what: string, work: Promise<T>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  checkpoint();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchError(`${what} did not end within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Timing, statistics and formatting.

export function msBetween(start: bigint, end: bigint): number {
  return Number(end - start) / 1e6;
}

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { ms: msBetween(start, process.hrtime.bigint()), value };
}

export interface Stats {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export function stats(samples: number[]): Stats {
  check(samples.length > 0, 'no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  // Nearest rank: the 9th of 10 samples.
  const p90 = sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)];
  return { medianMs: round(median), p90Ms: round(p90), minMs: round(sorted[0]), maxMs: round(sorted[sorted.length - 1]), samplesMs: samples.map(round) };
}

export function median(samples: number[]): number {
  return stats(samples).medianMs;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** a / b to two decimals, as every "vs raw" and speed-up is given. */
export function ratio(a: number, b: number): number {
  return round(a / b, 2);
}

export function table(rows: string[][], rightAligned: (column: number) => boolean): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (rightAligned(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const fmt = (ms: number) => ms.toFixed(1);
export const ratioText = (r: number) => `${r.toFixed(2)}x`;

/** A table row of timings: the label, then median, p90, min and max, then what follows (a ratio, say). */
export function statsRow(label: string, s: Stats, ...after: string[]): string[] {
  return [label, fmt(s.medianMs), fmt(s.p90Ms), fmt(s.minMs), fmt(s.maxMs), ...after];
}

// ---------------------------------------------------------------------------------------------------------
// Docker.

export interface Inspected {
  Id: string;
  Image: string;
  State: { Status: string; Running: boolean; ExitCode: number; FinishedAt: string };
  Config: { User: string; Cmd: string[] | null; WorkingDir: string };
  HostConfig: {
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    PidsLimit: number | null;
    NetworkMode: string;
    CapDrop: string[] | null;
    SecurityOpt: string[] | null;
    Binds: string[] | null;
    Tmpfs: Record<string, string> | null;
    Init: boolean | null;
  };
}

export function docker(args: string[], timeoutMs = STEP_TIMEOUT_MS, allowFail = false): Promise<RunResult> {
  return run('docker', args, { timeoutMs, allowFail });
}

const outputLines = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean);

/** The ids of the containers, running or not, that all the `docker ps` filters match. */
export async function containerIds(filters: string[]): Promise<string[]> {
  return outputLines((await docker(['ps', '-aq', ...filters.flatMap((f) => ['--filter', f])])).stdout);
}

/** The names of the volumes a `docker volume ls` filter matches. */
async function volumeNames(filter: string): Promise<string[]> {
  return outputLines((await docker(['volume', 'ls', '-q', '--filter', filter])).stdout);
}

export async function inspect(container: string): Promise<Inspected> {
  const result = await docker(['inspect', '--type', 'container', container], STEP_TIMEOUT_MS, true);
  check(result.code === 0, `the container ${container} does not exist (${result.stderr.trim()})`);
  return (JSON.parse(result.stdout) as Inspected[])[0];
}

export async function expectRunning(container: string, what: string): Promise<Inspected> {
  const info = await inspect(container);
  check(info.State.Running && info.State.Status === 'running', `${what}: the container ${container} is ${info.State.Status}, not running`);
  return info;
}

export async function expectNoContainer(container: string): Promise<void> {
  check((await containerIds([`name=^/${container}$`])).length === 0, `the container ${container} is still there after removal`);
}

// ---------------------------------------------------------------------------------------------------------
// The workspace.

export interface Workspace {
  tmp: string;
  root: string;
  mainBranch: string;
  objects: string;
  /** The core, opened once: container names, removal, the image check. */
  sandboxes: Sandboxes;
}

/** The workspace's sandbox.toml; between its container and its orchestrator, the agents the parts add. */
const sandboxToml = (agents: string[]) => `# The benchmark's workspace: see test/bench/common.ts.
[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
memory = "256m"
cpus = 1
pids = 256

[agents.bench]
command = ["sh", "-c", "sleep 600"]
${agents.map((a) => `\n${a}`).join('')}
[orchestrator]
max_parallel_agents = 20
`;

/**
 * The repository every part runs in: the image's build context, sandbox.toml, a few source files, one commit.
 * `agents`: sandbox.toml sections the parts need beside [agents.bench], each ending with a newline.
 */
export async function makeWorkspace(agents: string[]): Promise<Workspace> {
  const tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandbox-bench-')));
  const root = path.join(tmp, 'project');
  await fs.mkdir(path.join(root, 'src'), { recursive: true });
  await run('bash', [path.join(ROOT, 'scripts', 'make-image-context.sh'), path.join(root, '.sandbox')]);
  await fs.writeFile(path.join(root, 'sandbox.toml'), sandboxToml(agents));
  // The image's files are build input, not source: they stay out of git, so worktrees stay small.
  await fs.writeFile(path.join(root, '.gitignore'), '.sandbox/rootfs/\n');
  await fs.writeFile(path.join(root, 'README.md'), '# project\n\nA workspace for the Agent Sandboxes benchmark.\n');
  for (let i = 0; i < 20; i++) {
    await fs.writeFile(path.join(root, 'src', `module${i}.ts`), `export function f${i}(x: number): number {\n  return x * ${i};\n}\n`);
  }
  const git = (...args: string[]) => run('git', ['-C', root, ...args]);
  await git('init', '--quiet');
  await git('add', '--all');
  await git('-c', 'user.name=bench', '-c', 'user.email=bench@agent-sandboxes.invalid', 'commit', '--quiet', '-m', 'project');
  const mainBranch = (await git('symbolic-ref', '--short', 'HEAD')).stdout.trim();
  const sandboxes = await bounded('Sandboxes.open', Sandboxes.open(root));
  check(sandboxes.repo.root === root, `the core sees the workspace at ${sandboxes.repo.root}, not ${root}`);
  return { tmp, root, mainBranch, objects: path.join(sandboxes.repo.commonDir, 'objects'), sandboxes };
}

/** `agent-sandbox ARGS --workspace ROOT`, spawned as a user would run it. */
export function cli(ws: Workspace, args: string[], timeoutMs = STEP_TIMEOUT_MS): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args, '--workspace', ws.root], { cwd: ws.root, timeoutMs });
}

/** The branches of the workspace under refs/heads/PREFIX. */
export async function branches(ws: Workspace, prefix = ''): Promise<string[]> {
  return outputLines((await run('git', ['-C', ws.root, 'for-each-ref', '--format=%(refname:short)', `refs/heads/${prefix}`])).stdout);
}

/** Sandboxes.remove with force, bounded in time. */
export function removeSandbox(ws: Workspace, name: string): Promise<void> {
  return bounded(`Sandboxes.remove(${name})`, ws.sandboxes.remove(name, { force: true }));
}

// ---------------------------------------------------------------------------------------------------------
// The raw floor: what a user would do by hand instead of `up`.

/** A raw floor: a worktree on its own branch, and a container. */
export interface RawFloor {
  worktree: string;
  branch: string;
  container: string;
}

/** `git worktree add` + `docker run -d --name CONTAINER ...runArgs`: what the parts time against up. */
export async function startRawFloor(ws: Workspace, floor: RawFloor, runArgs: string[]): Promise<void> {
  await run('git', ['-C', ws.root, 'worktree', 'add', '--quiet', '-b', floor.branch, floor.worktree, 'HEAD']);
  await docker(['run', '-d', '--name', floor.container, ...runArgs]);
}

/** Takes all of a raw floor away again: its container, its worktree and its branch. */
export async function removeRawFloor(ws: Workspace, floor: RawFloor): Promise<void> {
  await docker(['rm', '-f', floor.container]);
  await run('git', ['-C', ws.root, 'worktree', 'remove', '--force', floor.worktree]);
  await run('git', ['-C', ws.root, 'branch', '-D', '--quiet', floor.branch]);
}

// ---------------------------------------------------------------------------------------------------------
// Clean-up.

/** The engine's filters for what the benchmark makes in the workspace: sandboxes, raw floors, egress. */
function madeByBench(ws: Workspace, rawPrefix: string) {
  return {
    sandboxes: `label=${WORKSPACE_LABEL}=${ws.root}`,
    raw: `name=${rawPrefix}`,
    egress: `label=${EGRESS_WORKSPACE_LABEL}=${ws.root}`,
  };
}

/**
 * No container, volume, worktree or branch is left of what a part made. The runner checks after every part, so
 * a leftover is blamed on the part that made it, whatever runs next; `after` names the point of the check.
 */
export async function assertClean(ws: Workspace, rawPrefix: string, after: string): Promise<void> {
  const left = (what: string, items: string[]) => check(items.length === 0, `after ${after}: ${what} are left: ${items.join(' ')}`);
  const made = madeByBench(ws, rawPrefix);
  left('sandbox containers', await containerIds([made.sandboxes]));
  left('raw containers', await containerIds([made.raw]));
  left('egress containers', await containerIds([made.egress]));
  left('egress volumes', await volumeNames(made.egress));
  const worktrees = (await run('git', ['-C', ws.root, 'worktree', 'list', '--porcelain'])).stdout.split('\n').filter((l) => l.startsWith('worktree '));
  left('worktrees', worktrees.slice(1).map((l) => l.slice('worktree '.length)));
  left('branches', (await branches(ws)).filter((b) => b !== ws.mainBranch));
  left('sandbox states', await ws.sandboxes.repo.sandboxNames());
}

/**
 * Removes every container and egress volume the benchmark made and the temp directory (the repository, its
 * worktrees and branches). The image stays: its tag is a digest of the Dockerfile and context, the same for
 * every run of the benchmark and of the integration tests (which may be using it right now), so it is a cache.
 */
export async function cleanUp(ws: Workspace | undefined, rawPrefix: string): Promise<void> {
  for (const child of children) child.kill('SIGKILL');
  // Cleaning up must run even after an abort.
  const saved = abortReason;
  abortReason = undefined;
  const attempt = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      note(`cleanup: ${what}: ${(error as Error).message}`);
    }
  };
  try {
    const ids = new Set<string>();
    const add = (found: string[]) => found.forEach((id) => ids.add(id));
    const made = ws && madeByBench(ws, rawPrefix);
    if (made) await attempt('listing sandbox containers', async () => add(await containerIds([made.sandboxes])));
    await attempt('listing raw containers', async () => add(await containerIds([`name=${rawPrefix}`])));
    if (made) await attempt('listing egress containers', async () => add(await containerIds([made.egress])));
    if (ids.size > 0) await attempt('removing containers', () => docker(['rm', '-f', '-v', ...ids], 2 * STEP_TIMEOUT_MS));
    if (made) {
      // The egress volume is a named one, which docker rm -v leaves.
      await attempt('removing egress volumes', async () => {
        const volumes = await volumeNames(made.egress);
        if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]);
      });
    }
    if (ws) await attempt(`removing ${ws.tmp}`, () => fs.rm(ws.tmp, { recursive: true, force: true, maxRetries: 3 }));
  } finally {
    abortReason = saved;
  }
}
