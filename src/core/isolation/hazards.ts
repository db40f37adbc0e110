/**
 * What VS Code would act on if it opened an agent's worktree as a folder of its own. Trust is inherited from a
 * trusted parent folder, and a worktree lives under the user's repository, so such a window usually trusts
 * files the agent wrote: a git repository it made (VS Code's git extension runs git there, with the hooks and
 * `core.fsmonitor` of the agent's config) and editor settings, tasks and launch configurations.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readUntrustedFile } from './untrusted';

export interface EditorHazard {
  /** Inside the worktree, with forward slashes. */
  path: string;
  why: string;
}

export interface HazardReport {
  hazards: EditorHazard[];
  /** True when the worktree had more entries than were looked at. */
  incomplete: boolean;
}

// The files VS Code reads from a folder's .vscode that can run something or change what runs.
const EDITOR_FILES = ['settings.json', 'tasks.json', 'launch.json', 'mcp.json'];
/** Larger than any settings file a person writes: such a file is a hazard without being read. */
const MAX_EDITOR_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The hazards in `worktree`: every `.git` below its top, and `.vscode` files and `*.code-workspace` files at its
 * top that differ from the user's own in `userRoot` (the user's, unchanged, are theirs already). Symbolic links
 * are not followed. At most `maxEntries` entries are read.
 */
export async function editorHazards(worktree: string, userRoot: string, maxEntries = 200_000): Promise<HazardReport> {
  const hazards: EditorHazard[] = [];
  let seen = 0;
  let pending = [''];
  while (pending.length > 0 && seen < maxEntries) {
    const next: string[] = [];
    for (const dir of pending) {
      const entries = await fs.readdir(path.join(worktree, dir), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (++seen > maxEntries) break;
        const relative = dir ? `${dir}/${entry.name}` : entry.name;
        if (entry.name === '.git') {
          if (dir) hazards.push({ path: relative, why: 'a git repository the agent made: git run there (by VS Code\'s git extension too) uses its hooks and configuration' });
          continue;
        }
        if (entry.isDirectory()) next.push(relative);
      }
    }
    pending = next;
  }
  const vscodeDir = await fs.lstat(path.join(worktree, '.vscode')).catch(() => undefined);
  if (vscodeDir?.isSymbolicLink()) hazards.push({ path: '.vscode', why: 'a symbolic link the agent made, to editor settings elsewhere' });
  const editorFiles = vscodeDir?.isDirectory() ? EDITOR_FILES.map((name) => `.vscode/${name}`) : [];
  for (const file of [...editorFiles, ...(await workspaceFiles(worktree))]) {
    const stat = await fs.lstat(path.join(worktree, file)).catch(() => undefined);
    if (!stat) continue;
    // Read as data only, and never through a link the agent made.
    if (!stat.isFile()) {
      hazards.push({ path: file, why: stat.isSymbolicLink() ? 'a symbolic link the agent made' : 'not a plain file' });
      continue;
    }
    // Opened without following a link or waiting on a FIFO the agent swapped in after the lstat, and capped.
    let theirs: Buffer | undefined;
    try {
      theirs = await readUntrustedFile(worktree, file, MAX_EDITOR_FILE_BYTES);
    } catch (error) {
      hazards.push({ path: file, why: `not read: ${(error as Error).message.replace(/^[^:]*: /, '')}` });
      continue;
    }
    if (!theirs) continue;
    const yours = await fs.readFile(path.join(userRoot, file)).catch(() => undefined);
    if (!yours || !theirs.equals(yours)) hazards.push({ path: file, why: yours ? 'changed by the agent' : 'written by the agent' });
  }
  return { hazards, incomplete: seen > maxEntries };
}

async function workspaceFiles(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith('.code-workspace'));
}
