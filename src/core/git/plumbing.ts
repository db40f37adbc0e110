/**
 * The git plumbing under capture and sync: tree and index entries, diffs with options no user setting
 * changes, and the commands that read trees, commits and merges without touching any checkout.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GitError } from '../errors';
import { gitRaw, gitWithInput } from './git';
import type { GitIdentity } from './worktrees';

const ZERO_OID = /^0+$/;
export const LITERAL_PATHS = { GIT_LITERAL_PATHSPECS: '1' };

/**
 * Diff options that no setting of the user's may change, for every diff whose output is read or applied (a
 * patch, `diff`, the changed files): no external diff program or textconv driver, the standard a/ and b/
 * prefixes (whatever diff.noprefix or diff.mnemonicPrefix say), paths from the top (diff.relative), renames
 * found (diff.renames), gitlinks as ids (diff.submodule=log writes a log that `git apply` skips) and never
 * hidden (diff.ignoreSubmodules), git's default algorithm and order (diff.algorithm, diff.orderFile). Colour
 * is chosen by each caller (color.diff=always). Checked against git 2.39's documentation.
 */
export const FIXED_DIFF_OPTIONS = [
  '--no-ext-diff',
  '--no-textconv',
  '--src-prefix=a/',
  '--dst-prefix=b/',
  '--no-relative',
  '-M',
  '--submodule=short',
  '--ignore-submodules=none',
  '--diff-algorithm=myers',
  '-O/dev/null',
];

/** Three lines of context (diff.context, GIT_DIFF_OPTS), only where a patch is wanted: -U implies --patch. */
export const PATCH_CONTEXT = '--unified=3';

/** The environment for such a diff: without the variables that choose an external diff or its options. */
export function diffEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...LITERAL_PATHS };
  for (const name of ['GIT_EXTERNAL_DIFF', 'GIT_DIFF_OPTS', 'GIT_DIFF_PATH_COUNTER', 'GIT_DIFF_PATH_TOTAL']) delete env[name];
  return env;
}

export interface Entry {
  mode: string;
  oid: string;
}

/** A directory sits where the agent has a file. */
export const DIRECTORY = 'directory' as const;
export type Current = Entry | typeof DIRECTORY;

export interface RawChange {
  path: string;
  before?: Entry;
  after?: Entry;
}

export async function rawChanges(root: string, from: string, to: string, selected: Set<string> | undefined): Promise<RawChange[]> {
  const out = await gitWithInput(root, ['diff-tree', '-r', '-z', '--no-renames', from, to]);
  const fields = out.split('\0');
  const changes: RawChange[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [oldMode, newMode, oldOid, newOid] = fields[i].slice(1).split(' ');
    const file = fields[i + 1];
    if (selected && !selected.has(file)) continue;
    changes.push({
      path: file,
      before: ZERO_OID.test(oldOid) ? undefined : { mode: oldMode, oid: oldOid },
      after: ZERO_OID.test(newOid) ? undefined : { mode: newMode, oid: newOid },
    });
  }
  return changes;
}

/** `git merge-tree --write-tree`: the merged tree and the conflicted paths, without touching any checkout. */
export async function mergeTree(root: string, ours: string, theirs: string): Promise<{ tree: string; conflicts: string[] }> {
  const result = await gitRaw(root, ['merge-tree', '--write-tree', '--name-only', '--no-messages', '-z', ours, theirs]);
  if (result.code !== 0 && result.code !== 1) throw new GitError(`git merge-tree failed: ${result.stderr.trim()}`);
  const [tree, ...conflicts] = result.stdout.toString('utf8').split('\0');
  return { tree, conflicts: [...new Set(conflicts.filter(Boolean))].sort() };
}

export async function treeEntries(root: string, treeish: string, only: Set<string>): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  for (const record of (await gitWithInput(root, ['ls-tree', '-r', '-z', '--full-tree', treeish])).split('\0')) {
    const tab = record.indexOf('\t');
    if (tab < 0) continue;
    const file = record.slice(tab + 1);
    if (!only.has(file)) continue;
    const [mode, , oid] = record.slice(0, tab).split(' ');
    entries.set(file, { mode, oid });
  }
  return entries;
}

export async function namesChanged(root: string, from: string, to: string): Promise<string[]> {
  return (await gitWithInput(root, ['diff-tree', '-r', '-z', '--no-renames', '--name-only', from, to])).split('\0').filter(Boolean);
}

export async function commitsBetween(root: string, from: string, to: string): Promise<string[]> {
  return (await gitWithInput(root, ['rev-list', '--reverse', `${from}..${to}`])).split('\n').filter(Boolean);
}

export async function treeOf(root: string, commit: string): Promise<string> {
  return (await gitWithInput(root, ['rev-parse', `${commit}^{tree}`])).trim();
}

export async function isAncestor(root: string, ancestor: string, descendant: string): Promise<boolean> {
  return (await gitRaw(root, ['merge-base', '--is-ancestor', ancestor, descendant])).code === 0;
}

export async function commitTree(root: string, tree: string, parents: string[], message: string, identity: GitIdentity): Promise<string> {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: identity.name,
    GIT_AUTHOR_EMAIL: identity.email,
    GIT_COMMITTER_NAME: identity.name,
    GIT_COMMITTER_EMAIL: identity.email,
  };
  return (await gitWithInput(root, ['commit-tree', tree, ...parents.flatMap((p) => ['-p', p])], message, env)).trim();
}

export function sameEntry(a: Current | undefined, b: Entry | undefined): boolean {
  if (a === DIRECTORY) return false;
  if (!a || !b) return !a && !b;
  return a.oid === b.oid && a.mode === b.mode;
}

export function entryOrUndefined(current: Current | undefined): Entry | undefined {
  return current === DIRECTORY ? undefined : current;
}

/** Files for a message: the first ten, then how many more. */
export function list(files: string[]): string {
  return files.length <= 10 ? files.join(', ') : `${files.slice(0, 10).join(', ')} and ${files.length - 10} more`;
}

/**
 * Copies an index with its modification time: git trusts a cached stat only for files older than the index
 * file ("racy git"), so a copy stamped now would hide a same-sized change made in the index's last second.
 */
export async function copyIndex(from: string, to: string): Promise<void> {
  await fs.copyFile(from, to);
  const { atime, mtime } = await fs.stat(from);
  await fs.utimes(to, atime, mtime);
}

/**
 * Puts a saved copy of the user's index back as git writes an index: into `index.lock`, taken exclusively (a
 * git running meanwhile keeps its lock, and this fails), then renamed over the index. The saved copy's
 * modification time goes with it, for the same racy-git reason as copyIndex.
 */
export async function restoreIndex(saved: string, index: string): Promise<void> {
  const lock = `${index}.lock`;
  const handle = await fs.open(lock, 'wx');
  try {
    try {
      await handle.writeFile(await fs.readFile(saved));
      await handle.sync();
    } finally {
      await handle.close();
    }
    const { atime, mtime } = await fs.stat(saved);
    await fs.utimes(lock, atime, mtime);
    await fs.rename(lock, index);
  } catch (error) {
    await fs.rm(lock, { force: true });
    throw error;
  }
}

export async function withTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-'));
  try {
    return await work(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
