import * as vscode from 'vscode';

/** The extension's entry point. The VS Code surface is being built; for now it announces itself in its log. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Agent Sandboxes', { log: true });
  context.subscriptions.push(log);
  log.info('Agent Sandboxes activated');
}

export function deactivate(): void {}
