/** The commands that act on an agent's changes: open one, review them all, sync them back. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SyncConflictError } from '../../core/errors';
import { describeSyncResult } from '../../core/git/sync';
import type { ConflictPolicy, SyncMode, SyncResult } from '../../core/git/sync';
import type { ChangedFile } from '../../core/git/worktrees';
import { BASE_SCHEME } from '../ids';
import type { SandboxView } from '../model';
import type { ChangeNode } from '../tree';
import { changeSummary, lineCounts } from '../tree';
import { requireCore } from './context';
import type { CommandContext } from './context';

/** Sync Back's choices, given by a caller (tests, other extensions) instead of asked for. */
export interface SyncBackOptions {
  mode?: SyncMode;
  files?: string[];
  onConflict?: ConflictPolicy;
  patchFile?: string;
}

/** The two sides of a changed file's diff: the file at the sandbox's base, and the agent's worktree. */
function diffSides(sandbox: SandboxView, change: ChangedFile): { base: vscode.Uri; current: vscode.Uri } {
  const base = vscode.Uri.from({ scheme: BASE_SCHEME, path: `/${change.from ?? change.path}`, query: sandbox.name });
  const current = change.status === 'deleted' ? base.with({ query: `${sandbox.name}&deleted` }) : vscode.Uri.file(path.join(sandbox.worktree, change.path));
  return { base, current };
}

export async function openChange(node: ChangeNode): Promise<void> {
  const { base, current } = diffSides(node.sandbox, node.change);
  await vscode.commands.executeCommand('vscode.diff', base, current, `${node.change.path} (${node.sandbox.name}: base ↔ agent)`);
}

/** Everything the agent changed against its base, committed or not, in VS Code's multi-file diff editor. */
export async function reviewChanges(ctx: CommandContext, sandbox: SandboxView): Promise<number> {
  const changes = await requireCore(ctx).changedFiles(sandbox.name);
  if (changes.length === 0) {
    void vscode.window.showInformationMessage(`The agent of ${sandbox.name} has changed nothing yet.`);
    return 0;
  }
  const resources = changes.map((change) => {
    const { base, current } = diffSides(sandbox, change);
    return [current, base, current];
  });
  await vscode.commands.executeCommand('vscode.changes', `${sandbox.name}: ${changeSummary(changes)}, ${lineCounts(changes)}`, resources);
  return changes.length;
}

const MODE_CHOICES: Array<vscode.QuickPickItem & { mode: SyncMode }> = [
  { mode: 'squash', label: '$(diff) Squash into working tree', description: 'as uncommitted changes, for you to review and commit', detail: 'Merges with your own changes to the same files, file by file.' },
  { mode: 'merge', label: '$(git-merge) Merge', description: 'into the current branch (fast-forward when possible)' },
  { mode: 'cherry-pick', label: '$(git-commit) Cherry-pick', description: "replay the agent's commits one by one", detail: 'Whole commits: choosing files is not possible.' },
  { mode: 'patch', label: '$(file-code) Save as patch', description: 'write a patch file (git apply)' },
];

/**
 * Brings the agent's work into the workspace in the mode chosen. Conflicts with the user's own changes stop
 * it before anything changes; the user may then merge with conflict markers, which opens the merge editor.
 */
export async function syncBack(ctx: CommandContext, sandbox: SandboxView, options: SyncBackOptions = {}): Promise<SyncResult | undefined> {
  const core = requireCore(ctx);
  const changes = await core.changedFiles(sandbox.name);
  if (changes.length === 0) {
    void vscode.window.showInformationMessage(`The agent of ${sandbox.name} has changed nothing to sync.`);
    return undefined;
  }
  const mode = options.mode ?? (await vscode.window.showQuickPick(MODE_CHOICES, { title: `Sync ${sandbox.name} back: how?` }))?.mode;
  if (!mode) throw new vscode.CancellationError();
  let files = options.files;
  if (!files && !options.mode && mode !== 'cherry-pick') {
    const picked = await vscode.window.showQuickPick(
      changes.map((c) => ({ label: c.path, description: `${c.status}${c.from ? ` from ${c.from}` : ''}`, picked: true })),
      { title: `Sync ${sandbox.name} back: which files?`, canPickMany: true },
    );
    if (!picked || picked.length === 0) throw new vscode.CancellationError();
    if (picked.length < changes.length) files = picked.map((p) => p.label);
  }
  let patchFile = options.patchFile;
  if (mode === 'patch' && !patchFile) {
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(core.repo.root, `sandbox-${sandbox.name}.patch`)),
      filters: { Patch: ['patch', 'diff'] },
      title: `Save the changes of ${sandbox.name} as a patch`,
    });
    if (!target) throw new vscode.CancellationError();
    patchFile = target.fsPath;
  }
  const run = (onConflict: ConflictPolicy) =>
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Syncing ${sandbox.name} back (${mode})` }, () =>
      // The save dialog has asked about replacing the file already; a caller's path is never overwritten.
      core.sync(sandbox.name, { mode, files, onConflict, patchFile, overwritePatch: !options.patchFile }),
    );
  let result: SyncResult;
  try {
    result = await run(options.onConflict ?? 'stop');
  } catch (error) {
    if (!(error instanceof SyncConflictError) || error.reason !== 'conflicts' || options.onConflict) throw error;
    const merge = 'Merge with Conflict Markers';
    const answer = await vscode.window.showWarningMessage(`Sync ${sandbox.name}: conflicts with your changes`, { modal: true, detail: `${error.message}\n\nNothing has changed yet. Merge anyway, and resolve the conflicts in the merge editor?` }, merge);
    if (answer !== merge) return undefined;
    result = await run('merge');
  } finally {
    await ctx.model.refresh();
  }
  const summary = describeSyncResult(sandbox.name, result);
  ctx.log.info(`Sync ${sandbox.name} (${mode}): ${summary.replace(/\n/g, ' ')}`);
  if (result.conflicts.length > 0) {
    void vscode.window.showWarningMessage(summary);
    await openMergeEditor(path.join(core.repo.root, result.conflicts[0]));
  } else {
    void vscode.window.showInformationMessage(summary);
  }
  return result;
}

/** VS Code's merge editor on a file with conflict stages, through the built-in git extension; else the file itself. */
async function openMergeEditor(file: string): Promise<void> {
  const uri = vscode.Uri.file(file);
  try {
    await vscode.commands.executeCommand('git.openMergeEditor', uri);
    return;
  } catch {
    // The git extension is disabled or knows no repository here.
  }
  await vscode.window.showTextDocument(uri);
}
