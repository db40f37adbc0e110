/**
 * Loads sandbox.toml into one model. Two layouts are read: ours (`[sandbox.container]`, `[agents.*]`)
 * and AgentLoop's (`[orchestrator.container_sandbox]`); AgentLoop values apply first, ours on top.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isIP, isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type { EngineChoice } from '../engine/engine';
import { ConfigError } from '../errors';
import type { ConfigOrigin } from '../errors';
import { checkVersion } from '../agents/install';
import { PRESET_IDS, credentialNames, presetNamed } from '../agents/presets';
import type { PresetId } from '../agents/presets';
import { hostPatternProblem, normalizeHost } from '../isolation/hosts';
import { formatSize, parseSize } from './sizes';

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

const DEFAULT_CPUS = 2;
const DEFAULT_MEMORY_BYTES = 4 * 1024 ** 3;
const DEFAULT_PIDS = 1024;
const DEFAULT_MAX_PARALLEL_AGENTS = 4;
const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
// Published ports listen on loopback only unless the file names another address.
const DEFAULT_HOST_IP = '127.0.0.1';
const WORKSPACE_MOUNT = '/workspace';
/** An environment variable name, as `env` keys and `secrets` entries must be. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const CONTAINER_KEYS = [
  'image',
  'dockerfile',
  'context',
  'network',
  'cpus',
  'memory',
  'pids',
  'disk',
  'ports',
  'volumes',
  'env',
  'allow',
  'secrets',
] as const;
const ROLE_KEYS = ['command', 'preset', 'version', 'credential', 'model', ...CONTAINER_KEYS] as const;
const TOP_KEYS = ['sandbox', 'agents', 'orchestrator'] as const;
const SANDBOX_KEYS = ['container', 'default_agent', 'engine', 'engine_host'] as const;
const ENGINES: readonly EngineChoice[] = ['auto', 'docker', 'podman'];
const ORCHESTRATOR_KEYS = ['max_parallel_agents', 'container_sandbox'] as const;
const AGENTLOOP_KEYS = [
  'enabled',
  'container_image',
  'network_mode',
  'memory_limit',
  'cpu_limit',
  'agent_images',
] as const;

// ---------------------------------------------------------------------------------------------------
// Public entry points

/** The longest sandbox.toml read: far more than any configuration needs, far less than a hostile file could be. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export async function loadConfig(workspaceRoot: string, file?: string): Promise<SandboxConfig> {
  const root = path.resolve(workspaceRoot);
  const absolute = path.resolve(root, file ?? CONFIG_FILE_NAME);
  const refuse = (detail: string): never => {
    throw new ConfigError(displayPath(absolute, root), undefined, undefined, detail, `Make ${CONFIG_FILE_NAME} a plain text file of at most ${formatSize(MAX_CONFIG_BYTES)}.`);
  };
  let text: string;
  try {
    // A repository's file is read as data, and boundedly: a FIFO or a device (a link to /dev/zero) would never
    // end. Opened without waiting (a FIFO swapped in after a look would block the open itself), then judged.
    const handle = await open(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) refuse('is not a regular file (a folder, a FIFO or a device), so it is not read');
      if (stats.size > MAX_CONFIG_BYTES) refuse(`is ${stats.size} bytes long, more than the ${formatSize(MAX_CONFIG_BYTES)} read`);
      const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_CONFIG_BYTES) refuse(`is more than the ${formatSize(MAX_CONFIG_BYTES)} read`);
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return buildConfig(new Reader('', undefined, root));
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(displayPath(absolute, root), undefined, undefined, `cannot read the file: ${reason}`);
  }
  return parseConfig(text, absolute, root);
}

export function parseConfig(text: string, file: string, workspaceRoot: string): SandboxConfig {
  const root = path.resolve(workspaceRoot);
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return buildConfig(new Reader(source, path.resolve(root, file), root, file));
}

export function formatWarning(w: ConfigWarning): string {
  return `${w.file}${w.line ? `:${w.line}` : ''}: ${w.key}: ${w.message}`;
}

// ---------------------------------------------------------------------------------------------------
// Reading the document

type Table = Record<string, unknown>;
type Path = readonly string[];

/** Container settings as one table sets them; undefined fields are left to the layer below. */
interface ContainerLayer {
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

interface RoleDraft {
  name: string;
  order: number;
  agentLoop?: ContainerLayer;
  ours?: ContainerLayer;
  command?: string[];
  agent?: AgentPresetChoice;
}

class Reader {
  readonly warnings: ConfigWarning[] = [];
  readonly display: string;
  private keyLines?: Map<string, number>;

  constructor(
    readonly text: string,
    readonly absoluteFile: string | undefined,
    readonly root: string,
    givenFile?: string,
  ) {
    this.display =
      absoluteFile === undefined ? CONFIG_FILE_NAME : displayPath(absoluteFile, root, givenFile ?? absoluteFile);
  }

  line(keyPath: Path): number | undefined {
    this.keyLines ??= scanKeyLines(this.text);
    return this.keyLines.get(pathId(keyPath));
  }

  fail(keyPath: Path, detail: string): never {
    throw new ConfigError(this.display, this.line(keyPath), formatKeyPath(keyPath), detail);
  }

  origin(keyPath: Path): ConfigOrigin {
    const line = this.line(keyPath);
    return { file: this.display, ...(line !== undefined ? { line } : {}), key: formatKeyPath(keyPath) };
  }

  warn(keyPath: Path, message: string): void {
    this.warnings.push({ file: this.display, line: this.line(keyPath), key: formatKeyPath(keyPath), message });
  }

  /** Warns about every key of `table` not in `known`. */
  checkKeys(table: Table, tablePath: Path, known: readonly string[]): void {
    for (const key of Object.keys(table)) {
      if (known.includes(key)) continue;
      const suggestion = closest(key, known);
      this.warn(
        [...tablePath, key],
        `unknown key, ignored${suggestion === undefined ? '' : ` (did you mean \`${suggestion}\`?)`}`,
      );
    }
  }

  table(value: unknown, keyPath: Path): Table {
    if (!isTable(value)) this.fail(keyPath, `expected a table, got ${describe(value)}`);
    return value;
  }

  /** The line a table or key first appears on, to order roles as the file does. */
  order(keyPath: Path): number {
    return this.line(keyPath) ?? Number.MAX_SAFE_INTEGER;
  }
}

function buildConfig(reader: Reader): SandboxConfig {
  let doc: Table;
  try {
    doc = parse(reader.text);
  } catch (error) {
    if (error instanceof TomlError) {
      throw new ConfigError(reader.display, error.line, undefined, firstLine(error.message));
    }
    throw new ConfigError(reader.display, undefined, undefined, firstLine(String(error)));
  }
  reader.checkKeys(doc, [], TOP_KEYS);

  const roles = new Map<string, RoleDraft>();
  const draft = (name: string, order: number): RoleDraft => {
    let role = roles.get(name);
    if (!role) {
      role = { name, order };
      roles.set(name, role);
    }
    role.order = Math.min(role.order, order);
    return role;
  };

  let maxParallelAgents = DEFAULT_MAX_PARALLEL_AGENTS;
  let agentLoopDefaults: ContainerLayer = {};
  if (has(doc, 'orchestrator')) {
    const orchestrator = reader.table(doc.orchestrator, ['orchestrator']);
    reader.checkKeys(orchestrator, ['orchestrator'], ORCHESTRATOR_KEYS);
    if (has(orchestrator, 'max_parallel_agents')) {
      const keyPath = ['orchestrator', 'max_parallel_agents'];
      const value = orchestrator.max_parallel_agents;
      if (!isInteger(value) || value < 1) reader.fail(keyPath, `expected an integer of at least 1, got ${describe(value)}`);
      maxParallelAgents = value;
    }
    if (has(orchestrator, 'container_sandbox')) {
      const tablePath = ['orchestrator', 'container_sandbox'];
      const sandbox = reader.table(orchestrator.container_sandbox, tablePath);
      agentLoopDefaults = readAgentLoop(reader, sandbox, tablePath);
      if (has(sandbox, 'agent_images')) {
        const imagesPath = [...tablePath, 'agent_images'];
        const images = reader.table(sandbox.agent_images, imagesPath);
        for (const [name, value] of Object.entries(images)) {
          const keyPath = [...imagesPath, name];
          checkRoleName(reader, name, keyPath);
          draft(name, reader.order(keyPath)).agentLoop = { image: readImage(reader, value, keyPath) };
        }
      }
    }
  }

  let ourDefaults: ContainerLayer = {};
  let defaultAgentName: string | undefined;
  let engine: EngineChoice = 'auto';
  let engineHost: string | undefined;
  let engineHostOrigin: ConfigOrigin | undefined;
  if (has(doc, 'sandbox')) {
    const sandbox = reader.table(doc.sandbox, ['sandbox']);
    reader.checkKeys(sandbox, ['sandbox'], SANDBOX_KEYS);
    if (has(sandbox, 'container')) {
      const tablePath = ['sandbox', 'container'];
      const container = reader.table(sandbox.container, tablePath);
      reader.checkKeys(container, tablePath, CONTAINER_KEYS);
      ourDefaults = readContainer(reader, container, tablePath);
    }
    if (has(sandbox, 'default_agent')) {
      const value = sandbox.default_agent;
      if (typeof value !== 'string' || value === '') {
        reader.fail(['sandbox', 'default_agent'], `expected the name of a role, got ${describe(value)}`);
      }
      defaultAgentName = value;
    }
    if (has(sandbox, 'engine')) engine = readEngine(reader, sandbox.engine, ['sandbox', 'engine']);
    if (has(sandbox, 'engine_host')) {
      engineHost = readEngineHost(reader, sandbox.engine_host, ['sandbox', 'engine_host']);
      engineHostOrigin = reader.origin(['sandbox', 'engine_host']);
    }
  }

  if (has(doc, 'agents')) {
    const agents = reader.table(doc.agents, ['agents']);
    for (const [name, value] of Object.entries(agents)) {
      const tablePath = ['agents', name];
      checkRoleName(reader, name, tablePath);
      if (!isTable(value)) {
        reader.fail(tablePath, `expected a table ([${formatKeyPath(tablePath)}]) describing a role, got ${describe(value)}`);
      }
      reader.checkKeys(value, tablePath, ROLE_KEYS);
      const role = draft(name, reader.order(tablePath));
      role.ours = readContainer(reader, value, tablePath);
      if (has(value, 'command')) role.command = readCommand(reader, value.command, [...tablePath, 'command']);
      role.agent = readPresetChoice(reader, value, tablePath);
    }
  }

  const defaultsLayer = overlay(agentLoopDefaults, ourDefaults);
  const defaults = resolveContainer(defaultsLayer);
  checkCombination(reader, defaults, ['sandbox', 'container'], ourDefaults);

  const agents: Record<string, AgentRole> = {};
  const ordered = [...roles.values()].sort((a, b) => a.order - b.order);
  for (const role of ordered) {
    const roleLayer = overlay(role.agentLoop ?? {}, role.ours ?? {});
    const agent: AgentRole = { name: role.name, container: resolveContainer(overlay(defaultsLayer, roleLayer)) };
    if (role.agent) applyPreset(reader, agent, role.agent, ['agents', role.name]);
    checkCombination(reader, agent.container, role.ours ? ['agents', role.name] : ['sandbox', 'container'], role.ours ?? ourDefaults);
    if (role.command !== undefined) agent.command = role.command;
    setOwn(agents, role.name, agent);
  }
  if (ordered.length === 0) {
    setOwn(agents, DEFAULT_AGENT, { name: DEFAULT_AGENT, container: resolveContainer(defaultsLayer) });
  }

  let defaultAgent: string;
  if (defaultAgentName !== undefined) {
    if (!Object.hasOwn(agents, defaultAgentName)) {
      reader.fail(
        ['sandbox', 'default_agent'],
        `no role named ${JSON.stringify(defaultAgentName)}; defined roles: ${Object.keys(agents).join(', ')}`,
      );
    }
    defaultAgent = defaultAgentName;
  } else {
    defaultAgent = Object.hasOwn(agents, DEFAULT_AGENT) ? DEFAULT_AGENT : Object.keys(agents)[0];
  }

  const warnings = reader.warnings
    .map((warning, index) => ({ warning, index }))
    .sort((a, b) => (a.warning.line ?? Infinity) - (b.warning.line ?? Infinity) || a.index - b.index)
    .map(({ warning }) => warning);

  const config: SandboxConfig = { defaults, agents, defaultAgent, maxParallelAgents, engine, warnings };
  if (engineHost !== undefined) config.engineHost = engineHost;
  if (engineHostOrigin !== undefined) config.engineHostOrigin = engineHostOrigin;
  if (reader.absoluteFile !== undefined) config.file = reader.absoluteFile;
  return config;
}

/**
 * Settings that cannot hold together, reported at the table that set the later of them: an allowlist narrows
 * NAT (with none nothing is reachable, with host nothing could enforce it) and leaves the agent no network of
 * its own to publish ports on; a secret is never also a plain `env` value.
 */
function checkCombination(reader: Reader, settings: ContainerSettings, tablePath: Path, layer: ContainerLayer): void {
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

function readAgentLoop(reader: Reader, table: Table, tablePath: Path): ContainerLayer {
  reader.checkKeys(table, tablePath, AGENTLOOP_KEYS);
  const layer: ContainerLayer = {};
  if (has(table, 'enabled')) {
    const keyPath = [...tablePath, 'enabled'];
    if (typeof table.enabled !== 'boolean') reader.fail(keyPath, `expected true or false, got ${describe(table.enabled)}`);
    if (!table.enabled) {
      reader.warn(keyPath, 'Agent Sandboxes always runs agents in containers; `enabled = false` is ignored');
    }
  }
  if (has(table, 'container_image')) {
    layer.image = readImage(reader, table.container_image, [...tablePath, 'container_image']);
  }
  if (has(table, 'network_mode')) {
    layer.network = readNetwork(reader, table.network_mode, [...tablePath, 'network_mode']);
    layer.origins = { network: reader.origin([...tablePath, 'network_mode']) };
  }
  if (has(table, 'memory_limit')) {
    layer.memoryBytes = readMemory(reader, table.memory_limit, [...tablePath, 'memory_limit']);
  }
  if (has(table, 'cpu_limit')) layer.cpus = readCpus(reader, table.cpu_limit, [...tablePath, 'cpu_limit']);
  return layer;
}

/** Our container keys, as found in `[sandbox.container]` and in each `[agents.<role>]`. */
function readContainer(reader: Reader, table: Table, tablePath: Path): ContainerLayer {
  const at = (key: string): string[] => [...tablePath, key];
  const layer: ContainerLayer = {};
  if (has(table, 'image') && has(table, 'dockerfile')) {
    reader.fail(tablePath, 'set either image or dockerfile, not both');
  }
  if (has(table, 'image')) layer.image = readImage(reader, table.image, at('image'));
  if (has(table, 'dockerfile')) {
    layer.dockerfile = readHostPath(reader, table.dockerfile, at('dockerfile'), 'a path to a Dockerfile');
  }
  if (has(table, 'context')) layer.context = readHostPath(reader, table.context, at('context'), 'a folder path');
  if (has(table, 'network')) layer.network = readNetwork(reader, table.network, at('network'));
  if (has(table, 'cpus')) layer.cpus = readCpus(reader, table.cpus, at('cpus'));
  if (has(table, 'memory')) layer.memoryBytes = readMemory(reader, table.memory, at('memory'));
  if (has(table, 'pids')) {
    const value = table.pids;
    if (!isInteger(value) || value <= 0) reader.fail(at('pids'), `expected an integer greater than 0, got ${describe(value)}`);
    layer.pids = value;
  }
  if (has(table, 'disk')) {
    const bytes = parseSize(table.disk);
    if (bytes === undefined) reader.fail(at('disk'), `expected a size such as "10g" or a number of bytes, got ${describe(table.disk)}`);
    layer.diskBytes = bytes;
  }
  if (has(table, 'ports')) layer.ports = readPorts(reader, table.ports, at('ports'));
  if (has(table, 'volumes')) layer.volumes = readVolumes(reader, table.volumes, at('volumes'));
  if (has(table, 'env')) layer.env = readEnv(reader, table.env, at('env'));
  if (has(table, 'allow')) layer.allow = readAllow(reader, table.allow, at('allow'));
  if (has(table, 'secrets')) layer.secrets = readSecretNames(reader, table.secrets, at('secrets'));
  const origins: ContainerOrigins = {};
  for (const key of ['dockerfile', 'context', 'volumes', 'ports', 'secrets', 'network'] as const) {
    if (has(table, key)) origins[key] = reader.origin(at(key));
  }
  layer.origins = origins;
  return layer;
}

/** `preset`, `version` and `credential` of a role table; undefined when it names no preset. */
function readPresetChoice(reader: Reader, table: Table, tablePath: Path): AgentPresetChoice | undefined {
  const at = (key: string): string[] => [...tablePath, key];
  if (!has(table, 'preset')) {
    for (const key of ['version', 'credential', 'model']) if (has(table, key)) reader.fail(at(key), `${key} belongs to an agent preset: set preset = "claude-code" (or ${PRESET_IDS.filter((id) => id !== 'claude-code').join(', ')}) too`);
    return undefined;
  }
  const id = table.preset;
  const preset = typeof id === 'string' ? presetNamed(id) : undefined;
  if (!preset) reader.fail(at('preset'), `expected one of ${PRESET_IDS.map((p) => JSON.stringify(p)).join(', ')}, got ${describe(id)}`);
  const choice: AgentPresetChoice = { preset: preset.id, origin: reader.origin(at('preset')) };
  if (has(table, 'version')) {
    const problem = typeof table.version === 'string' ? checkVersion(table.version) : 'expected a string';
    if (problem) reader.fail(at('version'), `${problem}, got ${describe(table.version)}`);
    if (preset.install.kind === 'image') reader.fail(at('version'), `${preset.title} comes with the role's image, so its version is the image's`);
    choice.version = table.version as string;
  }
  if (has(table, 'model')) {
    if (typeof table.model !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/.test(table.model)) {
      reader.fail(at('model'), `expected a model name such as "claude-sonnet-4-5" or "gpt-5.5", got ${describe(table.model)}`);
    }
    choice.model = table.model;
  }
  if (has(table, 'credential')) {
    const names = credentialNames(preset);
    if (typeof table.credential !== 'string' || !names.includes(table.credential)) {
      reader.fail(at('credential'), `${preset.title} takes ${names.map((n) => JSON.stringify(n)).join(' or ')}, got ${describe(table.credential)}`);
    }
    choice.credential = table.credential;
  }
  return choice;
}

/**
 * Merges a preset into its role: its environment under the role's own (which wins key by key), its hosts into the
 * allowlist, which a preset always has: the agent reaches its provider through the egress proxy's credential
 * route, and the proxy is the allowlist's.
 */
function applyPreset(reader: Reader, role: AgentRole, choice: AgentPresetChoice, tablePath: Path): void {
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

function readAllow(reader: Reader, value: unknown, keyPath: Path): string[] {
  if (!Array.isArray(value)) reader.fail(keyPath, `expected an array of host names such as ["api.anthropic.com", "*.npmjs.org"], got ${describe(value)}`);
  return value.map((entry) => {
    if (typeof entry !== 'string') return reader.fail(keyPath, `expected a host name, got ${describe(entry)}`);
    const problem = hostPatternProblem(entry);
    if (problem) reader.fail(keyPath, `${describe(entry)} cannot be allowed: ${problem}`);
    return normalizeHost(entry);
  });
}

function readSecretNames(reader: Reader, value: unknown, keyPath: Path): string[] {
  const expected = 'expected an array of environment variable names such as ["ANTHROPIC_API_KEY"] (the values never go in this file)';
  if (!Array.isArray(value)) reader.fail(keyPath, `${expected}, got ${describe(value)}`);
  return value.map((entry) => {
    if (typeof entry !== 'string' || !ENV_NAME.test(entry)) {
      return reader.fail(keyPath, typeof entry === 'string' && entry.includes('=') ? `${describe(entry.split('=')[0] + '=...')}: name the variable only; its value comes from the host's environment or the editor's secret storage` : `${expected}, got ${describe(entry)}`);
    }
    return entry;
  });
}

function readImage(reader: Reader, value: unknown, keyPath: Path): string {
  if (typeof value !== 'string' || value.trim() === '' || /\s/.test(value)) {
    reader.fail(keyPath, `expected an image reference such as "node:20-bookworm", got ${describe(value)}`);
  }
  return value;
}

function readHostPath(reader: Reader, value: unknown, keyPath: Path, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') reader.fail(keyPath, `expected ${what}, got ${describe(value)}`);
  return resolveHostPath(value, reader.root);
}

function readNetwork(reader: Reader, value: unknown, keyPath: Path): NetworkMode {
  const mode = typeof value === 'string' ? value.toLowerCase() : undefined;
  switch (mode) {
    case 'none':
    case 'host':
      return mode;
    case 'nat':
    case 'bridge':
    case 'slirp4netns':
      return 'nat';
    default:
      return reader.fail(keyPath, `expected "none", "nat" or "host", got ${describe(value)}`);
  }
}

function readEngine(reader: Reader, value: unknown, keyPath: Path): EngineChoice {
  const choice = typeof value === 'string' ? value.toLowerCase() : undefined;
  const found = ENGINES.find((e) => e === choice);
  if (!found) reader.fail(keyPath, `expected "auto", "docker" or "podman", got ${describe(value)}`);
  return found;
}

/** `unix:///absolute/path.sock`, or `tcp://`, `http://` or `https://` with a host and an optional port. */
function readEngineHost(reader: Reader, value: unknown, keyPath: Path): string {
  const expected = `expected an engine address such as "unix:///run/podman/podman.sock" or "tcp://127.0.0.1:2375", got ${describe(value)}`;
  if (typeof value !== 'string') return reader.fail(keyPath, expected);
  const address = value.trim();
  if (address.startsWith('unix://')) {
    if (!address.slice('unix://'.length).startsWith('/')) reader.fail(keyPath, `the socket path must be absolute (unix:///path/to.sock), got ${describe(value)}`);
    return address;
  }
  let url: URL | undefined;
  try {
    url = /^(tcp|https?):\/\//.test(address) ? new URL(address.replace(/^tcp:/, 'http:')) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname || (url.pathname !== '/' && url.pathname !== '')) reader.fail(keyPath, expected);
  return address;
}

/**
 * Docker's own range starts at 0.01 cores. The top is far beyond any machine, yet keeps the engine's nanocore
 * count finite: `cpus = 1e300` would otherwise reach the engine as no limit at all.
 */
const MIN_CPUS = 0.01;
const MAX_CPUS = 1024;
const DECIMAL = /^\s*\d+(\.\d+)?\s*$/;

function readCpus(reader: Reader, value: unknown, keyPath: Path): number {
  // AgentLoop's docs write `cpu_limit = "2"`: a decimal number in a string is that number.
  const cpus = typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) {
    reader.fail(keyPath, `expected a number greater than 0, got ${describe(value)}`);
  }
  if (cpus < MIN_CPUS || cpus > MAX_CPUS) reader.fail(keyPath, `expected a number of cores from ${MIN_CPUS} to ${MAX_CPUS}, got ${describe(value)}`);
  return cpus;
}

function readMemory(reader: Reader, value: unknown, keyPath: Path): number {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    reader.fail(keyPath, `expected a size such as "4g", "512m" or a number of bytes, got ${describe(value)}`);
  }
  if (bytes < MIN_MEMORY_BYTES) {
    reader.fail(keyPath, `must be at least ${formatSize(MIN_MEMORY_BYTES)} (Docker's minimum), got ${describe(value)}`);
  }
  return bytes;
}

function readCommand(reader: Reader, value: unknown, keyPath: Path): string[] {
  if (typeof value === 'string' && value.trim() !== '') return ['sh', '-c', value];
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((part) => typeof part === 'string') &&
    (value[0] as string).trim() !== ''
  ) {
    return value as string[];
  }
  return reader.fail(keyPath, `expected a non-empty array of strings or a non-empty string, got ${describe(value)}`);
}

function readEnv(reader: Reader, value: unknown, keyPath: Path): Record<string, string> {
  if (!isTable(value)) {
    reader.fail(keyPath, `expected a table such as { NODE_ENV = "development" }, got ${describe(value)}`);
  }
  const env: Record<string, string> = {};
  for (const [name, entry] of Object.entries(value)) {
    const entryPath = [...keyPath, name];
    if (!ENV_NAME.test(name)) {
      reader.fail(entryPath, 'not a valid environment variable name (letters, digits and _, not starting with a digit)');
    }
    if (typeof entry === 'string') setOwn(env, name, entry);
    else if (typeof entry === 'boolean' || (typeof entry === 'number' && Number.isFinite(entry))) {
      setOwn(env, name, String(entry));
    } else reader.fail(entryPath, `expected a string, number or boolean, got ${describe(entry)}`);
  }
  return env;
}

function readPorts(reader: Reader, value: unknown, keyPath: Path): PortMapping[] {
  if (!Array.isArray(value)) {
    reader.fail(keyPath, `expected an array such as ["3000", "8080:80"], got ${describe(value)}`);
  }
  return value.map((entry) => {
    const mapping = typeof entry === 'string' ? parsePort(entry) : isInteger(entry) ? portOnly(entry) : undefined;
    if (!mapping) {
      reader.fail(
        keyPath,
        `invalid port mapping ${describe(entry)}: expected "container", "host:container" or "ip:host:container" ` +
          'with ports from 1 to 65535, optionally followed by "/tcp" or "/udp"',
      );
    }
    return mapping;
  });
}

function portOnly(port: number): PortMapping | undefined {
  return isPort(port) ? { containerPort: port, hostIp: DEFAULT_HOST_IP, protocol: 'tcp' } : undefined;
}

function parsePort(raw: string): PortMapping | undefined {
  let spec = raw.trim();
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    const suffix = spec.slice(slash + 1).toLowerCase();
    if (suffix !== 'tcp' && suffix !== 'udp') return undefined;
    protocol = suffix;
    spec = spec.slice(0, slash);
  }
  let hostIp = DEFAULT_HOST_IP;
  let ipGiven = false;
  let parts: string[];
  if (spec.startsWith('[')) {
    const end = spec.indexOf(']:');
    if (end < 0) return undefined;
    hostIp = spec.slice(1, end);
    ipGiven = true;
    if (!isIPv6(hostIp)) return undefined;
    parts = spec.slice(end + 2).split(':');
    if (parts.length !== 2) return undefined;
  } else {
    parts = spec.split(':');
    if (parts.length === 3) {
      hostIp = parts[0];
      ipGiven = true;
      if (isIP(hostIp) === 0) return undefined;
      parts = parts.slice(1);
    } else if (parts.length > 3) {
      return undefined;
    }
  }
  const containerPort = toPort(parts[parts.length - 1]);
  if (containerPort === undefined) return undefined;
  const mapping: PortMapping = { containerPort, hostIp, protocol };
  // "ip::80" is Docker's way to say "this address, any free port".
  if (parts.length === 2 && !(ipGiven && parts[0] === '')) {
    const hostPort = toPort(parts[0]);
    if (hostPort === undefined) return undefined;
    mapping.hostPort = hostPort;
  }
  return mapping;
}

function toPort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return isPort(port) ? port : undefined;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function readVolumes(reader: Reader, value: unknown, keyPath: Path): VolumeMount[] {
  if (!Array.isArray(value)) {
    reader.fail(keyPath, `expected an array such as ["./fixtures:/fixtures:ro"], got ${describe(value)}`);
  }
  return value.map((entry) => {
    if (typeof entry !== 'string') {
      return reader.fail(keyPath, `expected "host:container" or "host:container:ro", got ${describe(entry)}`);
    }
    const result = parseVolume(entry, reader.root);
    if (typeof result === 'string') return reader.fail(keyPath, `invalid volume ${describe(entry)}: ${result}`);
    return result;
  });
}

/** The mount, or why it is not one. */
function parseVolume(raw: string, root: string): VolumeMount | string {
  let rest = raw;
  let drive = '';
  // Keep a Windows drive letter's colon out of the split.
  if (/^[A-Za-z]:[\\/]/.test(rest)) {
    drive = rest.slice(0, 2);
    rest = rest.slice(2);
  }
  const parts = rest.split(':');
  if (parts.length < 2 || parts.length > 3) return 'expected "host:container", "host:container:ro" or "host:container:rw"';
  const [host, container, mode = 'rw'] = parts;
  if (mode !== 'ro' && mode !== 'rw') return `the mode must be "ro" or "rw", got ${JSON.stringify(mode)}`;
  if (drive + host === '') return 'the host path is empty';
  if (!container.startsWith('/')) return `the container path must be absolute, got ${JSON.stringify(container)}`;
  let containerPath = path.posix.normalize(container);
  if (containerPath.length > 1 && containerPath.endsWith('/')) containerPath = containerPath.slice(0, -1);
  if (containerPath === '/') return 'the container path must not be /';
  if (containerPath === WORKSPACE_MOUNT || containerPath.startsWith(`${WORKSPACE_MOUNT}/`)) {
    return `the container path must not be ${WORKSPACE_MOUNT} or inside it: the worktree is mounted there`;
  }
  return { hostPath: resolveHostPath(drive + host, root), containerPath, readOnly: mode === 'ro' };
}

function resolveHostPath(value: string, root: string): string {
  if (value === '~') return homedir();
  if (value.startsWith('~/')) return path.join(homedir(), value.slice(2));
  return path.resolve(root, value);
}

function checkRoleName(reader: Reader, name: string, keyPath: Path): void {
  if (name.trim() === '') reader.fail(keyPath, 'a role needs a non-empty name');
}

// ---------------------------------------------------------------------------------------------------
// Merging

function overlay(base: ContainerLayer, top: ContainerLayer): ContainerLayer {
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

function resolveContainer(layer: ContainerLayer): ContainerSettings {
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
  originsOfSettings.set(settings, { ...layer.origins });
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

// ---------------------------------------------------------------------------------------------------
// Small helpers

function has(table: Table, key: string): boolean {
  return Object.hasOwn(table, key);
}

/** The role of that name; never one of a plain object's own members such as `toString`. */
export function roleNamed(config: SandboxConfig, name: string): AgentRole | undefined {
  return Object.hasOwn(config.agents, name) ? config.agents[name] : undefined;
}

function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** Assigns without letting a key such as `__proto__` reach the prototype. */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return String(value);
  }
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value === undefined || value === null) return 'nothing';
  return 'a table';
}

function firstLine(message: string): string {
  return message.split(/\r?\n/, 1)[0];
}

function displayPath(absolute: string, root: string, given: string = absolute): string {
  const relative = path.relative(root, absolute);
  if (relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative)) return relative;
  return given;
}

/** The known key nearest to `key` within edit distance 2, ignoring case. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}

// ---------------------------------------------------------------------------------------------------
// Key line locator. smol-toml gives no positions for keys, so this scans the text for where each table
// header and key is written. It assumes the text parses (it never throws, whatever the input).

/** A key path as written in TOML: bare segments as they are, others quoted. */
export function formatKeyPath(keyPath: Path): string {
  return keyPath.map((part) => (/^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part))).join('.');
}

/**
 * The 1-based line where `key` (a dotted key such as `agents."my.role".command`, or its parts) is
 * written: the key itself, or for a table its header (or the first key that creates it).
 * Undefined when the text does not mention it.
 */
export function locateKey(text: string, key: string | Path): number | undefined {
  const keyPath = typeof key === 'string' ? new KeyScanner(key).key() : key;
  return scanKeyLines(text).get(pathId(keyPath));
}

function pathId(keyPath: Path): string {
  return JSON.stringify(keyPath);
}

function scanKeyLines(text: string): Map<string, number> {
  const scanner = new KeyScanner(text);
  scanner.document();
  return scanner.lines;
}

class KeyScanner {
  readonly lines = new Map<string, number>();
  private i = 0;
  private readonly lineStarts: number[] = [0];

  constructor(private readonly s: string) {
    for (let k = 0; k < s.length; k++) if (s[k] === '\n') this.lineStarts.push(k + 1);
  }

  document(): void {
    let table: string[] = [];
    while (this.i < this.s.length) {
      this.skipBlank();
      const c = this.s[this.i];
      if (c === undefined) break;
      if (c === '\n' || c === '\r') {
        this.i++;
      } else if (c === '#') {
        this.skipLine();
      } else if (c === '[') {
        const start = this.i;
        const double = this.s[this.i + 1] === '[';
        this.i += double ? 2 : 1;
        this.skipBlank();
        const keyPath = this.key();
        this.skipBlank();
        if (this.s[this.i] === ']') this.i += double && this.s[this.i + 1] === ']' ? 2 : 1;
        if (keyPath.length > 0) {
          table = keyPath;
          this.record(keyPath, start);
        }
        this.skipLine();
      } else {
        const start = this.i;
        const keyPath = this.key();
        this.skipBlank();
        if (keyPath.length === 0 || this.s[this.i] !== '=') {
          this.skipLine();
          continue;
        }
        this.i++;
        const full = [...table, ...keyPath];
        this.record(full, start);
        this.value(full);
      }
    }
  }

  /** A dotted key; stops at the first character that cannot continue it. */
  key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipBlank();
      const part = this.keyPart();
      if (part === undefined) break;
      parts.push(part);
      this.skipBlank();
      if (this.s[this.i] !== '.') break;
      this.i++;
    }
    return parts;
  }

  private keyPart(): string | undefined {
    const c = this.s[this.i];
    if (c === '"') {
      const start = this.i;
      this.skipBasicString();
      return decodeBasic(this.s.slice(start + 1, this.s[this.i - 1] === '"' ? this.i - 1 : this.i));
    }
    if (c === "'") {
      const start = this.i;
      this.skipLiteralString();
      return this.s.slice(start + 1, this.s[this.i - 1] === "'" ? this.i - 1 : this.i);
    }
    let end = this.i;
    while (end < this.s.length && /[A-Za-z0-9_-]/.test(this.s[end])) end++;
    if (end === this.i) return undefined;
    const bare = this.s.slice(this.i, end);
    this.i = end;
    return bare;
  }

  /** A value; records keys of inline tables under `owner` (not inside arrays, where they repeat). */
  private value(owner: string[] | undefined): void {
    this.skipBlank();
    const s = this.s;
    const c = s[this.i];
    if (s.startsWith('"""', this.i)) this.skipMultiline('"');
    else if (s.startsWith("'''", this.i)) this.skipMultiline("'");
    else if (c === '"') this.skipBasicString();
    else if (c === "'") this.skipLiteralString();
    else if (c === '[') this.array();
    else if (c === '{') this.inlineTable(owner);
    else {
      while (this.i < s.length && !',]}#\n\r'.includes(s[this.i])) this.i++;
    }
  }

  private array(): void {
    this.i++;
    while (this.i < this.s.length) {
      this.skipSpace();
      const c = this.s[this.i];
      if (c === ']') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      const before = this.i;
      this.value(undefined);
      if (this.i === before) this.i++;
    }
  }

  private inlineTable(owner: string[] | undefined): void {
    this.i++;
    while (this.i < this.s.length) {
      this.skipSpace();
      const c = this.s[this.i];
      if (c === '}') {
        this.i++;
        return;
      }
      if (c === ',') {
        this.i++;
        continue;
      }
      const start = this.i;
      const keyPath = this.key();
      this.skipBlank();
      if (keyPath.length === 0 || this.s[this.i] !== '=') {
        if (this.i === start) this.i++;
        continue;
      }
      this.i++;
      const full = owner ? [...owner, ...keyPath] : undefined;
      if (full) this.record(full, start);
      this.value(full);
    }
  }

  private skipBasicString(): void {
    this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === '\\') this.i += 2;
      else if (c === '"') {
        this.i++;
        return;
      } else if (c === '\n') return;
      else this.i++;
    }
  }

  private skipLiteralString(): void {
    this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === "'") {
        this.i++;
        return;
      }
      if (c === '\n') return;
      this.i++;
    }
  }

  private skipMultiline(quote: '"' | "'"): void {
    const delimiter = quote.repeat(3);
    this.i += 3;
    while (this.i < this.s.length) {
      if (quote === '"' && this.s[this.i] === '\\') {
        this.i += 2;
      } else if (this.s.startsWith(delimiter, this.i)) {
        this.i += 3;
        // Up to two more quotes right before the delimiter belong to the string: `""""a"""""`.
        for (let extra = 0; extra < 2 && this.s[this.i] === quote; extra++) this.i++;
        return;
      } else {
        this.i++;
      }
    }
  }

  private skipBlank(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  /** Whitespace, newlines and comments, as allowed between array items. */
  private skipSpace(): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.i++;
      else if (c === '#') this.skipLine();
      else return;
    }
  }

  private skipLine(): void {
    while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
  }

  private record(keyPath: readonly string[], index: number): void {
    const line = this.lineAt(index);
    for (let n = 1; n <= keyPath.length; n++) {
      const id = pathId(keyPath.slice(0, n));
      if (!this.lines.has(id)) this.lines.set(id, line);
    }
  }

  private lineAt(index: number): number {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid] <= index) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }
}

function decodeBasic(raw: string): string {
  return raw.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/g, (_, escape: string) => {
    if (escape.length > 1) return String.fromCodePoint(parseInt(escape.slice(1), 16));
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
    return simple[escape] ?? escape;
  });
}
