import type * as vscode from 'vscode';
import type { SandboxModel } from './model';

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
