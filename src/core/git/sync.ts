import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConflictError, GitError, SandboxError } from '../errors';
import type { NextStep } from '../errors';
import { gitRaw, gitWithInput, withoutFilterDrivers } from './git';
import type { ChangedFile, GitIdentity, Repository } from './worktrees';

export const SYNC_MODES = ['merge', 'squash', 'cherry-pick', 'patch'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/**
 * What to do where the agent's changes and the workspace's meet: `stop` before changing anything, or
 * `merge` three ways and leave conflict markers (and git's conflict stages) for the user to resolve.
 */
export type ConflictPolicy = 'stop' | 'merge';

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

export interface SyncOptions {
  mode: SyncMode;
  /** Only these paths (or folders) of the agent's changes; every mode but cherry-pick. */
  files?: string[];
  onConflict?: ConflictPolicy;
  /** Where `patch` writes; an existing file is kept unless `overwritePatch`. */
  patchFile?: string;
  overwritePatch?: boolean;
}

export interface SyncResult {
  mode: SyncMode;
  /** The agent changed nothing that is not already in the workspace. */
  nothingToSync: boolean;
  /** Workspace paths the sync wrote or deleted (for `patch`: the paths the patch holds). */
  files: string[];
  /** Paths left with conflict markers or conflict stages, for the user to resolve. */
  conflicts: string[];
  /** New commits on the workspace's branch (merge, cherry-pick). */
  commits: string[];
  fastForward?: boolean;
  patchFile?: string;
  /** Paths in the agent's worktree left out of its work: no file git can hold (see AgentWork.skipped). */
  skipped?: string[];
}

export type SyncStopReason = 'local-changes' | 'staged-changes' | 'conflicts' | 'sparse-checkout';

/** A sync that stopped before changing anything, with the files in the way. */
export class SyncConflictError extends ConflictError {
  constructor(
    message: string,
    hint: string,
    readonly reason: SyncStopReason,
    readonly files: string[],
    next: readonly NextStep[] = [],
  ) {
    super(message, hint, next);
  }
}

const ZERO_OID = /^0+$/;
const LITERAL_PATHS = { GIT_LITERAL_PATHSPECS: '1' };

/**
 * Diff options that no setting of the user's may change, for every diff whose output is read or applied (a
 * patch, `diff`, the changed files): no external diff program or textconv driver, the standard a/ and b/
 * prefixes (whatever diff.noprefix or diff.mnemonicPrefix say), paths from the top (diff.relative), renames
 * found (diff.renames), gitlinks as ids (diff.submodule=log writes a log that `git apply` skips) and never
 * hidden (diff.ignoreSubmodules), git's default algorithm and order (diff.algorithm, diff.orderFile). Colour
 * is chosen by each caller (color.diff=always). Checked against git 2.39's documentation.
 */
const FIXED_DIFF_OPTIONS = [
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
const PATCH_CONTEXT = '--unified=3';

/** The environment for such a diff: without the variables that choose an external diff or its options. */
function diffEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...LITERAL_PATHS };
  for (const name of ['GIT_EXTERNAL_DIFF', 'GIT_DIFF_OPTS', 'GIT_DIFF_PATH_COUNTER', 'GIT_DIFF_PATH_TOTAL']) delete env[name];
  return env;
}

interface Entry {
  mode: string;
  oid: string;
}

/** A directory sits where the agent has a file. */
const DIRECTORY = 'directory' as const;
type Current = Entry | typeof DIRECTORY;

interface RawChange {
  path: string;
  before?: Entry;
  after?: Entry;
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

/**
 * Brings the agent's work into the workspace. The user's own uncommitted work is never overwritten, reset
 * or stashed: the sync goes around it, merges with it where policy allows, or stops before changing
 * anything and names the files in the way.
 */
export async function syncAgentWork(repo: Repository, work: AgentWork, options: SyncOptions, identity: GitIdentity): Promise<SyncResult> {
  const ws = new Workspace(repo.root);
  const policy = options.onConflict ?? 'stop';
  if (options.mode === 'cherry-pick' && options.files?.length) {
    throw new SandboxError('cherry-pick replays whole commits, so it cannot take only some files.', 'Choose files with the squash, merge or patch mode.');
  }
  const changes = options.files?.length || options.mode === 'patch' ? await changesBetween(repo.root, work.base, work.tip) : [];
  const selected = options.files?.length ? selectPaths(changes, options.files, work.name) : undefined;
  const result = await (async () => {
    switch (options.mode) {
      case 'patch':
        return writePatch(ws, work, changes, selected, options);
      case 'squash':
        return squash(ws, work, await rawChanges(repo.root, work.base, work.tip, selected), policy);
      case 'merge':
        return merge(ws, work, selected, policy, identity);
      case 'cherry-pick':
        return cherryPick(ws, work, policy);
    }
  })();
  return work.skipped.length > 0 ? { ...result, skipped: work.skipped } : result;
}

/** A note on what capture left out of the agent's work, for a terminal or a notification. */
export function skippedNote(skipped: string[]): string {
  return `Left out of the agent's work (not a file, link or folder: a FIFO, socket or device): ${list(skipped)}.`;
}

/** What a sync did, in a sentence or two for a terminal or a notification. */
export function describeSyncResult(name: string, result: SyncResult): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const note = result.skipped?.length ? `\n${skippedNote(result.skipped)}` : '';
  if (result.nothingToSync) return `Nothing to sync: the workspace already has everything ${name} changed.${note}`;
  const lines: string[] = [];
  if (result.mode === 'patch') lines.push(`Wrote ${result.patchFile} (${count(result.files.length, 'file')}). Apply it with: git apply ${result.patchFile}`);
  else if (result.mode === 'squash') lines.push(`Applied ${count(result.files.length, 'file')} from ${name} as uncommitted changes, for you to review and commit.`);
  else if (result.mode === 'merge') lines.push(result.fastForward ? `Fast-forwarded to ${name}'s work (${count(result.files.length, 'file')}).` : `Merged ${name} (${count(result.files.length, 'file')}).`);
  else lines.push(`Cherry-picked ${count(result.commits.length, 'commit')} from ${name}.`);
  if (result.conflicts.length > 0) {
    const next = result.mode === 'merge' ? 'then commit' : result.mode === 'cherry-pick' ? 'then git cherry-pick --continue' : 'then git add them';
    lines.push(`Conflicts to resolve in ${count(result.conflicts.length, 'file')}: ${result.conflicts.join(', ')}; ${next}.`);
  }
  return lines.join('\n') + note;
}

/** The selected changes' paths, with both sides of a rename; a folder selects everything under it. */
function selectPaths(changes: ChangedFile[], files: string[], sandbox: string): Set<string> {
  const wanted = files.map((f) => f.replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, ''));
  const matches = (file: string, want: string) => file === want || file.startsWith(`${want}/`);
  const unmatched = wanted.filter((want) => !changes.some((c) => matches(c.path, want) || (c.from !== undefined && matches(c.from, want))));
  if (unmatched.length > 0) {
    throw new SandboxError(`The agent did not change ${unmatched.map((f) => `"${f}"`).join(', ')}.`, 'Choose among the files it changed.', [{ do: 'review-changes', sandbox }]);
  }
  const selected = new Set<string>();
  for (const change of changes) {
    if (wanted.some((want) => matches(change.path, want) || (change.from !== undefined && matches(change.from, want)))) {
      selected.add(change.path);
      if (change.from) selected.add(change.from);
    }
  }
  return selected;
}

async function writePatch(ws: Workspace, work: AgentWork, changes: ChangedFile[], selected: Set<string> | undefined, options: SyncOptions): Promise<SyncResult> {
  if (!options.patchFile) throw new SandboxError('The patch mode needs a file to write.');
  const paths = selected ? [...selected] : [];
  const result = await gitRaw(ws.root, ['diff', ...FIXED_DIFF_OPTIONS, PATCH_CONTEXT, '--binary', '--full-index', '--no-color', work.base, work.tip, '--', ...paths], { env: diffEnv() });
  if (result.code !== 0) throw new GitError(`git diff failed: ${result.stderr.trim()}`);
  const files = changes.filter((c) => !selected || selected.has(c.path)).map((c) => c.path);
  const empty = { mode: 'patch' as const, nothingToSync: true, files: [], conflicts: [], commits: [] };
  if (result.stdout.length === 0) return empty;
  try {
    await fs.writeFile(options.patchFile, result.stdout, { flag: options.overwritePatch ? 'w' : 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    throw new ConflictError(`${options.patchFile} already exists.`, 'Choose another file, or overwrite it.', [{ do: 'overwrite-patch' }]);
  }
  return { ...empty, nothingToSync: false, files, patchFile: options.patchFile };
}

/**
 * Applies the agent's changes to the working tree as uncommitted changes, file by file: a file the user
 * has as it was at the base takes the agent's version; a file the user changed too is merged three ways.
 */
async function squash(ws: Workspace, work: AgentWork, changes: RawChange[], policy: ConflictPolicy): Promise<SyncResult> {
  const result: SyncResult = { mode: 'squash', nothingToSync: false, files: [], conflicts: [], commits: [] };
  // A path the user's sparse checkout leaves out has no working file to write: written anyway, it would
  // hide behind its skip-worktree bit (or vanish at the next `git sparse-checkout reapply`).
  const outside = await ws.outsideSparseCheckout(changes.map((c) => c.path));
  if (outside.length > 0) {
    throw new SyncConflictError(
      `Nothing was synced: the agent changed ${outside.length === 1 ? 'a file' : 'files'} that your sparse checkout leaves out: ${list(outside)}.`,
      `Add ${outside.length === 1 ? 'its folder' : 'their folders'} to your sparse checkout (git sparse-checkout add ${sparseFolders(outside).join(' ')}) and sync again, or sync other files only, or take them as commits with the merge mode, which git keeps out of your working tree.`,
      'sparse-checkout',
      outside,
      [{ do: 'sync', sandbox: work.name, mode: 'merge' }],
    );
  }
  const current = await ws.currentEntries(changes.map((c) => c.path));
  const targets = new Map<string, Entry | undefined>();
  const conflicts: Array<{ path: string; why: string; change: RawChange; ours?: Entry; markers?: Entry }> = [];
  // Files and links the agent deletes that the user left as they were: a folder of the agent's may take the
  // place of one, and a file of the agent's the place of a folder that holds only such files.
  const replaced = new Set(changes.filter((c) => !c.after && sameEntry(current.get(c.path), c.before)).map((c) => c.path));
  const blocked = await ws.pathsBlockedByNonDirectories(changes.filter((c) => c.after).map((c) => c.path), replaced);
  const inTheWay: string[] = [];
  for (const c of changes) {
    if (blocked.has(c.path) || (current.get(c.path) === DIRECTORY && !(await ws.holdsOnly(c.path, replaced)))) inTheWay.push(c.path);
  }
  if (inTheWay.length > 0) {
    throw new SyncConflictError(
      `Nothing was synced: a folder, file or link of yours is where the agent has files: ${list(inTheWay)}.`,
      'Move it aside, or sync other files only.',
      'local-changes',
      inTheWay,
    );
  }
  for (const change of changes) {
    // A folder still here holds only files the agent deletes: to the agent's file, the path is free.
    const ours = entryOrUndefined(current.get(change.path));
    if (sameEntry(ours, change.before)) {
      targets.set(change.path, change.after);
    } else if (sameEntry(ours, change.after)) {
      // Already as the agent left it.
    } else {
      const merged = await ws.mergeFile(change, ours, work.branch);
      if (merged.clean) targets.set(change.path, merged.entry);
      else conflicts.push({ path: change.path, why: merged.why, change, ours, markers: merged.entry });
    }
  }
  if (targets.size === 0 && conflicts.length === 0) return { ...result, nothingToSync: true };
  if (conflicts.length > 0 && policy === 'stop') {
    throw new SyncConflictError(
      `Nothing was synced: ${conflicts.length} file${conflicts.length === 1 ? '' : 's'} changed by the agent ${conflicts.length === 1 ? 'has' : 'have'} changes of yours too: ${list(conflicts.map((c) => `${c.path} (${c.why})`))}.`,
      'Commit or set aside your changes to those files, sync other files only, or merge them with conflict markers.',
      'conflicts',
      conflicts.map((c) => c.path),
      [{ do: 'sync', sandbox: work.name, mode: 'squash', onConflict: 'merge' }],
    );
  }
  if (conflicts.length > 0) {
    // Conflict stages take the place of the index's entry: a staged version that is neither the committed
    // file nor the working one (nor conflict stages already there) would be lost.
    const paths = new Set(conflicts.map((c) => c.path));
    const [{ staged, unmerged }, committed] = await Promise.all([ws.indexEntries(paths), treeEntries(ws.root, await ws.head(), paths)]);
    const held = conflicts
      .filter((c) => unmerged.has(c.path) || !(sameEntry(staged.get(c.path), committed.get(c.path)) || sameEntry(staged.get(c.path), c.ours)))
      .map((c) => c.path)
      .sort();
    if (held.length > 0) {
      throw new SyncConflictError(
        `Nothing was synced: you have staged versions of ${list(held)} that differ from both your last commit and the working file, and the conflict markers would replace them in the index.`,
        'Commit them, stage the files as they are (git add) or unstage them (git restore --staged), then sync again; or sync other files only.',
        'staged-changes',
        held,
      );
    }
  }
  for (const conflict of conflicts) if (conflict.markers) targets.set(conflict.path, conflict.markers);
  const originals = new Map([...targets.keys()].map((p) => [p, entryOrUndefined(current.get(p))]));
  await ws.writeEntries(targets, originals);
  if (conflicts.length > 0) {
    try {
      await ws.recordConflictStages(conflicts.map((c) => ({ path: c.path, base: c.change.before, ours: c.ours, theirs: c.change.after })));
    } catch (error) {
      await ws.writeEntries(originals, targets).catch(() => undefined);
      throw error;
    }
  }
  const conflicted = new Set(conflicts.map((c) => c.path));
  return { ...result, files: [...targets.keys()].filter((p) => !conflicted.has(p)).sort(), conflicts: [...conflicted].sort() };
}

/** Merges the agent's work into the current branch: a fast-forward where the branch has not moved on. */
async function merge(ws: Workspace, work: AgentWork, selected: Set<string> | undefined, policy: ConflictPolicy, identity: GitIdentity): Promise<SyncResult> {
  const result: SyncResult = { mode: 'merge', nothingToSync: true, files: [], conflicts: [], commits: [] };
  await ws.assertReadyToCommit();
  const source = selected
    ? await commitSelection(ws.root, work, await rawChanges(ws.root, work.base, work.tip, selected), identity)
    : work.tip;
  const head = await ws.head();
  if ((await treeOf(ws.root, source)) === (await treeOf(ws.root, work.base)) || (await isAncestor(ws.root, source, head))) return result;
  const fastForward = await isAncestor(ws.root, head, source);
  const merged = fastForward ? { tree: await treeOf(ws.root, source), conflicts: [] } : await mergeTree(ws.root, head, source);
  // The branch already holds all of it (synced before: the commit of the uncommitted work is made anew each
  // time, so it is not an ancestor): a merge would only add an empty merge commit.
  if (!fastForward && merged.conflicts.length === 0 && merged.tree === (await treeOf(ws.root, head))) return result;
  const touched = [...new Set([...(await namesChanged(ws.root, head, merged.tree)), ...merged.conflicts])];
  const clean = merged.conflicts.length === 0;
  // Staged changes elsewhere stop only a merge that git itself must make: one that leaves conflicts.
  await ws.assertUntouched(touched, head, fastForward || clean ? touched : undefined);
  if (!fastForward && clean && (await ws.stagedPaths(head)).length > 0) {
    const commit = await mergeAroundStaged(ws, head, source, merged.tree, touched, `Merge sandbox ${work.name} (${work.branch})`);
    return { ...result, nothingToSync: false, files: touched.sort(), fastForward, commits: await commitsBetween(ws.root, head, commit) };
  }
  if (merged.conflicts.length > 0 && policy === 'stop') {
    throw new SyncConflictError(
      `Nothing was merged: the agent's work conflicts with your branch in ${list(merged.conflicts)}.`,
      'Merge with conflict markers to resolve them, or sync with squash and choose files.',
      'conflicts',
      merged.conflicts,
      [{ do: 'sync', sandbox: work.name, mode: 'merge', onConflict: 'merge' }],
    );
  }
  // --no-autostash: merge.autoStash would stash the user's other changes and put them back unstaged.
  const args = fastForward
    ? ['merge', '--ff-only', '--no-autostash', '--quiet', source]
    : ['merge', '--no-ff', '--no-autostash', '--no-edit', '--quiet', '-m', `Merge sandbox ${work.name} (${work.branch})`, source];
  const outcome = await gitRaw(ws.root, args);
  if (outcome.code !== 0) {
    const unmerged = await ws.unmergedPaths();
    if (unmerged.length > 0 && policy === 'merge') return { ...result, nothingToSync: false, files: touched.filter((p) => !unmerged.includes(p)).sort(), conflicts: unmerged };
    if (await ws.inProgress('MERGE_HEAD')) await gitRaw(ws.root, ['merge', '--abort']);
    throw new GitError(`git merge failed, and the workspace was left as it was: ${outcome.stderr.trim()}`);
  }
  return { ...result, nothingToSync: false, files: touched.sort(), fastForward, commits: await commitsBetween(ws.root, head, 'HEAD') };
}

/**
 * A clean merge made without `git merge`, which refuses any staged change: the merge commit from the merged
 * tree, then the touched paths (none of them the user's, as checked) written in the working tree and the index,
 * then the branch moved. The user's staged changes elsewhere stay staged. A failure puts everything back.
 */
async function mergeAroundStaged(ws: Workspace, head: string, source: string, tree: string, touched: string[], message: string): Promise<string> {
  const commit = (await gitWithInput(ws.root, ['commit-tree', tree, '-p', head, '-p', source], message)).trim();
  const paths = new Set(touched);
  const [wanted, committed] = await Promise.all([treeEntries(ws.root, tree, paths), treeEntries(ws.root, head, paths)]);
  const targets = new Map(touched.map((p) => [p, wanted.get(p)]));
  const originals = new Map(touched.map((p) => [p, committed.get(p)]));
  const index = await ws.gitPath('index');
  return withTempDir(async (tmp) => {
    const saved = path.join(tmp, 'index');
    await copyIndex(index, saved);
    await ws.writeEntries(targets, originals);
    try {
      const info = touched.map((p) => (wanted.has(p) ? `${wanted.get(p)!.mode} ${wanted.get(p)!.oid}\t${p}\0` : `0 ${'0'.repeat(40)}\t${p}\0`));
      await gitWithInput(ws.root, ['update-index', '-z', '--index-info'], info.join(''));
      await gitWithInput(ws.root, ['update-ref', '-m', `merge ${source}: Merge made by Agent Sandboxes`, 'HEAD', commit, head]);
    } catch (error) {
      await restoreIndex(saved, index).catch(() => undefined);
      await ws.writeEntries(originals, targets).catch(() => undefined);
      throw error;
    }
    return commit;
  });
}

/** Replays the agent's commits one by one onto the current branch, its uncommitted work as a last commit. */
async function cherryPick(ws: Workspace, work: AgentWork, policy: ConflictPolicy): Promise<SyncResult> {
  const result: SyncResult = { mode: 'cherry-pick', nothingToSync: true, files: [], conflicts: [], commits: [] };
  await ws.assertReadyToCommit();
  const range = `${work.base}..${work.tip}`;
  if ((await gitWithInput(ws.root, ['rev-list', '--merges', range])).trim()) {
    throw new SandboxError(`The agent's history on ${work.branch} holds merge commits, which cherry-pick cannot replay.`, 'Use the merge or squash mode.');
  }
  const commits = (await gitWithInput(ws.root, ['rev-list', '--reverse', range])).split('\n').filter(Boolean);
  if (commits.length === 0) return result;
  const head = await ws.head();
  // NUL-separated only: a path may hold a newline.
  const touched = (await gitWithInput(ws.root, ['log', '--no-renames', '--format=', '--name-only', '-z', range])).split('\0').filter(Boolean);
  await ws.assertUntouched([...new Set(touched)], head, undefined);
  let outcome = await gitRaw(ws.root, ['cherry-pick', '--allow-empty', ...commits]);
  while (outcome.code !== 0) {
    const unmerged = await ws.unmergedPaths();
    if (unmerged.length === 0 && (await ws.inProgress('CHERRY_PICK_HEAD'))) {
      // The commit's changes are already in the branch: skip it as git suggests, and go on.
      outcome = await gitRaw(ws.root, ['cherry-pick', '--skip']);
      continue;
    }
    if (unmerged.length > 0 && policy === 'merge') {
      return { ...result, nothingToSync: false, files: await namesChanged(ws.root, head, 'HEAD'), conflicts: unmerged, commits: await commitsBetween(ws.root, head, 'HEAD') };
    }
    await gitRaw(ws.root, ['cherry-pick', '--abort']);
    if (unmerged.length > 0) {
      throw new SyncConflictError(
        `Nothing was cherry-picked: the agent's commits conflict with your branch in ${list(unmerged)}.`,
        'Replay them with conflict markers to resolve, or use the merge or squash mode.',
        'conflicts',
        unmerged,
        [{ do: 'sync', sandbox: work.name, mode: 'cherry-pick', onConflict: 'merge' }],
      );
    }
    throw new GitError(`git cherry-pick failed, and the workspace was left as it was: ${outcome.stderr.trim()}`);
  }
  const picked = await commitsBetween(ws.root, head, 'HEAD');
  if (picked.length === 0) return result;
  return { ...result, nothingToSync: false, files: await namesChanged(ws.root, head, 'HEAD'), commits: picked };
}

/** A commit on the base with only the selected changes: what `merge` merges when files are chosen. */
async function commitSelection(root: string, work: AgentWork, changes: RawChange[], identity: GitIdentity): Promise<string> {
  return withTempDir(async (tmp) => {
    const env = { ...process.env, GIT_INDEX_FILE: path.join(tmp, 'index') };
    await gitWithInput(root, ['read-tree', work.base], '', env);
    await gitWithInput(root, ['update-index', '-z', '--index-info'], changes.map(indexInfoLine).join(''), env);
    const tree = (await gitWithInput(root, ['write-tree'], '', env)).trim();
    const files = changes.map((c) => c.path);
    return commitTree(root, tree, [work.base], `Changes from sandbox ${work.name}: ${files.length} selected file${files.length === 1 ? '' : 's'}\n\n${files.join('\n')}`, identity);
  });
}

function indexInfoLine(change: RawChange): string {
  return change.after ? `${change.after.mode} ${change.after.oid}\t${change.path}\0` : `0 ${'0'.repeat(40)}\t${change.path}\0`;
}

/** The user's working tree, index and branch: read with git, written only through git's own checkout. */
class Workspace {
  constructor(readonly root: string) {}

  async head(): Promise<string> {
    const result = await gitRaw(this.root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
    if (result.code !== 0) throw new GitError(`${this.root} has no commit checked out.`, 'Commit once in the workspace first.');
    return result.stdout.toString().trim();
  }

  async gitPath(name: string): Promise<string> {
    return (await this.gitPaths([name]))[0];
  }

  /** Where git keeps each of `names` for this worktree, in one call. */
  async gitPaths(names: string[]): Promise<string[]> {
    const out = (await gitWithInput(this.root, ['rev-parse', ...names.flatMap((name) => ['--git-path', name])])).split('\n');
    if (out.length === names.length + 1) return out.slice(0, names.length).map((p) => path.resolve(this.root, p));
    // A path that holds a newline (the repository's own): one name at a time, all of its output but the last newline.
    return Promise.all(names.map(async (name) => path.resolve(this.root, (await gitWithInput(this.root, ['rev-parse', '--git-path', name])).replace(/\n$/, ''))));
  }

  async inProgress(marker: string): Promise<boolean> {
    return exists(await this.gitPath(marker));
  }

  /** A merge, cherry-pick, revert or rebase already under way, or no identity to commit with, stops a sync. */
  async assertReadyToCommit(): Promise<void> {
    const markers = ['MERGE_HEAD', 'CHERRY_PICK_HEAD', 'REVERT_HEAD', 'rebase-merge', 'rebase-apply'];
    const present = await Promise.all((await this.gitPaths(markers)).map(exists));
    for (const [i, marker] of markers.entries()) {
      if (present[i]) {
        throw new ConflictError(`The workspace is in the middle of a ${marker.replace(/_HEAD$|-.*$/, '').toLowerCase().replace('_', '-')}.`, 'Finish or abort it first, then sync again.');
      }
    }
    const ident = await gitRaw(this.root, ['var', 'GIT_COMMITTER_IDENT']);
    if (ident.code !== 0) {
      throw new GitError('git does not know who you are, so it cannot commit the merge.', 'Set it: git config --global user.name "Your Name" && git config --global user.email you@example.com');
    }
  }

  /** Paths whose staged version differs from `head`. */
  async stagedPaths(head: string): Promise<string[]> {
    return (await gitWithInput(this.root, ['diff-index', '--cached', '--name-only', '-z', head])).split('\0').filter(Boolean);
  }

  /**
   * Stops, before anything changes, where git would have to overwrite the user's uncommitted work: files
   * among `touched` that differ from `head` in the working tree (untracked and ignored ones too), and
   * staged changes, which git refuses to merge or cherry-pick over (all of them; or only `stagedScope`).
   */
  async assertUntouched(touched: string[], head: string, stagedScope: string[] | undefined): Promise<void> {
    const staged = await this.stagedPaths(head);
    const scope = stagedScope ? new Set(stagedScope) : undefined;
    const blockingStaged = scope ? staged.filter((p) => scope.has(p)) : staged;
    if (blockingStaged.length > 0) {
      throw new SyncConflictError(
        `Nothing was synced: you have staged changes in ${list(blockingStaged)}.`,
        'Commit them or unstage them first (sync never stashes your work), or use the squash mode, which works around them.',
        'staged-changes',
        blockingStaged,
      );
    }
    const current = await this.currentEntries(touched);
    const touchedSet = new Set(touched);
    const committed = await treeEntries(this.root, head, touchedSet);
    const dirty: string[] = [];
    for (const p of touched) {
      const ours = current.get(p);
      // A folder where the agent has a file is the user's unless it holds only files that are checked here too.
      if (ours === DIRECTORY ? committed.has(p) || !(await this.holdsOnly(p, touchedSet)) : !sameEntry(ours, committed.get(p))) dirty.push(p);
    }
    if (dirty.length > 0) {
      throw new SyncConflictError(
        `Nothing was synced: the agent's work touches ${dirty.length === 1 ? 'a file' : 'files'} you have uncommitted changes in: ${list(dirty.sort())}.`,
        'Commit your changes to them first (sync never stashes your work), or use the squash mode, which merges with them.',
        'local-changes',
        dirty.sort(),
      );
    }
  }

  async unmergedPaths(): Promise<string[]> {
    const out = await gitWithInput(this.root, ['diff', '--name-only', '--diff-filter=U', '-z']);
    return [...new Set(out.split('\0').filter(Boolean))].sort();
  }

  /**
   * What each path is in the working tree right now, as git would store it: read through a copy of the
   * user's index (whose stat cache spares rehashing), with ignored files included, since they are the
   * user's too. A file marked assume-unchanged or skip-worktree is read like any other (git would report it
   * clean whatever it holds); a path that a sparse checkout leaves out of the working tree is as the index has it.
   */
  async currentEntries(paths: string[]): Promise<Map<string, Current>> {
    const entries = new Map<string, Current>();
    if (paths.length === 0) return entries;
    const realIndex = await this.gitPath('index');
    return withTempDir(async (tmp) => {
      const env = { ...process.env, ...LITERAL_PATHS, GIT_INDEX_FILE: path.join(tmp, 'index') };
      if (await exists(realIndex)) await copyIndex(realIndex, env.GIT_INDEX_FILE);
      const flags = await indexFlags(this.root, env);
      // A path beyond a link or a file is absent, as git sees it (lstat would follow the link).
      const beyond = await this.pathsBlockedByNonDirectories(paths);
      const stats = await Promise.all(paths.map((p) => (beyond.has(p) ? undefined : fs.lstat(path.join(this.root, p)).catch(() => undefined))));
      const toAdd: string[] = [];
      const outside = new Set<string>();
      paths.forEach((p, i) => {
        if (beyond.has(p)) return;
        if (stats[i]?.isDirectory()) entries.set(p, DIRECTORY);
        else if (!stats[i] && flags.get(p)?.skipWorktree) outside.add(p);
        else if (stats[i] || flags.has(p)) toAdd.push(p);
      });
      // The flags make `git add` skip a file (assume-unchanged) or refuse it (skip-worktree): off in the copy.
      const flagged = (which: 'assumeUnchanged' | 'skipWorktree') => toAdd.filter((p) => flags.get(p)?.[which]).map((p) => `${p}\0`).join('');
      for (const [which, option] of [['assumeUnchanged', '--no-assume-unchanged'], ['skipWorktree', '--no-skip-worktree']] as const) {
        const input = flagged(which);
        if (input) await gitWithInput(this.root, ['update-index', option, '-z', '--stdin'], input, env);
      }
      if (toAdd.length > 0) {
        await gitWithInput(this.root, ['add', '-A', '-f', '--pathspec-from-file=-', '--pathspec-file-nul'], toAdd.join('\0'), env);
      }
      const wanted = new Set([...toAdd, ...outside]);
      for (const { file, mode, oid, stage } of stagedFiles(await gitWithInput(this.root, ['ls-files', '-s', '-z'], '', env))) {
        if (wanted.has(file) && stage === '0') entries.set(file, { mode, oid });
      }
      return entries;
    });
  }

  /** Those of `paths` that the user's sparse checkout leaves out: skip-worktree in the index, absent from the working tree. */
  async outsideSparseCheckout(paths: string[]): Promise<string[]> {
    const realIndex = await this.gitPath('index');
    if (paths.length === 0 || !(await exists(realIndex))) return [];
    const flags = await indexFlags(this.root, { ...process.env, GIT_INDEX_FILE: realIndex });
    const candidates = paths.filter((p) => flags.get(p)?.skipWorktree);
    const present = await Promise.all(candidates.map((p) => fs.lstat(path.join(this.root, p)).then(() => true, () => false)));
    return candidates.filter((_, i) => !present[i]).sort();
  }

  /** The user's index entry of each path at stage 0 (undefined: none), and the paths it holds conflict stages for. */
  async indexEntries(paths: Set<string>): Promise<{ staged: Map<string, Entry>; unmerged: Set<string> }> {
    const staged = new Map<string, Entry>();
    const unmerged = new Set<string>();
    for (const { file, mode, oid, stage } of stagedFiles(await gitWithInput(this.root, ['ls-files', '-s', '-z']))) {
      if (!paths.has(file)) continue;
      if (stage === '0') staged.set(file, { mode, oid });
      else unmerged.add(file);
    }
    return { staged, unmerged };
  }

  /**
   * Paths whose parent folders are, in the working tree, a file or a link: writing there would replace it or
   * leave the tree (but for the parents in `replaced`, which the sync deletes first).
   */
  async pathsBlockedByNonDirectories(paths: string[], replaced: Set<string> = new Set()): Promise<Set<string>> {
    const blocked = new Set<string>();
    const cache = new Map<string, Promise<boolean>>();
    const isBlocking = (dir: string) => {
      let known = cache.get(dir);
      if (!known) {
        known = replaced.has(dir)
          ? Promise.resolve(false)
          : fs.lstat(path.join(this.root, dir)).then(
              (s) => !s.isDirectory(),
              () => false,
            );
        cache.set(dir, known);
      }
      return known;
    };
    await Promise.all(
      paths.map(async (p) => {
        const parts = p.split('/');
        for (let i = 1; i < parts.length; i++) {
          if (await isBlocking(parts.slice(0, i).join('/'))) {
            blocked.add(p);
            return;
          }
        }
      }),
    );
    return blocked;
  }

  /** Whether the folder `dir` holds files, and only files among `paths` (no empty folder either). */
  async holdsOnly(dir: string, paths: Set<string>): Promise<boolean> {
    const entries = await fs.readdir(path.join(this.root, dir), { withFileTypes: true }).catch(() => []);
    if (entries.length === 0) return false;
    for (const entry of entries) {
      const p = `${dir}/${entry.name}`;
      if (entry.isDirectory() ? !(await this.holdsOnly(p, paths)) : !paths.has(p)) return false;
    }
    return true;
  }

  /** A three-way merge of one file, as `git merge-file` does it; binary files, links and deletions conflict. */
  async mergeFile(change: RawChange, ours: Entry | undefined, label: string): Promise<{ clean: boolean; entry?: Entry; why: string }> {
    const { before, after } = change;
    if (!ours) return { clean: false, why: 'you deleted it, the agent changed it' };
    if (!after) return { clean: false, why: 'you changed it, the agent deleted it' };
    if (!isRegular(ours.mode) || !isRegular(after.mode) || (before && !isRegular(before.mode))) {
      return { clean: false, why: 'a link or submodule changed on both sides' };
    }
    return withTempDir(async (tmp) => {
      const files = { ours: path.join(tmp, 'ours'), base: path.join(tmp, 'base'), theirs: path.join(tmp, 'theirs') };
      await Promise.all([
        fs.writeFile(files.ours, await this.blob(ours.oid)),
        fs.writeFile(files.base, before ? await this.blob(before.oid) : Buffer.alloc(0)),
        fs.writeFile(files.theirs, await this.blob(after.oid)),
      ]);
      const merged = await gitRaw(this.root, ['merge-file', '-p', '-L', 'workspace', '-L', 'base', '-L', label, files.ours, files.base, files.theirs]);
      // merge-file exits with the number of conflicts, or with 255 for binary files and errors.
      if (merged.code < 0 || merged.code >= 128) return { clean: false, why: 'a binary file changed on both sides' };
      // The executable bit: the agent's change of it wins where the user left it alone.
      const mode = before && ours.mode === before.mode ? after.mode : ours.mode;
      const written = await this.writeBlob(merged.stdout);
      if (merged.code === 0) return { clean: true, entry: { mode, oid: written }, why: '' };
      return { clean: false, entry: { mode, oid: written }, why: `${merged.code} overlapping change${merged.code === 1 ? '' : 's'}` };
    });
  }

  private async blob(oid: string): Promise<Buffer> {
    const result = await gitRaw(this.root, ['cat-file', 'blob', oid]);
    if (result.code !== 0) throw new GitError(`git cannot read the object ${oid}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  private async writeBlob(content: Buffer): Promise<string> {
    const result = await gitRaw(this.root, ['hash-object', '-w', '--stdin', '--no-filters'], { input: content });
    if (result.code !== 0) throw new GitError(`git cannot store a merged file: ${result.stderr.trim()}`);
    return result.stdout.toString().trim();
  }

  /**
   * Makes each path what `targets` says (undefined: absent), through `git checkout-index`, so that the
   * repository's attributes, links and the executable bit apply as in any checkout. Where a step fails, the
   * paths written so far are put back as `originals` says, and the error goes on.
   */
  async writeEntries(targets: Map<string, Entry | undefined>, originals: Map<string, Entry | undefined>): Promise<void> {
    try {
      await this.checkout(targets);
    } catch (error) {
      await this.checkout(originals).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The files first, under the workspace's attributes as they are; then the .gitattributes files among
   * `targets`, with no filter driver. Attributes the agent wrote so apply from the user's next checkout on,
   * never to the sync that brings them: they cannot choose a driver (git-lfs, say) for the agent's files.
   */
  private async checkout(targets: Map<string, Entry | undefined>): Promise<void> {
    const isAttributes = ([p, entry]: [string, Entry | undefined]) => path.posix.basename(p) === '.gitattributes' && (!entry || entry.mode !== '040000');
    const attributes = [...targets].filter(isAttributes);
    // A .gitattributes the agent turned into a folder must go before that folder's files are written.
    const others = [...targets].filter((pair) => !isAttributes(pair));
    const inTheWay = (p: string) => others.some(([o]) => o.startsWith(`${p}/`));
    await this.checkoutEntries([...others, ...attributes.filter(([p]) => inTheWay(p))], process.env);
    const last = attributes.filter(([p]) => !inTheWay(p));
    if (last.length > 0) await this.checkoutEntries(last, await withoutFilterDrivers(this.root, []));
  }

  private async checkoutEntries(targets: Array<[string, Entry | undefined]>, baseEnv: NodeJS.ProcessEnv): Promise<void> {
    const deletions = targets.filter(([, entry]) => !entry).map(([p]) => p);
    const writes = targets.filter((pair): pair is [string, Entry] => Boolean(pair[1]));
    for (const file of deletions) {
      await fs.rm(path.join(this.root, file), { force: true });
      await this.pruneEmptyParents(file);
    }
    if (writes.length === 0) return;
    await withTempDir(async (tmp) => {
      const env = { ...baseEnv, GIT_INDEX_FILE: path.join(tmp, 'index') };
      const info = writes.map(([p, e]) => `${e.mode} ${e.oid}\t${p}\0`).join('');
      await gitWithInput(this.root, ['update-index', '-z', '--add', '--index-info'], info, env);
      // With -f, checkout-index unlinks what is at each path first: a link is replaced, never written through.
      await gitWithInput(this.root, ['checkout-index', '-f', '-z', '--stdin'], writes.map(([p]) => `${p}\0`).join(''), env);
    });
  }

  private async pruneEmptyParents(file: string): Promise<void> {
    for (let dir = path.posix.dirname(file); dir !== '.' && dir !== ''; dir = path.posix.dirname(dir)) {
      try {
        await fs.rmdir(path.join(this.root, dir));
      } catch {
        return;
      }
    }
  }

  /** Conflicts as git records them (stages 1, 2 and 3), so that `git status`, VS Code and its merge editor see them. */
  async recordConflictStages(conflicts: Array<{ path: string; base?: Entry; ours?: Entry; theirs?: Entry }>): Promise<void> {
    const lines = conflicts.flatMap((c) => [
      `0 ${'0'.repeat(40)}\t${c.path}\0`,
      ...[c.base, c.ours, c.theirs].map((entry, i) => (entry ? `${entry.mode} ${entry.oid} ${i + 1}\t${c.path}\0` : '')),
    ]);
    await gitWithInput(this.root, ['update-index', '-z', '--index-info'], lines.join(''));
  }
}

/** The entries of `git ls-files -s -z` output: mode, id and stage of each path. */
function stagedFiles(out: string): Array<{ file: string; mode: string; oid: string; stage: string }> {
  return out.split('\0').flatMap((line) => {
    const tab = line.indexOf('\t');
    if (tab < 0) return [];
    const [mode, oid, stage] = line.slice(0, tab).split(' ');
    return [{ file: line.slice(tab + 1), mode, oid, stage }];
  });
}

/**
 * The assume-unchanged and skip-worktree bits of every path in the index: `ls-files -v` tags a skip-worktree
 * entry S, and lowercases the tag of an assume-unchanged one.
 */
async function indexFlags(root: string, env: NodeJS.ProcessEnv): Promise<Map<string, { assumeUnchanged: boolean; skipWorktree: boolean }>> {
  const flags = new Map<string, { assumeUnchanged: boolean; skipWorktree: boolean }>();
  for (const entry of (await gitWithInput(root, ['ls-files', '-z', '-v'], '', env)).split('\0')) {
    if (entry.length < 3) continue;
    const tag = entry[0];
    flags.set(entry.slice(2), { assumeUnchanged: tag !== tag.toUpperCase(), skipWorktree: tag.toUpperCase() === 'S' });
  }
  return flags;
}

async function rawChanges(root: string, from: string, to: string, selected: Set<string> | undefined): Promise<RawChange[]> {
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
async function mergeTree(root: string, ours: string, theirs: string): Promise<{ tree: string; conflicts: string[] }> {
  const result = await gitRaw(root, ['merge-tree', '--write-tree', '--name-only', '--no-messages', '-z', ours, theirs]);
  if (result.code !== 0 && result.code !== 1) throw new GitError(`git merge-tree failed: ${result.stderr.trim()}`);
  const [tree, ...conflicts] = result.stdout.toString('utf8').split('\0');
  return { tree, conflicts: [...new Set(conflicts.filter(Boolean))].sort() };
}

async function treeEntries(root: string, treeish: string, only: Set<string>): Promise<Map<string, Entry>> {
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

async function namesChanged(root: string, from: string, to: string): Promise<string[]> {
  return (await gitWithInput(root, ['diff-tree', '-r', '-z', '--no-renames', '--name-only', from, to])).split('\0').filter(Boolean);
}

async function commitsBetween(root: string, from: string, to: string): Promise<string[]> {
  return (await gitWithInput(root, ['rev-list', '--reverse', `${from}..${to}`])).split('\n').filter(Boolean);
}

async function treeOf(root: string, commit: string): Promise<string> {
  return (await gitWithInput(root, ['rev-parse', `${commit}^{tree}`])).trim();
}

async function isAncestor(root: string, ancestor: string, descendant: string): Promise<boolean> {
  return (await gitRaw(root, ['merge-base', '--is-ancestor', ancestor, descendant])).code === 0;
}

async function commitTree(root: string, tree: string, parents: string[], message: string, identity: GitIdentity): Promise<string> {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: identity.name,
    GIT_AUTHOR_EMAIL: identity.email,
    GIT_COMMITTER_NAME: identity.name,
    GIT_COMMITTER_EMAIL: identity.email,
  };
  return (await gitWithInput(root, ['commit-tree', tree, ...parents.flatMap((p) => ['-p', p])], message, env)).trim();
}

function sameEntry(a: Current | undefined, b: Entry | undefined): boolean {
  if (a === DIRECTORY) return false;
  if (!a || !b) return !a && !b;
  return a.oid === b.oid && a.mode === b.mode;
}

function entryOrUndefined(current: Current | undefined): Entry | undefined {
  return current === DIRECTORY ? undefined : current;
}

function isRegular(mode: string): boolean {
  return mode === '100644' || mode === '100755';
}

/** The folders of paths a sparse checkout leaves out, for `git sparse-checkout add` (a file at the top: itself). */
function sparseFolders(paths: string[]): string[] {
  return [...new Set(paths.map((p) => (p.includes('/') ? path.posix.dirname(p) : p)))].sort();
}

function list(files: string[]): string {
  return files.length <= 10 ? files.join(', ') : `${files.slice(0, 10).join(', ')} and ${files.length - 10} more`;
}

/**
 * Copies an index with its modification time: git trusts a cached stat only for files older than the index
 * file ("racy git"), so a copy stamped now would hide a same-sized change made in the index's last second.
 */
async function copyIndex(from: string, to: string): Promise<void> {
  await fs.copyFile(from, to);
  const { atime, mtime } = await fs.stat(from);
  await fs.utimes(to, atime, mtime);
}

/**
 * Puts a saved copy of the user's index back as git writes an index: into `index.lock`, taken exclusively (a
 * git running meanwhile keeps its lock, and this fails), then renamed over the index. The saved copy's
 * modification time goes with it, for the same racy-git reason as copyIndex.
 */
async function restoreIndex(saved: string, index: string): Promise<void> {
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

async function withTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-'));
  try {
    return await work(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
