/** The commands that act on a sandbox itself: create, start, stop, restart, remove, open its worktree, the menu. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { addPresetRole } from '../../core/agents/starter';
import { SandboxError } from '../../core/errors';
import type { Sandboxes } from '../../core/sandboxes';
import { validateSandboxName } from '../../core/git/worktrees';
import { COMMAND, VIEW_ID } from '../ids';
import type { SandboxView } from '../model';
import { userPolicy } from '../policy';
import { firstSet, roleChoices, roleCredentials, roleOfPreset } from '../presetPick';
import type { RoleChoice } from '../presetPick';
import { suggestName } from '../sandboxName';
import { configPathSetting, revealLogsOnStartSetting } from '../settings';
import { setAgentSecret } from './secrets';
import { stateLabel } from '../tree';
import { pick, requireCore } from './context';
import type { CommandContext, SandboxArg } from './context';

export interface NewSandboxOptions {
  /** A role of sandbox.toml. */
  agent?: string;
  /** An agent preset (claude-code, codex, ...): its role, added to sandbox.toml when no role runs it yet. */
  preset?: string;
  task?: string;
  name?: string;
}

export async function lifecycle(ctx: CommandContext, arg: SandboxArg, verb: string, action: (core: Sandboxes, name: string) => Promise<void>): Promise<void> {
  const sandbox = await pick(ctx, arg, verb);
  await vscode.window.withProgress({ location: { viewId: VIEW_ID }, title: `${verb} ${sandbox.name}` }, () => action(requireCore(ctx), sandbox.name));
  await ctx.model.refresh();
}

/**
 * The role New Sandbox runs: the one given, the one that runs the given preset, or the one picked from the roles of
 * sandbox.toml and the presets no role runs yet. A preset without a role gets one, written into sandbox.toml (a
 * new file when there is none), and the workspace is opened again on it.
 */
async function chooseRole(ctx: CommandContext, options: NewSandboxOptions): Promise<string> {
  const config = requireCore(ctx).config;
  if (options.agent) return options.agent;
  let preset = options.preset;
  if (!preset) {
    const choices = roleChoices(config, path.basename(configPathSetting(ctx.settings())));
    const items = choices.map((c): vscode.QuickPickItem & { choice?: RoleChoice } =>
      'separator' in c ? { label: c.separator, kind: vscode.QuickPickItemKind.Separator } : { label: c.label, description: c.description, choice: c },
    );
    const picked = items.length === 1 ? items[0] : await vscode.window.showQuickPick(items, { title: 'New Sandbox: agent role', placeHolder: 'A role of sandbox.toml, or an agent preset to add to it' });
    if (!picked?.choice) throw new vscode.CancellationError();
    if (picked.choice.role) return picked.choice.role;
    preset = picked.choice.preset!;
  }
  const existing = roleOfPreset(config, preset);
  if (existing) return existing;
  if (!ctx.folder) throw new SandboxError('Open a folder first.');
  const file = path.resolve(ctx.folder.fsPath, configPathSetting(ctx.settings()));
  const { role, created } = await addPresetRole(file, preset);
  ctx.log.info(`${created ? 'Wrote' : 'Added the role'} [agents.${role}] (preset ${preset}) ${created ? 'to a new' : 'to'} ${file}`);
  await ctx.model.open();
  const reopened = requireCore(ctx);
  if (!Object.hasOwn(reopened.config.agents, role)) throw new SandboxError(`${file} has no role "${role}" after adding it.`);
  return role;
}

/**
 * Asks for a preset role's credential when none of the names it takes has a value where the core looks (the
 * editor's secret storage, or the environment for the names the user allowed): before anything is made.
 */
async function ensureCredential(ctx: CommandContext, core: Sandboxes, agent: string): Promise<void> {
  const names = roleCredentials(core.config.agents[agent]);
  if (names.length === 0) return;
  const secrets = userPolicy(ctx.settings(), ctx.secrets).secrets;
  if (await firstSet(names, secrets)) return;
  const set = await setAgentSecret(ctx, names[0]);
  if (!set || !(await secrets(set))) throw new vscode.CancellationError();
}

export async function newSandbox(ctx: CommandContext, options: NewSandboxOptions = {}): Promise<string> {
  const agent = await chooseRole(ctx, options);
  const core = requireCore(ctx);
  await ensureCredential(ctx, core, agent);
  const task = options.task ?? (await vscode.window.showInputBox({ title: 'New Sandbox: task', prompt: 'What should the agent do? (given to it as $SANDBOX_TASK)', ignoreFocusOut: true }));
  if (task === undefined) throw new vscode.CancellationError();
  const taken = new Set(ctx.model.list.map((s) => s.name));
  const name =
    options.name ??
    (await vscode.window.showInputBox({
      title: 'New Sandbox: name',
      value: suggestName(task || agent, taken),
      prompt: 'Also names its branch, sandbox/NAME',
      validateInput: (value) => {
        try {
          validateSandboxName(value);
        } catch (error) {
          return (error as SandboxError).describe();
        }
        return taken.has(value) ? `A sandbox named "${value}" exists already.` : undefined;
      },
    }));
  if (!name) throw new vscode.CancellationError();

  ctx.buildOutput.appendLine(`--- New sandbox ${name} (agent ${agent})`);
  await ctx.model.trackPending(name, agent, async () =>
    vscode.window.withProgress({ location: { viewId: VIEW_ID } }, () =>
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Creating sandbox ${name} ([output](command:workbench.action.output.show))`, cancellable: true },
        (progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return core.up({
            name,
            agent,
            task,
            signal: abort.signal,
            output: (text) => {
              ctx.buildOutput.append(text);
              const line = text.trim().split('\n').pop();
              if (line) progress.report({ message: line.slice(0, 80) });
            },
          });
        },
      ),
    ),
  );
  await ctx.logs.attach(name);
  if (revealLogsOnStartSetting(ctx.settings())) await ctx.logs.show(name, true);
  return name;
}

export async function remove(ctx: CommandContext, arg: SandboxArg, options: { confirmed?: boolean } = {}): Promise<boolean> {
  const sandbox = await pick(ctx, arg, 'Remove');
  const core = requireCore(ctx);
  const impact = await core.removalImpact(sandbox.name);
  const losing = impact.unmergedCommits > 0 || impact.uncommittedFiles.length > 0;
  if (!options.confirmed) {
    const parts = [
      sandbox.containerId ? `its container ${sandbox.containerId.slice(0, 12)}` : undefined,
      sandbox.worktree ? `its worktree ${sandbox.worktree}` : undefined,
      `its branch ${impact.branch}`,
    ].filter(Boolean);
    const losses = [
      impact.unmergedCommits > 0 ? `${impact.unmergedCommits} commit(s) that no other branch holds` : undefined,
      impact.uncommittedFiles.length > 0 ? `${impact.uncommittedFiles.length} uncommitted file(s): ${impact.uncommittedFiles.slice(0, 5).join(', ')}` : undefined,
    ].filter(Boolean);
    const detail = `This deletes ${parts.join(', ')}. Nothing else is touched.${losses.length ? `\n\nThe agent's work will be lost: ${losses.join('; ')}.` : ''}`;
    const button = losing ? 'Remove and Lose Work' : 'Remove';
    const answer = await vscode.window.showWarningMessage(`Remove sandbox ${sandbox.name}?`, { modal: true, detail }, button);
    if (answer !== button) return false;
  }
  ctx.logs.close(sandbox.name);
  await vscode.window.withProgress({ location: { viewId: VIEW_ID }, title: `Removing ${sandbox.name}` }, () => core.remove(sandbox.name, { force: true }));
  await ctx.model.refresh();
  return true;
}

/**
 * Opens the worktree in a new window, after a warning when it holds what that window would act on: it is
 * likely trusted (a worktree sits under the user's repository), and a trusted window runs git in the agent's
 * repositories and applies its editor settings and tasks. Returns whether it opened.
 */
export async function openWorktree(ctx: CommandContext, arg: SandboxArg | undefined, options: { confirmed?: boolean } = {}): Promise<boolean> {
  const sandbox = await pick(ctx, arg, 'Open the worktree of', (s) => Boolean(s.worktree));
  if (!options.confirmed) {
    const { hazards, incomplete } = await requireCore(ctx).editorHazards(sandbox.name);
    if (hazards.length > 0 || incomplete) {
      const listed = hazards.slice(0, 8).map((h) => `• ${h.path}: ${h.why}`);
      if (hazards.length > listed.length) listed.push(`• and ${hazards.length - listed.length} more`);
      if (incomplete) listed.push('• (the worktree is too large to look through whole)');
      const detail = [
        'The new window trusts this folder if you trust a folder above it, and would then act on what the agent wrote:',
        ...listed,
        '',
        'VS Code does not ask about trust when a folder above is trusted. Review the changes from the Sandboxes view instead, or open it anyway if you have looked at these.',
      ].join('\n');
      const button = 'Open Anyway';
      if ((await vscode.window.showWarningMessage(`Open the worktree of ${sandbox.name}?`, { modal: true, detail }, button)) !== button) return false;
    }
  }
  await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(sandbox.worktree), { forceNewWindow: true });
  return true;
}

export async function showMenu(ctx: CommandContext): Promise<void> {
  if (ctx.model.state === 'engineUnreachable') {
    const choice = await vscode.window.showQuickPick([{ label: '$(refresh) Retry connecting to the engine', id: COMMAND.retry }, { label: '$(output) Show the log', id: 'log' }], {
      title: ctx.model.error?.message ?? 'The engine is unreachable',
    });
    if (choice?.id === COMMAND.retry) await ctx.model.open();
    if (choice?.id === 'log') ctx.log.show();
    return;
  }
  const items: Array<vscode.QuickPickItem & { sandbox?: SandboxView; command?: string }> = ctx.model.list.map((s) => ({
    label: s.name,
    description: `${s.agent} · ${stateLabel(s)}`,
    detail: s.task || undefined,
    sandbox: s,
  }));
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(add) New Sandbox...', command: COMMAND.newSandbox });
  const chosen = await vscode.window.showQuickPick(items, { title: 'Agent Sandboxes', placeHolder: 'Pick a sandbox' });
  if (!chosen) return;
  if (chosen.command) {
    await vscode.commands.executeCommand(chosen.command);
    return;
  }
  const s = chosen.sandbox!;
  const running = s.state === 'running';
  const actions = [
    { label: '$(output) Show Logs', command: COMMAND.showLogs },
    { label: '$(diff-multiple) Review Changes', command: COMMAND.reviewChanges },
    { label: '$(repo-pull) Sync Back to Workspace...', command: COMMAND.syncBack },
    running ? { label: '$(debug-stop) Stop', command: COMMAND.stop } : { label: '$(debug-start) Start', command: COMMAND.start },
    ...(running && s.interactive ? [{ label: '$(terminal-tmux) Attach to Agent', command: COMMAND.attachAgent }] : []),
    ...(running ? [{ label: '$(terminal) Attach Shell', command: COMMAND.attachShell }] : []),
    { label: '$(debug-restart) Restart', command: COMMAND.restart },
    { label: '$(folder-opened) Open Worktree in New Window', command: COMMAND.openWorktree },
    { label: '$(trash) Remove', command: COMMAND.remove },
  ];
  const action = await vscode.window.showQuickPick(actions, { title: `Sandbox ${s.name}` });
  if (action) await vscode.commands.executeCommand(action.command, s.name);
}
