/**
 * The configuration model: what sandbox.toml (ours and AgentLoop's layout) says, once read and checked. Read by
 * config.ts; merged by roles.ts.
 */
import type { ConfigOrigin } from '../errors';
import type { PresetId } from '../agents/presets';
import type { EngineChoice } from '../engine/engine';

export const CONFIG_FILE_NAME = 'sandbox.toml';
export const DEFAULT_AGENT = 'default';

export type NetworkMode = 'none' | 'nat' | 'host';

export interface PortMapping {
  containerPort: number;
  /** Undefined: Docker picks a free host port. */
  hostPort?: number;
  hostIp: string;
  protocol: 'tcp' | 'udp';
}

export interface VolumeMount {
  /** Absolute, resolved against the workspace root. */
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerSettings {
  /** An image reference; a role's dockerfile clears an inherited image and vice versa. */
  image?: string;
  /** Absolute path, resolved against the workspace root. */
  dockerfile?: string;
  /** Absolute path; defaults to the Dockerfile's folder. Only set along with dockerfile. */
  context?: string;
  network: NetworkMode;
  cpus: number;
  memoryBytes: number;
  pids: number;
  diskBytes?: number;
  ports: PortMapping[];
  volumes: VolumeMount[];
  env: Record<string, string>;
  /**
   * Host names the agent may reach (`api.example.com`, `*.example.org`); undefined: the network mode alone
   * decides. Set (even empty), the agent reaches nothing but these, through the egress proxy.
   */
  allow?: string[];
  /** Names of secrets handed to the agent at start: the editor's stored secrets, or host variables the user allowed. */
  secrets: string[];
}

/** The keys whose values are judged after loading, against the host and the user's settings. */
export type OriginKey = 'dockerfile' | 'context' | 'volumes' | 'ports' | 'secrets' | 'network';
export type ContainerOrigins = Partial<Record<OriginKey, ConfigOrigin>>;

const originsOfSettings = new WeakMap<ContainerSettings, ContainerOrigins>();

/**
 * Where sandbox.toml set the keys of these settings that are judged only at `up` and `build` (host paths, the
 * network, secrets), for the errors found then. Empty for settings not made by loadConfig.
 */
export function originsOf(settings: ContainerSettings): ContainerOrigins {
  return originsOfSettings.get(settings) ?? {};
}

/** Records where sandbox.toml set the keys of these settings (see originsOf). */
export function recordOrigins(settings: ContainerSettings, origins: ContainerOrigins): void {
  originsOfSettings.set(settings, origins);
}

/** A role's agent, when it names a preset: `[agents.claude] preset = "claude-code"`. */
export interface AgentPresetChoice {
  preset: PresetId;
  /** Undefined: the version the preset is tested with. */
  version?: string;
  /** Which of the preset's credentials to use; undefined: the first one set. */
  credential?: string;
  /** The model the agent is asked to use; undefined: the agent's own default. */
  model?: string;
  origin: ConfigOrigin;
}

export interface AgentRole {
  name: string;
  /** Undefined: the preset's headless command, else the image's own CMD. */
  command?: string[];
  /** The agent preset the role runs; its env and allowlist are merged into `container` already. */
  agent?: AgentPresetChoice;
  /** The agent runs on a terminal (its own TUI, a shell) that one attaches to; it runs on when nobody is attached. */
  interactive?: boolean;
  /** The defaults merged with the role's overrides. */
  container: ContainerSettings;
}

export interface ConfigWarning {
  /** As shown in messages: relative to the workspace root when inside it. */
  file: string;
  line?: number;
  key: string;
  message: string;
}

export interface SandboxConfig {
  /** Absolute path of the file read; undefined when there is none. */
  file?: string;
  defaults: ContainerSettings;
  /** Never empty. */
  agents: Record<string, AgentRole>;
  defaultAgent: string;
  maxParallelAgents: number;
  /** `[sandbox] engine`: which engine to find (see Engine.connect). */
  engine: EngineChoice;
  /** `[sandbox] engine_host`: the engine's address, `unix:///path.sock` or `tcp://host:port`. */
  engineHost?: string;
  /** Where engine_host was set. */
  engineHostOrigin?: ConfigOrigin;
  warnings: ConfigWarning[];
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The longest sandbox.toml read: far more than any configuration needs, far less than a hostile file could be. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The role of that name; never one of a plain object's own members such as `toString`. */
export function roleNamed(config: SandboxConfig, name: string): AgentRole | undefined {
  return Object.hasOwn(config.agents, name) ? config.agents[name] : undefined;
}

export function formatWarning(w: ConfigWarning): string {
  return `${w.file}${w.line ? `:${w.line}` : ''}: ${w.key}: ${w.message}`;
}
