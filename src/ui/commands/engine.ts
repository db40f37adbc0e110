/** The commands that act on the engine: build an agent role's image, start Podman's API service. */
import * as vscode from 'vscode';
import { errorMessage } from '../../core/errors';
import { startPodmanService as startService } from '../../core/engine/podman';
import type { StartedService } from '../../core/engine/podman';
import { showError } from '../errors';
import { requireCore } from './context';
import type { CommandContext } from './context';

export async function buildImage(ctx: CommandContext, agentArg?: string): Promise<string> {
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

/**
 * "Start Podman's API Service": offered by the Sandboxes view when the engine is unreachable because Podman is
 * installed but its service does not run. Starts it (systemd's socket unit where there is one, else a detached
 * `podman system service`), then reconnects. Resolves to what it started (for tests), or undefined; it shows
 * its own errors and never throws.
 */
export async function startPodmanService(ctx: CommandContext): Promise<StartedService | undefined> {
  const { model, log } = ctx;
  const socket = model.podmanToStart;
  if (!socket) {
    void vscode.window.showInformationMessage('Podman\'s API service is not what the engine lacks: there is nothing to start.');
    return undefined;
  }
  try {
    const started = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Starting Podman's API service on ${socket}` },
      () => startService(socket),
    );
    log.info(`Podman's API service answers at ${started.endpoint} (${started.how === 'systemd' ? 'systemd socket unit' : `podman system service${started.log ? `, log: ${started.log}` : ''}`})`);
    await model.open();
    return started;
  } catch (error) {
    log.error(`Starting Podman's API service failed: ${errorMessage(error)}`);
    void showError(error, vscode, log);
    return undefined;
  }
}
