/**
 * The four ways to bring the agent's work into the user's workspace (merge, squash, cherry-pick, patch),
 * around the user's own uncommitted work.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ConflictError, GitError, SandboxError, SyncConflictError } from '../errors';
import { gitRaw, gitWithInput } from './git';
import { changesBetween, skippedNote } from './capture';
import type { AgentWork } from './capture';
import { commitsBetween, commitTree, copyIndex, diffEnv, DIRECTORY, entryOrUndefined, FIXED_DIFF_OPTIONS, isAncestor, list, mergeTree, namesChanged, PATCH_CONTEXT, rawChanges, restoreIndex, sameEntry, treeEntries, treeOf, withTempDir } from './plumbing';
import type { Entry, RawChange } from './plumbing';
import { Workspace } from './workingTree';
import type { ChangedFile, GitIdentity, Repository } from './worktrees';

export const SYNC_MODES = ['merge', 'squash', 'cherry-pick', 'patch'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/**
 * What to do where the agent's changes and the workspace's meet: `stop` before changing anything, or
 * `merge` three ways and leave conflict markers (and git's conflict stages) for the user to resolve.
 */
export type ConflictPolicy = 'stop' | 'merge';

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

/** The folders of paths a sparse checkout leaves out, for `git sparse-checkout add` (a file at the top: itself). */
function sparseFolders(paths: string[]): string[] {
  return [...new Set(paths.map((p) => (p.includes('/') ? path.posix.dirname(p) : p)))].sort();
}
