import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SyncResult } from '../../src/core/git/sync';
import { cleanUp, cli, cliOk, git, makeRepo, tomlWith } from './helpers';

after(cleanUp);

/*
 * Sync back, end to end: a real agent in a real container commits some changes and leaves others
 * uncommitted, then the real CLI brings them into the user's workspace in every mode. Every test checks the
 * exact files that result (content, executable bit, link target, absence) and that the user's own work is
 * intact; every refused sync checks that the workspace is exactly as it was.
 */

// ---------------------------------------------------------------------------------------------------------
// Trees: what a folder holds, as readable strings, so that a failed comparison shows the difference.

/** Path → `file 644 "content"`, `file 755 hex:…`, `link -> target` or `dir`. */
type Tree = Record<string, string>;
type Changes = Record<string, string | null>;

const DIR = 'dir';

function render(content: Buffer): string {
  if (content.length > 256) return `${content.length} bytes, sha256 ${createHash('sha256').update(content).digest('hex')}`;
  const text = content.toString('utf8');
  if (!content.includes(0) && Buffer.from(text, 'utf8').equals(content)) return JSON.stringify(text);
  return `hex:${content.toString('hex')}`;
}

function file(content: string | Buffer, executable = false): string {
  return `file ${executable ? '755' : '644'} ${render(Buffer.isBuffer(content) ? content : Buffer.from(content))}`;
}

function link(target: string): string {
  return `link -> ${target}`;
}

function sorted(tree: Tree): Tree {
  return Object.fromEntries(Object.entries(tree).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Everything under `root` but `.git` and the test image's build context (`.sandbox`, which no agent here
 * touches). Modes are git's (644 or 755) unless `fullMode`; folders are listed unless `dirs` is false.
 */
async function readTree(root: string, options: { fullMode?: boolean; dirs?: boolean; withContext?: boolean } = {}): Promise<Tree> {
  const tree: Tree = {};
  const visit = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      if (p === '.git' || (p === '.sandbox' && !options.withContext)) continue;
      const abs = path.join(root, p);
      const stat = await fs.lstat(abs);
      if (stat.isSymbolicLink()) {
        tree[p] = link(await fs.readlink(abs));
      } else if (stat.isDirectory()) {
        if (options.dirs !== false) tree[p] = options.fullMode ? `dir ${(stat.mode & 0o7777).toString(8)}` : DIR;
        await visit(p);
      } else if (stat.isFile()) {
        const content = await fs.readFile(abs);
        tree[p] = options.fullMode ? `file ${(stat.mode & 0o7777).toString(8)} ${render(content)}` : file(content, (stat.mode & 0o111) !== 0);
      } else {
        tree[p] = `special ${stat.mode.toString(8)}`;
      }
    }
  };
  await visit('');
  return sorted(tree);
}

/** `tree` with its folders: those that hold something. */
function withDirs(files: Tree): Tree {
  const tree: Tree = {};
  for (const [p, entry] of Object.entries(files)) {
    if (entry === DIR) continue;
    tree[p] = entry;
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) tree[parts.slice(0, i).join('/')] = DIR;
  }
  return sorted(tree);
}

/** `base` with `changes` made (null: the path is gone), folders following their files. */
function applyChanges(base: Tree, ...changes: Changes[]): Tree {
  const files: Tree = {};
  for (const [p, entry] of Object.entries(base)) if (entry !== DIR) files[p] = entry;
  for (const change of changes) {
    for (const [p, entry] of Object.entries(change)) {
      if (entry === null) delete files[p];
      else files[p] = entry;
    }
  }
  return withDirs(files);
}

function withoutDirs(tree: Tree): Tree {
  return Object.fromEntries(Object.entries(tree).filter(([, entry]) => entry !== DIR));
}

// ---------------------------------------------------------------------------------------------------------
// The workspace: a full snapshot, to prove that a refused sync changed nothing at all.

interface Snapshot {
  head: string;
  branch: string;
  main: string;
  stash: string;
  index: string;
  status?: string;
  inProgress: string[];
  files: Tree;
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** HEAD, the index, `git status` and the bytes and mode of every file (the build context too). */
async function snapshot(repo: string, options: { status?: boolean } = {}): Promise<Snapshot> {
  const inProgress: string[] = [];
  for (const marker of ['MERGE_HEAD', 'CHERRY_PICK_HEAD', 'REVERT_HEAD', 'sequencer', 'rebase-merge', 'rebase-apply']) {
    if (await exists(path.join(repo, '.git', marker))) inProgress.push(marker);
  }
  return {
    head: git(repo, 'rev-parse', 'HEAD'),
    branch: git(repo, 'symbolic-ref', 'HEAD'),
    main: git(repo, 'rev-parse', 'refs/heads/main'),
    stash: git(repo, 'for-each-ref', 'refs/stash'),
    index: rawGit(repo, 'ls-files', '-s', '-z'),
    // `git status` may rewrite the index's stat cache, which the racy-edit test must not have happen early.
    status: options.status === false ? undefined : rawGit(repo, 'status', '--porcelain=v1', '-z', '--untracked-files=all'),
    inProgress,
    files: await readTree(repo, { fullMode: true, withContext: true }),
  };
}

/** git's output as it is (the `git` helper trims it, and with it the status code of a first ` M` line). */
function rawGit(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'safe.directory=*', ...args], { cwd, encoding: 'utf8' });
}

/** `git status --porcelain` entries, sorted: `XY path`. */
function status(repo: string): string[] {
  return rawGit(repo, 'status', '--porcelain=v1', '-z', '--untracked-files=all')
    .split('\0')
    .filter(Boolean)
    .sort();
}

/** Puts the user's branch and working tree back as they were at `commit`, between tests. */
function resetWorkspace(repo: string, commit: string): void {
  for (const abort of [['cherry-pick', '--quit'], ['merge', '--quit']]) {
    try {
      git(repo, ...abort);
    } catch {
      // Nothing under way.
    }
  }
  git(repo, 'checkout', '-q', '-f', 'main');
  git(repo, 'reset', '-q', '--hard', commit);
  // Not the build context: its empty folders (which git does not track) are part of the image's identity.
  git(repo, 'clean', '-fdxq', '-e', '/.sandbox');
}

// ---------------------------------------------------------------------------------------------------------
// The CLI.

async function sync(repo: string, name: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string; result: SyncResult }> {
  const run = await cli(['sync', name, '--json', ...args], { cwd: repo });
  if (run.code !== 0 && run.code !== 3) throw new Error(`agent-sandbox sync ${name} ${args.join(' ')} exited ${run.code}:\n${run.stderr}${run.stdout}`);
  return { ...run, result: JSON.parse(run.stdout) as SyncResult };
}

/** A sync that must fail (exit 1), say `patterns` and leave the workspace exactly as `before`. */
async function refused(repo: string, name: string, args: string[], patterns: RegExp[], before: Snapshot): Promise<string> {
  const run = await cli(['sync', name, ...args], { cwd: repo });
  assert.equal(run.code, 1, `sync ${args.join(' ')} should fail: ${run.stdout}${run.stderr}`);
  for (const pattern of patterns) assert.match(run.stderr, pattern, `sync ${args.join(' ')}`);
  assert.deepEqual(await snapshot(repo, { status: before.status !== undefined }), before, `sync ${args.join(' ')} changed the workspace`);
  return run.stderr;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A regular expression that finds every one of `files` named in a message. */
function names(...files: string[]): RegExp[] {
  return files.map((f) => new RegExp(escape(f)));
}

async function worktreeOf(repo: string, name: string): Promise<string> {
  const list = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout) as Array<{ name: string; worktree: string }>;
  return list.find((s) => s.name === name)!.worktree;
}

async function tempDir(): Promise<string> {
  return fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-sync-')));
}

const tempDirs: string[] = [];
after(async () => {
  for (const dir of tempDirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A fresh checkout of `commit` of `repo` (its own clone, so the user's repository is not touched). */
async function cleanCheckout(repo: string, commit: string): Promise<string> {
  const dir = await tempDir();
  tempDirs.push(dir);
  const checkout = path.join(dir, 'checkout');
  git(dir, 'clone', '-q', '--no-checkout', repo, checkout);
  git(checkout, 'checkout', '-q', '--detach', commit);
  return checkout;
}

/** What applying `patch` with plain `git apply` to a clean checkout of `base` gives. */
async function applyPatch(repo: string, base: string, patch: string): Promise<Tree> {
  const checkout = await cleanCheckout(repo, base);
  git(checkout, 'apply', patch);
  return readTree(checkout);
}

function lines(prefix: string, count: number, replaced: Record<number, string> = {}): string {
  return Array.from({ length: count }, (_, i) => replaced[i + 1] ?? `${prefix}${i + 1}`).join('\n') + '\n';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until just after the next second of the clock starts. */
function nextSecond(): Promise<void> {
  return sleep(1000 - (Date.now() % 1000) + 5);
}

function keys(changes: Changes): string[] {
  return Object.keys(changes).sort();
}

function subjects(repo: string, range: string): string[] {
  return git(repo, 'log', '--reverse', '--format=%s', range).split('\n').filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------------
// The rich sandbox: every kind of change, some committed in two commits, some left uncommitted.

const RENAMED = 'a file that the agent renames\ninto another folder\nwith git mv, and commits\n';
const MOVED = 'a file that the agent moves\nwith plain mv\nand leaves uncommitted\n';
const TOOL = '#!/bin/sh\necho tool\n';
const RUN = '#!/bin/sh\necho run\n';
const BASE_BIN = Buffer.from([0, 1, 2, 3, 0xff, 0x62, 0x61, 0x73, 0x65, 0x0a]);
const AGENT_BIN = Buffer.from([0, 1, 0x61, 0x67, 0x65, 0x6e, 0x74, 0xff, 0xfe, 0x0a]);
const NEW_BIN = Buffer.from([0xff, 0, 0x0d, 0x0a, 0x01]);

const BASE_FILES: Record<string, string> = {
  '.gitignore': '*.log\n',
  'keep.txt': 'keep\n',
  'edit.txt': lines('line ', 10),
  'shared.txt': lines('s', 20),
  'gone.txt': 'delete me\n',
  'gone2.txt': 'delete me too\n',
  'old dir/old name.txt': RENAMED,
  'move me.txt': MOVED,
  'tool.sh': TOOL,
  'run.sh': RUN,
  'loose.txt': 'loose\n',
};

/** The agent's first commit: a modification, a deletion, a rename into a new folder, a non-ASCII file, a link. */
const C1: Changes = {
  'edit.txt': file(lines('line ', 10, { 2: 'line 2 by agent' })),
  'gone.txt': null,
  'old dir/old name.txt': null,
  'sub dir/new name.txt': file(RENAMED),
  '日本語 ファイル.txt': file('konnichiwa\n'),
  'link to edit': link('edit.txt'),
};
/** Its second commit: a line of a file the user will change elsewhere too, a binary file, the executable bit. */
const C2: Changes = {
  'shared.txt': file(lines('s', 20, { 3: 's3 by agent' })),
  'bin.dat': file(AGENT_BIN),
  'tool.sh': file(TOOL, true),
};
/** What it leaves uncommitted: tracked and untracked, a move git does not know of, links, bits, binaries. */
const UNCOMMITTED: Changes = {
  'loose.txt': file('loose, changed by the agent\n'),
  'gone2.txt': null,
  'move me.txt': null,
  'moved/ü moved.txt': file(MOVED),
  'run.sh': file(RUN, false),
  latest: link('edit.txt'),
  'untracked.txt': file('untracked by agent\n'),
  'données/été.txt': file('été\n'),
  'new.bin': file(NEW_BIN),
  'bin/new tool.sh': file('#!/bin/sh\necho new\n', true),
  'dir link': link('données'),
  'glob [x] *?.txt': file('a name git would read as a pattern\n'),
};
const AGENT: Changes = { ...C1, ...C2, ...UNCOMMITTED };
/** Every path the agent changed (both sides of each rename). */
const AGENT_PATHS = keys(AGENT);

const RICH_SCRIPT = String.raw`set -e
sed -i 's/^line 2$/line 2 by agent/' edit.txt
git rm -q gone.txt
mkdir -p 'sub dir'
git mv 'old dir/old name.txt' 'sub dir/new name.txt'
printf 'konnichiwa\n' > '日本語 ファイル.txt'
ln -s edit.txt 'link to edit'
git add -A
git commit -q -m 'agent: edit, delete, rename, add'
sed -i 's/^s3$/s3 by agent/' shared.txt
printf '\000\001agent\377\376\n' > bin.dat
chmod +x tool.sh
git add -A
git commit -q -m 'agent: shared, binary, exec bit'
printf 'loose, changed by the agent\n' > loose.txt
rm gone2.txt
mkdir -p moved
mv 'move me.txt' 'moved/ü moved.txt'
chmod -x run.sh
rm latest
ln -s edit.txt latest
printf 'untracked by agent\n' > untracked.txt
mkdir -p données
printf 'été\n' > 'données/été.txt'
printf '\377\000\r\n\001' > new.bin
mkdir -p bin
printf '#!/bin/sh\necho new\n' > 'bin/new tool.sh'
chmod +x 'bin/new tool.sh'
ln -s données 'dir link'
printf 'a name git would read as a pattern\n' > 'glob [x] *?.txt'
printf 'ignored by git\n' > agent.log
`;

const AGENT_SUBJECTS = ['agent: edit, delete, rename, add', 'agent: shared, binary, exec bit', 'Uncommitted work in sandbox rich'];

/** The user's own uncommitted work that the agent's changes do not touch: modified, untracked and ignored. */
const USER_AROUND: Changes = {
  'keep.txt': file('keep, changed by the user\n'),
  'mine.txt': file('my own new file\n'),
  'user.log': file('my ignored log\n'),
};

async function writeChanges(root: string, changes: Record<string, string | Buffer | null>): Promise<void> {
  for (const [p, content] of Object.entries(changes)) {
    const abs = path.join(root, p);
    if (content === null) await fs.rm(abs, { force: true });
    else {
      await fs.mkdir(path.dirname(abs), { recursive: true });
      await fs.writeFile(abs, content);
    }
  }
}

async function makeUserChanges(repo: string): Promise<void> {
  await writeChanges(repo, { 'keep.txt': 'keep, changed by the user\n', 'mine.txt': 'my own new file\n', 'user.log': 'my ignored log\n' });
}

describe('sync back: an agent that committed some changes and left others uncommitted', () => {
  let repo: string;
  let base: string;
  /** main after the user committed other files and another line of shared.txt, once the sandbox was up. */
  let moved: string;
  /** main after the user committed another version of the line of edit.txt that the agent changed. */
  let conflicting: string;
  let baseTree: Tree;
  let agentTree: Tree;
  let worktree: string;
  const userMoved: Changes = {
    'shared.txt': file(lines('s', 20, { 18: 's18 by user' })),
    'user file.txt': file('committed by the user after up\n'),
  };
  const userConflict: Changes = { 'edit.txt': file(lines('line ', 10, { 2: 'line 2 by user' })) };

  before(async () => {
    repo = await makeRepo(tomlWith(RICH_SCRIPT), BASE_FILES);
    await fs.writeFile(path.join(repo, 'bin.dat'), BASE_BIN);
    await fs.chmod(path.join(repo, 'run.sh'), 0o755);
    await fs.symlink('keep.txt', path.join(repo, 'latest'));
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'base: a binary file, an executable, a link');
    base = git(repo, 'rev-parse', 'HEAD');
    baseTree = await readTree(repo);
    agentTree = applyChanges(baseTree, AGENT);

    const up = await cli(['up', 'rich', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
    worktree = await worktreeOf(repo, 'rich');

    // The user moves on after `up`: other files, and a line of shared.txt far from the agent's.
    await writeChanges(repo, { 'shared.txt': lines('s', 20, { 18: 's18 by user' }), 'user file.txt': 'committed by the user after up\n' });
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'user: after up');
    moved = git(repo, 'rev-parse', 'HEAD');
    resetWorkspace(repo, base);
    await writeChanges(repo, { 'edit.txt': lines('line ', 10, { 2: 'line 2 by user' }) });
    git(repo, 'commit', '-q', '-am', 'user: the same line as the agent');
    conflicting = git(repo, 'rev-parse', 'HEAD');
    // Kept reachable, so that nothing collects them while the tests run.
    git(repo, 'branch', 'user-moved', moved);
    git(repo, 'branch', 'user-conflicting', conflicting);
    resetWorkspace(repo, base);
  });

  test('the agent worktree holds exactly what the agent did (the premise of every other test)', async () => {
    const files = withoutDirs(await readTree(worktree, { dirs: false }));
    assert.deepEqual(files, sorted({ ...withoutDirs(agentTree), 'agent.log': file('ignored by git\n') }));
    assert.deepEqual(subjects(repo, `${base}..sandbox/rich`), AGENT_SUBJECTS.slice(0, 2));
  });

  test('diff prints the unified diff of all the agent did, uncommitted and untracked files included; --stat and --files', async () => {
    resetWorkspace(repo, base);
    const before = await snapshot(repo);
    const diff = (await cliOk(['diff', 'rich'], { cwd: repo })).stdout;
    const expected = [
      'diff --git a/edit.txt b/edit.txt',
      '-line 2\n+line 2 by agent\n',
      'diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644',
      'rename from old dir/old name.txt\nrename to sub dir/new name.txt',
      'diff --git a/bin.dat b/bin.dat\nindex ',
      'Binary files a/bin.dat and b/bin.dat differ',
      'diff --git a/tool.sh b/tool.sh\nold mode 100644\nnew mode 100755',
      // Uncommitted: a modification, a deletion, a move, a mode, a retargeted link, untracked files.
      'diff --git a/loose.txt b/loose.txt',
      '-loose\n+loose, changed by the agent\n',
      'diff --git a/gone2.txt b/gone2.txt\ndeleted file mode 100644',
      'rename from move me.txt\nrename to "moved/\\303\\274 moved.txt"',
      'diff --git a/run.sh b/run.sh\nold mode 100755\nnew mode 100644',
      'diff --git a/latest b/latest',
      '-keep.txt\n\\ No newline at end of file\n+edit.txt\n\\ No newline at end of file',
      'diff --git a/untracked.txt b/untracked.txt\nnew file mode 100644',
      '+untracked by agent\n',
      '+++ "b/donn\\303\\251es/\\303\\251t\\303\\251.txt"',
      'diff --git a/new.bin b/new.bin\nnew file mode 100644',
      'diff --git a/bin/new tool.sh b/bin/new tool.sh\nnew file mode 100755',
      'diff --git a/dir link b/dir link\nnew file mode 120000',
      '+++ "b/\\346\\227\\245\\346\\234\\254\\350\\252\\236 \\343\\203\\225\\343\\202\\241\\343\\202\\244\\343\\203\\253.txt"',
    ];
    for (const part of expected) assert.ok(diff.includes(part), `the diff lacks ${JSON.stringify(part)}:\n${diff}`);
    assert.doesNotMatch(diff, /agent\.log|keep\.txt b\/keep\.txt/, 'ignored and unchanged files are not in the diff');
    assert.equal(diff.split('\ndiff --git ').length, AGENT_PATHS.length - 2, 'one section per change, renames paired');

    const stat = (await cliOk(['diff', 'rich', '--stat'], { cwd: repo })).stdout;
    const statLines = stat.trimEnd().split('\n');
    assert.match(statLines.pop()!, /^ 19 files changed, \d+ insertions?\(\+\), \d+ deletions?\(-\)$/);
    assert.equal(statLines.length, 19);
    for (const name of ['edit.txt', 'gone.txt', 'bin.dat', 'untracked.txt', 'new.bin', 'dir link', 'run.sh', 'latest', 'loose.txt']) {
      assert.ok(statLines.some((l) => l.trimStart().startsWith(`${name} `)), `--stat lacks ${name}:\n${stat}`);
    }
    assert.ok(statLines.some((l) => /^ old dir\/old name\.txt => sub dir\/new name\.txt +\| +0$/.test(l) || /\{old dir => sub dir\}/.test(l)), stat);

    const only = (await cliOk(['diff', 'rich', '--files', 'edit.txt', 'untracked.txt'], { cwd: repo })).stdout;
    assert.deepEqual(
      [...only.matchAll(/^diff --git (.*)$/gm)].map((m) => m[1]),
      ['a/edit.txt b/edit.txt', 'a/untracked.txt b/untracked.txt'],
    );
    assert.deepEqual(await snapshot(repo), before, 'diff changes nothing');
  });

  test('squash: every change lands in the working tree, uncommitted, around the user\'s own work; a second squash has nothing to do', async () => {
    resetWorkspace(repo, base);
    await makeUserChanges(repo);
    const indexBefore = git(repo, 'ls-files', '-s');
    const { code, result } = await sync(repo, 'rich', '--mode', 'squash');
    assert.equal(code, 0);
    assert.deepEqual(result, { mode: 'squash', nothingToSync: false, files: AGENT_PATHS, conflicts: [], commits: [] });
    assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND));
    assert.equal(git(repo, 'rev-parse', 'HEAD'), base, 'squash commits nothing');
    assert.equal(git(repo, 'ls-files', '-s'), indexBefore, 'squash leaves the index alone');

    const before = await snapshot(repo);
    const again = await sync(repo, 'rich', '--mode', 'squash');
    assert.equal(again.code, 0);
    assert.deepEqual(again.result, { mode: 'squash', nothingToSync: true, files: [], conflicts: [], commits: [] });
    assert.deepEqual(await snapshot(repo), before);
  });

  test('merge: fast-forwards the user\'s branch to the agent\'s commits and its uncommitted work, around the user\'s own work', async () => {
    resetWorkspace(repo, base);
    await makeUserChanges(repo);
    const { code, result } = await sync(repo, 'rich', '--mode', 'merge');
    assert.equal(code, 0);
    assert.equal(result.fastForward, true);
    assert.deepEqual(result.files.slice().sort(), AGENT_PATHS);
    assert.deepEqual(result.conflicts, []);
    assert.equal(result.nothingToSync, false);
    assert.equal(git(repo, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
    assert.deepEqual(result.commits, git(repo, 'rev-list', '--reverse', `${base}..HEAD`).split('\n'));
    assert.deepEqual(subjects(repo, `${base}..HEAD`), AGENT_SUBJECTS);
    assert.equal(git(repo, 'rev-parse', 'HEAD~3'), base, 'no merge commit: a fast-forward');
    assert.equal(git(repo, 'rev-parse', 'HEAD~1'), git(repo, 'rev-parse', 'sandbox/rich'));
    assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND));
    assert.deepEqual(status(repo), [' M keep.txt', '?? mine.txt'], 'only the user\'s own changes are left uncommitted');

    const before = await snapshot(repo);
    // In a later second, the commit of the agent's uncommitted work is made anew with another id.
    await nextSecond();
    const again = await sync(repo, 'rich', '--mode', 'merge');
    assert.equal(again.code, 0);
    assert.equal(again.result.nothingToSync, true);
    assert.deepEqual(await snapshot(repo), before);
  });

  test('cherry-pick: replays the agent\'s commits one by one, its uncommitted work as the last; a second run has nothing to do', async () => {
    resetWorkspace(repo, base);
    await makeUserChanges(repo);
    const { code, result } = await sync(repo, 'rich', '--mode', 'cherry-pick');
    assert.equal(code, 0);
    assert.equal(result.nothingToSync, false);
    assert.deepEqual(result.conflicts, []);
    assert.deepEqual(result.files.slice().sort(), AGENT_PATHS);
    const picked = git(repo, 'rev-list', '--reverse', `${base}..HEAD`).split('\n');
    assert.deepEqual(result.commits, picked);
    assert.deepEqual(subjects(repo, `${base}..HEAD`), AGENT_SUBJECTS);
    // One by one: each replayed commit holds exactly what its original held, by the agent.
    const changedIn = (commit: string) => git(repo, 'diff-tree', '-r', '--no-renames', '--name-only', '-z', `${commit}~1`, commit).split('\0').filter(Boolean).sort();
    assert.deepEqual(picked.map(changedIn), [keys(C1), keys(C2), keys(UNCOMMITTED)]);
    assert.match(git(repo, 'log', '-1', '--format=%an <%ae>', picked[0]), /agent \(sandbox rich\) <rich@agent-sandboxes\.invalid>/);
    assert.notEqual(picked[1], git(repo, 'rev-parse', 'sandbox/rich'), 'replayed, not fast-forwarded');
    assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND));
    assert.deepEqual(status(repo), [' M keep.txt', '?? mine.txt']);

    const before = await snapshot(repo);
    await nextSecond();
    const again = await sync(repo, 'rich', '--mode', 'cherry-pick');
    assert.equal(again.code, 0);
    assert.equal(again.result.nothingToSync, true);
    assert.deepEqual(await snapshot(repo), before, 'the already-applied commits are skipped, and nothing is left under way');
  });

  test('patch: a file that git apply takes on a clean checkout of the base, giving exactly the agent\'s files; never overwritten without --force', async () => {
    resetWorkspace(repo, base);
    await makeUserChanges(repo);
    const out = await tempDir();
    tempDirs.push(out);
    const patch = path.join(out, 'rich.patch');
    const before = await snapshot(repo);
    const { code, result } = await sync(repo, 'rich', '--mode', 'patch', '--output', patch);
    assert.equal(code, 0);
    assert.equal(result.patchFile, patch);
    assert.equal(result.nothingToSync, false);
    assert.deepEqual(result.conflicts, []);
    // Renames are one entry of a patch: each changed path but the renames' old sides.
    assert.deepEqual(result.files.slice().sort(), AGENT_PATHS.filter((p) => p !== 'old dir/old name.txt' && p !== 'move me.txt'));
    assert.deepEqual(await snapshot(repo), before, 'patch leaves the workspace alone');
    assert.deepEqual(await applyPatch(repo, base, patch), agentTree);

    const content = await fs.readFile(patch);
    await fs.writeFile(patch, 'not to be lost\n');
    await refused(repo, 'rich', ['--mode', 'patch', '--output', patch], [/already exists/, new RegExp(escape(patch)), /--force/], before);
    assert.equal(await fs.readFile(patch, 'utf8'), 'not to be lost\n');
    const forced = await sync(repo, 'rich', '--mode', 'patch', '--output', patch, '--force');
    assert.equal(forced.code, 0);
    assert.deepEqual(await fs.readFile(patch), content);

    // Without --output: sandbox-NAME.patch in the current folder (here not the workspace).
    const defaultRun = await cli(['sync', 'rich', '--mode', 'patch', '--workspace', repo], { cwd: out });
    assert.equal(defaultRun.code, 0, defaultRun.stderr);
    assert.deepEqual(await fs.readFile(path.join(out, 'sandbox-rich.patch')), content);
    assert.match(defaultRun.stdout, /Wrote .*sandbox-rich\.patch/);
    assert.deepEqual(await snapshot(repo), before);
  });

  test('diff --binary: a patch that plain git apply takes whole, binary files included, whatever the user\'s diff settings', async () => {
    resetWorkspace(repo, base);
    const out = await tempDir();
    tempDirs.push(out);
    const readable = path.join(out, 'readable.patch');
    await fs.writeFile(readable, (await cliOk(['diff', 'rich'], { cwd: repo })).stdout);
    // The readable diff names the binary files only, so git apply refuses it: the reason for --binary.
    const checkout = await cleanCheckout(repo, base);
    assert.throws(() => git(checkout, 'apply', readable), /cannot apply binary patch|without full index line/);
    // Settings that made the patch another program's output or one without the a/ b/ prefixes.
    const settings = [['diff.noprefix', 'true'], ['diff.external', 'echo external diff'], ['color.diff', 'always'], ['diff.context', '0']];
    for (const [key, value] of settings) git(repo, 'config', key, value);
    try {
      const before = await snapshot(repo);
      const binary = path.join(out, 'binary.patch');
      const run = await cliOk(['diff', 'rich', '--binary'], { cwd: repo });
      await fs.writeFile(binary, run.stdout);
      assert.match(run.stdout, /^diff --git a\/bin\.dat b\/bin\.dat\n(.*\n)*GIT binary patch\n/m);
      assert.deepEqual(await applyPatch(repo, base, binary), agentTree);
      const patch = path.join(out, 'rich.patch');
      await sync(repo, 'rich', '--mode', 'patch', '--output', patch);
      assert.deepEqual(await applyPatch(repo, base, patch), agentTree);
      assert.deepEqual(await snapshot(repo), before, 'diff and patch leave the workspace alone');
    } finally {
      for (const [key] of settings) git(repo, 'config', '--unset', key);
    }
  });

  describe('the user committed on main after up: other files and another line of a file the agent changed', () => {
    const mergedTree = () => applyChanges(baseTree, userMoved, AGENT, USER_AROUND, { 'shared.txt': file(lines('s', 20, { 3: 's3 by agent', 18: 's18 by user' })) });

    test('squash applies everything on top, merging shared.txt', async () => {
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      const { code, result } = await sync(repo, 'rich', '--mode', 'squash');
      assert.equal(code, 0);
      assert.deepEqual(result, { mode: 'squash', nothingToSync: false, files: AGENT_PATHS, conflicts: [], commits: [] });
      assert.deepEqual(await readTree(repo), mergedTree());
      assert.equal(git(repo, 'rev-parse', 'HEAD'), moved);
    });

    test('merge makes a merge commit', async () => {
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      const { code, result } = await sync(repo, 'rich', '--mode', 'merge');
      assert.equal(code, 0);
      assert.equal(result.fastForward, false);
      assert.deepEqual(result.conflicts, []);
      assert.deepEqual(result.files.slice().sort(), AGENT_PATHS);
      assert.deepEqual(git(repo, 'rev-list', '--parents', '-1', 'HEAD').split(' ').slice(1, 2), [moved]);
      assert.deepEqual(subjects(repo, `${moved}..HEAD^2`), AGENT_SUBJECTS);
      assert.deepEqual(result.commits.slice().sort(), git(repo, 'rev-list', `${moved}..HEAD`).split('\n').sort());
      assert.equal(result.commits.length, 4);
      assert.deepEqual(await readTree(repo), mergedTree());
      assert.deepEqual(status(repo), [' M keep.txt', '?? mine.txt']);
    });

    test('cherry-pick replays the commits on top', async () => {
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      const { code, result } = await sync(repo, 'rich', '--mode', 'cherry-pick');
      assert.equal(code, 0);
      assert.deepEqual(result.conflicts, []);
      assert.deepEqual(result.files.slice().sort(), AGENT_PATHS);
      assert.deepEqual(subjects(repo, `${moved}..HEAD`), AGENT_SUBJECTS);
      assert.equal(git(repo, 'rev-parse', 'HEAD~3'), moved);
      assert.deepEqual(await readTree(repo), mergedTree());
      assert.deepEqual(status(repo), [' M keep.txt', '?? mine.txt']);
    });

    test('patch is still against the sandbox\'s base', async () => {
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      const out = await tempDir();
      tempDirs.push(out);
      const before = await snapshot(repo);
      const { result } = await sync(repo, 'rich', '--mode', 'patch', '--output', path.join(out, 'p.patch'));
      assert.deepEqual(await snapshot(repo), before);
      assert.deepEqual(await applyPatch(repo, base, result.patchFile!), agentTree);
    });
  });

  describe('the user\'s uncommitted changes meet the agent\'s', () => {
    const USER_BIN = Buffer.from([0, 0xff, 0x75, 0x73, 0x65, 0x72]);
    /**
     * The user changed the agent's line of edit.txt, a file the agent deleted, the binary file and the link
     * the agent changed, and has an untracked file where the agent made one.
     */
    const overlapping = async () => {
      await makeUserChanges(repo);
      await writeChanges(repo, {
        'edit.txt': lines('line ', 10, { 2: 'line 2 by user' }),
        'gone.txt': 'delete me? no, I changed it\n',
        'untracked.txt': 'the user\'s own untracked file\n',
        'bin.dat': USER_BIN,
        latest: null,
      });
      await fs.symlink('loose.txt', path.join(repo, 'latest'));
    };
    const OVERLAPPING = ['bin.dat', 'edit.txt', 'gone.txt', 'latest', 'untracked.txt'];

    test('--on-conflict stop (the default): every mode but patch stops before changing anything and names the files', async () => {
      resetWorkspace(repo, base);
      await overlapping();
      const before = await snapshot(repo);
      const files = names(...OVERLAPPING);
      await refused(repo, 'rich', ['--mode', 'squash'], [/Nothing was synced/, ...files], before);
      await refused(repo, 'rich', ['--mode', 'squash', '--on-conflict', 'stop'], [/Nothing was synced/, ...files], before);
      await refused(repo, 'rich', ['--mode', 'merge'], [/Nothing was synced/, ...files], before);
      await refused(repo, 'rich', ['--mode', 'cherry-pick'], [/Nothing was synced/, ...files], before);
      // merge and cherry-pick never merge into uncommitted files, whatever the policy.
      await refused(repo, 'rich', ['--mode', 'merge', '--on-conflict', 'merge'], files, before);
      await refused(repo, 'rich', ['--mode', 'cherry-pick', '--on-conflict', 'merge'], files, before);
      // A change of the user's that merges cleanly still stops merge and cherry-pick (git would overwrite it).
      resetWorkspace(repo, base);
      await writeChanges(repo, { 'edit.txt': lines('line ', 10, { 9: 'line 9 by user' }) });
      const cleanBefore = await snapshot(repo);
      await refused(repo, 'rich', ['--mode', 'merge'], names('edit.txt'), cleanBefore);
      await refused(repo, 'rich', ['--mode', 'cherry-pick'], names('edit.txt'), cleanBefore);
    });

    test('squash merges changes of the user\'s to other lines of files the agent changed, keeping both (and the agent\'s executable bit)', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      await writeChanges(repo, { 'edit.txt': lines('line ', 10, { 9: 'line 9 by user' }), 'tool.sh': '#!/bin/sh\necho tool, changed by the user\n' });
      const { code, result } = await sync(repo, 'rich', '--mode', 'squash');
      assert.equal(code, 0);
      assert.deepEqual(result.conflicts, []);
      assert.deepEqual(result.files, AGENT_PATHS);
      assert.deepEqual(
        await readTree(repo),
        applyChanges(baseTree, AGENT, USER_AROUND, {
          'edit.txt': file(lines('line ', 10, { 2: 'line 2 by agent', 9: 'line 9 by user' })),
          'tool.sh': file('#!/bin/sh\necho tool, changed by the user\n', true),
        }),
      );
    });

    test('squash --on-conflict merge: three-way merges with conflict markers and git\'s conflict stages, exit 3', async () => {
      resetWorkspace(repo, base);
      await overlapping();
      const run = await sync(repo, 'rich', '--mode', 'squash', '--on-conflict', 'merge');
      assert.equal(run.code, 3);
      const conflicted = OVERLAPPING;
      assert.deepEqual(run.result.conflicts, conflicted);
      assert.deepEqual(run.result.files, AGENT_PATHS.filter((p) => !conflicted.includes(p)));
      const markers = lines('line ', 10, { 2: '<<<<<<< workspace\nline 2 by user\n=======\nline 2 by agent\n>>>>>>> sandbox/rich' });
      const expected = applyChanges(baseTree, AGENT, USER_AROUND, {
        'edit.txt': file(markers),
        // The agent deleted it, the user changed it: the user's version stays, to resolve.
        'gone.txt': file('delete me? no, I changed it\n'),
        'untracked.txt': file('<<<<<<< workspace\nthe user\'s own untracked file\n=======\nuntracked by agent\n>>>>>>> sandbox/rich\n'),
        // A binary file and a link cannot hold markers: the user's versions stay, with git's stages.
        'bin.dat': file(USER_BIN),
        latest: link('loose.txt'),
      });
      assert.deepEqual(await readTree(repo), expected);
      const st = status(repo);
      assert.ok(st.includes('UU edit.txt'), st.join('\n'));
      assert.ok(st.includes('UD gone.txt'), st.join('\n'));
      assert.ok(st.includes('AA untracked.txt'), st.join('\n'));
      assert.ok(st.includes('UU bin.dat'), st.join('\n'));
      assert.ok(st.includes('UU latest'), st.join('\n'));
      assert.deepEqual(git(repo, 'ls-files', '-s', '--', 'latest').split('\n').map((l) => [l.split(/\s+/)[0], l.split(/\s+/)[2]]), [['120000', '1'], ['120000', '2'], ['120000', '3']]);
      assert.deepEqual([1, 2, 3].map((stage) => git(repo, 'show', `:${stage}:latest`)), ['keep.txt', 'loose.txt', 'edit.txt']);
      assert.ok(st.includes(' M keep.txt') && st.includes('?? mine.txt'), st.join('\n'));
      // git's stages: base, the user's and the agent's versions.
      const stages = git(repo, 'ls-files', '-s', '--', 'edit.txt').split('\n').map((l) => l.split(/\s+/)[2]);
      assert.deepEqual(stages, ['1', '2', '3']);
      assert.equal(git(repo, 'show', ':2:edit.txt'), lines('line ', 10, { 2: 'line 2 by user' }).trimEnd());
      assert.equal(git(repo, 'show', ':3:edit.txt'), lines('line ', 10, { 2: 'line 2 by agent' }).trimEnd());
      assert.equal(git(repo, 'rev-parse', 'HEAD'), base);
    });

    test('a file or a link of the user\'s where the agent needs a folder stops every mode before anything changes', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      // A link to a folder outside that happens to hold a file of the name the agent's has.
      const outside = await tempDir();
      tempDirs.push(outside);
      await fs.writeFile(path.join(outside, 'new name.txt'), 'outside the workspace\n');
      await fs.symlink(outside, path.join(repo, 'sub dir'));
      await writeChanges(repo, { bin: 'a file of the user\'s called bin\n' });
      const before = await snapshot(repo);
      await refused(repo, 'rich', ['--mode', 'squash'], [/of yours/, ...names('bin/new tool.sh', 'sub dir/new name.txt')], before);
      await refused(repo, 'rich', ['--mode', 'squash', '--on-conflict', 'merge'], names('bin/new tool.sh', 'sub dir/new name.txt'), before);
      await refused(repo, 'rich', ['--mode', 'merge'], [/bin|sub dir/], before);
      await refused(repo, 'rich', ['--mode', 'cherry-pick'], [/bin|sub dir/], before);
      assert.deepEqual(await readTree(outside), { 'new name.txt': file('outside the workspace\n') });
    });

    test('staged changes of the user\'s: squash, a fast-forward and a merge commit go around them; cherry-pick stops, naming them', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      git(repo, 'add', 'keep.txt');
      const staged = git(repo, 'ls-files', '-s', 'keep.txt');
      const squash = await sync(repo, 'rich', '--mode', 'squash');
      assert.equal(squash.code, 0);
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND));
      assert.equal(git(repo, 'ls-files', '-s', 'keep.txt'), staged);

      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      git(repo, 'add', 'keep.txt');
      const merge = await sync(repo, 'rich', '--mode', 'merge');
      assert.equal(merge.code, 0);
      assert.equal(merge.result.fastForward, true);
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND));
      assert.equal(git(repo, 'ls-files', '-s', 'keep.txt'), staged);
      assert.deepEqual(status(repo), ['?? mine.txt', 'M  keep.txt']);

      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      git(repo, 'add', 'keep.txt');
      const before = await snapshot(repo);
      await refused(repo, 'rich', ['--mode', 'cherry-pick'], [/staged/, /keep\.txt/], before);
      // The merge commit, first as git merge makes it with nothing staged, then around the staged keep.txt.
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      const plain = await sync(repo, 'rich', '--mode', 'merge');
      assert.equal(plain.code, 0);
      const plainTree = git(repo, 'rev-parse', 'HEAD^{tree}');
      const plainFiles = await readTree(repo);
      resetWorkspace(repo, moved);
      await makeUserChanges(repo);
      git(repo, 'add', 'keep.txt');
      const around = await sync(repo, 'rich', '--mode', 'merge');
      assert.equal(around.code, 0, around.stderr);
      assert.equal(around.result.fastForward, false);
      assert.equal(git(repo, 'rev-parse', 'HEAD^{tree}'), plainTree, 'the same merge as git merge makes');
      assert.equal(git(repo, 'rev-parse', 'HEAD^1'), moved);
      assert.equal(git(repo, 'log', '-1', '--format=%s'), 'Merge sandbox rich (sandbox/rich)');
      assert.equal(git(repo, 'rev-parse', 'HEAD^2^{tree}'), git(repo, 'rev-parse', `${plain.result.commits.at(-1)}^2^{tree}`));
      assert.deepEqual(await readTree(repo), plainFiles);
      assert.equal(git(repo, 'ls-files', '-s', 'keep.txt'), staged, 'keep.txt is still staged as the user staged it');
      assert.deepEqual(status(repo), ['?? mine.txt', 'M  keep.txt']);
      assert.equal(git(repo, 'diff', '--cached', '--name-only'), 'keep.txt', 'nothing else is staged');
    });

    test('a same-sized edit in the same second as the checkout (git\'s racy stat cache) is still seen and never overwritten', async (t) => {
      const racy = lines('line ', 10, { 2: 'LINE 2' });
      for (const args of [['--mode', 'squash'], ['--mode', 'merge'], ['--mode', 'cherry-pick'], ['--mode', 'squash', '--on-conflict', 'merge']]) {
        resetWorkspace(repo, base);
        // Where git compares nanoseconds (built with USE_NSEC), the edit is never racy: the test still holds.
        if (!(await racyEdit(repo, 'edit.txt', racy))) t.diagnostic('this git sees the edit even through a fresh copy of the index: no race to test');
        const before = await snapshot(repo, { status: false });
        if (args.includes('--on-conflict')) {
          const run = await sync(repo, 'rich', ...args);
          assert.equal(run.code, 3);
          assert.deepEqual(run.result.conflicts, ['edit.txt']);
          assert.equal(await fs.readFile(path.join(repo, 'edit.txt'), 'utf8'), lines('line ', 10, { 2: '<<<<<<< workspace\nLINE 2\n=======\nline 2 by agent\n>>>>>>> sandbox/rich' }));
          assert.ok(status(repo).includes('UU edit.txt'));
        } else {
          await refused(repo, 'rich', args, [/edit\.txt/], before);
          assert.equal(await fs.readFile(path.join(repo, 'edit.txt'), 'utf8'), racy);
          assert.deepEqual(status(repo), [' M edit.txt']);
        }
      }
    });
  });

  describe('the user committed a change to the agent\'s line', () => {
    test('--on-conflict stop: merge, cherry-pick and squash change nothing and name the file', async () => {
      resetWorkspace(repo, conflicting);
      await makeUserChanges(repo);
      const before = await snapshot(repo);
      await refused(repo, 'rich', ['--mode', 'merge'], [/conflict/, /edit\.txt/], before);
      await refused(repo, 'rich', ['--mode', 'cherry-pick'], [/conflict/, /edit\.txt/], before);
      await refused(repo, 'rich', ['--mode', 'squash'], [/Nothing was synced/, /edit\.txt/], before);
    });

    test('merge --on-conflict merge leaves git\'s merge under way with markers in edit.txt, exit 3', async () => {
      resetWorkspace(repo, conflicting);
      await makeUserChanges(repo);
      const run = await sync(repo, 'rich', '--mode', 'merge', '--on-conflict', 'merge');
      assert.equal(run.code, 3);
      assert.deepEqual(run.result.conflicts, ['edit.txt']);
      assert.deepEqual(run.result.files.slice().sort(), AGENT_PATHS.filter((p) => p !== 'edit.txt'));
      const mergeHead = (await fs.readFile(path.join(repo, '.git', 'MERGE_HEAD'), 'utf8')).trim();
      assert.equal(git(repo, 'rev-parse', `${mergeHead}~1`), git(repo, 'rev-parse', 'sandbox/rich'), 'merging the agent\'s uncommitted work on its commits');
      assert.equal(git(repo, 'rev-parse', 'HEAD'), conflicting);
      const markers = lines('line ', 10, { 2: `<<<<<<< HEAD\nline 2 by user\n=======\nline 2 by agent\n>>>>>>> ${mergeHead}` });
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, userConflict, AGENT, USER_AROUND, { 'edit.txt': file(markers) }));
      assert.ok(status(repo).includes('UU edit.txt'));
      assert.ok(status(repo).includes(' M keep.txt'));
    });

    test('cherry-pick --on-conflict merge stops at the conflicting commit with markers, exit 3; --continue finishes the replay', async () => {
      resetWorkspace(repo, conflicting);
      await makeUserChanges(repo);
      const run = await sync(repo, 'rich', '--mode', 'cherry-pick', '--on-conflict', 'merge');
      assert.equal(run.code, 3);
      assert.deepEqual(run.result.conflicts, ['edit.txt']);
      assert.deepEqual(run.result.commits, []);
      assert.equal(git(repo, 'rev-parse', 'HEAD'), conflicting);
      const content = await fs.readFile(path.join(repo, 'edit.txt'), 'utf8');
      assert.match(content, new RegExp(`^line 1\\n<<<<<<< HEAD\\nline 2 by user\\n=======\\nline 2 by agent\\n>>>>>>> [0-9a-f]{7,} \\(agent: edit, delete, rename, add\\)\\nline 3\\n`));
      assert.ok(await exists(path.join(repo, '.git', 'CHERRY_PICK_HEAD')));
      // The first commit's other changes are in; the later commits wait for --continue.
      const withMarkers = { 'edit.txt': file(content) };
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, userConflict, C1, USER_AROUND, withMarkers));
      assert.ok(status(repo).includes('UU edit.txt'));

      const resolved = lines('line ', 10, { 2: 'line 2 by user and agent' });
      await writeChanges(repo, { 'edit.txt': resolved });
      git(repo, 'add', 'edit.txt');
      execFileSync('git', ['-c', 'core.editor=true', 'cherry-pick', '--continue'], { cwd: repo, stdio: 'ignore' });
      assert.deepEqual(subjects(repo, `${conflicting}..HEAD`), AGENT_SUBJECTS);
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND, { 'edit.txt': file(resolved) }));
    });

    test('squash --on-conflict merge leaves markers and stages, exit 3', async () => {
      resetWorkspace(repo, conflicting);
      await makeUserChanges(repo);
      const run = await sync(repo, 'rich', '--mode', 'squash', '--on-conflict', 'merge');
      assert.equal(run.code, 3);
      assert.deepEqual(run.result.conflicts, ['edit.txt']);
      const markers = lines('line ', 10, { 2: '<<<<<<< workspace\nline 2 by user\n=======\nline 2 by agent\n>>>>>>> sandbox/rich' });
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, AGENT, USER_AROUND, { 'edit.txt': file(markers) }));
      assert.ok(status(repo).includes('UU edit.txt'));
      assert.equal(git(repo, 'rev-parse', 'HEAD'), conflicting);
    });
  });

  describe('--files: only some of the agent\'s changes', () => {
    // Paths are literal: the last one is not a pattern matching every file.
    const selection = ['edit.txt', 'données', 'sub dir/new name.txt', 'bin/new tool.sh', 'latest', 'glob [x] *?.txt'];
    const selected: Changes = {
      'glob [x] *?.txt': AGENT['glob [x] *?.txt'],
      'edit.txt': AGENT['edit.txt'],
      'données/été.txt': AGENT['données/été.txt'],
      'old dir/old name.txt': null,
      'sub dir/new name.txt': AGENT['sub dir/new name.txt'],
      'bin/new tool.sh': AGENT['bin/new tool.sh'],
      latest: AGENT.latest,
    };

    test('squash takes only the chosen files (a folder, one side of a rename brings both) around the user\'s work', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      const { code, result } = await sync(repo, 'rich', '--mode', 'squash', '--files', ...selection);
      assert.equal(code, 0);
      assert.deepEqual(result.files, keys(selected));
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, selected, USER_AROUND));

      for (const side of ['old dir/old name.txt', 'moved/ü moved.txt']) {
        resetWorkspace(repo, base);
        const pair = side === 'old dir/old name.txt' ? ['old dir/old name.txt', 'sub dir/new name.txt'] : ['move me.txt', 'moved/ü moved.txt'];
        const one = await sync(repo, 'rich', '--mode', 'squash', '--files', side);
        assert.deepEqual(one.result.files, pair.slice().sort());
        assert.deepEqual(await readTree(repo), applyChanges(baseTree, Object.fromEntries(pair.map((p) => [p, AGENT[p]]))));
      }
    });

    test('merge commits only the chosen files and merges that commit', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      const { code, result } = await sync(repo, 'rich', '--mode', 'merge', '--files', ...selection);
      assert.equal(code, 0);
      assert.deepEqual(result.files.slice().sort(), keys(selected));
      assert.equal(result.commits.length, 1);
      assert.equal(git(repo, 'rev-parse', 'HEAD~1'), base);
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, selected, USER_AROUND));
      assert.deepEqual(status(repo), [' M keep.txt', '?? mine.txt']);

      resetWorkspace(repo, moved);
      const onMoved = await sync(repo, 'rich', '--mode', 'merge', '--files', 'old dir/old name.txt', 'shared.txt');
      assert.equal(onMoved.result.fastForward, false);
      assert.deepEqual(
        await readTree(repo),
        applyChanges(baseTree, userMoved, {
          'old dir/old name.txt': null,
          'sub dir/new name.txt': AGENT['sub dir/new name.txt'],
          'shared.txt': file(lines('s', 20, { 3: 's3 by agent', 18: 's18 by user' })),
        }),
      );
    });

    test('changes of the user\'s that meet only files left out of the selection do not stop squash or merge', async () => {
      const mine: Changes = {
        ...USER_AROUND,
        'gone.txt': file('changed by the user\n'),
        'untracked.txt': file('the user\'s own untracked file\n'),
        'shared.txt': file(lines('s', 20, { 3: 's3 by user' })),
      };
      const makeMine = async () => {
        await makeUserChanges(repo);
        await writeChanges(repo, { 'gone.txt': 'changed by the user\n', 'untracked.txt': 'the user\'s own untracked file\n', 'shared.txt': lines('s', 20, { 3: 's3 by user' }) });
      };
      for (const mode of ['squash', 'merge']) {
        resetWorkspace(repo, base);
        await makeMine();
        const { code, result } = await sync(repo, 'rich', '--mode', mode, '--files', ...selection);
        assert.equal(code, 0, mode);
        assert.deepEqual(result.files.slice().sort(), keys(selected), mode);
        assert.deepEqual(await readTree(repo), applyChanges(baseTree, selected, mine), mode);
      }
    });

    test('patch holds only the chosen files', async () => {
      resetWorkspace(repo, base);
      const out = await tempDir();
      tempDirs.push(out);
      const { result } = await sync(repo, 'rich', '--mode', 'patch', '--output', path.join(out, 'some.patch'), '--files', ...selection);
      assert.deepEqual(await applyPatch(repo, base, result.patchFile!), applyChanges(baseTree, selected));
      const renameOnly = await sync(repo, 'rich', '--mode', 'patch', '--output', path.join(out, 'rename.patch'), '--files', 'move me.txt');
      const patchText = await fs.readFile(renameOnly.result.patchFile!, 'utf8');
      assert.match(patchText, /rename from move me\.txt\nrename to "moved\/\\303\\274 moved\.txt"/);
      assert.deepEqual(await applyPatch(repo, base, renameOnly.result.patchFile!), applyChanges(baseTree, { 'move me.txt': null, 'moved/ü moved.txt': AGENT['moved/ü moved.txt'] }));
    });

    test('cherry-pick with --files fails clearly and changes nothing', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      const before = await snapshot(repo);
      await refused(repo, 'rich', ['--mode', 'cherry-pick', '--files', 'edit.txt'], [/cherry-pick/, /squash, merge or patch/], before);
    });

    test('a path the agent did not change is refused in every mode, naming it, and nothing is written', async () => {
      resetWorkspace(repo, base);
      await makeUserChanges(repo);
      const out = await tempDir();
      tempDirs.push(out);
      const before = await snapshot(repo);
      for (const mode of ['squash', 'merge', 'patch']) {
        const extra = mode === 'patch' ? ['--output', path.join(out, 'never.patch')] : [];
        await refused(repo, 'rich', ['--mode', mode, ...extra, '--files', 'edit.txt', 'no such file.txt'], [/did not change "no such file\.txt"/], before);
      }
      // A file that exists but that the agent left alone; a pattern, which is no path.
      await refused(repo, 'rich', ['--mode', 'squash', '--files', 'keep.txt'], [/did not change "keep\.txt"/], before);
      await refused(repo, 'rich', ['--mode', 'merge', '--files', '*.txt'], [/did not change "\*\.txt"/], before);
      assert.deepEqual(await fs.readdir(out), [], 'no patch file was written');
    });
  });

  test('no sync ever changed the agent\'s worktree', async () => {
    const files = withoutDirs(await readTree(worktree, { dirs: false }));
    assert.deepEqual(files, sorted({ ...withoutDirs(agentTree), 'agent.log': file('ignored by git\n') }));
  });
});

/**
 * Makes the file `name` hold `content` (as many bytes as it holds now) in the same second as git checked it
 * out and wrote the index, with the checkout's mtime: only git's "racy" rule (an entry as new as its index
 * is not trusted) tells it changed. Then waits for the next second, so that a copy of the index stamped at
 * sync time would trust the entry. Returns whether the edit is racy: a fresh copy of the index misses it.
 */
async function racyEdit(repo: string, name: string, content: string): Promise<boolean> {
  const abs = path.join(repo, name);
  const index = path.join(repo, '.git', 'index');
  for (let attempt = 1; ; attempt++) {
    await nextSecond();
    await fs.rm(abs);
    git(repo, 'checkout', '--', name);
    const checkedOut = await fs.stat(abs, { bigint: true });
    assert.equal(checkedOut.size, BigInt(Buffer.byteLength(content)));
    await fs.writeFile(abs, content);
    const ns = checkedOut.mtimeNs;
    execFileSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, abs]);
    const [edited, indexStat] = await Promise.all([fs.stat(abs, { bigint: true }), fs.stat(index, { bigint: true })]);
    const second = (t: bigint) => t / 1_000_000_000n;
    const sameSecond = second(edited.mtimeNs) === second(indexStat.mtimeNs) && second(edited.ctimeNs) === second(indexStat.mtimeNs);
    if (sameSecond && edited.mtimeNs === ns && edited.ino === checkedOut.ino) break;
    if (attempt === 5) assert.fail('could not edit the file within the second of its checkout');
  }
  await nextSecond();
  // The premise: a copy of the index stamped now (not racy) trusts the stale stat and misses the edit.
  const dir = await tempDir();
  try {
    await fs.copyFile(index, path.join(dir, 'index'));
    const seen = execFileSync('git', ['diff-files', '--name-only'], { cwd: repo, env: { ...process.env, GIT_INDEX_FILE: path.join(dir, 'index') }, encoding: 'utf8' });
    return seen === '';
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('sync back: an agent that changed 5,000 files', () => {
  let repo: string;
  let base: string;
  let baseTree: Tree;
  const changes: Changes = {};
  const committed: Changes = {};
  const baseFiles: Record<string, string> = { 'notes.txt': 'notes\n' };
  for (let i = 1; i <= 1000; i++) {
    baseFiles[`many/m/${i}.txt`] = `base ${i}\n`;
    committed[`many/m/${i}.txt`] = file(`agent ${i}\n`);
  }
  for (let i = 1; i <= 500; i++) {
    baseFiles[`many/d/${i}.txt`] = `doomed ${i}\n`;
    changes[`many/d/${i}.txt`] = null;
  }
  for (let i = 1; i <= 2000; i++) committed[`many/c/${i}.txt`] = file(`committed ${i}\n`);
  for (let i = 1; i <= 1500; i++) changes[`many/u/${i}.txt`] = file(`uncommitted ${i}\n`);
  Object.assign(changes, committed);
  const script = String.raw`set -e
for i in $(seq 1 1000); do echo "agent $i" > many/m/$i.txt; done
mkdir -p many/c
for i in $(seq 1 2000); do echo "committed $i" > many/c/$i.txt; done
git add -A
git commit -q -m 'agent: 3000 files'
mkdir -p many/u
for i in $(seq 1 1500); do echo "uncommitted $i" > many/u/$i.txt; done
rm -r many/d
`;
  const user: Changes = { 'notes.txt': file('notes of the user\n'), 'mine.txt': file('mine\n') };
  const userWork = () => writeChanges(repo, { 'notes.txt': 'notes of the user\n', 'mine.txt': 'mine\n' });

  before(async () => {
    repo = await makeRepo(tomlWith(script), baseFiles);
    base = git(repo, 'rev-parse', 'HEAD');
    baseTree = await readTree(repo);
    const up = await cli(['up', 'many', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(Object.keys(changes).length, 5000);
  });

  test('diff --stat counts them', async () => {
    const stat = (await cliOk(['diff', 'many', '--stat'], { cwd: repo })).stdout.trimEnd().split('\n');
    assert.match(stat.pop()!, /^ 5000 files changed, 4500 insertions\(\+\), 1500 deletions\(-\)$/);
  });

  for (const mode of ['squash', 'merge', 'cherry-pick']) {
    test(`${mode} brings all of them, around the user's work`, async () => {
      resetWorkspace(repo, base);
      await userWork();
      const started = Date.now();
      const { code, result } = await sync(repo, 'many', '--mode', mode);
      const took = Date.now() - started;
      assert.equal(code, 0);
      assert.equal(result.files.length, 5000);
      assert.deepEqual(result.files.slice().sort(), keys(changes));
      assert.deepEqual(await readTree(repo), applyChanges(baseTree, changes, user));
      if (mode !== 'squash') {
        assert.deepEqual(subjects(repo, `${base}..HEAD`), ['agent: 3000 files', 'Uncommitted work in sandbox many']);
        assert.deepEqual(status(repo), [' M notes.txt', '?? mine.txt']);
      } else {
        assert.equal(git(repo, 'rev-parse', 'HEAD'), base);
      }
      assert.ok(took < 30_000, `${mode} of 5,000 files took ${took} ms`);
    });
  }

  test('patch holds all of them', async () => {
    resetWorkspace(repo, base);
    await userWork();
    const out = await tempDir();
    tempDirs.push(out);
    const before = await snapshot(repo);
    const { result } = await sync(repo, 'many', '--mode', 'patch', '--output', path.join(out, 'many.patch'));
    assert.equal(result.files.length, 5000);
    assert.deepEqual(await snapshot(repo), before);
    assert.deepEqual(await applyPatch(repo, base, result.patchFile!), applyChanges(baseTree, changes));
  });
});

describe('sync back: an agent that turned files into folders and folders into files and links', () => {
  let repo: string;
  let base: string;
  let baseTree: Tree;
  const script = String.raw`set -e
rm thing
mkdir thing
printf 'inside\n' > thing/x
rm -r d
printf 'now a file\n' > d
git add -A
git commit -q -m 'agent: a file becomes a folder, a folder a file'
rm lnk
mkdir lnk
printf 'y\n' > lnk/y
rm -r e
ln -s d e
`;
  const changes: Changes = {
    thing: null,
    'thing/x': file('inside\n'),
    'd/x': null,
    'd/sub/z': null,
    d: file('now a file\n'),
    lnk: null,
    'lnk/y': file('y\n'),
    'e/1.txt': null,
    e: link('d'),
  };

  before(async () => {
    repo = await makeRepo(tomlWith(script), { '.gitignore': '*.log\n', thing: 'a file\n', 'd/x': 'x\n', 'd/sub/z': 'z\n', 'e/1.txt': 'one\n', 'keep.txt': 'keep\n' });
    await fs.symlink('thing', path.join(repo, 'lnk'));
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'base: a link');
    base = git(repo, 'rev-parse', 'HEAD');
    baseTree = await readTree(repo);
    const up = await cli(['up', 'df', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
  });

  for (const mode of ['squash', 'merge', 'cherry-pick', 'patch']) {
    test(`${mode} makes each path what the agent made it, around the user's work`, async () => {
      resetWorkspace(repo, base);
      await writeChanges(repo, { 'keep.txt': 'mine\n', 'mine.txt': 'mine\n' });
      const user: Changes = { 'keep.txt': file('mine\n'), 'mine.txt': file('mine\n') };
      const out = await tempDir();
      tempDirs.push(out);
      const { code, result } = await sync(repo, 'df', '--mode', mode, ...(mode === 'patch' ? ['--output', path.join(out, 'df.patch')] : []));
      assert.equal(code, 0);
      if (mode === 'patch') assert.deepEqual(await applyPatch(repo, base, result.patchFile!), applyChanges(baseTree, changes));
      else {
        assert.deepEqual(result.files.slice().sort(), keys(changes));
        assert.deepEqual(await readTree(repo), applyChanges(baseTree, changes, user));
      }
    });
  }

  test('a file of the user\'s in a folder the agent replaced stops every mode before anything changes', async () => {
    const cases: Array<Record<string, string | null>> = [{ 'd/mine.txt': 'untracked\n' }, { 'd/build.log': 'ignored\n' }, { 'd/x': 'x, changed by the user\n' }, { 'thing/y': null }];
    for (const mine of cases) {
      resetWorkspace(repo, base);
      if ('thing/y' in mine) {
        // The user turned the file into a folder of their own.
        await fs.rm(path.join(repo, 'thing'));
        await writeChanges(repo, { 'thing/y': 'the user\'s\n' });
      } else {
        await writeChanges(repo, mine);
      }
      const before = await snapshot(repo);
      for (const mode of ['squash', 'merge', 'cherry-pick']) {
        await refused(repo, 'df', ['--mode', mode], ['thing/y' in mine ? /[:,] thing(?=[,.\s]|$)/ : /[:,] d(\/x)?(?=[,.\s]|$)/], before);
      }
    }
  });
});

describe('sync back: an agent that plants a FIFO and names a filter driver the host configured', () => {
  let repo: string;
  let env: NodeJS.ProcessEnv;
  let marker: string;

  before(async () => {
    const script = String.raw`set -e
rm tracked.txt
mkfifo tracked.txt
mkfifo untracked.fifo
printf '* filter=lfs
' > .gitattributes
printf 'agent
' > other.txt
`;
    repo = await makeRepo(tomlWith(script), { 'tracked.txt': 'tracked\n', 'other.txt': 'other\n' });
    const dir = await tempDir();
    tempDirs.push(dir);
    marker = path.join(dir, 'the-filter-ran');
    // The user's own global config, as git-lfs writes it, with a clean filter that leaves a trace.
    const config = path.join(dir, 'gitconfig');
    await fs.writeFile(config, `[user]\n\tname = User\n\temail = user@example.invalid\n[filter "lfs"]\n\tclean = touch ${marker}; cat\n\tprocess = touch ${marker}\n\trequired = true\n`);
    env = { GIT_CONFIG_GLOBAL: config };
    const up = await cli(['up', 'planter', '--wait'], { cwd: repo, env });
    assert.equal(up.code, 0, up.stderr);
  });

  test('diff and sync go on around the FIFO, name it, never block, and run no filter', async () => {
    const diff = await cli(['diff', 'planter', '--stat'], { cwd: repo, env, timeoutMs: 60_000 });
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stderr, /Left out of the agent's work .*FIFO.*: tracked\.txt\./);
    assert.match(diff.stdout, /other\.txt/);
    assert.doesNotMatch(diff.stdout, /tracked\.txt|untracked\.fifo/);
    const run = await cli(['sync', 'planter', '--mode', 'squash'], { cwd: repo, env, timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "Applied 2 files from planter as uncommitted changes, for you to review and commit.\nLeft out of the agent's work (not a file, link or folder: a FIFO, socket or device): tracked.txt.\n");
    assert.deepEqual(status(repo), ['?? .gitattributes', ' M other.txt'].sort());
    assert.equal(await fs.readFile(path.join(repo, 'tracked.txt'), 'utf8'), 'tracked\n');
    assert.equal(await fs.readFile(path.join(repo, 'other.txt'), 'utf8'), 'agent\n');
    assert.equal(await fs.readFile(path.join(repo, '.gitattributes'), 'utf8'), '* filter=lfs\n');
    // Capture, and the sync that brought the agent's .gitattributes, ran the user's filter for none of its files.
    assert.equal(await exists(marker), false, "the host ran the filter the agent's .gitattributes named");
  });
});

describe('sync back: an agent that commits a file named like an ignored file of the user\'s, with a newline in the name', () => {
  test('cherry-pick and merge stop and name it; the user\'s file is intact', async () => {
    const script = String.raw`set -e
name="$(printf 'notes\nsecret.log')"
printf 'agent\n' > "$name"
git add -f -- "$name"
git commit -q -m 'agent: a file with a newline in its name'
`;
    const repo = await makeRepo(tomlWith(script), { '.gitignore': '*.log\n', 'a.txt': 'a\n' });
    const up = await cli(['up', 'newline', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
    const name = 'notes\nsecret.log';
    assert.equal(git(repo, 'show', `sandbox/newline:${name}`), 'agent');
    await fs.writeFile(path.join(repo, name), 'my ignored notes\n');
    const before = await snapshot(repo);
    for (const mode of ['cherry-pick', 'merge']) {
      await refused(repo, 'newline', ['--mode', mode], [/uncommitted changes in/, /secret\.log/], before);
    }
    assert.equal(await fs.readFile(path.join(repo, name), 'utf8'), 'my ignored notes\n');
  });
});

describe('sync back: a sandbox with no changes', () => {
  let repo: string;

  before(async () => {
    repo = await makeRepo(tomlWith('git status --short; exit 0'), { 'a.txt': 'a\n' });
    const up = await cli(['up', 'idle', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
  });

  test('diff is empty', async () => {
    assert.equal((await cliOk(['diff', 'idle'], { cwd: repo })).stdout, '');
    assert.equal((await cliOk(['diff', 'idle', '--stat'], { cwd: repo })).stdout, '');
  });

  test('every mode says nothing to sync, writes nothing and creates no patch file', async () => {
    await writeChanges(repo, { 'a.txt': 'a, changed by the user\n', 'mine.txt': 'mine\n' });
    const before = await snapshot(repo);
    const out = await tempDir();
    tempDirs.push(out);
    for (const mode of ['squash', 'merge', 'cherry-pick', 'patch']) {
      const extra = mode === 'patch' ? ['--output', path.join(out, 'idle.patch')] : [];
      const { code, result } = await sync(repo, 'idle', '--mode', mode, ...extra);
      assert.equal(code, 0);
      assert.deepEqual(result, { mode, nothingToSync: true, files: [], conflicts: [], commits: [] });
      assert.deepEqual(await snapshot(repo), before, mode);
    }
    assert.deepEqual(await fs.readdir(out), []);
    const human = await cliOk(['sync', 'idle', '--mode', 'patch', '--workspace', repo], { cwd: out });
    assert.match(human.stdout, /^Nothing to sync/);
    assert.deepEqual(await fs.readdir(out), []);
  });

  test('an agent whose uncommitted work undoes its commit has nothing to sync in squash, merge and patch', async () => {
    const script = 'echo changed > a.txt; git commit -q -am "agent: change a"; echo a > a.txt';
    const other = await makeRepo(tomlWith(script), { 'a.txt': 'a\n' });
    const up = await cli(['up', 'undone', '--wait'], { cwd: other });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(git(other, 'log', '-1', '--format=%s', 'sandbox/undone'), 'agent: change a');
    const before = await snapshot(other);
    const out = await tempDir();
    tempDirs.push(out);
    for (const mode of ['squash', 'merge', 'patch']) {
      const extra = mode === 'patch' ? ['--output', path.join(out, 'undone.patch')] : [];
      const { code, result } = await sync(other, 'undone', '--mode', mode, ...extra);
      assert.equal(code, 0);
      assert.deepEqual(result, { mode, nothingToSync: true, files: [], conflicts: [], commits: [] });
      assert.deepEqual(await snapshot(other), before, mode);
    }
    assert.deepEqual(await fs.readdir(out), []);
  });
});
