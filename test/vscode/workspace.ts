// The folder both VS Code test runners open unless given one: a git repository with one commit holding a
// sandbox.toml (which also activates the extension: activationEvents workspaceContains:sandbox.toml).
import { execFileSync } from 'child_process';
import * as path from 'path';

/** The suite's repository (sandbox.toml with its roles, the test image's context): test/vscode/make-workspace.sh. */
export function makeTestWorkspace(dir: string): void {
  const script = path.resolve(__dirname, '..', '..', '..', 'test', 'vscode', 'make-workspace.sh');
  execFileSync('bash', [script, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
}
