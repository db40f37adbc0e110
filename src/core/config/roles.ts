/**
 * Layers of container settings merged into each role: the defaults, AgentLoop's, ours, a role's own on top; an
 * agent preset merged into its role; and the settings that cannot hold together.
 */
import * as path from 'node:path';
import type { ConfigOrigin } from '../errors';
import { credentialNames, presetNamed } from '../agents/presets';
import type { Reader } from './config';
import { recordOrigins } from './model';
import type { AgentPresetChoice, AgentRole, ContainerOrigins, ContainerSettings, NetworkMode, OriginKey, PortMapping, VolumeMount } from './model';
import { has, setOwn } from './values';
import type { Path, Table } from './values';

const DEFAULT_CPUS = 2;
const DEFAULT_MEMORY_BYTES = 4 * 1024 ** 3;
const DEFAULT_PIDS = 1024;
/** An environment variable name, as `env` keys and `secrets` entries must be. */

/** Container settings as one table sets them; undefined fields are left to the layer below. */
export interface ContainerLayer {
  image?: string;
  dockerfile?: string;
  context?: string;
  network?: NetworkMode;
  cpus?: number;
  memoryBytes?: number;
  pids?: number;
  diskBytes?: number;
  ports?: PortMapping[];
  volumes?: VolumeMount[];
  env?: Record<string, string>;
  allow?: string[];
  secrets?: string[];
  origins?: ContainerOrigins;
}


/**
 * Settings that cannot hold together, reported at the table that set the later of them: an allowlist narrows
 * NAT (with none nothing is reachable, with host nothing could enforce it) and leaves the agent no network of
 * its own to publish ports on; a secret is never also a plain `env` value.
 */
export function checkCombination(reader: Reader, settings: ContainerSettings, tablePath: Path, layer: ContainerLayer): void {
  const key = (name: string): string[] => [...tablePath, ...(has(layer as Table, name) && (layer as Table)[name] !== undefined ? [name] : [])];
  if (settings.allow !== undefined && settings.network !== 'nat') {
    reader.fail(key('allow'), `an allowlist needs network = "nat" (it narrows NAT to the hosts listed), but network is "${settings.network}"`);
  }
  if (settings.allow !== undefined && settings.ports.length > 0) {
    reader.fail(key('ports'), 'ports cannot be published from a sandbox with an allowlist: its only way out is the egress proxy');
  }
  for (const name of settings.secrets) {
    if (Object.hasOwn(settings.env, name)) reader.fail(key('env'), `${name} is listed in secrets, so it must not also be set in env (env values are written in this file)`);
  }
}

/**
 * Merges a preset into its role: its environment under the role's own (which wins key by key), its hosts into the
 * allowlist, which a preset always has: the agent reaches its provider through the egress proxy's credential
 * route, and the proxy is the allowlist's.
 */
export function applyPreset(reader: Reader, role: AgentRole, choice: AgentPresetChoice, tablePath: Path): void {
  const preset = presetNamed(choice.preset)!;
  const container = role.container;
  role.agent = choice;
  const env: Record<string, string> = {};
  for (const [name, value] of [...Object.entries(preset.env), ...Object.entries(container.env)]) setOwn(env, name, value);
  container.env = env;
  container.allow = [...new Set([...preset.allow, ...(container.allow ?? [])])];
  if (container.network !== 'nat') {
    reader.fail([...tablePath, 'preset'], `${preset.title} reaches its provider through the egress proxy, which needs network = "nat" (the allowlist narrows it), but network is "${container.network}"`);
  }
  for (const name of credentialNames(preset)) {
    if (container.secrets.includes(name)) {
      reader.fail([...tablePath, 'secrets'], `${name} is ${preset.title}'s credential: the preset keeps it outside the sandbox (the agent gets a placeholder), so it must not be handed in as a secret`);
    }
    if (Object.hasOwn(container.env, name)) reader.fail([...tablePath, 'env'], `${name} is ${preset.title}'s credential: set it with Set Agent Secret, never in this file`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Merging

export function overlay(base: ContainerLayer, top: ContainerLayer): ContainerLayer {
  const out: ContainerLayer = { ...base, origins: { ...base.origins } };
  const origins = out.origins!;
  // A Dockerfile's context goes with it: an inherited context's origin too.
  if (top.dockerfile !== undefined || top.image !== undefined) delete origins.context;
  if (top.image !== undefined) delete origins.dockerfile;
  for (const [key, origin] of Object.entries(top.origins ?? {}) as Array<[OriginKey, ConfigOrigin]>) origins[key] = origin;
  if (top.dockerfile !== undefined) {
    out.image = undefined;
    out.dockerfile = top.dockerfile;
    // A context belongs to the Dockerfile it was written for.
    out.context = undefined;
  }
  if (top.image !== undefined) {
    out.image = top.image;
    out.dockerfile = undefined;
    out.context = undefined;
  }
  if (top.context !== undefined) out.context = top.context;
  if (top.network !== undefined) out.network = top.network;
  if (top.cpus !== undefined) out.cpus = top.cpus;
  if (top.memoryBytes !== undefined) out.memoryBytes = top.memoryBytes;
  if (top.pids !== undefined) out.pids = top.pids;
  if (top.diskBytes !== undefined) out.diskBytes = top.diskBytes;
  if (base.ports !== undefined || top.ports !== undefined) out.ports = [...(base.ports ?? []), ...(top.ports ?? [])];
  if (base.volumes !== undefined || top.volumes !== undefined) {
    out.volumes = [...(base.volumes ?? []), ...(top.volumes ?? [])];
  }
  // A role's allowlist replaces the default one: a role is usually narrower, never silently wider.
  if (top.allow !== undefined) out.allow = [...top.allow];
  if (base.secrets !== undefined || top.secrets !== undefined) out.secrets = [...new Set([...(base.secrets ?? []), ...(top.secrets ?? [])])];
  if (base.env !== undefined || top.env !== undefined) {
    const env: Record<string, string> = {};
    for (const [name, value] of [...Object.entries(base.env ?? {}), ...Object.entries(top.env ?? {})]) {
      setOwn(env, name, value);
    }
    out.env = env;
  }
  return out;
}

export function resolveContainer(layer: ContainerLayer): ContainerSettings {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(layer.env ?? {})) setOwn(env, name, value);
  const settings: ContainerSettings = {
    network: layer.network ?? 'nat',
    cpus: layer.cpus ?? DEFAULT_CPUS,
    memoryBytes: layer.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    pids: layer.pids ?? DEFAULT_PIDS,
    ports: (layer.ports ?? []).map((port) => ({ ...port })),
    volumes: (layer.volumes ?? []).map((volume) => ({ ...volume })),
    env,
    secrets: [...(layer.secrets ?? [])],
  };
  recordOrigins(settings, { ...layer.origins });
  if (layer.allow !== undefined) settings.allow = [...layer.allow];
  if (layer.dockerfile !== undefined) {
    settings.dockerfile = layer.dockerfile;
    settings.context = layer.context ?? path.dirname(layer.dockerfile);
  } else if (layer.image !== undefined) {
    settings.image = layer.image;
  }
  if (layer.diskBytes !== undefined) settings.diskBytes = layer.diskBytes;
  return settings;
}

