/**
 * Part 4: sync back of 5,000 files an agent changed, in every mode, in process (Sandboxes.sync) and through
 * the CLI, against the plain git commands that do the same (git merge, git diff | git apply, git cherry-pick,
 * git diff > file); the view's list of changed files against git diff --name-status; and the capture of
 * 5,000 files the agent left uncommitted against git add -A + write-tree on a temporary index.
 *
 * It adds lib/ and commits to the workspace's branch, which the other parts must not see: it runs last.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type { SyncMode, SyncResult } from '../../src/core/git/sync';
import type { Stats, Workspace } from './common';
import { STEP_TIMEOUT_MS, bounded, check, cli, fmt, note, ratio, ratioText, removeSandbox, round, run, stats, table, timed } from './common';

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

export interface SyncResults {
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
    ratio: ratio(ours.medianMs, floor.medianMs),
    ...(viaCli ? { cliRatio: ratio(viaCli.medianMs, floor.medianMs) } : {}),
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

export async function benchSync(ws: Workspace): Promise<SyncResults> {
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
  await removeSandbox(ws, s.name);
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

export function reportSync(sy: SyncResults): string {
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
