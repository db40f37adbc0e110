/**
 * The extension's settings (`agentSandboxes.*` in package.json), one typed getter each: the only place their
 * names are written. A getter that widens what a sandbox may do reads the user's own value only (`globalValue`):
 * a workspace's `.vscode/settings.json` travels with the repository, as its sandbox.toml does.
 */
import type * as vscode from 'vscode';
import type { EngineChoice } from '../core/engine/engine';

export const SETTINGS_SECTION = 'agentSandboxes';

/** The section's settings as `vscode.workspace.getConfiguration(SETTINGS_SECTION, folder)` gives them. */
type Reader = Pick<vscode.WorkspaceConfiguration, 'get'>;
type Inspector = Pick<vscode.WorkspaceConfiguration, 'inspect'>;

function userValue<T>(settings: Inspector, key: string): T | undefined {
  return settings.inspect<T>(key)?.globalValue;
}

function userList(settings: Inspector, key: string): string[] {
  const value = userValue<unknown>(settings, key);
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** `engine`: auto, docker or podman; wins over sandbox.toml's when it names one. */
export function engineSetting(settings: Reader): EngineChoice {
  return settings.get<EngineChoice>('engine') || 'auto';
}

/** `engineHost`: the engine's address, from the user's settings only (the engine receives the build context, task and secrets). */
export function engineHostSetting(settings: Inspector): string | undefined {
  return userValue<string>(settings, 'engineHost')?.trim() || undefined;
}

/** `configPath`: where sandbox.toml is, relative to the workspace folder. */
export function configPathSetting(settings: Reader): string {
  return settings.get<string>('configPath') || 'sandbox.toml';
}

/** `revealLogsOnStart`: show a new sandbox's output channel. */
export function revealLogsOnStartSetting(settings: Reader): boolean {
  return settings.get<boolean>('revealLogsOnStart', true);
}

/** `allowedVolumePaths`: host folders outside the workspace that sandbox.toml may mount. */
export function allowedVolumePathsSetting(settings: Inspector): string[] {
  return userList(settings, 'allowedVolumePaths');
}

/** `dangerouslyExposeEngineSocket`: hand the engine's socket to sandboxes. */
export function dangerouslyExposeEngineSocketSetting(settings: Inspector): boolean {
  return userValue<boolean>(settings, 'dangerouslyExposeEngineSocket') === true;
}

/** `secretsFromEnvironment`: secret names the editor's environment may supply. */
export function secretsFromEnvironmentSetting(settings: Inspector): string[] {
  return userList(settings, 'secretsFromEnvironment');
}

/** `allowedEngineHosts`: engine addresses sandbox.toml may name. */
export function allowedEngineHostsSetting(settings: Inspector): string[] {
  return userList(settings, 'allowedEngineHosts');
}

/** `allowHostNetwork`: let sandbox.toml give a sandbox the host's network. */
export function allowHostNetworkSetting(settings: Inspector): boolean {
  return userValue<boolean>(settings, 'allowHostNetwork') === true;
}

/** `allowPublicPorts`: let sandbox.toml publish ports beyond 127.0.0.1. */
export function allowPublicPortsSetting(settings: Inspector): boolean {
  return userValue<boolean>(settings, 'allowPublicPorts') === true;
}

/** `providerEndpoints`: where an agent preset's credential route forwards, per provider, as `id=url` entries (user settings only: the real key goes there). */
export function providerEndpointsSetting(settings: Inspector): string[] {
  const value = userValue<unknown>(settings, 'providerEndpoints');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string').map(([id, url]) => `${id}=${url}`);
}

/** `agentStuckAfterSeconds`: an agent preset with no event for this long is shown as stuck. */
export function agentStuckAfterSetting(settings: Reader): number {
  return Math.max(10, settings.get<number>('agentStuckAfterSeconds', 300));
}
