import * as vscode from 'vscode';
import { engineName } from '../core/engine/engine';
import { COMMAND } from './ids';
import type { SandboxModel } from './model';

/** One item: the engine and how many sandboxes run; a spinner while building; a warning when unreachable. */
export class SandboxStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('agentSandboxes.status', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly model: SandboxModel) {
    this.item.name = 'Agent Sandboxes';
    this.item.command = COMMAND.showMenu;
    this.subscription = model.onDidChange(() => this.update());
    this.update();
  }

  update(): void {
    const { state } = this.model;
    if (state === 'noFolder' || state === 'untrusted' || state === 'notGitRepository' || state === 'loading') {
      this.item.hide();
      return;
    }
    if (state === 'engineUnreachable') {
      this.item.text = '$(warning) Sandboxes: engine unreachable';
      const podman = this.model.podmanToStart ? "\nPodman is installed but its API service is not running: the Sandboxes view can start it." : '';
      this.item.tooltip = `${this.model.error?.message ?? 'The container engine does not answer.'}${podman}\nClick for actions.`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else if (state === 'configError') {
      this.item.text = '$(warning) Sandboxes: sandbox.toml has an error';
      this.item.tooltip = this.model.error?.message;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else {
      const running = this.model.list.filter((s) => s.state === 'running').length;
      // The engine that answered, by its own account (Engine.version()): Docker or Podman.
      const version = this.model.engineVersion;
      const engine = version ? engineName(version.kind) : 'Engine';
      this.item.text = `${this.model.building ? '$(loading~spin)' : '$(vm)'} ${engine}: ${running} running`;
      const count = this.model.list.length;
      const where = version ? ` ${version.version} at ${this.model.engineEndpoint ?? '?'}` : '';
      this.item.tooltip = `Agent Sandboxes on ${engine}${where}: ${count} sandbox${count === 1 ? '' : 'es'}, ${running} running${this.model.building ? ', building' : ''}.\nClick to pick a sandbox.`;
      this.item.backgroundColor = undefined;
    }
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
