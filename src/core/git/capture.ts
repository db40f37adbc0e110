/**
 * The agent's work read as data: captured as commits without touching its worktree, its index or the host's
 * branch, and its changed files and diff against its base (what every refresh of the view runs).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { GitError } from '../errors';
import { gitRaw, gitWithInput, withoutFilterDrivers } from './git';
import { commitTree, copyIndex, diffEnv, exists, FIXED_DIFF_OPTIONS, list, PATCH_CONTEXT, treeOf, withTempDir } from './plumbing';
import type { ChangedFile, GitIdentity, Repository } from './worktrees';

/** Everything the agent did, as commits: its own commits, and one more holding what it left uncommitted. */
export interface AgentWork {
  name: string;
  branch: string;
  /** The commit the sandbox was created from. */
  base: string;
  /** The tip of the sandbox's branch (the agent's commits). */
  head: string;
  /**
   * `head`, or a commit on top of it with the worktree's uncommitted files (untracked ones included); when
   * captured without an identity, only that commit's tree, which every diff takes as well.
   */
  tip: string;
  uncommitted: boolean;
  /** Paths in the worktree that are no file git can hold (a FIFO, socket or device): left as `head` has them. */
  skipped: string[];
}

/**
 * Captures the agent's work as commits, without touching its worktree, its index or the host's branch:
 * the worktree is read into a temporary index (so .gitignore applies and symlinks and the executable bit
 * are kept) and written as a commit on top of the branch's tip.
 */
export async function captureAgentWork(repo: Repository, name: string, base: string, identity: GitIdentity | undefined): Promise<AgentWork> {
  const paths = repo.paths(name);
  const head = (await repo.importAgentCommits(name)) ?? base;
  const work: AgentWork = { name, branch: paths.branch, base, head, tip: head, uncommitted: false, skipped: [] };
  const adminDir = await repo.adminDirOf(paths.worktree);
  if (!adminDir || !(await exists(paths.worktree))) return work;
  const scope = [`--git-dir=${adminDir}`, `--work-tree=${paths.worktree}`];
  // The worktree's .gitattributes are the agent's: they must not choose a filter driver the host has
  // configured (git-lfs, say), which reading a file into the index would run as the host user. Only a
  // driver that the user's own attributes (as at the base) give a path runs for it (see userFilteredPaths).
  const noFilters = await withoutFilterDrivers(repo.root, scope);
  // git opens what the agent wrote: a FIFO where it reads a nested repository's HEAD blocks it for ever.
  const run = (args: string[], env: NodeJS.ProcessEnv, input = '') => repo.worktreeGit(name, [...scope, ...args], { env, input });
  return withTempDir(async (tmp) => {
    const env = { ...noFilters, GIT_INDEX_FILE: path.join(tmp, 'index') };
    // The host's index of the worktree always holds `head` (see importAgentCommits). Refreshed, its stat
    // cache spares rehashing every file the agent left alone; a copy of it then takes the agent's changes.
    await run(['update-index', '-q', '--ignore-submodules', '--refresh'], noFilters).catch((error: unknown) => {
      if (error instanceof GitError && error.hint) throw error;
    });
    await copyIndex(path.join(adminDir, 'index'), env.GIT_INDEX_FILE);
    // Not `git add -A`: for a nested repository (a gitlink) it runs `git status` inside it, which reads that
    // repository's config, written by the agent (a filter there ran as the host user), and follows its .git
    // file anywhere (one naming the user's .git refreshed the user's index). ls-files and update-index
    // only read a nested repository's HEAD.
    const listed = await run(['ls-files', '-z', '-t', '--modified', '--deleted', '--others', '--exclude-standard'], env);
    const removed = new Set<string>();
    const changed = new Set<string>();
    const modified = new Set<string>();
    for (const entry of listed.split('\0')) {
      if (entry.length < 3) continue;
      // `R ` removed, `C ` changed, `? ` other; ls-files names a nested repository `dir/`, update-index takes `dir`.
      const name = entry.slice(2).replace(/\/$/, '');
      (entry[0] === 'R' ? removed : changed).add(name);
      if (entry[0] === 'C') modified.add(name);
    }
    for (const name of removed) changed.delete(name);
    const skipped: string[] = [];
    await Promise.all(
      [...changed].map(async (name) => {
        const file = path.join(paths.worktree, name);
        const stat = await fs.lstat(file).catch(() => undefined);
        // A FIFO, socket or device is no file git can hold, and reading one may block forever: left out,
        // so the path keeps what the agent's last commit has.
        if (stat && !stat.isFile() && !stat.isSymbolicLink() && !stat.isDirectory()) {
          changed.delete(name);
          skipped.push(name);
        } else if (modified.has(name) && stat?.isDirectory() && !(await exists(path.join(file, '.git')))) {
          // A tracked file or link the agent turned into a folder leaves the index; the folder's files come as others.
          changed.delete(name);
          removed.add(name);
        }
      }),
    );
    skipped.sort();
    // Removals first and forced: a path may now lie beyond a link or a file the agent put in its folder's place.
    if (removed.size > 0) await run(['update-index', '--force-remove', '-z', '--stdin'], env, `${[...removed].join('\0')}\0`);
    const userFiltered = await userFilteredPaths(run, base, [...changed], env, tmp);
    const add = (names: string[], addEnv: NodeJS.ProcessEnv) =>
      names.length > 0 ? run(['update-index', '--add', '--remove', '--replace', '-z', '--stdin'], addEnv, `${names.join('\0')}\0`) : undefined;
    await add([...changed].filter((p) => !userFiltered.has(p)), env);
    await add([...userFiltered], { ...process.env, GIT_INDEX_FILE: env.GIT_INDEX_FILE });
    const tree = (await run(['write-tree'], env)).trim();
    if (tree === (await treeOf(repo.root, head))) return { ...work, skipped };
    // Only to list changes (identity undefined), the tree does: no commit object on every look at the view.
    const tip = identity ? await commitTree(repo.root, tree, [head], `Uncommitted work in sandbox ${name}`, identity) : tree;
    return { ...work, tip, uncommitted: true, skipped };
  });
}

/**
 * Those of `paths` whose filter driver is the user's choice: their attributes at the base (the user's
 * committed .gitattributes, read from the base's tree, with the user's info/attributes and global ones) name
 * a driver, and the worktree's name the same. An LFS file of the user's repository is cleaned into its pointer
 * as a `git add` of the user's would; a driver only the agent's attributes name never runs.
 */
async function userFilteredPaths(
  run: (args: string[], env: NodeJS.ProcessEnv, input?: string) => Promise<string>,
  base: string,
  paths: string[],
  env: NodeJS.ProcessEnv,
  tmp: string,
): Promise<Set<string>> {
  if (paths.length === 0) return new Set();
  const input = paths.map((p) => `${p}\0`).join('');
  const baseEnv = { ...env, GIT_INDEX_FILE: path.join(tmp, 'base-index') };
  await run(['read-tree', base], baseEnv);
  const filters = async (args: string[], attrEnv: NodeJS.ProcessEnv) => {
    const fields = (await run(['check-attr', ...args, '-z', '--stdin', 'filter'], attrEnv, input)).split('\0');
    const values = new Map<string, string>();
    for (let i = 0; i + 2 < fields.length; i += 3) values.set(fields[i], fields[i + 2]);
    return values;
  };
  const [atBase, inWorktree] = await Promise.all([filters(['--cached'], baseEnv), filters([], env)]);
  const driver = (value: string | undefined) => value !== undefined && !['unspecified', 'unset', 'set'].includes(value);
  return new Set(paths.filter((p) => driver(atBase.get(p)) && inWorktree.get(p) === atBase.get(p)));
}

/** The files changed between two commits, renames paired, with lines added and removed. */
export async function changesBetween(root: string, from: string, to: string): Promise<ChangedFile[]> {
  const [status, numstat] = await Promise.all([
    // `git diff`, not `diff-tree`: measured 6x faster on 5,000 files, as diff-tree reads the checked-out copy
    // of files the index says are unchanged.
    gitWithInput(root, ['diff', ...FIXED_DIFF_OPTIONS, '--no-color', '-z', '--name-status', from, to], '', diffEnv()),
    gitWithInput(root, ['diff', ...FIXED_DIFF_OPTIONS, '--no-color', '-z', '--numstat', from, to], '', diffEnv()),
  ]);
  const changes: ChangedFile[] = [];
  const fields = status.split('\0');
  for (let i = 0; i < fields.length - 1; ) {
    const code = fields[i++];
    if (code.startsWith('R') || code.startsWith('C')) {
      const from = fields[i++];
      changes.push({ path: fields[i++], status: 'renamed', from });
    } else {
      changes.push({ path: fields[i++], status: code === 'A' ? 'added' : code === 'D' ? 'deleted' : 'modified' });
    }
  }
  const byPath = new Map(changes.map((c) => [c.path, c]));
  const counts = numstat.split('\0');
  for (let i = 0; i < counts.length - 1; ) {
    const [added, removed, file] = counts[i++].split('\t');
    // A rename leaves the path empty and gives the old and new path as the next two fields.
    const target = file === '' ? (i++, counts[i++]) : file;
    const change = byPath.get(target);
    if (change && added !== '-') {
      change.added = Number(added);
      change.removed = Number(removed);
    }
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The agent's work as a unified diff against its base (or git's --stat summary of it), made with fixed
 * options whatever the user's diff settings. `binary`: binary files in full too, so that `git apply` takes
 * the whole patch (never coloured).
 */
export async function diffAgentWork(root: string, work: AgentWork, options: { stat?: boolean; color?: boolean; files?: string[]; binary?: boolean } = {}): Promise<Buffer> {
  const args = ['diff', ...FIXED_DIFF_OPTIONS, options.color && !options.binary ? '--color=always' : '--no-color'];
  if (options.binary) args.push('--binary', '--full-index');
  args.push(options.stat ? '--stat' : PATCH_CONTEXT);
  args.push(work.base, work.tip, '--', ...(options.files ?? []));
  const result = await gitRaw(root, args, { env: diffEnv() });
  if (result.code !== 0) throw new GitError(`git diff failed: ${result.stderr.trim()}`);
  return result.stdout;
}

/** A note on what capture left out of the agent's work, for a terminal or a notification. */
export function skippedNote(skipped: string[]): string {
  return `Left out of the agent's work (not a file, link or folder: a FIFO, socket or device): ${list(skipped)}.`;
}
