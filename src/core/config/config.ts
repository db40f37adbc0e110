/**
 * Loads sandbox.toml into one model (model.ts). Two layouts are read: ours (`[sandbox.container]`, `[agents.*]`)
 * and AgentLoop's (`[orchestrator.container_sandbox]`); AgentLoop values apply first, ours on top. The values
 * are read by values.ts, the layers merged by roles.ts, and keys found on their lines by keyLines.ts.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from '../errors';
import type { ConfigOrigin } from '../errors';
import type { EngineChoice } from '../engine/engine';
import { checkVersion } from '../agents/install';
import { PRESET_IDS, credentialNames, presetNamed } from '../agents/presets';
import { formatKeyPath, pathId, scanKeyLines } from './keyLines';
import { CONFIG_FILE_NAME, DEFAULT_AGENT, MAX_CONFIG_BYTES } from './model';
import type { AgentPresetChoice, AgentRole, ConfigWarning, ContainerOrigins, SandboxConfig } from './model';
import { applyPreset, checkCombination, overlay, resolveContainer } from './roles';
import type { ContainerLayer } from './roles';
import { formatSize, parseSize } from './sizes';
import { checkRoleName, closest, describe, displayPath, firstLine, has, isInteger, isTable, readAllow, readCommand, readCpus, readEngine, readEngineHost, readEnv, readHostPath, readImage, readMemory, readNetwork, readPorts, readSecretNames, readVolumes, setOwn } from './values';
import type { Path, Table } from './values';

const DEFAULT_MAX_PARALLEL_AGENTS = 4;

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
const ROLE_KEYS = ['command', 'interactive', 'preset', 'version', 'credential', 'model', ...CONTAINER_KEYS] as const;
const TOP_KEYS = ['sandbox', 'agents', 'orchestrator'] as const;
const SANDBOX_KEYS = ['container', 'default_agent', 'engine', 'engine_host'] as const;
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

// ---------------------------------------------------------------------------------------------------
// Reading the document

interface RoleDraft {
  name: string;
  order: number;
  agentLoop?: ContainerLayer;
  ours?: ContainerLayer;
  command?: string[];
  agent?: AgentPresetChoice;
  interactive?: boolean;
}

export class Reader {
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
      if (has(value, 'interactive')) {
        if (typeof value.interactive !== 'boolean') reader.fail([...tablePath, 'interactive'], `expected true or false, got ${describe(value.interactive)}`);
        role.interactive = value.interactive;
      }
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
    if (role.interactive) agent.interactive = true;
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

