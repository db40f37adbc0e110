/** What every command handler gets, and how it finds the sandbox it is about (the tree's node, a name, or a pick). */
import * as vscode from 'vscode';
import { SandboxError } from '../../core/errors';
import type { Sandboxes } from '../../core/sandboxes';
import type { AgentTerminals } from '../agentTerminal';
import type { LogChannels } from '../logChannels';
import type { SandboxModel, SandboxView } from '../model';
import type { SandboxNode, SummaryNode } from '../tree';
import { stateLabel } from '../tree';

/** What a sandbox command is called with: a tree node, a name (palette, tests), or nothing (ask). */
export type SandboxArg = SandboxNode | SummaryNode | string | undefined;

export interface CommandContext {
  model: SandboxModel;
  logs: LogChannels;
  /** The Attach to Agent terminals of this window. */
  agentTerminals: AgentTerminals;
  buildOutput: vscode.OutputChannel;
  log: vscode.LogOutputChannel;
  folder: vscode.Uri | undefined;
  secrets: vscode.SecretStorage;
  /** The extension's settings for the workspace folder, read anew at each call (see settings.ts). */
  settings: () => Pick<vscode.WorkspaceConfiguration, 'get' | 'inspect'>;
}

/** The workspace's core, or the error that says why there is none (untrusted, not open, the model's own error). */
export function requireCore(ctx: CommandContext): Sandboxes {
  if (!vscode.workspace.isTrusted) throw new SandboxError('This workspace is not trusted: Agent Sandboxes builds and runs nothing in it.');
  const core = ctx.model.core;
  if (!core) throw ctx.model.error ?? new SandboxError('Agent Sandboxes is not ready in this workspace.');
  return core;
}

/** The sandbox a command is about: from the tree, by name, or picked from a quick pick. */
export async function pick(ctx: CommandContext, arg: SandboxArg, verb: string, eligible: (s: SandboxView) => boolean = () => true): Promise<SandboxView> {
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
