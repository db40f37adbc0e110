/**
 * The benchmark (npm run bench, through scripts/bench.sh, which builds dist/cli.js and out/ first).
 *
 *   1. `agent-sandbox up` with a cached image, spawned as a user would run it and called in process through
 *      Sandboxes.up, against the raw floor: `git worktree add` + `docker run -d` with the same image, mounts,
 *      limits and command.
 *   2. The throughput of `agent-sandbox logs NAME --follow` on 200,000 lines, after the agent finished and
 *      while it runs, against `docker logs -f` on the same containers.
 *   3. 10 `up`s started at once against 10 in a row.
 *   4. Sync back of 5,000 files an agent changed, in every mode, in process (Sandboxes.sync) and through the
 *      CLI, against the plain git commands that do the same (git merge, git diff | git apply, git cherry-pick,
 *      git diff > file); the view's list of changed files against git diff --name-status; and the capture
 *      of 5,000 files the agent left uncommitted against git add -A + write-tree on a temporary index.
 *
 * Every measured operation is checked (the container runs, every line arrived, the sync left the agent's
 * files and the same result as its floor) and a failed check throws: a benchmark that times a failure is
 * worthless. Everything it makes (temp repository, containers, worktrees, branches) goes at the end, also on
 * failure; the image stays, as a cache (see cleanUp).
 *
 *   5. `up` of a sandbox with an egress allowlist (its proxy and forwarder containers, their volume, the wait
 *      until the forwarder listens) against `up` of the same sandbox on plain NAT, and the raw floor on NAT.
 *
 *   [BENCH_ONLY=up,logs,parallel,sync,egress] node out/test/bench/bench.js [--runs N] [--parallel N]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Sandboxes } from '../../src/core/sandboxes';
import type { SyncMode, SyncResult } from '../../src/core/sync';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const ARTIFACT = path.join(ROOT, '.test-artifacts', 'bench.json');

/** What `up` should cost at most, as a multiple of the raw floor. */
const AIM_RATIO = 1.2;
const WORKSPACE_LABEL = 'dev.agent-sandboxes.workspace';
const EGRESS_WORKSPACE_LABEL = 'dev.agent-sandboxes.egress-workspace';

/** The agent output of part 2: LOG_LINES lines of exactly LINE_BYTES bytes, "line 000001 of ...". */
const LOG_LINES = 200_000;
const LINE_SUFFIX = ' of the agent output, abcdefghijklmnopqrstuvwxyz';
const LINE_BYTES = 'line '.length + String(LOG_LINES).length + LINE_SUFFIX.length + 1;
const LOG_BYTES = LOG_LINES * LINE_BYTES;
const LAST_LINE = `line ${String(LOG_LINES).padStart(String(LOG_LINES).length, '0')}${LINE_SUFFIX}\n`;
/** The spew agent waits this long before printing, so that a follower started right after `up` is live. */
const SPEW_DELAY_S = 1;
const LOG_REPEATS = 3;
const LIVE_REPEATS = 3;

const TIME_LIMIT_MS = 15 * 60_000;
const STEP_TIMEOUT_MS = 60_000;
const LOGS_TIMEOUT_MS = 120_000;

class BenchError extends Error {}

/** The parts, all by default; BENCH_ONLY=sync (or up,logs,...) runs only those. activation is scripts/bench.sh's. */
const PARTS = ['up', 'logs', 'parallel', 'sync', 'egress', 'activation'] as const;
type Part = (typeof PARTS)[number];

function selectedParts(): Part[] | undefined {
  const names = (process.env.BENCH_ONLY ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (names.length === 0) return undefined;
  const unknown = names.filter((p) => !(PARTS as readonly string[]).includes(p));
  check(unknown.length === 0, `BENCH_ONLY names ${unknown.join(', ')}: the parts are ${PARTS.join(', ')}`);
  return PARTS.filter((p) => names.includes(p));
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BenchError(message);
}

// ---------------------------------------------------------------------------------------------------------
// Processes, bounded in time, and all killed on abort.

const children = new Set<ChildProcess>();
let abortReason: string | undefined;

function abortAll(reason: string): void {
  abortReason ??= reason;
  for (const child of children) child.kill('SIGKILL');
}

function checkpoint(): void {
  if (abortReason) throw new BenchError(`aborted: ${abortReason}`);
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function describeCommand(command: string, args: string[]): string {
  const shown = command === process.execPath ? ['node', ...args.map((a) => (a === CLI ? 'dist/cli.js' : a))] : [command, ...args];
  return shown.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number; allowFail?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  checkpoint();
  const timeoutMs = options.timeoutMs ?? STEP_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new BenchError(`${describeCommand(command, args)}: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      const result = { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if (timedOut) reject(new BenchError(`${describeCommand(command, args)} did not end within ${timeoutMs / 1000} s`));
      else if (abortReason && code !== 0) reject(new BenchError(`aborted: ${abortReason}`));
      else if (code !== 0 && !options.allowFail) {
        reject(new BenchError(`${describeCommand(command, args)} exited with ${code}: ${result.stderr.trim().split('\n').slice(-5).join(' / ')}`));
      } else resolve(result);
    });
  });
}

/** Runs a command and counts its stdout (lines, bytes, the last bytes) without storing it. */
interface StreamCount {
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

function countOutput(command: string, args: string[], timeoutMs = LOGS_TIMEOUT_MS): Promise<StreamCount> {
  checkpoint();
  return new Promise((resolve, reject) => {
    const startWallMs = Date.now();
    const start = process.hrtime.bigint();
    let firstByte: bigint | undefined;
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let lines = 0;
    let bytes = 0;
    let tail: Buffer = Buffer.alloc(0);
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      firstByte ??= process.hrtime.bigint();
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      tail = chunk.length >= 256 ? chunk.subarray(chunk.length - 256) : Buffer.concat([tail, chunk]).subarray(-256);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new BenchError(`${describeCommand(command, args)}: ${error.message}`));
    });
    child.on('close', (code) => {
      const end = process.hrtime.bigint();
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) return reject(new BenchError(`${describeCommand(command, args)} did not end within ${timeoutMs / 1000} s`));
      if (abortReason) return reject(new BenchError(`aborted: ${abortReason}`));
      resolve({
        lines,
        bytes,
        tail: Buffer.from(tail).toString('utf8'),
        startWallMs,
        totalMs: msBetween(start, end),
        firstByteMs: msBetween(start, firstByte ?? end),
        code,
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** Bounds an in-process operation in time (it cannot be killed; the benchmark goes on to clean up). */
async function bounded<T>(what: string, work: Promise<T>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
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

function msBetween(start: bigint, end: bigint): number {
  return Number(end - start) / 1e6;
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { ms: msBetween(start, process.hrtime.bigint()), value };
}

function note(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Statistics and formatting.

interface Stats {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

function stats(samples: number[]): Stats {
  check(samples.length > 0, 'no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  // Nearest rank: the 9th of 10 samples.
  const p90 = sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)];
  return { medianMs: round(median), p90Ms: round(p90), minMs: round(sorted[0]), maxMs: round(sorted[sorted.length - 1]), samplesMs: samples.map(round) };
}

function median(samples: number[]): number {
  return stats(samples).medianMs;
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function table(rows: string[][], rightAligned: (column: number) => boolean): string {
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

const fmt = (ms: number) => ms.toFixed(1);
const ratioText = (r: number) => `${r.toFixed(2)}x`;

// ---------------------------------------------------------------------------------------------------------
// Docker.

interface Inspected {
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

function docker(args: string[], timeoutMs = STEP_TIMEOUT_MS, allowFail = false): Promise<RunResult> {
  return run('docker', args, { timeoutMs, allowFail });
}

async function inspect(container: string): Promise<Inspected> {
  const result = await docker(['inspect', '--type', 'container', container], STEP_TIMEOUT_MS, true);
  check(result.code === 0, `the container ${container} does not exist (${result.stderr.trim()})`);
  return (JSON.parse(result.stdout) as Inspected[])[0];
}

async function expectRunning(container: string, what: string): Promise<Inspected> {
  const info = await inspect(container);
  check(info.State.Running && info.State.Status === 'running', `${what}: the container ${container} is ${info.State.Status}, not running`);
  return info;
}

async function expectNoContainer(container: string): Promise<void> {
  const result = await docker(['ps', '-aq', '--filter', `name=^/${container}$`]);
  check(result.stdout.trim() === '', `the container ${container} is still there after removal`);
}

/** Docker's RFC 3339 time with nanoseconds, as milliseconds since the epoch. */
function dockerTimeMs(text: string): number {
  const ms = Date.parse(text.replace(/(\.\d{3})\d*/, '$1'));
  check(Number.isFinite(ms), `cannot read the time ${text}`);
  return ms;
}

/** The floor must be the same container as the core makes, or the ratio says nothing. */
function assertSameContainer(core: Inspected, raw: Inspected): void {
  const pick = (c: Inspected) => ({
    image: c.Image,
    user: c.Config.User,
    cmd: (c.Config.Cmd ?? []).join(' '),
    workdir: c.Config.WorkingDir,
    memory: c.HostConfig.Memory,
    memorySwap: c.HostConfig.MemorySwap,
    nanoCpus: c.HostConfig.NanoCpus,
    pids: c.HostConfig.PidsLimit,
    network: c.HostConfig.NetworkMode,
    capDrop: [...(c.HostConfig.CapDrop ?? [])].sort().join(','),
    securityOpt: [...(c.HostConfig.SecurityOpt ?? [])].sort().join(','),
    binds: (c.HostConfig.Binds ?? []).map((b) => b.split(':').slice(1).join(':')).sort().join(' '),
    tmpfs: Object.keys(c.HostConfig.Tmpfs ?? {}).sort().join(','),
    init: Boolean(c.HostConfig.Init),
  });
  const a = pick(core);
  const b = pick(raw);
  const differences = (Object.keys(a) as Array<keyof typeof a>).filter((k) => a[k] !== b[k]).map((k) => `${k}: up ${JSON.stringify(a[k])} vs raw ${JSON.stringify(b[k])}`);
  check(differences.length === 0, `the raw floor's container differs from up's: ${differences.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------------------
// The workspace.

interface Workspace {
  tmp: string;
  root: string;
  mainBranch: string;
  objects: string;
  /** The core, opened once: container names, removal, the image check. */
  sandboxes: Sandboxes;
}

const SANDBOX_TOML = `# The benchmark's workspace: see test/bench/bench.ts.
[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
memory = "256m"
cpus = 1
pids = 256

[agents.bench]
command = ["sh", "-c", "sleep 600"]

[agents.nat]
network = "nat"
command = ["sh", "-c", "sleep 600"]

[agents.egress]
network = "nat"
allow = ["registry.npmjs.org"]
command = ["sh", "-c", "sleep 600"]

[agents.spew]
command = ["sh", "-c", "sleep ${SPEW_DELAY_S}; seq -w 1 ${LOG_LINES} | sed 's/^/line /; s/$/${LINE_SUFFIX}/'"]

[orchestrator]
max_parallel_agents = 20
`;

async function makeWorkspace(): Promise<Workspace> {
  const tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandbox-bench-')));
  const root = path.join(tmp, 'project');
  await fs.mkdir(path.join(root, 'src'), { recursive: true });
  await run('bash', [path.join(ROOT, 'scripts', 'make-image-context.sh'), path.join(root, '.sandbox')]);
  await fs.writeFile(path.join(root, 'sandbox.toml'), SANDBOX_TOML);
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

function cli(ws: Workspace, args: string[], timeoutMs = STEP_TIMEOUT_MS): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args, '--workspace', ws.root], { cwd: ws.root, timeoutMs });
}

/**
 * No container, volume, worktree or branch is left of what a part made. The runner checks after every part, so
 * a leftover is blamed on the part that made it, whatever runs next; `after` names the point of the check.
 */
async function assertClean(ws: Workspace, rawPrefix: string, after: string): Promise<void> {
  const left = (what: string, items: string[]) => check(items.length === 0, `after ${after}: ${what} are left: ${items.join(' ')}`);
  const ids = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean);
  left('sandbox containers', ids((await docker(['ps', '-aq', '--filter', `label=${WORKSPACE_LABEL}=${ws.root}`])).stdout));
  left('raw containers', ids((await docker(['ps', '-aq', '--filter', `name=${rawPrefix}`])).stdout));
  left('egress containers', ids((await docker(['ps', '-aq', '--filter', `label=${EGRESS_WORKSPACE_LABEL}=${ws.root}`])).stdout));
  left('egress volumes', ids((await docker(['volume', 'ls', '-q', '--filter', `label=${EGRESS_WORKSPACE_LABEL}=${ws.root}`])).stdout));
  const worktrees = (await run('git', ['-C', ws.root, 'worktree', 'list', '--porcelain'])).stdout.split('\n').filter((l) => l.startsWith('worktree '));
  left('worktrees', worktrees.slice(1).map((l) => l.slice('worktree '.length)));
  const branches = (await run('git', ['-C', ws.root, 'for-each-ref', '--format=%(refname:short)', 'refs/heads'])).stdout.trim().split('\n');
  left('branches', branches.filter((b) => b !== ws.mainBranch));
  left('sandbox states', await ws.sandboxes.repo.sandboxNames());
}

/** A raw floor by hand: a worktree on its own branch, and a container. */
interface RawFloor {
  worktree: string;
  branch: string;
  container: string;
}

/** `git worktree add` + `docker run -d --name CONTAINER ...runArgs`: what the parts time against up. */
async function startRawFloor(ws: Workspace, floor: RawFloor, runArgs: string[]): Promise<void> {
  await run('git', ['-C', ws.root, 'worktree', 'add', '--quiet', '-b', floor.branch, floor.worktree, 'HEAD']);
  await docker(['run', '-d', '--name', floor.container, ...runArgs]);
}

/** Takes all of a raw floor away again: its container, its worktree and its branch. */
async function removeRawFloor(ws: Workspace, floor: RawFloor): Promise<void> {
  await docker(['rm', '-f', floor.container]);
  await run('git', ['-C', ws.root, 'worktree', 'remove', '--force', floor.worktree]);
  await run('git', ['-C', ws.root, 'branch', '-D', '--quiet', floor.branch]);
}

// ---------------------------------------------------------------------------------------------------------
// Part 1: up against the raw floor.

interface UpResults {
  runs: number;
  cli: Stats;
  inProcess: Stats;
  raw: Stats;
  ratioCli: number;
  ratioInProcess: number;
  aim: number;
  cliWithinAim: boolean;
  inProcessWithinAim: boolean;
  /** The up-to-date check of the image that every up does (hashing the build context), in process. */
  imageCheck: Stats;
}

async function benchUp(ws: Workspace, image: string, runs: number, rawPrefix: string): Promise<UpResults> {
  const cliSamples: number[] = [];
  const inProcessSamples: number[] = [];
  const rawSamples: number[] = [];
  let compared = false;
  // Iteration 0 warms up each of the three (page cache, JIT, the engine's caches) and is not counted.
  for (let i = 0; i <= runs; i++) {
    const counted = i > 0;
    note(`up vs raw: ${counted ? `run ${i}/${runs}` : 'warm-up'}`);

    // agent-sandbox up, spawned as a user would.
    const cliName = `b${i}`;
    const cliUp = await timed(() => cli(ws, ['up', cliName, '--agent', 'bench']));
    const coreContainer = await expectRunning(ws.sandboxes.containerName(cliName), `agent-sandbox up ${cliName}`);

    // The raw floor: the same worktree, container, mounts and limits, by hand.
    const floor = { worktree: path.join(ws.tmp, 'raw', `raw-${i}`), branch: `raw/${i}`, container: `${rawPrefix}${i}` };
    const rawAdmin = path.join(ws.sandboxes.repo.commonDir, 'worktrees', `raw-${i}`);
    // The agent's user as the core chose it (1000:1000 when the host side is root and owns the repository).
    const user = coreContainer.Config.User;
    const [uid, gid] = user.split(':');
    // An init process as PID 1 if the core asks for one: the floor starts the same processes.
    const init = coreContainer.HostConfig.Init ? ['--init'] : [];
    const rawUp = await timed(() =>
      startRawFloor(ws, floor, [
        ...init,
        '--memory', '256m', '--memory-swap', '256m', '--cpus', '1', '--pids-limit', '256', '--network', 'none',
        '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', user,
        '--workdir', '/workspace', '--env', 'HOME=/home/agent',
        // The core's four mounts: the worktree, its .git file, a git dir and the repository's objects.
        '--volume', `${floor.worktree}:/workspace:rw`,
        '--volume', `${path.join(floor.worktree, '.git')}:/workspace/.git:ro`,
        '--volume', `${rawAdmin}:/run/agent-sandbox/git:rw`,
        '--volume', `${ws.objects}:/run/agent-sandbox/host-objects:ro`,
        '--tmpfs', `/home/agent:rw,exec,uid=${uid},gid=${gid},mode=0700`,
        image, 'sh', '-c', 'sleep 600',
      ]),
    );
    const rawInfo = await expectRunning(floor.container, 'docker run');
    if (!compared) {
      assertSameContainer(coreContainer, rawInfo);
      compared = true;
    }

    // Sandboxes.up in this process (open included: it is what a caller does first).
    const inProcessName = `p${i}`;
    const inProcessUp = await timed(() =>
      bounded(`Sandboxes.up(${inProcessName})`, (async () => (await Sandboxes.open(ws.root)).up({ name: inProcessName, agent: 'bench' }))()),
    );
    check(inProcessUp.value.state === 'running', `Sandboxes.up(${inProcessName}) returned state ${inProcessUp.value.state}`);
    await expectRunning(ws.sandboxes.containerName(inProcessName), `Sandboxes.up(${inProcessName})`);

    if (counted) {
      cliSamples.push(cliUp.ms);
      rawSamples.push(rawUp.ms);
      inProcessSamples.push(inProcessUp.ms);
    }

    // Clean up, outside the timed regions.
    await cli(ws, ['rm', '--force', cliName]);
    await expectNoContainer(ws.sandboxes.containerName(cliName));
    await bounded(`Sandboxes.remove(${inProcessName})`, ws.sandboxes.remove(inProcessName, { force: true }));
    await expectNoContainer(ws.sandboxes.containerName(inProcessName));
    await removeRawFloor(ws, floor);
  }

  // What every up pays before it touches git or the engine: hashing the build context to know the image is current.
  const imageChecks: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await timed(() => bounded('Sandboxes.build', ws.sandboxes.build('bench', () => undefined)));
    check(!r.value.changed && r.value.ref === image, `the image check rebuilt or changed the image (${r.value.ref})`);
    imageChecks.push(r.ms);
  }

  const cliStats = stats(cliSamples);
  const inProcessStats = stats(inProcessSamples);
  const rawStats = stats(rawSamples);
  const ratioCli = round(cliStats.medianMs / rawStats.medianMs, 2);
  const ratioInProcess = round(inProcessStats.medianMs / rawStats.medianMs, 2);
  return {
    runs,
    cli: cliStats,
    inProcess: inProcessStats,
    raw: rawStats,
    ratioCli,
    ratioInProcess,
    aim: AIM_RATIO,
    cliWithinAim: ratioCli <= AIM_RATIO,
    inProcessWithinAim: ratioInProcess <= AIM_RATIO,
    imageCheck: stats(imageChecks),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Part 2: logs --follow throughput.

interface Throughput {
  ms: number;
  linesPerSec: number;
  mbPerSec: number;
}

interface LiveRun {
  /** From the start of the follower to its end. */
  wallMs: number;
  /** From the first byte to the end: the rate while the agent prints. */
  streamMs: number;
  linesPerSec: number;
  mbPerSec: number;
  /** How long the agent still ran after the follower started. */
  overlapMs: number;
  /** How long after the agent's exit the follower ended. */
  lagMs: number;
}

interface LogResults {
  lines: number;
  bytes: number;
  finished: { cli: Throughput; docker: Throughput; ratio: number; cliSamplesMs: number[]; dockerSamplesMs: number[] };
  live: { cli: LiveRun[]; docker: LiveRun[]; cliMedian: Throughput; dockerMedian: Throughput; ratio: number; cliLagMedianMs: number; dockerLagMedianMs: number };
}

function verifyLog(what: string, r: StreamCount): void {
  check(r.code === 0, `${what} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  check(r.lines === LOG_LINES, `${what} printed ${r.lines} lines, not ${LOG_LINES}`);
  check(r.bytes === LOG_BYTES, `${what} printed ${r.bytes} bytes, not ${LOG_BYTES}`);
  check(r.tail.endsWith(LAST_LINE), `${what} does not end with the agent's last line: ...${JSON.stringify(r.tail.slice(-80))}`);
}

function throughput(ms: number): Throughput {
  return { ms: round(ms), linesPerSec: Math.round(LOG_LINES / (ms / 1000)), mbPerSec: round(LOG_BYTES / 1e6 / (ms / 1000), 2) };
}

async function waitForExit(container: string): Promise<Inspected> {
  const waited = await docker(['wait', container], LOGS_TIMEOUT_MS);
  check(waited.stdout.trim() === '0', `the spew agent in ${container} exited with ${waited.stdout.trim()}`);
  return inspect(container);
}

async function benchLogs(ws: Workspace): Promise<LogResults> {
  // After the agent finished: the follower only reads.
  note('logs: the spew agent runs to its end');
  await cli(ws, ['up', 'spew', '--agent', 'spew']);
  const container = ws.sandboxes.containerName('spew');
  await waitForExit(container);
  const cliSamples: number[] = [];
  const dockerSamples: number[] = [];
  for (let i = 0; i < LOG_REPEATS; i++) {
    note(`logs of a finished agent: ${i + 1}/${LOG_REPEATS}`);
    const c = await countOutput(process.execPath, [CLI, 'logs', 'spew', '--follow', '--workspace', ws.root]);
    verifyLog('agent-sandbox logs --follow', c);
    cliSamples.push(c.totalMs);
    const d = await countOutput('docker', ['logs', '-f', container]);
    verifyLog('docker logs -f', d);
    dockerSamples.push(d.totalMs);
  }
  await bounded('Sandboxes.remove(spew)', ws.sandboxes.remove('spew', { force: true }));

  // While the agent runs: the follower starts right after up returns; the agent waits SPEW_DELAY_S first.
  const live = { cli: [] as LiveRun[], docker: [] as LiveRun[] };
  for (let i = 0; i < LIVE_REPEATS; i++) {
    for (const kind of ['cli', 'docker'] as const) {
      note(`logs of a running agent (${kind === 'cli' ? 'agent-sandbox logs --follow' : 'docker logs -f'}): ${i + 1}/${LIVE_REPEATS}`);
      const name = `live-${kind}-${i}`;
      const liveContainer = ws.sandboxes.containerName(name);
      await cli(ws, ['up', name, '--agent', 'spew']);
      const r =
        kind === 'cli'
          ? await countOutput(process.execPath, [CLI, 'logs', name, '--follow', '--workspace', ws.root])
          : await countOutput('docker', ['logs', '-f', liveContainer]);
      verifyLog(kind === 'cli' ? 'agent-sandbox logs --follow (live)' : 'docker logs -f (live)', r);
      const finished = await waitForExit(liveContainer);
      const finishedMs = dockerTimeMs(finished.State.FinishedAt);
      const overlapMs = finishedMs - r.startWallMs;
      check(overlapMs > 0, `the agent of ${name} had ended before its follower started: the live case measured nothing live`);
      const streamMs = r.totalMs - r.firstByteMs;
      const t = throughput(streamMs);
      live[kind].push({
        wallMs: round(r.totalMs),
        streamMs: round(streamMs),
        linesPerSec: t.linesPerSec,
        mbPerSec: t.mbPerSec,
        overlapMs: round(overlapMs),
        lagMs: round(r.startWallMs + r.totalMs - finishedMs),
      });
      await bounded(`Sandboxes.remove(${name})`, ws.sandboxes.remove(name, { force: true }));
    }
  }

  const cliFinished = throughput(median(cliSamples));
  const dockerFinished = throughput(median(dockerSamples));
  const cliLive = throughput(median(live.cli.map((r) => r.streamMs)));
  const dockerLive = throughput(median(live.docker.map((r) => r.streamMs)));
  return {
    lines: LOG_LINES,
    bytes: LOG_BYTES,
    finished: { cli: cliFinished, docker: dockerFinished, ratio: round(cliFinished.ms / dockerFinished.ms, 2), cliSamplesMs: cliSamples.map((s) => round(s)), dockerSamplesMs: dockerSamples.map((s) => round(s)) },
    live: {
      ...live,
      cliMedian: cliLive,
      dockerMedian: dockerLive,
      ratio: round(cliLive.ms / dockerLive.ms, 2),
      cliLagMedianMs: median(live.cli.map((r) => r.lagMs)),
      dockerLagMedianMs: median(live.docker.map((r) => r.lagMs)),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Part 3: many at once.

interface ParallelResults {
  count: number;
  sequentialMs: number;
  concurrentMs: number;
  speedup: number;
}

async function expectAllRunning(ws: Workspace, names: string[], what: string): Promise<void> {
  for (const name of names) await expectRunning(ws.sandboxes.containerName(name), `${what}: ${name}`);
  const running = await docker(['ps', '-q', '--filter', `label=${WORKSPACE_LABEL}=${ws.root}`, '--filter', 'status=running']);
  const count = running.stdout.trim().split('\n').filter(Boolean).length;
  check(count === names.length, `${what}: ${count} containers run, not ${names.length}`);
  const branches = (await run('git', ['-C', ws.root, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/sandbox/'])).stdout.trim().split('\n').filter(Boolean);
  check(branches.length === names.length, `${what}: ${branches.length} sandbox branches, not ${names.length}`);
}

async function removeAll(ws: Workspace, names: string[]): Promise<void> {
  for (const name of names) await bounded(`Sandboxes.remove(${name})`, ws.sandboxes.remove(name, { force: true }));
}

async function benchParallel(ws: Workspace, count: number, rawPrefix: string): Promise<ParallelResults> {
  const sequentialNames = Array.from({ length: count }, (_, i) => `seq-${i}`);
  const concurrentNames = Array.from({ length: count }, (_, i) => `par-${i}`);

  note(`${count} ups in a row`);
  const sequential = await timed(async () => {
    for (const name of sequentialNames) await cli(ws, ['up', name, '--agent', 'bench']);
  });
  await expectAllRunning(ws, sequentialNames, `${count} ups in a row`);
  await removeAll(ws, sequentialNames);
  await assertClean(ws, rawPrefix, `${count} ups in a row`);

  note(`${count} ups at once`);
  const concurrent = await timed(async () => {
    const results = await Promise.allSettled(concurrentNames.map((name) => cli(ws, ['up', name, '--agent', 'bench'], 2 * STEP_TIMEOUT_MS)));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${concurrentNames[i]}: ${(r.reason as Error).message}`] : []));
    check(failures.length === 0, `${failures.length} of ${count} concurrent ups failed: ${failures.join(' | ')}`);
  });
  await expectAllRunning(ws, concurrentNames, `${count} ups at once`);
  await removeAll(ws, concurrentNames);

  return { count, sequentialMs: round(sequential.ms), concurrentMs: round(concurrent.ms), speedup: round(sequential.ms / concurrent.ms, 2) };
}

// ---------------------------------------------------------------------------------------------------------
// Part 4: sync back.

/**
 * The agent's work in part 4, in one real sandbox: it changes the SYNC_MODULES files of lib/mod and makes as
 * many in lib/new, SYNC_FILES in all, in SYNC_COMMITS commits, with busybox sh and git in its container.
 */
const SYNC_NAME = 'syncer';
const SYNC_MODULES = 2_500;
const SYNC_FILES = 2 * SYNC_MODULES;
const SYNC_COMMITS = 5;
const SYNC_REPEATS = 3;
const SYNC_TIMEOUT_MS = 2 * STEP_TIMEOUT_MS;
/** The files whose content every run checks, in lib/mod and in lib/new. */
const SYNC_SAMPLES = [0, 1234, SYNC_MODULES - 1];
const PER_COMMIT = SYNC_MODULES / SYNC_COMMITS;
const UNCOMMITTED_LINE = '// left uncommitted by the agent\n';
const USER_LINE = '\nA line the user added while the agent worked.\n';

const baseModule = (i: number) => `// module m${i}\nexport function m${i}(x: number): number {\n  return x + ${i};\n}\n`;
const agentModule = (i: number, uncommitted: boolean) =>
  `${baseModule(i)}// changed by the agent in commit ${Math.floor(i / PER_COMMIT) + 1}\n${uncommitted ? UNCOMMITTED_LINE : ''}`;
const agentNewFile = (i: number, uncommitted: boolean) =>
  `${Array.from({ length: 10 }, (_, k) => `// n${i}: line ${k + 1} of a file the agent made\n`).join('')}${uncommitted ? UNCOMMITTED_LINE : ''}`;

/** What the agent runs (busybox sh, no process per file): agentModule and agentNewFile, committed in batches. */
const AGENT_COMMITS_SCRIPT = `set -e
mkdir -p lib/new
c=0
while [ $c -lt ${SYNC_COMMITS} ]; do
  i=$((c * ${PER_COMMIT})); end=$((i + ${PER_COMMIT}))
  while [ $i -lt $end ]; do
    echo "// changed by the agent in commit $((c + 1))" >> lib/mod/m$i.ts
    printf "// n$i: line %s of a file the agent made\\n" 1 2 3 4 5 6 7 8 9 10 > lib/new/n$i.ts
    i=$((i + 1))
  done
  git add -A
  git commit -q -m "agent: commit $((c + 1)) of ${SYNC_COMMITS}"
  c=$((c + 1))
done`;
/** Then, for the capture of uncommitted work: one more line in each of the same files, left uncommitted. */
const AGENT_UNCOMMITTED_SCRIPT = `set -e
for f in lib/mod/*.ts lib/new/*.ts; do echo '${UNCOMMITTED_LINE.trim()}' >> "$f"; done`;

type SyncCaseKey = 'merge' | 'merge-ff' | 'squash' | 'cherry-pick' | 'patch';

interface SyncSetup {
  name: string;
  branch: string;
  root: string;
  /** The sandbox's base: the user's branch when the sandbox was made. */
  base: string;
  /** The user's branch one commit later (README.md): the user moved on while the agent worked. */
  moved: string;
  /** The agent's last commit, on the branch. */
  head: string;
  worktree: string;
  /** The host's administrative directory of the worktree (its index). */
  adminDir: string;
  patchDir: string;
}

interface SyncCase {
  key: SyncCaseKey;
  label: string;
  mode: SyncMode;
  /** Where the user's branch is when the sync starts. */
  start: 'base' | 'moved';
  /** The raw floor, as a user would type it. */
  rawText: string;
  raw: (s: SyncSetup, patchFile: string) => Promise<unknown>;
  /** Also timed through the spawned CLI: once is enough to show what Node's start-up adds. */
  cli?: boolean;
}

/** `git diff A B | git apply` (or `> file`): the plain pipeline, through sh as a user would type it. */
const sh = (script: string, cwd: string, ...args: string[]) => run('sh', ['-c', script, 'sh', ...args], { cwd, timeoutMs: SYNC_TIMEOUT_MS });
const gitIn = (cwd: string, args: string[], env?: NodeJS.ProcessEnv) => run('git', args, { cwd, env, timeoutMs: SYNC_TIMEOUT_MS });

const SYNC_CASES: SyncCase[] = [
  {
    key: 'merge',
    label: 'merge, your branch moved on',
    mode: 'merge',
    start: 'moved',
    rawText: 'git merge --no-ff -m MSG sandbox/NAME',
    raw: (s) => gitIn(s.root, ['merge', '--no-ff', '--quiet', '-m', `Merge sandbox ${s.name} (${s.branch})`, s.branch]),
  },
  {
    key: 'merge-ff',
    label: 'merge, a fast-forward',
    mode: 'merge',
    start: 'base',
    rawText: 'git merge --ff-only sandbox/NAME',
    raw: (s) => gitIn(s.root, ['merge', '--ff-only', '--quiet', s.branch]),
  },
  {
    key: 'squash',
    label: 'squash, into your working tree',
    mode: 'squash',
    start: 'moved',
    rawText: 'git diff --binary BASE sandbox/NAME | git apply',
    raw: (s) => sh('git diff --binary "$1" "$2" | git apply', s.root, s.base, s.branch),
  },
  {
    key: 'cherry-pick',
    label: `cherry-pick, ${SYNC_COMMITS} commits`,
    mode: 'cherry-pick',
    start: 'moved',
    rawText: 'git cherry-pick BASE..sandbox/NAME',
    raw: (s) => gitIn(s.root, ['cherry-pick', `${s.base}..${s.branch}`]),
  },
  {
    key: 'patch',
    label: 'patch, to a file',
    mode: 'patch',
    start: 'moved',
    rawText: 'git diff --binary --full-index BASE sandbox/NAME > FILE',
    raw: (s, patchFile) => sh('git diff --binary --full-index "$1" "$2" > "$3"', s.root, s.base, s.branch, patchFile),
    cli: true,
  },
];

interface SyncRow {
  label: string;
  raw: string;
  inProcess: Stats;
  cli?: Stats;
  rawStats: Stats;
  ratio: number;
  cliRatio?: number;
}

interface SyncResults {
  files: number;
  commits: number;
  repeats: number;
  /** The agent writing and committing the files in its container, once (not compared with anything). */
  agentMs: number;
  modes: Record<SyncCaseKey, SyncRow>;
  review: SyncRow;
  /** The same changedFiles against a floor that also counts lines, as the view shows them. */
  reviewWithLineCounts: SyncRow;
  /** Inside every sync and changedFiles: capturing the agent's work (Sandboxes.agentWork), nothing uncommitted. */
  capture: Stats;
  uncommitted: { capture: SyncRow; squash: SyncRow };
}

function syncRow(label: string, raw: string, inProcess: number[], rawSamples: number[], cliSamples?: number[]): SyncRow {
  const ours = stats(inProcess);
  const floor = stats(rawSamples);
  const viaCli = cliSamples ? stats(cliSamples) : undefined;
  return {
    label,
    raw,
    inProcess: ours,
    ...(viaCli ? { cli: viaCli } : {}),
    rawStats: floor,
    ratio: round(ours.medianMs / floor.medianMs, 2),
    ...(viaCli ? { cliRatio: round(viaCli.medianMs / floor.medianMs, 2) } : {}),
  };
}

/** Runs the agent's script in the sandbox as the agent's user, through the core's exec. */
async function agentExec(ws: Workspace, name: string, script: string): Promise<void> {
  const output: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output.push(chunk);
      done();
    },
  });
  const code = await bounded(`Sandboxes.exec(${name})`, ws.sandboxes.exec(name, ['sh', '-c', script], { stdout: sink, stderr: sink }), 5 * STEP_TIMEOUT_MS);
  check(code === 0, `the agent's script in ${name} exited with ${code}: ${Buffer.concat(output).toString('utf8').trim().split('\n').slice(-5).join(' / ')}`);
}

/** Time spent between the measured runs (resets and checks), to know what part 4 costs besides them. */
let syncUntimedMs = 0;

async function untimed<T>(work: () => Promise<T>): Promise<T> {
  const r = await timed(work);
  syncUntimedMs += r.ms;
  return r.value;
}

/** The user's workspace back to `start`, clean: before every measured run, outside the timed region. */
function resetWorkspace(s: SyncSetup, start: string): Promise<void> {
  return untimed(async () => {
    await gitIn(s.root, ['reset', '--hard', '--quiet', start]);
    await gitIn(s.root, ['clean', '-fdq']);
    await fs.rm(s.patchDir, { recursive: true, force: true });
    await fs.mkdir(s.patchDir, { recursive: true });
  });
}

const lines = (text: string) => text.split('\n').filter(Boolean);

/** The working tree as a tree object, untracked files included, through a copy of the user's index. */
async function workingTree(root: string): Promise<string> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandbox-bench-index-'));
  try {
    const env = { ...process.env, GIT_INDEX_FILE: path.join(tmp, 'index') };
    await fs.copyFile(path.join(root, '.git', 'index'), env.GIT_INDEX_FILE);
    await gitIn(root, ['add', '-A'], env);
    return (await gitIn(root, ['write-tree'], env)).stdout.trim();
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** What a sync left, to compare ours with the floor's: the tree, the new commits, the patch's bytes. */
interface SyncOutcome {
  tree: string;
  newCommits: number;
  headParents: number;
  patchSha?: string;
}

/**
 * Reads what a sync left in the workspace and checks it is the agent's work, not a no-op: every one of the
 * SYNC_FILES paths changed against the start, sample files with the agent's content, the commits each mode
 * makes. `ours`: also that nothing else changed (a scan of the working tree; the floor's result must then
 * equal ours). Outside the timed region.
 */
function syncOutcome(s: SyncSetup, c: Pick<SyncCase, 'key' | 'mode'>, start: string, patchFile: string, uncommitted: boolean, what: string, ours: boolean): Promise<SyncOutcome> {
  return untimed(() => readSyncOutcome(s, c, start, patchFile, uncommitted, what, ours));
}

async function readSyncOutcome(s: SyncSetup, c: Pick<SyncCase, 'key' | 'mode'>, start: string, patchFile: string, uncommitted: boolean, what: string, ours: boolean): Promise<SyncOutcome> {
  const head = (await gitIn(s.root, ['rev-parse', 'HEAD'])).stdout.trim();
  // The working tree against HEAD: nothing after patch, merge and cherry-pick (squash: its tree says all).
  const status = ours && c.mode !== 'squash' ? lines((await gitIn(s.root, ['status', '--porcelain', '--untracked-files=all'])).stdout) : [];
  const newCommits = Number((await gitIn(s.root, ['rev-list', '--count', `${start}..HEAD`])).stdout.trim());
  const headParents = lines((await gitIn(s.root, ['rev-list', '--parents', '-n', '1', 'HEAD'])).stdout)[0].split(' ').length - 1;
  if (c.mode === 'patch') {
    const patch = await fs.readFile(patchFile);
    const files = (patch.toString('utf8').match(/^diff --git /gm) ?? []).length;
    check(files === SYNC_FILES, `${what}: the patch holds ${files} files, not ${SYNC_FILES}`);
    check(head === start && status.length === 0, `${what}: the patch mode changed the workspace (HEAD ${head}, ${status.length} changed paths)`);
    for (const i of SYNC_SAMPLES) {
      check(patch.includes(`+${agentNewFile(i, uncommitted).split('\n')[0]}\n`), `${what}: the patch lacks lib/new/n${i}.ts`);
    }
    return { tree: (await gitIn(s.root, ['rev-parse', 'HEAD^{tree}'])).stdout.trim(), newCommits, headParents, patchSha: createHash('sha256').update(patch).digest('hex') };
  }
  let tree: string;
  if (c.mode === 'squash') {
    check(head === start, `${what}: squash moved HEAD`);
    if (ours) check((await run('git', ['diff-index', '--cached', '--quiet', 'HEAD'], { cwd: s.root, allowFail: true })).code === 0, `${what}: squash staged changes`);
    tree = await workingTree(s.root);
  } else {
    check(status.length === 0, `${what}: the working tree is not clean afterwards: ${status.slice(0, 3).join(', ')}`);
    tree = (await gitIn(s.root, ['rev-parse', 'HEAD^{tree}'])).stdout.trim();
    const expected = c.key === 'merge' ? SYNC_COMMITS + 1 : SYNC_COMMITS;
    check(newCommits === expected, `${what}: ${newCommits} new commits on the branch, not ${expected}`);
    if (c.key === 'merge-ff') check(head === s.head, `${what}: not a fast-forward to the agent's commit`);
    if (c.key === 'merge') check(headParents === 2, `${what}: HEAD has ${headParents} parents, not 2`);
  }
  const changed = lines((await gitIn(s.root, ['diff-tree', '-r', '--no-renames', '--name-only', start, tree])).stdout).length;
  check(changed === SYNC_FILES, `${what}: ${changed} files changed against the start, not ${SYNC_FILES}`);
  for (const i of SYNC_SAMPLES) {
    const mod = await fs.readFile(path.join(s.root, 'lib', 'mod', `m${i}.ts`), 'utf8');
    check(mod === agentModule(i, uncommitted), `${what}: lib/mod/m${i}.ts is not the agent's: ${JSON.stringify(mod.slice(-60))}`);
    const made = await fs.readFile(path.join(s.root, 'lib', 'new', `n${i}.ts`), 'utf8').catch(() => '(missing)');
    check(made === agentNewFile(i, uncommitted), `${what}: lib/new/n${i}.ts is not the agent's: ${JSON.stringify(made.slice(-60))}`);
  }
  if (start !== s.base) check((await fs.readFile(path.join(s.root, 'README.md'), 'utf8')).endsWith(USER_LINE), `${what}: the user's own change to README.md is gone`);
  return { tree, newCommits, headParents };
}

function checkSameOutcome(ours: SyncOutcome, floor: SyncOutcome, what: string): void {
  check(JSON.stringify(ours) === JSON.stringify(floor), `${what} left another result than its raw floor: ${JSON.stringify(ours)} vs ${JSON.stringify(floor)}`);
}

function checkSyncResult(r: SyncResult, c: Pick<SyncCase, 'key' | 'mode'>, what: string): void {
  check(r.mode === c.mode && !r.nothingToSync && r.conflicts.length === 0, `${what}: ${JSON.stringify({ ...r, files: r.files.length })}`);
  check(r.files.length === SYNC_FILES, `${what} reports ${r.files.length} files, not ${SYNC_FILES}`);
  if (c.key === 'merge-ff') check(r.fastForward === true, `${what} was not a fast-forward`);
  if (c.key === 'merge') check(r.fastForward === false, `${what} was a fast-forward`);
  if (c.key === 'cherry-pick') check(r.commits.length === SYNC_COMMITS, `${what} made ${r.commits.length} commits, not ${SYNC_COMMITS}`);
}

/** The project grows lib/mod, the sandbox starts from it, the agent works, and the user moves on meanwhile. */
async function setUpSync(ws: Workspace): Promise<{ setup: SyncSetup; agentMs: number }> {
  const root = ws.root;
  const git = (...args: string[]) => gitIn(root, args);
  // The user's identity for the commits of merge and cherry-pick; no automatic gc in the middle of a run.
  await git('config', 'user.name', 'bench');
  await git('config', 'user.email', 'bench@agent-sandboxes.invalid');
  await git('config', 'gc.auto', '0');
  await git('config', 'maintenance.auto', 'false');
  await fs.mkdir(path.join(root, 'lib', 'mod'), { recursive: true });
  for (let i = 0; i < SYNC_MODULES; i++) await fs.writeFile(path.join(root, 'lib', 'mod', `m${i}.ts`), baseModule(i));
  await git('add', '--all');
  await git('commit', '--quiet', '-m', `lib: ${SYNC_MODULES} modules`);
  const base = (await git('rev-parse', 'HEAD')).stdout.trim();

  const info = await bounded(`Sandboxes.up(${SYNC_NAME})`, ws.sandboxes.up({ name: SYNC_NAME, agent: 'bench' }));
  check(info.state === 'running' && info.base === base, `Sandboxes.up(${SYNC_NAME}): state ${info.state}, base ${info.base}`);
  const agent = await timed(() => agentExec(ws, SYNC_NAME, AGENT_COMMITS_SCRIPT));

  await fs.appendFile(path.join(root, 'README.md'), USER_LINE);
  await git('commit', '--quiet', '-a', '-m', 'README: a line of the user');
  const moved = (await git('rev-parse', 'HEAD')).stdout.trim();

  // The first capture imports the agent's commits and refreshes the worktree's index: once, here.
  const work = await bounded('Sandboxes.agentWork', ws.sandboxes.agentWork(SYNC_NAME), SYNC_TIMEOUT_MS);
  check(work.base === base && !work.uncommitted && work.tip === work.head, `the agent's work is not as made: ${JSON.stringify(work)}`);
  const commits = Number((await git('rev-list', '--count', `${base}..${work.branch}`)).stdout.trim());
  check(commits === SYNC_COMMITS, `the agent made ${commits} commits on ${work.branch}, not ${SYNC_COMMITS}`);
  const worktree = ws.sandboxes.repo.paths(SYNC_NAME).worktree;
  const adminDir = await ws.sandboxes.repo.adminDirOf(worktree);
  check(adminDir, `no administrative directory for ${worktree}`);
  // Packed, as a user's repository mostly is; the same for ours and the floors.
  await git('repack', '-adq');
  return {
    setup: { name: SYNC_NAME, branch: work.branch, root, base, moved, head: work.head, worktree, adminDir, patchDir: path.join(ws.tmp, 'patches') },
    agentMs: round(agent.ms),
  };
}

/** A copy of the worktree's index takes the worktree's files: the tree of the agent's uncommitted work. */
async function rawCapture(s: SyncSetup, tmp: string): Promise<string> {
  const env = { ...process.env, GIT_INDEX_FILE: path.join(tmp, 'index') };
  await fs.copyFile(path.join(s.adminDir, 'index'), env.GIT_INDEX_FILE);
  const scope = [`--git-dir=${s.adminDir}`, `--work-tree=${s.worktree}`];
  await gitIn(s.root, [...scope, 'add', '-A'], env);
  return (await gitIn(s.root, [...scope, 'write-tree'], env)).stdout.trim();
}

async function benchSync(ws: Workspace): Promise<SyncResults> {
  note(`sync: the agent changes ${SYNC_FILES} files in ${SYNC_COMMITS} commits`);
  const { setup: s, agentMs } = await setUpSync(ws);
  const startOf = (c: SyncCase) => (c.start === 'base' ? s.base : s.moved);
  const patchFile = (kind: string) => path.join(s.patchDir, `${kind}.patch`);

  const modes = {} as Record<SyncCaseKey, SyncRow>;
  for (const c of SYNC_CASES) {
    const start = startOf(c);
    const samples = { inProcess: [] as number[], cli: [] as number[], raw: [] as number[] };
    // Iteration 0 warms up each of the three and is not counted.
    for (let i = 0; i <= SYNC_REPEATS; i++) {
      const counted = i > 0;
      note(`sync ${c.key}: ${counted ? `run ${i}/${SYNC_REPEATS}` : 'warm-up'}`);

      await resetWorkspace(s, start);
      const ours = await timed(() =>
        bounded(`Sandboxes.sync(${c.mode})`, ws.sandboxes.sync(s.name, { mode: c.mode, patchFile: c.mode === 'patch' ? patchFile('ours') : undefined }), SYNC_TIMEOUT_MS),
      );
      checkSyncResult(ours.value, c, `Sandboxes.sync --mode ${c.mode}`);
      const oursOutcome = await syncOutcome(s, c, start, patchFile('ours'), false, `Sandboxes.sync (${c.key})`, true);

      if (c.cli) {
        await resetWorkspace(s, start);
        const viaCli = await timed(() =>
          cli(ws, ['sync', s.name, '--mode', c.mode, '--json', ...(c.mode === 'patch' ? ['--output', patchFile('cli')] : [])], SYNC_TIMEOUT_MS),
        );
        checkSyncResult(JSON.parse(viaCli.value.stdout) as SyncResult, c, `agent-sandbox sync --mode ${c.mode}`);
        checkSameOutcome(await syncOutcome(s, c, start, patchFile('cli'), false, `agent-sandbox sync (${c.key})`, true), oursOutcome, `agent-sandbox sync (${c.key})`);
        if (counted) samples.cli.push(viaCli.ms);
      }

      await resetWorkspace(s, start);
      const raw = await timed(() => c.raw(s, patchFile('raw')));
      checkSameOutcome(oursOutcome, await syncOutcome(s, c, start, patchFile('raw'), false, `raw ${c.key}`, false), `Sandboxes.sync (${c.key})`);

      if (counted) {
        samples.inProcess.push(ours.ms);
        samples.raw.push(raw.ms);
      }
    }
    modes[c.key] = syncRow(c.label, c.rawText, samples.inProcess, samples.raw, c.cli ? samples.cli : undefined);
  }
  await resetWorkspace(s, s.moved);

  // The review path: the files the view lists, against git's own list.
  note('sync: changedFiles, and the capture inside every sync');
  const review = { inProcess: [] as number[], raw: [] as number[], rawNumstat: [] as number[] };
  const capture: number[] = [];
  for (let i = 0; i <= SYNC_REPEATS; i++) {
    const ours = await timed(() => bounded('Sandboxes.changedFiles', ws.sandboxes.changedFiles(s.name), SYNC_TIMEOUT_MS));
    check(ours.value.length === SYNC_FILES, `Sandboxes.changedFiles lists ${ours.value.length} files, not ${SYNC_FILES}`);
    const added = ours.value.filter((f) => f.status === 'added').length;
    check(added === SYNC_MODULES && ours.value.every((f) => f.added !== undefined), `Sandboxes.changedFiles: ${added} added files, not ${SYNC_MODULES}, or no line counts`);
    const raw = await timed(() => gitIn(s.root, ['diff', '--name-status', s.base, s.branch]));
    check(lines(raw.value.stdout).length === SYNC_FILES, `git diff --name-status lists ${lines(raw.value.stdout).length} files, not ${SYNC_FILES}`);
    const rawNumstat = await timed(() => gitIn(s.root, ['diff', '--numstat', s.base, s.branch]));
    check(lines(rawNumstat.value.stdout).length === SYNC_FILES, `git diff --numstat lists ${lines(rawNumstat.value.stdout).length} files, not ${SYNC_FILES}`);
    const work = await timed(() => bounded('Sandboxes.agentWork', ws.sandboxes.agentWork(s.name), SYNC_TIMEOUT_MS));
    check(!work.value.uncommitted && work.value.tip === s.head, `Sandboxes.agentWork found uncommitted work where there is none`);
    if (i > 0) {
      review.inProcess.push(ours.ms);
      review.raw.push(raw.ms);
      review.rawNumstat.push(rawNumstat.ms);
      capture.push(work.ms);
    }
  }

  // What the agent left uncommitted: captured as a commit on top of its own, then synced with the rest.
  note(`sync: the agent leaves ${SYNC_FILES} files changed, uncommitted`);
  await agentExec(ws, s.name, AGENT_UNCOMMITTED_SCRIPT);
  const uncommitted = { capture: [] as number[], rawCapture: [] as number[], squash: [] as number[], rawSquash: [] as number[] };
  const squash = SYNC_CASES.find((c) => c.key === 'squash')!;
  const tmp = await fs.mkdtemp(path.join(ws.tmp, 'capture-'));
  for (let i = 0; i <= SYNC_REPEATS; i++) {
    const counted = i > 0;
    note(`sync of uncommitted work: ${counted ? `run ${i}/${SYNC_REPEATS}` : 'warm-up'}`);
    const ours = await timed(() => bounded('Sandboxes.agentWork', ws.sandboxes.agentWork(s.name), SYNC_TIMEOUT_MS));
    check(ours.value.uncommitted && ours.value.head === s.head, `Sandboxes.agentWork did not capture the uncommitted work: ${JSON.stringify(ours.value)}`);
    const oursTree = (await gitIn(s.root, ['rev-parse', `${ours.value.tip}^{tree}`])).stdout.trim();
    const raw = await timed(async () => {
      const tree = await rawCapture(s, tmp);
      const commit = await run('git', ['-C', s.root, 'commit-tree', tree, '-p', s.head, '-m', `Uncommitted work in sandbox ${s.name}`]);
      return { tree, commit: commit.stdout.trim() };
    });
    check(raw.value.tree === oursTree, `Sandboxes.agentWork captured the tree ${oursTree}, git add -A + write-tree ${raw.value.tree}`);
    const changed = lines((await gitIn(s.root, ['diff-tree', '-r', '--name-only', s.head, oursTree])).stdout).length;
    check(changed === SYNC_FILES, `the captured uncommitted work changes ${changed} files, not ${SYNC_FILES}`);

    await resetWorkspace(s, s.moved);
    const oursSquash = await timed(() => bounded('Sandboxes.sync(squash)', ws.sandboxes.sync(s.name, { mode: 'squash' }), SYNC_TIMEOUT_MS));
    checkSyncResult(oursSquash.value, squash, 'Sandboxes.sync --mode squash (uncommitted)');
    const oursOutcome = await syncOutcome(s, squash, s.moved, '', true, 'Sandboxes.sync (squash, uncommitted)', true);
    await resetWorkspace(s, s.moved);
    const rawSquash = await timed(async () => {
      const tree = await rawCapture(s, tmp);
      await sh('git diff --binary "$1" "$2" | git apply', s.root, s.base, tree);
    });
    checkSameOutcome(oursOutcome, await syncOutcome(s, squash, s.moved, '', true, 'raw squash (uncommitted)', false), 'Sandboxes.sync (squash, uncommitted)');

    if (counted) {
      uncommitted.capture.push(ours.ms);
      uncommitted.rawCapture.push(raw.ms);
      uncommitted.squash.push(oursSquash.ms);
      uncommitted.rawSquash.push(rawSquash.ms);
    }
  }
  await fs.rm(tmp, { recursive: true, force: true });
  await resetWorkspace(s, s.moved);
  await bounded(`Sandboxes.remove(${s.name})`, ws.sandboxes.remove(s.name, { force: true }));
  note(`sync: ${fmt(syncUntimedMs / 1000)} s of the part went to resets and checks between the runs`);

  return {
    files: SYNC_FILES,
    commits: SYNC_COMMITS,
    repeats: SYNC_REPEATS,
    agentMs,
    modes,
    review: syncRow('review: changedFiles (the view)', 'git diff --name-status BASE sandbox/NAME', review.inProcess, review.raw),
    reviewWithLineCounts: syncRow('  against git diff --numstat', 'git diff --numstat BASE sandbox/NAME', review.inProcess, review.rawNumstat),
    capture: stats(capture),
    uncommitted: {
      capture: syncRow('capture (agentWork)', 'cp index; git add -A; git write-tree; git commit-tree (a temp index, in the worktree)', uncommitted.capture, uncommitted.rawCapture),
      squash: syncRow('squash, uncommitted included', 'the capture above, then git diff --binary BASE TREE | git apply', uncommitted.squash, uncommitted.rawSquash),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// 5. up with an egress allowlist.

interface EgressResults {
  runs: number;
  allowlist: Stats;
  nat: Stats;
  raw: Stats;
  ratioToNat: number;
  ratioToRaw: number;
}

async function benchEgress(ws: Workspace, image: string, runs: number, rawPrefix: string): Promise<EgressResults> {
  const allowlist: number[] = [];
  const nat: number[] = [];
  const raw: number[] = [];
  // Iteration 0 warms up (and builds the proxy's image) and is not counted.
  for (let i = 0; i <= runs; i++) {
    note(`egress: ${i > 0 ? `run ${i}/${runs}` : 'warm-up'}`);
    const allowed = await timed(() => cli(ws, ['up', `e${i}`, '--agent', 'egress'], 5 * STEP_TIMEOUT_MS));
    const agent = await expectRunning(ws.sandboxes.containerName(`e${i}`), `agent-sandbox up e${i}`);
    const forwarder = await expectRunning(`${ws.sandboxes.containerName(`e${i}`)}-egress-net`, `the forwarder of e${i}`);
    // The engine records the namespace's owner by id.
    check(agent.HostConfig.NetworkMode === `container:${forwarder.Id}`, `e${i} is not in its forwarder's network: ${agent.HostConfig.NetworkMode}`);
    await expectRunning(`${ws.sandboxes.containerName(`e${i}`)}-egress-proxy`, `the proxy of e${i}`);
    await cli(ws, ['rm', '--force', `e${i}`]);
    const plain = await timed(() => cli(ws, ['up', `n${i}`, '--agent', 'nat']));
    await expectRunning(ws.sandboxes.containerName(`n${i}`), `agent-sandbox up n${i}`);
    await cli(ws, ['rm', '--force', `n${i}`]);
    const floor = { worktree: path.join(ws.tmp, 'raw-egress', `raw-${i}`), branch: `raw-nat/${i}`, container: `${rawPrefix}nat-${i}` };
    const rawUp = await timed(() =>
      startRawFloor(ws, floor, ['--init', '--memory', '256m', '--cpus', '1', '--pids-limit', '256', '--network', 'bridge', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '1000:1000', '--volume', `${floor.worktree}:/workspace:rw`, image, 'sh', '-c', 'sleep 600']),
    );
    await expectRunning(floor.container, 'docker run');
    // All of the floor, not only its container: its worktree and branch would be left to the parts after this one.
    await removeRawFloor(ws, floor);
    if (i > 0) {
      allowlist.push(allowed.ms);
      nat.push(plain.ms);
      raw.push(rawUp.ms);
    }
  }
  return { runs, allowlist: stats(allowlist), nat: stats(nat), raw: stats(raw), ratioToNat: round(median(allowlist) / median(nat), 2), ratioToRaw: round(median(allowlist) / median(raw), 2) };
}

function reportEgress(e: EgressResults): string {
  return table(
    [
      ['5. up with an egress allowlist (ms)', 'median', 'p90', 'min', 'max', 'vs raw'],
      ['agent-sandbox up, allow = [...]', fmt(e.allowlist.medianMs), fmt(e.allowlist.p90Ms), fmt(e.allowlist.minMs), fmt(e.allowlist.maxMs), ratioText(e.ratioToRaw)],
      ['agent-sandbox up, the same on plain NAT', fmt(e.nat.medianMs), fmt(e.nat.p90Ms), fmt(e.nat.minMs), fmt(e.nat.maxMs), ratioText(round(e.nat.medianMs / e.raw.medianMs, 2))],
      ['raw: git worktree add + docker run -d (NAT)', fmt(e.raw.medianMs), fmt(e.raw.p90Ms), fmt(e.raw.minMs), fmt(e.raw.maxMs), '1.00x'],
    ],
    (i) => i > 0,
  ) + `\nthe allowlist costs ${ratioText(e.ratioToNat)} the same up on plain NAT (two more containers, a volume, the wait until the forwarder listens)`;
}

// ---------------------------------------------------------------------------------------------------------

interface Summary {
  date: string;
  host: { cpus: number; node: string; docker: string; platform: string };
  /** The parts that ran (BENCH_ONLY), when not all of them. */
  only?: Part[];
  totalSeconds: number;
  /** How long each part took, set-up and checks included. */
  partSeconds: Partial<Record<Part, number>>;
  image: { ref: string; builtByBench: boolean; buildMs: number };
  up?: UpResults;
  logs?: LogResults;
  parallel?: ParallelResults;
  sync?: SyncResults;
  egress?: EgressResults;
}

function reportUp(up: UpResults): string {
  const aim = (ok: boolean) => (ok ? 'met' : 'NOT met');
  return [
    table(
      [
        ['1. up, cached image (ms)', 'median', 'p90', 'min', 'max', 'vs raw'],
        ['agent-sandbox up (spawned CLI)', fmt(up.cli.medianMs), fmt(up.cli.p90Ms), fmt(up.cli.minMs), fmt(up.cli.maxMs), ratioText(up.ratioCli)],
        ['Sandboxes.open + up (in process)', fmt(up.inProcess.medianMs), fmt(up.inProcess.p90Ms), fmt(up.inProcess.minMs), fmt(up.inProcess.maxMs), ratioText(up.ratioInProcess)],
        ['raw: git worktree add + docker run -d', fmt(up.raw.medianMs), fmt(up.raw.p90Ms), fmt(up.raw.minMs), fmt(up.raw.maxMs), '1.00x'],
        ['  (inside up: image up-to-date check)', fmt(up.imageCheck.medianMs), fmt(up.imageCheck.p90Ms), fmt(up.imageCheck.minMs), fmt(up.imageCheck.maxMs), ''],
      ],
      (i) => i > 0,
    ),
    `aim: up within ${AIM_RATIO}x of the raw floor (median): CLI ${ratioText(up.ratioCli)} ${aim(up.cliWithinAim)}, in process ${ratioText(up.ratioInProcess)} ${aim(up.inProcessWithinAim)}`,
  ].join('\n');
}

function reportLogs(lg: LogResults): string {
  const mb = (lg.bytes / 1e6).toFixed(1);
  return [
    table(
      [
        [`2. logs --follow, ${lg.lines.toLocaleString('en-US')} lines (${mb} MB)`, 'ms', 'lines/s', 'MB/s', 'vs docker', 'lag'],
        ['finished agent: agent-sandbox logs --follow', fmt(lg.finished.cli.ms), lg.finished.cli.linesPerSec.toLocaleString('en-US'), lg.finished.cli.mbPerSec.toFixed(2), ratioText(lg.finished.ratio), ''],
        ['finished agent: docker logs -f', fmt(lg.finished.docker.ms), lg.finished.docker.linesPerSec.toLocaleString('en-US'), lg.finished.docker.mbPerSec.toFixed(2), '1.00x', ''],
        ['running agent:  agent-sandbox logs --follow', fmt(lg.live.cliMedian.ms), lg.live.cliMedian.linesPerSec.toLocaleString('en-US'), lg.live.cliMedian.mbPerSec.toFixed(2), ratioText(lg.live.ratio), `${fmt(lg.live.cliLagMedianMs)} ms`],
        ['running agent:  docker logs -f', fmt(lg.live.dockerMedian.ms), lg.live.dockerMedian.linesPerSec.toLocaleString('en-US'), lg.live.dockerMedian.mbPerSec.toFixed(2), '1.00x', `${fmt(lg.live.dockerLagMedianMs)} ms`],
      ],
      (i) => i > 0,
    ),
    `finished: median of ${LOG_REPEATS}, from spawn to exit. running: median of ${LIVE_REPEATS}, from the first byte to exit (the agent waits ${SPEW_DELAY_S} s, then prints); lag: exit after the agent's end.`,
  ].join('\n');
}

function reportParallel(p: ParallelResults): string {
  return table(
    [
      [`3. ${p.count} sandboxes (spawned CLI ups)`, 'wall ms', 'per sandbox'],
      [`${p.count} ups in a row`, fmt(p.sequentialMs), fmt(p.sequentialMs / p.count)],
      [`${p.count} ups at once (Promise.all)`, fmt(p.concurrentMs), fmt(p.concurrentMs / p.count)],
      ['speed-up', `${p.speedup.toFixed(2)}x`, ''],
    ],
    (i) => i > 0,
  );
}

function reportSync(sy: SyncResults): string {
  const row = (label: string, r: SyncRow) => [
    label,
    fmt(r.inProcess.medianMs),
    fmt(r.inProcess.p90Ms),
    r.cli ? fmt(r.cli.medianMs) : '',
    fmt(r.rawStats.medianMs),
    ratioText(r.ratio),
    r.cliRatio !== undefined ? ratioText(r.cliRatio) : '',
  ];
  const files = sy.files.toLocaleString('en-US');
  const modes = SYNC_CASES.map((c) => row(sy.modes[c.key].label, sy.modes[c.key]));
  const c = sy.capture;
  return [
    table(
      [
        [`4. sync back, ${files} changed files (ms)`, 'in process', 'p90', 'CLI', 'raw git', 'vs raw', 'CLI vs raw'],
        ...modes,
        row(sy.review.label, sy.review),
        row(sy.reviewWithLineCounts.label, sy.reviewWithLineCounts),
        ['  (inside each: capturing the agent\'s work)', fmt(c.medianMs), fmt(c.p90Ms), '', '', '', ''],
        [`${files} files left uncommitted:`, '', '', '', '', '', ''],
        row(`  ${sy.uncommitted.capture.label}`, sy.uncommitted.capture),
        row(`  ${sy.uncommitted.squash.label}`, sy.uncommitted.squash),
      ],
      (i) => i > 0,
    ),
    `The agent changed ${(sy.files / 2).toLocaleString('en-US')} files and made ${(sy.files / 2).toLocaleString('en-US')} in ${sy.commits} commits (${fmt(sy.agentMs)} ms in its container). in process: Sandboxes.sync on`,
    `an open Sandboxes, so no Node start-up; CLI: agent-sandbox sync spawned (patch only: start-up is the same for every mode). Median of ${sy.repeats}`,
    'after a warm-up, each run from the same workspace (git reset --hard, git clean -fdq, outside the timed region) and checked against',
    'its floor\'s result. Raw floors, plain git in the same run:',
    ...SYNC_CASES.map((k) => `  ${k.key}: ${sy.modes[k.key].raw}`),
    `  review: ${sy.review.raw}; with the view's line counts: ${sy.reviewWithLineCounts.raw}`,
    `  uncommitted capture: ${sy.uncommitted.capture.raw}; squash: ${sy.uncommitted.squash.raw}`,
  ].join('\n');
}

function report(s: Summary): string {
  const runs = s.up ? `, ${s.up.runs} runs` : '';
  const only = s.only ? ` (BENCH_ONLY: ${s.only.join(',')})` : '';
  const seconds = Object.entries(s.partSeconds).map(([part, sec]) => `${part} ${sec.toFixed(0)} s`).join(', ');
  const parts = [
    s.up && reportUp(s.up),
    s.logs && reportLogs(s.logs),
    s.parallel && reportParallel(s.parallel),
    s.sync && reportSync(s.sync),
    s.egress && reportEgress(s.egress),
  ].filter((p): p is string => Boolean(p));
  return [
    `Agent Sandboxes benchmark${only}: ${s.host.cpus} CPUs, Docker ${s.host.docker}, Node ${s.host.node}${runs}, ${s.totalSeconds.toFixed(0)} s in all (${seconds})`,
    `image ${s.image.ref} (${s.image.builtByBench ? `built in ${fmt(s.image.buildMs)} ms as the warm-up` : 'already built'})`,
    '',
    ...parts.flatMap((p) => [p, '']),
  ].join('\n');
}

/**
 * Removes every container and egress volume the benchmark made and the temp directory (the repository, its worktrees and
 * branches). The image stays: its tag is a digest of the Dockerfile and context, the same for every run of
 * the benchmark and of the integration tests (which may be using it right now), so it is a cache.
 */
async function cleanUp(ws: Workspace | undefined, rawPrefix: string): Promise<void> {
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
    if (ws) {
      await attempt('listing sandbox containers', async () => {
        for (const id of (await docker(['ps', '-aq', '--filter', `label=${WORKSPACE_LABEL}=${ws.root}`])).stdout.split('\n')) if (id.trim()) ids.add(id.trim());
      });
    }
    await attempt('listing raw containers', async () => {
      for (const id of (await docker(['ps', '-aq', '--filter', `name=${rawPrefix}`])).stdout.split('\n')) if (id.trim()) ids.add(id.trim());
    });
    if (ws) {
      await attempt('listing egress containers', async () => {
        for (const id of (await docker(['ps', '-aq', '--filter', `label=${EGRESS_WORKSPACE_LABEL}=${ws.root}`])).stdout.split('\n')) if (id.trim()) ids.add(id.trim());
      });
    }
    if (ids.size > 0) await attempt('removing containers', () => docker(['rm', '-f', '-v', ...ids], 2 * STEP_TIMEOUT_MS));
    if (ws) {
      // The egress volume is a named one, which docker rm -v leaves.
      await attempt('removing egress volumes', async () => {
        const volumes = (await docker(['volume', 'ls', '-q', '--filter', `label=${EGRESS_WORKSPACE_LABEL}=${ws.root}`])).stdout.split('\n').map((v) => v.trim()).filter(Boolean);
        if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]);
      });
    }
    if (ws) await attempt(`removing ${ws.tmp}`, () => fs.rm(ws.tmp, { recursive: true, force: true, maxRetries: 3 }));
  } finally {
    abortReason = saved;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, parallel: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: [BENCH_ONLY=${PARTS.join(',')}] node out/test/bench/bench.js [--runs N (default 10)] [--parallel N (default 10)]\n`);
    return;
  }
  const only = selectedParts();
  const wanted = (part: Part) => !only || only.includes(part);
  if (!PARTS.some((part) => part !== 'activation' && wanted(part))) return;
  const runs = Number(values.runs ?? 10);
  const parallel = Number(values.parallel ?? 10);
  check(Number.isInteger(runs) && runs >= 1 && runs <= 100, `--runs takes a whole number from 1 to 100, not ${values.runs}`);
  check(Number.isInteger(parallel) && parallel >= 2 && parallel <= 20, `--parallel takes a whole number from 2 to 20, not ${values.parallel}`);
  await fs.access(CLI).catch(() => {
    throw new BenchError(`${CLI} is missing: build it first (npm run build), or run npm run bench`);
  });

  const started = process.hrtime.bigint();
  const limit = setTimeout(() => abortAll(`the benchmark ran longer than ${TIME_LIMIT_MS / 60_000} minutes`), TIME_LIMIT_MS);
  const onSignal = () => abortAll('interrupted');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rawPrefix = `agent-sandbox-bench-raw-${process.pid}-`;
  let ws: Workspace | undefined;
  try {
    const dockerVersion = (await docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
    note('making the workspace');
    ws = await makeWorkspace();

    note('building the image (warm-up)');
    const build = await timed(() => cli(ws!, ['build', '--agent', 'bench', '--json'], 5 * STEP_TIMEOUT_MS));
    const image = JSON.parse(build.value.stdout) as { ref: string; changed: boolean };
    check(typeof image.ref === 'string' && image.ref.length > 0, `agent-sandbox build printed no image: ${build.value.stdout}`);
    check((await docker(['image', 'inspect', image.ref], STEP_TIMEOUT_MS, true)).code === 0, `the image ${image.ref} is not there after the build`);

    const partSeconds: Summary['partSeconds'] = {};
    const part = async <T>(name: Part, work: () => Promise<T>): Promise<T | undefined> => {
      if (!wanted(name)) return undefined;
      const r = await timed(async () => {
        const value = await work();
        // What the part made is gone before the next part starts: a leftover fails the part that left it.
        await assertClean(ws!, rawPrefix, `the ${name} part`);
        return value;
      });
      partSeconds[name] = round(r.ms / 1000);
      return r.value;
    };
    const up = await part('up', () => benchUp(ws!, image.ref, runs, rawPrefix));
    const logs = await part('logs', () => benchLogs(ws!));
    const parallelResults = await part('parallel', () => benchParallel(ws!, parallel, rawPrefix));
    // Last: it adds lib/ and commits to the workspace's branch, which the parts above must not see.
    const egress = await part('egress', () => benchEgress(ws!, image.ref, Math.min(runs, 5), rawPrefix));
    const sync = await part('sync', () => benchSync(ws!));

    const summary: Summary = {
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, node: process.version, docker: dockerVersion, platform: `${os.platform()} ${os.release()}` },
      ...(only ? { only } : {}),
      totalSeconds: round(msBetween(started, process.hrtime.bigint()) / 1000),
      partSeconds,
      image: { ref: image.ref, builtByBench: image.changed, buildMs: round(build.ms) },
      up,
      logs,
      parallel: parallelResults,
      sync,
      egress,
    };
    // A partial run does not replace the full run's summary.
    const artifact = only ? ARTIFACT.replace(/\.json$/, `-${only.join('-')}.json`) : ARTIFACT;
    await fs.mkdir(path.dirname(artifact), { recursive: true });
    await fs.writeFile(artifact, `${JSON.stringify(summary, null, 2)}\n`);
    process.stdout.write(`\n${report(summary)}\n`);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    note(`summary written to ${path.relative(process.cwd(), artifact) || artifact}`);
  } finally {
    clearTimeout(limit);
    note('cleaning up');
    await cleanUp(ws, rawPrefix);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
  if (!(error instanceof BenchError) && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
