import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ConflictError, GitError } from '../errors';
import { importAgentObjects, readAgentHead, trustedGitEnv } from './agentgit';
import { agentGitLimits, gitRaw, gitWithInput, GitTimeoutError, hostGit, withoutFilterDrivers } from './git';
import { withLock } from '../lock';
import type { AgentUser } from '../isolation/user';

/**
 * Where the container sees the sandbox's private git directory and the host repository's objects. The
 * worktree's `.git` file is covered, inside the container only, by a read-only file naming the first path.
 */
export const CONTAINER_GIT_DIR = '/run/agent-sandbox/git';
export const CONTAINER_HOST_OBJECTS = '/run/agent-sandbox/host-objects';
export const BRANCH_PREFIX = 'sandbox/';

const SANDBOX_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;

export function validateSandboxName(name: string): void {
  if (!SANDBOX_NAME.test(name)) {
    throw new ConflictError(
      `"${name}" is not a valid sandbox name.`,
      'Use 1 to 48 lowercase letters, digits, "-" or "_", starting with a letter or digit.',
    );
  }
}

/** The host-side paths of one sandbox. All of them live under the repository's git directory. */
export interface WorktreePaths {
  name: string;
  branch: string;
  /** The git worktree the agent works in (mounted at /workspace). */
  worktree: string;
  /** Host-owned state: the private git dir, the `.git` overlay file, metadata. */
  stateDir: string;
  /** The agent's own git directory: its HEAD, refs, index and new objects; the host's objects via alternates. */
  privateGitDir: string;
  /** The file mounted read-only over /workspace/.git inside the container. */
  gitFile: string;
}

export class Repository {
  private constructor(
    /** The top of the working tree the user works in. */
    readonly root: string,
    /** The repository's common git directory (the main `.git`, also from a linked worktree). */
    readonly commonDir: string,
  ) {}

  static async open(dir: string): Promise<Repository> {
    let top: string;
    let common: string;
    try {
      const git = hostGit(dir);
      top = (await git.revparse(['--show-toplevel'])).trim();
      common = (await git.revparse(['--git-common-dir'])).trim();
    } catch (error) {
      if (!/not a git repository/i.test((error as Error).message)) throw new GitError(`git cannot open ${dir}: ${(error as Error).message}`);
      throw new GitError(
        `${dir} is not inside a git repository.`,
        'Agent Sandboxes gives each agent a git worktree: run `git init` and commit once, or open a repository.',
      );
    }
    const root = await fs.realpath(top);
    return new Repository(root, await fs.realpath(path.resolve(root, common)));
  }

  get name(): string {
    return path.basename(this.root);
  }

  git() {
    return hostGit(this.root);
  }

  /**
   * git without simple-git, for the commands that run on every `up`, `ls` and `rm`: simple-git waits a
   * fixed 50 ms after any command that prints nothing.
   */
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
    return gitWithInput(this.root, args, '', env);
  }

  /**
   * git over a sandbox's worktree, which the agent controls: with a deadline, since git opens the `.gitignore`
   * of every folder it walks with a blocking open, and a FIFO there would hold it (and the view, `diff`, sync)
   * for good. A GitError about that sandbox when it fails or runs out of time.
   */
  async worktreeGit(name: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const command = args.find((a) => !a.startsWith('-')) ?? 'git';
    const result = await gitRaw(this.root, args, { ...options, timeoutMs: agentGitLimits.timeoutMs }).catch((error: unknown) => {
      if (!(error instanceof GitTimeoutError)) throw error;
      throw new GitError(
        `git ${command} did not finish within ${Math.round(agentGitLimits.timeoutMs / 1000)} s in the worktree of sandbox "${name}".`,
        "The agent may have left a FIFO or another special file where git reads (a .gitignore, a nested repository's HEAD): `find /workspace ! -type f ! -type d ! -type l` in a shell of the sandbox lists them.",
      );
    });
    if (result.code !== 0) throw new GitError(`git ${command} failed in the worktree of sandbox "${name}": ${result.stderr.trim()}`);
    return result.stdout.toString('utf8');
  }

  /** Where Agent Sandboxes keeps everything of this repository: inside its git directory. */
  get stateRoot(): string {
    return path.join(this.commonDir, 'agent-sandboxes');
  }

  /** Serializes what git cannot do in parallel on one repository (adding and removing worktrees). */
  async locked<T>(work: () => Promise<T>): Promise<T> {
    await fs.mkdir(this.stateRoot, { recursive: true });
    return withLock(path.join(this.stateRoot, 'worktrees.lock'), work);
  }

  paths(name: string): WorktreePaths {
    const base = this.stateRoot;
    const stateDir = path.join(base, 'state', name);
    return {
      name,
      branch: BRANCH_PREFIX + name,
      worktree: path.join(base, 'worktrees', name),
      stateDir,
      privateGitDir: path.join(stateDir, 'git'),
      gitFile: path.join(stateDir, 'gitfile'),
    };
  }

  /** The names of sandboxes that have state in this repository, whatever their containers' fate. */
  async sandboxNames(): Promise<string[]> {
    try {
      const entries = await fs.readdir(path.join(this.commonDir, 'agent-sandboxes', 'state'), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    } catch {
      return [];
    }
  }

  async resolveCommit(ref: string): Promise<string> {
    try {
      return (await gitWithInput(this.root, ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).trim();
    } catch {
      throw new GitError(`"${ref}" does not name a commit in ${this.root}.`, 'Start from a branch, tag or commit that exists; a new repository needs one commit first.', [{ do: 'choose-base' }]);
    }
  }

  async branchTip(branch: string): Promise<string | undefined> {
    try {
      return (await gitWithInput(this.root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Creates the worktree on a new branch and the agent's private git directory beside it. The name is claimed
   * first, atomically (the sandbox's state folder is made with a plain mkdir, which only one process can win):
   * a second `up` of the same name fails there and touches nothing. On any later failure what this call made
   * is removed again, and only that.
   */
  async createSandboxWorktree(name: string, baseCommit: string, user: AgentUser, identity: GitIdentity): Promise<WorktreePaths> {
    validateSandboxName(name);
    const p = this.paths(name);
    const taken = () => new ConflictError(`A sandbox named "${name}" already exists in ${this.root}.`, 'Choose another name, or remove that sandbox first.', [{ do: 'remove-sandbox', sandbox: name }]);
    if (await exists(p.stateDir)) throw taken();
    await fs.mkdir(path.dirname(p.stateDir), { recursive: true });
    try {
      await fs.mkdir(p.stateDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw taken();
      throw error;
    }
    let worktreeMade = false;
    try {
      await this.locked(async () => {
        // Under the lock, as git sees it, so that no other process makes the branch between the check and the add.
        if (await this.branchTip(p.branch)) {
          throw new ConflictError(`The branch ${p.branch} already exists.`, `Choose another name, or delete the branch: git branch -D ${p.branch}`);
        }
        await gitWithInput(this.root, ['worktree', 'add', '--quiet', '-b', p.branch, p.worktree, baseCommit]);
        worktreeMade = true;
      });
      await this.writePrivateGitDir(p, baseCommit, identity);
      if (user.chownNeeded) await chownTree([p.worktree, p.privateGitDir, p.gitFile], user.uid, user.gid);
      return p;
    } catch (error) {
      // The worktree and its branch only if this call added them; the claimed state folder always (it is ours).
      if (worktreeMade) await this.removeSandboxWorktree(name).catch(() => undefined);
      else await fs.rm(p.stateDir, { recursive: true, force: true });
      throw error instanceof GitError || error instanceof ConflictError ? error : new GitError(`Could not create the worktree for "${name}": ${(error as Error).message}`);
    }
  }

  private async writePrivateGitDir(p: WorktreePaths, baseCommit: string, identity: GitIdentity): Promise<void> {
    const dir = p.privateGitDir;
    await fs.mkdir(path.join(dir, 'refs', 'heads', BRANCH_PREFIX), { recursive: true });
    await fs.mkdir(path.join(dir, 'refs', 'tags'), { recursive: true });
    await fs.mkdir(path.join(dir, 'objects', 'info'), { recursive: true });
    await fs.mkdir(path.join(dir, 'objects', 'pack'), { recursive: true });
    await fs.writeFile(path.join(dir, 'HEAD'), `ref: refs/heads/${p.branch}\n`);
    await fs.writeFile(path.join(dir, 'refs', 'heads', p.branch), `${baseCommit}\n`);
    await fs.writeFile(
      path.join(dir, 'config'),
      [
        '[core]',
        '\trepositoryformatversion = 0',
        '\tfilemode = true',
        '\tbare = false',
        '\tlogallrefupdates = true',
        ...(await this.lineEndingConfig()).map(([key, value]) => `\t${key} = ${quoteConfigValue(value)}`),
        '[user]',
        `\tname = ${quoteConfigValue(identity.name)}`,
        `\temail = ${quoteConfigValue(identity.email)}`,
        '',
      ].join('\n'),
    );
    await fs.writeFile(path.join(dir, 'objects', 'info', 'alternates'), `${CONTAINER_HOST_OBJECTS}\n`);
    // A shallow clone's boundary, or the agent's git cannot walk its history (`git log` fails). The host never
    // reads the agent's copy back (see importAgentObjects).
    await fs.copyFile(path.join(this.commonDir, 'shallow'), path.join(dir, 'shallow')).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    // The host made a fresh index for the new worktree; the agent starts from a copy so `git status` is right.
    const adminDir = await this.adminDirOf(p.worktree);
    if (adminDir) await fs.copyFile(path.join(adminDir, 'index'), path.join(dir, 'index'));
    await fs.writeFile(p.gitFile, `gitdir: ${CONTAINER_GIT_DIR}\n`);
  }

  /**
   * The user's line-ending settings, as git resolves them here (repository, global and system config), for the
   * agent's config: without them the agent's git commits the CRLF lines that `core.autocrlf` checked out, and
   * a merge rewrites every line. Only values git knows are carried over.
   */
  private async lineEndingConfig(): Promise<Array<[string, string]>> {
    const known: Record<string, RegExp> = {
      'core.autocrlf': /^(true|false|input|yes|no|on|off|1|0)$/i,
      'core.eol': /^(lf|crlf|native)$/i,
      'core.safecrlf': /^(true|false|warn|yes|no|on|off|1|0)$/i,
    };
    const result = await gitRaw(this.root, ['config', '--null', '--get-regexp', '^core\\.(autocrlf|eol|safecrlf)$']);
    const settings = new Map<string, string>();
    // NUL-separated records of "key\nvalue"; the last one of a key wins, as in git.
    for (const record of result.code === 0 ? result.stdout.toString('utf8').split('\0') : []) {
      const newline = record.indexOf('\n');
      const key = record.slice(0, newline < 0 ? undefined : newline).toLowerCase();
      const value = newline < 0 ? 'true' : record.slice(newline + 1);
      if (known[key]?.test(value)) settings.set(key.slice('core.'.length), value);
    }
    return [...settings];
  }

  /**
   * The host's administrative directory of a worktree (`.git/worktrees/<id>`), found from the host's own
   * records rather than from the worktree's `.git` file, which lives where the agent writes.
   */
  async adminDirOf(worktree: string): Promise<string | undefined> {
    const adminRoot = path.join(this.commonDir, 'worktrees');
    let ids: string[];
    try {
      ids = await fs.readdir(adminRoot);
    } catch {
      return undefined;
    }
    const expected = path.join(worktree, '.git');
    for (const id of ids) {
      const gitdir = await fs.readFile(path.join(adminRoot, id, 'gitdir'), 'utf8').catch(() => '');
      if (gitdir.trim() === expected) return path.join(adminRoot, id);
    }
    return undefined;
  }

  /**
   * Brings the commits the agent made in its private git directory onto the host's branch `sandbox/<name>`.
   * The private directory is data, never a repository for host git: its HEAD and ref are read by hand (regular
   * files only, never through a link), and its objects are copied into a quarantine and taken into the host's
   * object store only through `git index-pack --strict`, which names each by its bytes (see agentgit.ts).
   * Nothing the agent wrote there (config, hooks, alternates, commit-graph, grafts, shallow, replace refs) is
   * read by git. Returns the branch's tip afterwards; throws a GitError about this sandbox alone where its
   * directory holds what the host will not read or objects that fail the checks.
   */
  async importAgentCommits(name: string): Promise<string | undefined> {
    const p = this.paths(name);
    const current = await this.branchTip(p.branch);
    if (!current) return undefined;
    const agentTip = await readAgentHead(p.privateGitDir, name);
    if (!agentTip || agentTip === current) return current;
    await importAgentObjects({ root: this.root, commonDir: this.commonDir, privateGitDir: p.privateGitDir, sandbox: name, tip: agentTip });
    await this.run(['update-ref', '-m', 'agent-sandbox: import agent commits', `refs/heads/${p.branch}`, agentTip, current], trustedGitEnv());
    // The worktree's HEAD follows the branch; its index must follow too, or `git status` would show the
    // agent's commits as staged reversals. The working files are the agent's and stay as they are.
    const adminDir = await this.adminDirOf(p.worktree);
    if (adminDir) {
      await this.run([`--git-dir=${adminDir}`, `--work-tree=${p.worktree}`, 'read-tree', agentTip]);
    }
    return agentTip;
  }

  /** Commits on the sandbox's branch that no other branch, tag or remote-tracking branch holds. */
  async unmergedCommits(name: string): Promise<number> {
    const branch = `refs/heads/${this.paths(name).branch}`;
    if (!(await this.branchTip(this.paths(name).branch))) return 0;
    // Not `--all`: it counts every worktree's HEAD, and the sandbox's own worktree holds its branch.
    const refs = (await this.run(['for-each-ref', '--format=%(refname)']))
      .split('\n')
      .filter((ref) => ref && ref !== branch && !ref.startsWith('refs/stash'));
    const out = await gitWithInput(this.root, ['rev-list', '--count', '--stdin'], [branch, ...refs.map((ref) => `^${ref}`), ''].join('\n'));
    return Number(out.trim());
  }

  /** Paths in the worktree that differ from its branch's tip (modified, added, deleted, untracked). */
  async uncommittedChanges(name: string): Promise<string[]> {
    const p = this.paths(name);
    const adminDir = await this.adminDirOf(p.worktree);
    if (!adminDir || !(await exists(p.worktree))) return [];
    const scope = [`--git-dir=${adminDir}`, `--work-tree=${p.worktree}`];
    // As in captureAgentWork: no filter driver the agent's attributes name, and no waiting for ever on a FIFO.
    const env = await withoutFilterDrivers(this.root, scope);
    const args = [
      ...scope,
      'status',
      '--porcelain=v1',
      '-z',
      '--untracked-files=all',
      // One path per entry: a rename's second path would be read as an entry of its own (status.renames).
      '--no-renames',
      // Never into a nested repository the agent made: that runs git there, with its config (see captureAgentWork).
      '--ignore-submodules=all',
    ];
    const out = await this.worktreeGit(name, args, { env });
    return out
      .split('\0')
      .filter((entry) => entry.length > 3)
      .map((entry) => entry.slice(3));
  }

  /** A file as it was at a commit, or undefined where it did not exist. */
  async fileAt(commit: string, file: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      execFile('git', ['-c', 'core.hooksPath=/dev/null', 'show', `${commit}:${file}`], { cwd: this.root, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (error, stdout) =>
        resolve(error ? undefined : stdout),
      );
    });
  }

  /**
   * Removes the worktree, the private git directory and, unless `keepBranch`, the branch. Each step is
   * tolerant of what is already gone, so it also cleans up after a failed create.
   */
  async removeSandboxWorktree(name: string, options: { keepBranch?: boolean } = {}): Promise<void> {
    const p = this.paths(name);
    await this.locked(async () => {
      if (await this.adminDirOf(p.worktree)) {
        await this.run(['worktree', 'remove', '--force', '--force', p.worktree]).catch(() => undefined);
      }
      await fs.rm(p.worktree, { recursive: true, force: true });
      await this.run(['worktree', 'prune']).catch(() => undefined);
    });
    if (!options.keepBranch && (await this.branchTip(p.branch))) {
      await this.run(['branch', '-D', p.branch]);
    }
    await fs.rm(p.stateDir, { recursive: true, force: true });
  }
}

export interface ChangedFile {
  /** Path inside the worktree, with forward slashes. */
  path: string;
  status: 'added' | 'modified' | 'deleted' | 'renamed';
  /** For a rename, the path at the base. */
  from?: string;
  /** Lines added and removed; absent for binary files. */
  added?: number;
  removed?: number;
}

export interface GitIdentity {
  name: string;
  email: string;
}

/** Who the agent's commits (and the commit of its uncommitted work) are by. */
export function agentIdentity(sandbox: string, role: string): GitIdentity {
  return { name: `${role} agent (sandbox ${sandbox})`, email: `${sandbox}@agent-sandboxes.invalid` };
}

function quoteConfigValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, ' ')}"`;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Hands the sandbox's files to the agent's user; chown(1) does it far faster than a walk in JavaScript. */
function chownTree(roots: string[], uid: number, gid: number): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('chown', ['-R', '-h', `${uid}:${gid}`, '--', ...roots], (error, _stdout, stderr) =>
      error ? reject(new GitError(`Could not hand the sandbox's files to uid ${uid}: ${stderr.trim() || error.message}`)) : resolve(),
    ),
  );
}
