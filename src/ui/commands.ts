import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ENV_NAME } from '../core/config/config';
import { errorMessage, SandboxError, SyncConflictError } from '../core/errors';
import type { Sandboxes } from '../core/sandboxes';
import { describeSyncResult } from '../core/git/sync';
import type { ConflictPolicy, SyncMode, SyncResult } from '../core/git/sync';
import { validateSandboxName } from '../core/git/worktrees';
import { BASE_SCHEME, COMMAND, SETTINGS, VIEW_ID } from './ids';
import type { LogChannels } from './logChannels';
import type { ChangedFile } from '../core/git/worktrees';
import type { SandboxModel, SandboxView } from './model';
import { secretKey } from './secrets';
import { showError } from './errors';
import { createShellTerminal } from './shell';
import type { ChangeNode, PortNode, SandboxNode, SummaryNode } from './tree';
import { changeSummary, lineCounts, stateLabel } from './tree';

/** What a sandbox command is called with: a tree node, a name (palette, tests), or nothing (ask). */
type SandboxArg = SandboxNode | SummaryNode | string | undefined;

/** Sync Back's choices, given by a caller (tests, other extensions) instead of asked for. */
export interface SyncBackOptions {
  mode?: SyncMode;
  files?: string[];
  onConflict?: ConflictPolicy;
  patchFile?: string;
}

export interface NewSandboxOptions {
  agent?: string;
  task?: string;
  name?: string;
}

export interface CommandContext {
  model: SandboxModel;
  logs: LogChannels;
  buildOutput: vscode.OutputChannel;
  log: vscode.LogOutputChannel;
  folder: vscode.Uri | undefined;
  secrets: vscode.SecretStorage;
}

export const STARTER_CONFIG = `# Agent Sandboxes: how agents run for this repository.
# Every key is optional; see the README of Agent Sandboxes for all of them.

[sandbox.container]
image = "node:20-bookworm"            # or: dockerfile = ".sandbox/Dockerfile"
network = "nat"                       # none | nat | host
cpus = 2
memory = "4g"
pids = 1024
# ports = ["3000"]                    # container port, or host:container (published on 127.0.0.1)
# volumes = ["./fixtures:/fixtures:ro"]
# env = { NODE_ENV = "development" }

[agents.engineer]
command = ["sh", "-c", "echo \\"Task: $SANDBOX_TASK\\"; ls -la"]

[orchestrator]
max_parallel_agents = 4
`;

/**
 * Stores an agent's secret in VS Code's secret storage (the OS keychain), where sandboxes whose role names it
 * in `secrets` read it at each start. An empty value deletes it. Name and value may be given (tests, other
 * extensions); otherwise both are asked for, the value in a password box.
 */
async function setAgentSecret(ctx: CommandContext, name?: string, value?: string): Promise<string | undefined> {
  let secretName = name;
  if (!secretName) {
    const named = [...new Set(Object.values(ctx.model.config?.agents ?? {}).flatMap((role) => role.container.secrets))];
    const items = named.map((label) => ({ label, description: 'named in sandbox.toml' }));
    const picked = items.length
      ? await vscode.window.showQuickPick([...items, { label: 'Another name...', description: '' }], { placeHolder: 'The secret to set' })
      : { label: 'Another name...' };
    if (!picked) return undefined;
    secretName =
      picked.label === 'Another name...'
        ? await vscode.window.showInputBox({ prompt: 'The environment variable the agent reads it from', placeHolder: 'ANTHROPIC_API_KEY', validateInput: (v) => (ENV_NAME.test(v) ? undefined : 'A variable name: letters, digits and _, not starting with a digit') })
        : picked.label;
    if (!secretName) return undefined;
  }
  if (!ENV_NAME.test(secretName)) throw new SandboxError(`"${secretName}" is not an environment variable name.`);
  const secret = value ?? (await vscode.window.showInputBox({ prompt: `The value of ${secretName} (stored in VS Code's secret storage, never in a file; empty deletes it)`, password: true, ignoreFocusOut: true }));
  if (secret === undefined) return undefined;
  if (secret === '') await ctx.secrets.delete(secretKey(secretName));
  else await ctx.secrets.store(secretKey(secretName), secret);
  void vscode.window.showInformationMessage(secret === '' ? `${secretName} deleted.` : `${secretName} stored: sandboxes that name it get it at their next start.`);
  return secretName;
}

/** Registers every command from one table; each one's errors are logged and shown in one place. */
export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const table: Record<string, (...args: never[]) => unknown> = {
    [COMMAND.newSandbox]: (options?: NewSandboxOptions) => newSandbox(ctx, options),
    [COMMAND.buildImage]: (agent?: string) => buildImage(ctx, agent),
    [COMMAND.refresh]: () => ctx.model.open(),
    [COMMAND.setSecret]: (name?: string, value?: string) => setAgentSecret(ctx, name, value),
    [COMMAND.retry]: () => ctx.model.open(),
    [COMMAND.showLogs]: async (arg?: SandboxArg) => ctx.logs.show((await pick(ctx, arg, 'Show the logs of')).name),
    [COMMAND.stop]: (arg?: SandboxArg) => lifecycle(ctx, arg, 'Stop', (core, name) => core.stop(name)),
    [COMMAND.start]: (arg?: SandboxArg) => lifecycle(ctx, arg, 'Start', (core, name) => core.start(name)),
    [COMMAND.restart]: (arg?: SandboxArg) => lifecycle(ctx, arg, 'Restart', (core, name) => core.restart(name)),
    [COMMAND.attachShell]: async (arg?: SandboxArg) => {
      const sandbox = await pick(ctx, arg, 'Attach a shell to', (s) => s.state === 'running');
      const terminal = createShellTerminal(requireCore(ctx), sandbox.name);
      terminal.show();
      return terminal;
    },
    [COMMAND.detach]: async (arg?: SandboxArg) => ctx.logs.detach((await pick(ctx, arg, 'Detach from', (s) => s.state === 'running')).name),
    [COMMAND.openWorktree]: (arg?: SandboxArg, options?: { confirmed?: boolean }) => openWorktree(ctx, arg, options),
    [COMMAND.copyContainerId]: async (arg?: SandboxArg) => {
      const sandbox = await pick(ctx, arg, 'Copy the container id of', (s) => Boolean(s.containerId));
      await vscode.env.clipboard.writeText(sandbox.containerId ?? '');
      return sandbox.containerId;
    },
    [COMMAND.remove]: (arg?: SandboxArg, options?: { confirmed?: boolean }) => remove(ctx, arg, options),
    [COMMAND.createConfig]: () => createConfig(ctx),
    [COMMAND.showMenu]: () => showMenu(ctx),
    [COMMAND.openChangedFile]: (node: ChangeNode) => openChange(node),
    [COMMAND.openConfigAt]: async (file: string, line?: number) => {
      const position = new vscode.Position(Math.max((line ?? 1) - 1, 0), 0);
      return vscode.window.showTextDocument(vscode.Uri.file(file), { selection: new vscode.Range(position, position) });
    },
    [COMMAND.reviewChanges]: async (arg?: SandboxArg) => reviewChanges(ctx, await pick(ctx, arg, 'Review the changes of', (s) => Boolean(s.worktree))),
    [COMMAND.syncBack]: async (arg?: SandboxArg, options?: SyncBackOptions) => syncBack(ctx, await pick(ctx, arg, 'Sync back', (s) => Boolean(s.worktree)), options),
    [COMMAND.syncFile]: (node: ChangeNode) => syncBack(ctx, node.sandbox, { mode: 'squash', files: [node.change.path] }),
    [COMMAND.openPort]: (node: PortNode) => vscode.env.openExternal(vscode.Uri.parse(node.url)),
  };
  return Object.entries(table).map(([id, handler]) =>
    vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        return await handler(...args);
      } catch (error) {
        if (error instanceof vscode.CancellationError) return undefined;
        ctx.log.error(`${id}: ${errorMessage(error)}`);
        void showError(error, vscode, ctx.log, ctx.folder?.fsPath);
        throw error;
      }
    }),
  );
}

function requireCore(ctx: CommandContext): Sandboxes {
  if (!vscode.workspace.isTrusted) throw new SandboxError('This workspace is not trusted: Agent Sandboxes builds and runs nothing in it.');
  const core = ctx.model.core;
  if (!core) throw ctx.model.error ?? new SandboxError('Agent Sandboxes is not ready in this workspace.');
  return core;
}

/** The sandbox a command is about: from the tree, by name, or picked from a quick pick. */
async function pick(ctx: CommandContext, arg: SandboxArg, verb: string, eligible: (s: SandboxView) => boolean = () => true): Promise<SandboxView> {
  requireCore(ctx);
  if (typeof arg === 'object') return arg.sandbox;
  if (typeof arg === 'string') {
    await ctx.model.refresh();
    const found = ctx.model.find(arg);
    if (!found) throw new SandboxError(`There is no sandbox named "${arg}".`);
    return found;
  }
  const candidates = ctx.model.list.filter(eligible);
  if (candidates.length === 0) throw new SandboxError(`No sandbox to ${verb.toLowerCase()}.`);
  const choice = await vscode.window.showQuickPick(
    candidates.map((s) => ({ label: s.name, description: `${s.agent} · ${stateLabel(s)} · ${s.branch}`, sandbox: s })),
    { title: `${verb} which sandbox?` },
  );
  if (!choice) throw new vscode.CancellationError();
  return choice.sandbox;
}

async function lifecycle(ctx: CommandContext, arg: SandboxArg, verb: string, action: (core: Sandboxes, name: string) => Promise<void>): Promise<void> {
  const sandbox = await pick(ctx, arg, verb);
  await vscode.window.withProgress({ location: { viewId: VIEW_ID }, title: `${verb} ${sandbox.name}` }, () => action(requireCore(ctx), sandbox.name));
  await ctx.model.refresh();
}

async function newSandbox(ctx: CommandContext, options: NewSandboxOptions = {}): Promise<string> {
  const core = requireCore(ctx);
  const roles = Object.keys(core.config.agents);
  let agent = options.agent;
  if (!agent) {
    agent = roles.length === 1 ? roles[0] : (await vscode.window.showQuickPick(roles.map((label) => ({ label, description: label === core.config.defaultAgent ? 'default' : undefined })), { title: 'New Sandbox: agent role' }))?.label;
  }
  if (!agent) throw new vscode.CancellationError();
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
  if (vscode.workspace.getConfiguration(SETTINGS.section, ctx.folder).get<boolean>(SETTINGS.revealLogsOnStart, true)) await ctx.logs.show(name, true);
  return name;
}

async function buildImage(ctx: CommandContext, agentArg?: string): Promise<string> {
  const core = requireCore(ctx);
  const roles = Object.keys(core.config.agents);
  const agent = agentArg ?? (roles.length === 1 ? roles[0] : (await vscode.window.showQuickPick(roles, { title: 'Build the image of which agent role?' })));
  if (!agent) throw new vscode.CancellationError();
  ctx.buildOutput.show(true);
  ctx.buildOutput.appendLine(`--- Build for agent role ${agent}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Building the image for ${agent}`, cancellable: true },
    (_progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      return core.build(agent, (text) => ctx.buildOutput.append(text), { signal: abort.signal });
    },
  );
  ctx.buildOutput.appendLine(`--- ${result.changed ? 'Built' : 'Up to date'}: ${result.ref}`);
  return result.ref;
}

async function remove(ctx: CommandContext, arg: SandboxArg, options: { confirmed?: boolean } = {}): Promise<boolean> {
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
async function openWorktree(ctx: CommandContext, arg: SandboxArg | undefined, options: { confirmed?: boolean } = {}): Promise<boolean> {
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

async function createConfig(ctx: CommandContext): Promise<vscode.Uri> {
  if (!ctx.folder) throw new SandboxError('Open a folder first.');
  const file = path.join(ctx.folder.fsPath, vscode.workspace.getConfiguration(SETTINGS.section, ctx.folder).get<string>(SETTINGS.configPath, 'sandbox.toml'));
  await fs.writeFile(file, STARTER_CONFIG, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const uri = vscode.Uri.file(file);
  await vscode.window.showTextDocument(uri);
  await ctx.model.open();
  return uri;
}

async function showMenu(ctx: CommandContext): Promise<void> {
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
    ...(running ? [{ label: '$(terminal) Attach Shell', command: COMMAND.attachShell }] : []),
    { label: '$(debug-restart) Restart', command: COMMAND.restart },
    { label: '$(folder-opened) Open Worktree in New Window', command: COMMAND.openWorktree },
    { label: '$(trash) Remove', command: COMMAND.remove },
  ];
  const action = await vscode.window.showQuickPick(actions, { title: `Sandbox ${s.name}` });
  if (action) await vscode.commands.executeCommand(action.command, s.name);
}

/** The two sides of a changed file's diff: the file at the sandbox's base, and the agent's worktree. */
function diffSides(sandbox: SandboxView, change: ChangedFile): { base: vscode.Uri; current: vscode.Uri } {
  const base = vscode.Uri.from({ scheme: BASE_SCHEME, path: `/${change.from ?? change.path}`, query: sandbox.name });
  const current = change.status === 'deleted' ? base.with({ query: `${sandbox.name}&deleted` }) : vscode.Uri.file(path.join(sandbox.worktree, change.path));
  return { base, current };
}

async function openChange(node: ChangeNode): Promise<void> {
  const { base, current } = diffSides(node.sandbox, node.change);
  await vscode.commands.executeCommand('vscode.diff', base, current, `${node.change.path} (${node.sandbox.name}: base ↔ agent)`);
}

/** Everything the agent changed against its base, committed or not, in VS Code's multi-file diff editor. */
async function reviewChanges(ctx: CommandContext, sandbox: SandboxView): Promise<number> {
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
async function syncBack(ctx: CommandContext, sandbox: SandboxView, options: SyncBackOptions = {}): Promise<SyncResult | undefined> {
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

/** Serves files as they were at a sandbox's base commit, for the left side of its diffs. */
export class BaseContentProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly model: SandboxModel) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const [name, deleted] = uri.query.split('&');
    if (deleted) return '';
    const content = await this.model.core?.fileAtBase(name, uri.path.slice(1));
    return content?.toString('utf8') ?? '';
  }
}

/** A free, valid sandbox name from the first words of a task. */
export function suggestName(text: string, taken: ReadonlySet<string>): string {
  const base =
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .split('-')
      .filter(Boolean)
      .slice(0, 4)
      .join('-')
      .slice(0, 40)
      .replace(/-+$/, '') || 'sandbox';
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}
