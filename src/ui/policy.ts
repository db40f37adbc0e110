import type * as vscode from 'vscode';
import { environmentPolicy } from '../core/sandboxes';
import type { HostPolicy } from '../core/sandboxes';
import { environmentSecrets, secretNamesFromEnv } from '../core/isolation/secrets';
import { SETTINGS } from './ids';
import { secretKey } from './secrets';

/**
 * What only the user decides (see HostPolicy), from the user's own settings and the editor's environment. A
 * setting counts only as the user's settings set it (`globalValue`): a workspace's `.vscode/settings.json`
 * travels with the repository, as its sandbox.toml does, and must not widen anything either.
 */
export function userPolicy(
  settings: Pick<vscode.WorkspaceConfiguration, 'inspect'>,
  secretStorage: Pick<vscode.SecretStorage, 'get'>,
  env: NodeJS.ProcessEnv = process.env,
): HostPolicy {
  const fromEnv = environmentPolicy(env);
  const user = <T>(key: string): T | undefined => settings.inspect<T>(key)?.globalValue;
  const list = (key: string): string[] => {
    const value = user<unknown>(key);
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  };
  const fromEnvironment = environmentSecrets(env, [...list(SETTINGS.secretsFromEnvironment), ...secretNamesFromEnv(env)]);
  return {
    allowedVolumePaths: [...list(SETTINGS.allowedVolumePaths), ...fromEnv.allowedVolumePaths],
    exposeEngineSocket: user<boolean>(SETTINGS.dangerouslyExposeEngineSocket) === true || fromEnv.exposeEngineSocket,
    // The editor's secret storage first; the editor's environment only for the names the user allowed.
    secrets: async (name) => (await secretStorage.get(secretKey(name))) || fromEnvironment(name),
    egressHosts: fromEnv.egressHosts,
    allowedEngineHosts: [...list(SETTINGS.allowedEngineHosts), ...fromEnv.allowedEngineHosts],
    allowHostNetwork: user<boolean>(SETTINGS.allowHostNetwork) === true || fromEnv.allowHostNetwork,
    allowPublicPorts: user<boolean>(SETTINGS.allowPublicPorts) === true || fromEnv.allowPublicPorts,
  };
}
