import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { captureAgentWork, diffAgentWork } from '../../src/core/git/capture';
import type { AgentWork } from '../../src/core/git/capture';
import { syncAgentWork } from '../../src/core/git/sync';
import { agentGitLimits } from '../../src/core/git/git';
import type { SyncOptions, SyncResult } from '../../src/core/git/sync';
import { GitError, SyncConflictError } from '../../src/core/errors';
import { readAgentHead } from '../../src/core/git/agentgit';
import { agentIdentity, Repository } from '../../src/core/git/worktrees';

/*
 * Capture and sync against real temporary repositories, without containers: the sandbox is made as `up` makes
 * it (Repository.createSandboxWorktree), the agent's changes are written straight into its worktree on the
 * host (and committed through its private git dir where a test needs commits).
 */

const scratch = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-sync-unit-'));
const savedEnv = { ...process.env };
const globalConfig = path.join(scratch, 'gitconfig');
const identity = agentIdentity('agent', 'engineer');

before(() => {
  // Only this file's git settings: no system config, a global config of the test's own.
  writeFileSync(globalConfig, '[user]\n\tname = User\n\temail = user@example.invalid\n[init]\n\tdefaultBranch = main\n');
  Object.assign(process.env, { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: globalConfig, GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' });
});

after(() => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  rmSync(scratch, { recursive: true, force: true });
});

function git(cwd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', input: options.input, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
}

function write(root: string, files: Record<string, string | Buffer>): void {
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), content);
  }
}

interface Sandbox {
  root: string;
  repo: Repository;
  base: string;
  worktree: string;
  privateGitDir: string;
  /** Commits everything in the worktree as the agent does inside its container: through its private git dir. */
  agentCommit(message: string): void;
  capture(): Promise<AgentWork>;
  sync(options: SyncOptions): Promise<SyncResult>;
}

let count = 0;

/** A repository with `files` committed on main, and a sandbox "agent" made from that commit. */
async function sandbox(files: Record<string, string | Buffer>, options: { linkedWorktree?: string; parent?: string } = {}): Promise<Sandbox> {
  let root = path.join(scratch, `repo-${++count}${options.parent ?? ''}`, 'project');
  mkdirSync(root, { recursive: true });
  git(root, ['init', '-q', '-b', 'main']);
  write(root, files);
  git(root, ['add', '-A']);
  git(root, ['commit', '-q', '-m', 'initial']);
  if (options.linkedWorktree) {
    // The user works in a linked worktree of the repository: git names its files by absolute paths.
    const linked = path.join(path.dirname(root), options.linkedWorktree);
    git(root, ['worktree', 'add', '-q', '-b', 'work', linked]);
    root = linked;
  }
  const repo = await Repository.open(root);
  const base = git(root, ['rev-parse', 'HEAD']).trim();
  const paths = await repo.createSandboxWorktree('agent', base, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, chownNeeded: false }, identity);
  const agentEnv = { ...process.env, GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(repo.commonDir, 'objects') };
  const scope = [`--git-dir=${paths.privateGitDir}`, `--work-tree=${paths.worktree}`];
  return {
    root: repo.root,
    repo,
    base,
    worktree: paths.worktree,
    privateGitDir: paths.privateGitDir,
    agentCommit(message) {
      git(paths.worktree, [...scope, 'add', '-A'], { env: agentEnv });
      git(paths.worktree, [...scope, '-c', `user.name=${identity.name}`, '-c', `user.email=${identity.email}`, 'commit', '-q', '-m', message], { env: agentEnv });
    },
    capture: () => captureAgentWork(repo, 'agent', base, identity),
    async sync(options) {
      return syncAgentWork(repo, await captureAgentWork(repo, 'agent', base, identity), options, identity);
    },
  };
}

/** Everything a refused sync must leave as it was: HEAD, the index with its flags, status and the files. */
function state(root: string, files: string[]): string {
  const read = (f: string) => (existsSync(path.join(root, f)) ? readFileSync(path.join(root, f), 'utf8') : '(absent)');
  return JSON.stringify({
    head: git(root, ['rev-parse', 'HEAD']),
    index: git(root, ['ls-files', '-s', '-v', '-z']),
    stash: git(root, ['for-each-ref', 'refs/stash']),
    files: files.map((f) => [f, read(f)]),
  });
}

async function refuses(promise: Promise<unknown>, reason: string, names: string[]): Promise<SyncConflictError> {
  const error = await promise.then(
    () => assert.fail('the sync should have stopped'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SyncConflictError, `expected a SyncConflictError, got ${String(error)}`);
  assert.equal(error.reason, reason, error.message);
  for (const name of names) assert.ok(error.message.includes(name), `${error.message} names ${name}`);
  return error;
}

/** `patch` applied with `git apply` to a fresh clone at the base: the bytes of `files` there, in hex. */
function applyBuffer(s: Sandbox, patch: Buffer, files: string[]): Record<string, string> {
  const clone = path.join(scratch, `clone-${++count}`);
  git(scratch, ['clone', '-q', '--no-checkout', s.root, clone]);
  git(clone, ['checkout', '-q', s.base]);
  const patchFile = path.join(scratch, `patch-${count}`);
  writeFileSync(patchFile, patch);
  git(clone, ['apply', patchFile]);
  return Object.fromEntries(files.map((f) => [f, existsSync(path.join(clone, f)) ? readFileSync(path.join(clone, f)).toString('hex') : '(absent)']));
}

function hexOf(files: Record<string, string | Buffer>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).map(([f, c]) => [f, Buffer.from(c).toString('hex')]));
}

const THREE = 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n';

describe('squash: files git reports clean because of their index flags are the user\'s too', () => {
  for (const flag of ['--assume-unchanged', '--skip-worktree']) {
    test(`a local edit in a file marked ${flag} is not overwritten: the sync stops and names it`, async () => {
      const s = await sandbox({ 'a.txt': 'one\n', 'b.txt': 'b\n' });
      write(s.root, { 'a.txt': 'mine\n' });
      git(s.root, ['update-index', flag, 'a.txt']);
      write(s.worktree, { 'a.txt': 'agent\n', 'b.txt': 'agent b\n' });
      const before = state(s.root, ['a.txt', 'b.txt']);
      await refuses(s.sync({ mode: 'squash' }), 'conflicts', ['a.txt']);
      assert.equal(state(s.root, ['a.txt', 'b.txt']), before);
    });

    test(`a local edit in a file marked ${flag} is merged with the agent's, not replaced`, async () => {
      const s = await sandbox({ 'a.txt': THREE });
      write(s.root, { 'a.txt': THREE.replace('one', 'ONE (mine)') });
      git(s.root, ['update-index', flag, 'a.txt']);
      write(s.worktree, { 'a.txt': THREE.replace('seven', 'SEVEN (agent)') });
      const result = await s.sync({ mode: 'squash' });
      assert.deepEqual(result.files, ['a.txt']);
      assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), THREE.replace('one', 'ONE (mine)').replace('seven', 'SEVEN (agent)'));
    });

    test(`merge and cherry-pick stop on a local edit in a file marked ${flag}`, async () => {
      const s = await sandbox({ 'a.txt': 'one\n' });
      write(s.root, { 'a.txt': 'mine\n' });
      git(s.root, ['update-index', flag, 'a.txt']);
      write(s.worktree, { 'a.txt': 'agent\n' });
      s.agentCommit('agent');
      const before = state(s.root, ['a.txt']);
      await refuses(s.sync({ mode: 'merge' }), 'local-changes', ['a.txt']);
      await refuses(s.sync({ mode: 'cherry-pick' }), 'local-changes', ['a.txt']);
      assert.equal(state(s.root, ['a.txt']), before);
    });
  }

  test('an unchanged file marked assume-unchanged takes the agent\'s version as before', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    git(s.root, ['update-index', '--assume-unchanged', 'a.txt']);
    write(s.worktree, { 'a.txt': 'agent\n' });
    const result = await s.sync({ mode: 'squash' });
    assert.deepEqual(result.files, ['a.txt']);
    assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), 'agent\n');
  });
});

describe('squash with conflict markers and the user\'s staged versions', () => {
  test('a staged version that differs from the commit and from the working file stops the sync', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    write(s.root, { 'a.txt': 'staged\n' });
    git(s.root, ['add', 'a.txt']);
    write(s.root, { 'a.txt': 'working\n' });
    write(s.worktree, { 'a.txt': 'agent\n' });
    const before = state(s.root, ['a.txt']);
    await refuses(s.sync({ mode: 'squash', onConflict: 'merge' }), 'staged-changes', ['a.txt']);
    assert.equal(state(s.root, ['a.txt']), before);
    assert.equal(git(s.root, ['show', ':a.txt']), 'staged\n');
  });

  test('a staged version equal to the working file is kept as "ours" in the conflict stages', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    write(s.root, { 'a.txt': 'staged\n' });
    git(s.root, ['add', 'a.txt']);
    write(s.worktree, { 'a.txt': 'agent\n' });
    const result = await s.sync({ mode: 'squash', onConflict: 'merge' });
    assert.deepEqual(result.conflicts, ['a.txt']);
    assert.equal(git(s.root, ['show', ':2:a.txt']), 'staged\n');
    assert.match(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), /<<<<<<< workspace\nstaged\n=======\nagent\n>>>>>>> sandbox\/agent\n/);
  });
});

describe('merge and the user\'s git settings', () => {
  test('with merge.autoStash, a merge keeps the user\'s staged and unstaged changes elsewhere where they are, and stashes nothing', async () => {
    const s = await sandbox({ 'a.txt': 'one\n', 'b.txt': 'b\n', 'c.txt': 'c\n' });
    git(s.root, ['config', 'merge.autoStash', 'true']);
    write(s.root, { 'b.txt': 'staged\n' });
    git(s.root, ['add', 'b.txt']);
    write(s.root, { 'b.txt': 'working\n', 'c.txt': 'mine\n' });
    write(s.worktree, { 'a.txt': 'agent\n' });
    s.agentCommit('agent');
    const result = await s.sync({ mode: 'merge' });
    assert.equal(result.fastForward, true);
    assert.equal(git(s.root, ['show', ':b.txt']), 'staged\n');
    assert.equal(readFileSync(path.join(s.root, 'b.txt'), 'utf8'), 'working\n');
    assert.equal(readFileSync(path.join(s.root, 'c.txt'), 'utf8'), 'mine\n');
    assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), 'agent\n');
    assert.equal(git(s.root, ['reflog', 'show', '--all', '--format=%gs']).includes('autostash'), false);
    assert.equal(git(s.root, ['for-each-ref', 'refs/stash']), '');
  });
});

describe('paths that hold a newline', () => {
  test('a merge around staged changes works in a linked worktree of a repository whose path holds a newline', async () => {
    const s = await sandbox({ 'a.txt': 'one\n', 'b.txt': 'b\n' }, { parent: ' my\nrepositories', linkedWorktree: 'my\nworktree' });
    write(s.root, { 'c.txt': 'committed by the user\n' });
    git(s.root, ['add', 'c.txt']);
    git(s.root, ['commit', '-q', '-m', 'user']);
    write(s.root, { 'b.txt': 'staged\n' });
    git(s.root, ['add', 'b.txt']);
    write(s.worktree, { 'a.txt': 'agent\n' });
    s.agentCommit('agent');
    const result = await s.sync({ mode: 'merge' });
    assert.equal(result.fastForward, false);
    assert.equal(result.commits.length, 2);
    assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), 'agent\n');
    assert.equal(git(s.root, ['show', ':b.txt']), 'staged\n');
    assert.equal(git(s.root, ['status', '--porcelain']), 'M  b.txt\n');
  });

  test('cherry-pick stops on an ignored file of the user\'s whose name holds a newline', async () => {
    const s = await sandbox({ '.gitignore': '*.log\n', 'a.txt': 'one\n' });
    const name = 'notes\nsecret.log';
    write(s.root, { [name]: 'mine\n' });
    write(s.worktree, { [name]: 'agent\n' });
    git(s.worktree, [`--git-dir=${s.privateGitDir}`, `--work-tree=${s.worktree}`, 'add', '-f', '--', name], {
      env: { ...process.env, GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(s.repo.commonDir, 'objects') },
    });
    s.agentCommit('a file with a newline in its name');
    const before = state(s.root, [name]);
    await refuses(s.sync({ mode: 'cherry-pick' }), 'local-changes', [name]);
    await refuses(s.sync({ mode: 'merge' }), 'local-changes', [name]);
    assert.equal(state(s.root, [name]), before);
  });

  test('squash brings a file whose name holds a newline', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    write(s.worktree, { 'x\ny.txt': 'agent\n' });
    const result = await s.sync({ mode: 'squash' });
    assert.deepEqual(result.files, ['x\ny.txt']);
    assert.equal(readFileSync(path.join(s.root, 'x\ny.txt'), 'utf8'), 'agent\n');
  });
});

describe('patches and diffs are made with fixed options, whatever the user\'s diff settings', () => {
  const agentFiles = { 'src/a.txt': THREE.replace('four', 'FOUR'), 'b.txt': 'new\n', 'bin.dat': Buffer.from([0, 1, 2, 3, 255, 0, 10]) };
  const settings: Array<[string, string[], NodeJS.ProcessEnv?]> = [
    ['diff.noprefix', ['diff.noprefix', 'true']],
    ['diff.mnemonicPrefix', ['diff.mnemonicPrefix', 'true']],
    ['diff.external', ['diff.external', 'echo external diff']],
    ['color.diff=always', ['color.diff', 'always']],
    ['diff.relative', ['diff.relative', 'true']],
    ['diff.context=0', ['diff.context', '0']],
    ['diff.renames=false', ['diff.renames', 'false']],
    ['diff.submodule=log', ['diff.submodule', 'log']],
    ['core.quotePath', ['core.quotePath', 'true']],
    ['a textconv driver', ['diff.upper.textconv', 'tr a-z A-Z <']],
    ['GIT_EXTERNAL_DIFF', ['diff.algorithm', 'histogram'], { GIT_EXTERNAL_DIFF: 'echo external' }],
    ['GIT_DIFF_OPTS', ['diff.algorithm', 'patience'], { GIT_DIFF_OPTS: '--unified=0' }],
  ];
  /** A sandbox whose agent changed a text file, added one and changed a binary one, under the user's `setting`. */
  async function withSetting<T>([key, value]: string[], env: NodeJS.ProcessEnv | undefined, work: (s: Sandbox) => Promise<T>): Promise<T> {
    const s = await sandbox({ 'src/a.txt': THREE, 'bin.dat': Buffer.from([0, 1, 2]), '.gitattributes': '*.txt diff=upper\n' });
    git(s.root, ['config', key, value]);
    write(s.worktree, agentFiles);
    const saved = { ...process.env };
    Object.assign(process.env, env ?? {});
    try {
      return await work(s);
    } finally {
      for (const k of Object.keys(env ?? {})) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }

  for (const [label, setting, env] of settings) {
    test(`the patch mode's patch applies with ${label}`, async () => {
      await withSetting(setting, env, async (s) => {
        const patchFile = path.join(scratch, `out-${++count}.patch`);
        const result = await s.sync({ mode: 'patch', patchFile });
        assert.deepEqual(result.files, ['b.txt', 'bin.dat', 'src/a.txt']);
        assert.deepEqual(applyBuffer(s, readFileSync(patchFile), Object.keys(agentFiles)), hexOf(agentFiles));
      });
    });

    test(`the readable diff of text files applies with ${label}`, async () => {
      await withSetting(setting, env, async (s) => {
        const text = await diffAgentWork(s.root, await s.capture(), { files: ['src/a.txt', 'b.txt'] });
        assert.deepEqual(applyBuffer(s, text, ['src/a.txt', 'b.txt']), hexOf({ 'src/a.txt': agentFiles['src/a.txt'], 'b.txt': agentFiles['b.txt'] }));
      });
    });

    test(`diff --stat is a summary only with ${label}`, async () => {
      await withSetting(setting, env, async (s) => {
        const stat = (await diffAgentWork(s.root, await s.capture(), { stat: true })).toString();
        assert.match(stat, /^ b\.txt +\| +1 \+\n bin\.dat +\| Bin 3 -> 7 bytes\n src\/a\.txt +\| +2 \+-\n 3 files changed, 2 insertions\(\+\), 1 deletion\(-\)\n$/);
      });
    });

    test(`diff --binary applies whole with ${label}`, async () => {
      await withSetting(setting, env, async (s) => {
        assert.deepEqual(applyBuffer(s, await diffAgentWork(s.root, await s.capture(), { binary: true }), Object.keys(agentFiles)), hexOf(agentFiles));
      });
    });
  }

  for (const [key, value] of [['diff.submodule', 'log'], ['diff.ignoreSubmodules', 'all']]) {
    test(`a gitlink the agent moved is in the patch and in diff --binary with ${key}=${value}`, async () => {
      const s = await sandbox({ 'a.txt': 'one\n' });
      const [first, second] = [s.base, git(s.root, ['commit-tree', '-m', 'another', `${s.base}^{tree}`]).trim()];
      const agentEnv = { ...process.env, GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(s.repo.commonDir, 'objects') };
      const agentGit = (args: string[]) => git(s.worktree, [`--git-dir=${s.privateGitDir}`, `--work-tree=${s.worktree}`, ...args], { env: agentEnv });
      // A submodule that is not checked out: an empty folder, as git leaves it.
      mkdirSync(path.join(s.worktree, 'sub'));
      const commit = (message: string) => agentGit(['-c', `user.name=${identity.name}`, '-c', `user.email=${identity.email}`, 'commit', '-q', '-m', message]);
      agentGit(['update-index', '--add', '--cacheinfo', `160000,${first},sub`]);
      commit('a gitlink');
      agentGit(['update-index', '--cacheinfo', `160000,${second},sub`]);
      commit('the gitlink moved');
      git(s.root, ['config', key, value]);
      const patchFile = path.join(scratch, `gitlink-${++count}.patch`);
      await s.sync({ mode: 'patch', patchFile });
      for (const patch of [readFileSync(patchFile), await diffAgentWork(s.root, await s.capture(), { binary: true })]) {
        assert.match(patch.toString(), new RegExp(`\\+Subproject commit ${second}`));
        const clone = path.join(scratch, `clone-${++count}`);
        git(scratch, ['clone', '-q', s.root, clone]);
        const file = path.join(scratch, `gitlink-patch-${count}`);
        writeFileSync(file, patch);
        git(clone, ['apply', '--index', file]);
        assert.match(git(clone, ['ls-files', '-s', 'sub']), new RegExp(`^160000 ${second} 0\tsub`));
      }
    });
  }

  test('diff without --binary names a changed binary file only; with it, git apply takes the whole patch', async () => {
    const s = await sandbox({ 'bin.dat': Buffer.from([0, 1, 2]) });
    write(s.worktree, { 'bin.dat': Buffer.from([0, 9, 9, 9]) });
    const work = await s.capture();
    assert.match((await diffAgentWork(s.root, work)).toString(), /Binary files a\/bin.dat and b\/bin.dat differ/);
    const patch = await diffAgentWork(s.root, work, { binary: true });
    assert.match(patch.toString(), /GIT binary patch/);
    assert.deepEqual(applyBuffer(s, patch, ['bin.dat']), { 'bin.dat': '00090909' });
  });
});

describe('sparse checkouts', () => {
  for (const index of ['--no-sparse-index', '--sparse-index']) {
    test(`squash of a change outside the sparse checkout stops with the paths and what to do (${index})`, async () => {
      const s = await sandbox({ 'in/a.txt': 'a\n', 'out/b.txt': 'b\n' });
      git(s.root, ['sparse-checkout', 'set', '--cone', index, 'in']);
      assert.equal(existsSync(path.join(s.root, 'out/b.txt')), false);
      write(s.worktree, { 'out/b.txt': 'agent\n', 'in/a.txt': 'agent a\n' });
      const before = state(s.root, ['in/a.txt', 'out/b.txt']);
      const error = await refuses(s.sync({ mode: 'squash' }), 'sparse-checkout', ['out/b.txt']);
      assert.match(error.hint ?? '', /git sparse-checkout add out/);
      assert.equal(state(s.root, ['in/a.txt', 'out/b.txt']), before);
      // Inside the cone it goes ahead.
      const result = await s.sync({ mode: 'squash', files: ['in/a.txt'] });
      assert.deepEqual(result.files, ['in/a.txt']);
    });
  }

  test('merge takes a change outside the sparse checkout as git does: committed, and left out of the working tree', async () => {
    const s = await sandbox({ 'in/a.txt': 'a\n', 'out/b.txt': 'b\n' });
    git(s.root, ['sparse-checkout', 'set', '--cone', 'in']);
    write(s.worktree, { 'out/b.txt': 'agent\n', 'in/a.txt': 'agent a\n' });
    s.agentCommit('agent');
    const result = await s.sync({ mode: 'merge' });
    assert.equal(result.fastForward, true);
    assert.equal(git(s.root, ['show', 'HEAD:out/b.txt']), 'agent\n');
    assert.equal(readFileSync(path.join(s.root, 'in/a.txt'), 'utf8'), 'agent a\n');
    assert.equal(existsSync(path.join(s.root, 'out/b.txt')), false);
    assert.equal(git(s.root, ['status', '--porcelain']), '');
  });
});

describe('squash writes files under the workspace\'s attributes, not under the ones it brings', () => {
  async function withGlobalConfig<T>(extra: string, work: () => Promise<T>): Promise<T> {
    const config = readFileSync(globalConfig, 'utf8');
    writeFileSync(globalConfig, config + extra);
    try {
      return await work();
    } finally {
      writeFileSync(globalConfig, config);
    }
  }

  test('a .gitattributes of the agent\'s naming a driver the host configured runs no smudge filter in the sync that brings it', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    const marker = path.join(scratch, `smudge-ran-${++count}`);
    await withGlobalConfig(`[filter "lfs"]\n\tsmudge = touch ${marker}; tr a-z A-Z\n\tclean = cat\n\trequired = true\n`, async () => {
      write(s.worktree, { '.gitattributes': '* filter=lfs\n', 'a.txt': 'agent\n', 'sub/.gitattributes': '* filter=lfs\n', 'sub/b.txt': 'b\n' });
      const result = await s.sync({ mode: 'squash' });
      assert.deepEqual(result.files, ['.gitattributes', 'a.txt', 'sub/.gitattributes', 'sub/b.txt']);
      assert.equal(existsSync(marker), false, 'the smudge filter ran');
      assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), 'agent\n');
      assert.equal(readFileSync(path.join(s.root, 'sub/b.txt'), 'utf8'), 'b\n');
      assert.equal(readFileSync(path.join(s.root, 'sub/.gitattributes'), 'utf8'), '* filter=lfs\n');
    });
  });

  test('the workspace\'s own attributes and filters apply to the agent\'s files, as in any checkout', async () => {
    const s = await sandbox({ '.gitattributes': '*.txt filter=upper\n', 'a.txt': 'one\n' });
    await withGlobalConfig('[filter "upper"]\n\tsmudge = tr a-z A-Z\n\tclean = tr A-Z a-z\n', async () => {
      write(s.worktree, { 'a.txt': 'agent\n', '.gitattributes': '*.txt -filter\n' });
      await s.sync({ mode: 'squash' });
      assert.equal(readFileSync(path.join(s.root, 'a.txt'), 'utf8'), 'AGENT\n');
      assert.equal(readFileSync(path.join(s.root, '.gitattributes'), 'utf8'), '*.txt -filter\n');
    });
  });
});

describe('capture', () => {
  test('a tracked file the agent replaced by a FIFO is left out with a note, and never read', { timeout: 20_000 }, async () => {
    const s = await sandbox({ 'a.txt': 'one\n', 'b.txt': 'b\n' });
    rmSync(path.join(s.worktree, 'a.txt'));
    execFileSync('mkfifo', [path.join(s.worktree, 'a.txt')]);
    execFileSync('mkfifo', [path.join(s.worktree, 'untracked-fifo')]);
    write(s.worktree, { 'b.txt': 'agent\n' });
    const work = await s.capture();
    assert.deepEqual(work.skipped, ['a.txt']);
    assert.equal(git(s.root, ['show', `${work.tip}:a.txt`]), 'one\n');
    assert.equal(git(s.root, ['show', `${work.tip}:b.txt`]), 'agent\n');
    const result = await s.sync({ mode: 'squash' });
    assert.deepEqual(result.files, ['b.txt']);
    assert.deepEqual(result.skipped, ['a.txt']);
  });

  test('a FIFO where git reads a nested repository\'s HEAD stops capture with a clear error instead of blocking it', { timeout: 30_000 }, async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    mkdirSync(path.join(s.worktree, 'sub/.git/objects'), { recursive: true });
    mkdirSync(path.join(s.worktree, 'sub/.git/refs'), { recursive: true });
    execFileSync('mkfifo', [path.join(s.worktree, 'sub/.git/HEAD')]);
    const saved = agentGitLimits.timeoutMs;
    agentGitLimits.timeoutMs = 2_000;
    try {
      await assert.rejects(s.capture(), (error: Error) => /did not finish/.test(error.message) && /FIFO/.test((error as { hint?: string }).hint ?? ''));
    } finally {
      agentGitLimits.timeoutMs = saved;
    }
  });

  for (const where of ['HEAD', 'refs/heads/sandbox/agent', 'packed-refs']) {
    test(`a FIFO (or a link to one) at the private git dir's ${where} is a clear error about that sandbox, without blocking capture`, { timeout: 20_000 }, async () => {
      const s = await sandbox({ 'a.txt': 'one\n' });
      write(s.worktree, { 'a.txt': 'agent\n' });
      const file = path.join(s.privateGitDir, where);
      rmSync(file, { force: true });
      if (where === 'refs/heads/sandbox/agent') {
        execFileSync('mkfifo', [file]);
      } else {
        execFileSync('mkfifo', [path.join(scratch, `fifo-${++count}`)]);
        symlinkSync(path.join(scratch, `fifo-${count}`), file);
        if (where === 'packed-refs') rmSync(path.join(s.privateGitDir, 'refs/heads/sandbox/agent'));
      }
      const unusable = (error: unknown) => error instanceof GitError && /git directory in sandbox "agent" is not usable/.test(error.message);
      await assert.rejects(readAgentHead(s.privateGitDir), unusable);
      await assert.rejects(s.capture(), unusable);
    });
  }

  test('a filter driver that the user\'s own attributes at the base name still cleans the agent\'s files, as a git add of the user\'s would', async () => {
    const s = await sandbox({ '.gitattributes': '*.big filter=lfs\n', 'x.big': 'cleaned:x\n', 'a.txt': 'one\n' });
    const config = readFileSync(globalConfig, 'utf8');
    writeFileSync(globalConfig, `${config}[filter "lfs"]\n\tclean = sed s/^/cleaned:/\n\tsmudge = cat\n\trequired = true\n`);
    try {
      // The agent changes an LFS file of the user's, and names the driver for a.txt too: only the first is cleaned.
      write(s.worktree, { 'x.big': 'agent\n', 'a.txt': 'agent\n', 'sub/.gitattributes': '*.big -filter\n*.txt filter=lfs\n', 'sub/y.big': 'y\n' });
      write(s.worktree, { '.gitattributes': '*.big filter=lfs\n*.txt filter=lfs\n' });
      const work = await s.capture();
      assert.equal(git(s.root, ['show', `${work.tip}:x.big`]), 'cleaned:agent\n');
      assert.equal(git(s.root, ['show', `${work.tip}:a.txt`]), 'agent\n');
      assert.equal(git(s.root, ['show', `${work.tip}:sub/y.big`]), 'y\n');
    } finally {
      writeFileSync(globalConfig, config);
    }
  });

  test('what rm checks (uncommittedChanges) runs no filter driver the agent names and does not wait on a FIFO for ever', { timeout: 30_000 }, async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    const marker = path.join(scratch, `status-filter-ran-${++count}`);
    const config = readFileSync(globalConfig, 'utf8');
    writeFileSync(globalConfig, `${config}[filter "lfs"]\n\tclean = touch ${marker}; cat\n\trequired = true\n`);
    try {
      write(s.worktree, { '.gitattributes': '* filter=lfs\n', 'a.txt': 'two\n' });
      assert.deepEqual((await s.repo.uncommittedChanges('agent')).sort(), ['.gitattributes', 'a.txt']);
      assert.equal(existsSync(marker), false, 'the clean filter ran');
    } finally {
      writeFileSync(globalConfig, config);
    }
    mkdirSync(path.join(s.worktree, 'sub/.git/objects'), { recursive: true });
    mkdirSync(path.join(s.worktree, 'sub/.git/refs'), { recursive: true });
    execFileSync('mkfifo', [path.join(s.worktree, 'sub/.git/HEAD')]);
    const saved = agentGitLimits.timeoutMs;
    agentGitLimits.timeoutMs = 2_000;
    try {
      await assert.rejects(s.repo.uncommittedChanges('agent'), /did not finish/);
    } finally {
      agentGitLimits.timeoutMs = saved;
    }
  });

  test('the agent\'s .gitattributes cannot make capture run a filter driver the host configured', async () => {
    const s = await sandbox({ 'a.txt': 'one\n' });
    const marker = path.join(scratch, `filter-ran-${++count}`);
    const config = readFileSync(globalConfig, 'utf8');
    writeFileSync(globalConfig, `${config}[filter "lfs"]\n\tclean = touch ${marker}; tr a-z A-Z\n\tprocess = touch ${marker}\n\trequired = true\n`);
    try {
      write(s.worktree, { '.gitattributes': '* filter=lfs\n', 'a.txt': 'agent\n', 'new.txt': 'new\n' });
      const work = await s.capture();
      assert.equal(existsSync(marker), false, 'the clean filter ran');
      assert.equal(git(s.root, ['show', `${work.tip}:a.txt`]), 'agent\n');
      assert.equal(git(s.root, ['show', `${work.tip}:new.txt`]), 'new\n');
    } finally {
      writeFileSync(globalConfig, config);
    }
  });
});
