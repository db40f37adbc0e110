import type * as vscode from 'vscode';
import { providerEndpoints } from '../core/agents/launch';
import { environmentPolicy } from '../core/sandbox/policy';
import type { HostPolicy } from '../core/sandbox/policy';
import { environmentSecrets, secretNamesFromEnv } from '../core/isolation/secrets';
import { secretKey } from './secrets';
import { allowedEngineHostsSetting, allowedVolumePathsSetting, allowHostNetworkSetting, allowPublicPortsSetting, dangerouslyExposeEngineSocketSetting, providerEndpointsSetting, secretsFromEnvironmentSetting } from './settings';

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
  const fromEnvironment = environmentSecrets(env, [...secretsFromEnvironmentSetting(settings), ...secretNamesFromEnv(env)]);
  return {
    allowedVolumePaths: [...allowedVolumePathsSetting(settings), ...fromEnv.allowedVolumePaths],
    exposeEngineSocket: dangerouslyExposeEngineSocketSetting(settings) || fromEnv.exposeEngineSocket,
    // The editor's secret storage first; the editor's environment only for the names the user allowed.
    secrets: async (name) => (await secretStorage.get(secretKey(name))) || fromEnvironment(name),
    egressHosts: fromEnv.egressHosts,
    allowedEngineHosts: [...allowedEngineHostsSetting(settings), ...fromEnv.allowedEngineHosts],
    allowHostNetwork: allowHostNetworkSetting(settings) || fromEnv.allowHostNetwork,
    allowPublicPorts: allowPublicPortsSetting(settings) || fromEnv.allowPublicPorts,
    providerEndpoints: { ...fromEnv.providerEndpoints, ...providerEndpoints(providerEndpointsSetting(settings), 'agentSandboxes.providerEndpoints') },
  };
}

