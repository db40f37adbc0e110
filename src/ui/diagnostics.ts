import * as vscode from 'vscode';
import { ConfigError } from '../core/errors';
import type { SandboxModel } from './model';

/** Errors and warnings of sandbox.toml in the Problems panel, at their lines. */
export class ConfigDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('agent-sandboxes');
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly model: SandboxModel,
    private readonly configUri: () => vscode.Uri | undefined,
  ) {
    this.subscription = model.onDidChange(() => this.update());
  }

  update(): void {
    this.collection.clear();
    const uri = this.configUri();
    if (!uri) return;
    const diagnostics: vscode.Diagnostic[] = [];
    const error = this.model.error;
    if (this.model.state === 'configError' && error instanceof ConfigError) {
      diagnostics.push(this.diagnostic(error.line, `${error.key ? `${error.key}: ` : ''}${error.detail}`, vscode.DiagnosticSeverity.Error));
    }
    for (const warning of this.model.config?.warnings ?? []) {
      diagnostics.push(this.diagnostic(warning.line, `${warning.key}: ${warning.message}`, vscode.DiagnosticSeverity.Warning));
    }
    this.collection.set(uri, diagnostics);
  }

  private diagnostic(line: number | undefined, message: string, severity: vscode.DiagnosticSeverity): vscode.Diagnostic {
    const index = Math.max(0, (line ?? 1) - 1);
    const diagnostic = new vscode.Diagnostic(new vscode.Range(index, 0, index, Number.MAX_SAFE_INTEGER), message, severity);
    diagnostic.source = 'Agent Sandboxes';
    return diagnostic;
  }

  dispose(): void {
    this.subscription.dispose();
    this.collection.dispose();
  }
}
