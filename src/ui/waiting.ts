import * as vscode from 'vscode';
import { COMMAND } from './ids';
import type { SandboxModel } from './model';

/** Says when an interactive agent starts waiting for the user, with a button to attach to it. */
export class WaitingNotifier implements vscode.Disposable {
  private readonly waiting = new Set<string>();
  private readonly subscription: vscode.Disposable;

  constructor(model: SandboxModel) {
    this.subscription = model.onDidChange(() => {
      const now = new Set(model.list.filter((s) => s.waiting).map((s) => s.name));
      for (const name of now) {
        if (this.waiting.has(name)) continue;
        void vscode.window.showInformationMessage(`${name}: the agent waits for you.`, 'Attach to Agent').then((choice) => {
          if (choice) void vscode.commands.executeCommand(COMMAND.attachAgent, name);
        });
      }
      this.waiting.clear();
      for (const name of now) this.waiting.add(name);
    });
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
