/** The command that stores an agent's secret in the editor's secret storage. */
import * as vscode from 'vscode';
import { ENV_NAME } from '../../core/config/model';
import { SandboxError } from '../../core/errors';
import { roleCredentials } from '../presetPick';
import { secretKey } from '../secrets';
import type { CommandContext } from './context';

/**
 * Stores an agent's secret in VS Code's secret storage (the OS keychain), where sandboxes whose role names it
 * in `secrets` read it at each start. An empty value deletes it. Name and value may be given (tests, other
 * extensions); otherwise both are asked for, the value in a password box.
 */
export async function setAgentSecret(ctx: CommandContext, name?: string, value?: string): Promise<string | undefined> {
  let secretName = name;
  if (!secretName) {
    const roles = Object.values(ctx.model.config?.agents ?? {});
    // The secrets roles name, then the credentials their agent presets take (kept outside the sandbox).
    const described = new Map<string, string>();
    for (const role of roles) for (const name of role.container.secrets) if (!described.has(name)) described.set(name, 'named in sandbox.toml');
    for (const role of roles) for (const name of roleCredentials(role)) if (!described.has(name)) described.set(name, `the key of ${role.agent!.preset} (role ${role.name})`);
    const items = [...described].map(([label, description]) => ({ label, description }));
    const picked = items.length
      ? await vscode.window.showQuickPick([...items, { label: 'Another name...', description: '' }], { placeHolder: 'The secret to set' })
      : { label: 'Another name...' };
    if (!picked) return undefined;
    secretName =
      picked.label === 'Another name...'
        ? await vscode.window.showInputBox({ prompt: 'The environment variable the agent reads it from', placeHolder: 'ANTHROPIC_API_KEY', validateInput: (v) => (ENV_NAME.test(v) ? undefined : 'A variable name: letters, digits and _, not starting with a digit') })
        : picked.label;
    if (!secretName) return undefined;
  }
  if (!ENV_NAME.test(secretName)) throw new SandboxError(`"${secretName}" is not an environment variable name.`);
  const secret = value ?? (await vscode.window.showInputBox({ prompt: `The value of ${secretName} (stored in VS Code's secret storage, never in a file; empty deletes it)`, password: true, ignoreFocusOut: true }));
  if (secret === undefined) return undefined;
  if (secret === '') await ctx.secrets.delete(secretKey(secretName));
  else await ctx.secrets.store(secretKey(secretName), secret);
  void vscode.window.showInformationMessage(secret === '' ? `${secretName} deleted.` : `${secretName} stored: sandboxes that name it get it at their next start.`);
  return secretName;
}
