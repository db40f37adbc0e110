/** The user's working tree, index and branch, as a sync reads and writes them. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ConflictError, GitError, SyncConflictError } from '../errors';
import { gitRaw, gitWithInput, withoutFilterDrivers } from './git';
import { copyIndex, DIRECTORY, exists, LITERAL_PATHS, list, sameEntry, treeEntries, withTempDir } from './plumbing';
import type { Current, Entry, RawChange } from './plumbing';

/** The user's working tree, index and branch: read with git, written only through git's own checkout. */
export class Workspace {
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

function isRegular(mode: string): boolean {
  return mode === '100644' || mode === '100755';
}
