import * as vscode from 'vscode';
import { errorMessage, SandboxError } from '../../core/errors';
import { showError } from '../errors';
import { COMMAND } from '../ids';
import { createShellTerminal } from '../shell';
import type { ChangeNode, PortNode } from '../tree';
import { openChange, reviewChanges, syncBack } from './changes';
import type { SyncBackOptions } from './changes';
import { createConfig } from './config';
import { pick, requireCore } from './context';
import type { CommandContext, SandboxArg } from './context';
import { buildImage, startPodmanService } from './engine';
import { setAgentSecret } from './secrets';
import { lifecycle, newSandbox, openWorktree, remove, showMenu } from './sandbox';
import type { NewSandboxOptions } from './sandbox';

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
    [COMMAND.attachAgent]: async (arg?: SandboxArg) => {
      const sandbox = await pick(ctx, arg, 'Attach to the agent of', (s) => s.state === 'running' && s.interactive === true);
      if (!sandbox.interactive) {
        throw new SandboxError(`The agent of "${sandbox.name}" has no terminal to attach to: its role is not interactive.`, 'Set interactive = true in its role for an agent to talk to; Attach Shell opens a shell beside the agent.');
      }
      if (sandbox.state !== 'running') throw new SandboxError(`The agent of "${sandbox.name}" is not running.`, 'Start it first.', [{ do: 'start-sandbox', sandbox: sandbox.name }]);
      return ctx.agentTerminals.attach(requireCore(ctx), sandbox.name);
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
    [COMMAND.startPodmanService]: () => startPodmanService(ctx),
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
