import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import { startPodmanService } from '../core/engine/podman';
import type { StartedService } from '../core/engine/podman';
import { showError } from './errors';
import { COMMAND } from './ids';
import type { SandboxModel } from './model';

/**
 * "Start Podman's API Service": offered by the Sandboxes view when the engine is unreachable because Podman is
 * installed but its service does not run. Starts it (systemd's socket unit where there is one, else a detached
 * `podman system service`), then reconnects. Resolves to what it started (for tests), or undefined.
 */
export function registerPodmanCommands(model: SandboxModel, log: vscode.LogOutputChannel): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(COMMAND.startPodmanService, async (): Promise<StartedService | undefined> => {
      const socket = model.podmanToStart;
      if (!socket) {
        void vscode.window.showInformationMessage('Podman\'s API service is not what the engine lacks: there is nothing to start.');
        return undefined;
      }
      try {
        const started = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Starting Podman's API service on ${socket}` },
          () => startPodmanService(socket),
        );
        log.info(`Podman's API service answers at ${started.endpoint} (${started.how === 'systemd' ? 'systemd socket unit' : `podman system service${started.log ? `, log: ${started.log}` : ''}`})`);
        await model.open();
        return started;
      } catch (error) {
        log.error(`Starting Podman's API service failed: ${errorMessage(error)}`);
        void showError(error, vscode, log);
        return undefined;
      }
    }),
  ];
}
