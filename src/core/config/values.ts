/**
 * The values of sandbox.toml's keys, each read and checked against what it may be; a wrong one fails with the
 * file, line and key (through the Reader). Also the small helpers the reading shares.
 */
import { isIP, isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import * as path from 'node:path';
import type { EngineChoice } from '../engine/engine';
import { hostPatternProblem, normalizeHost } from '../isolation/hosts';
import type { Reader } from './config';
import { ENV_NAME } from './model';
import type { NetworkMode, PortMapping, VolumeMount } from './model';
import { formatSize, parseSize } from './sizes';

export type Table = Record<string, unknown>;
export type Path = readonly string[];

const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
// Published ports listen on loopback only unless the file names another address.
const DEFAULT_HOST_IP = '127.0.0.1';
const WORKSPACE_MOUNT = '/workspace';
const ENGINES: readonly EngineChoice[] = ['auto', 'docker', 'podman'];

export function readAllow(reader: Reader, value: unknown, keyPath: Path): string[] {
  if (!Array.isArray(value)) reader.fail(keyPath, `expected an array of host names such as ["api.anthropic.com", "*.npmjs.org"], got ${describe(value)}`);
  return value.map((entry) => {
    if (typeof entry !== 'string') return reader.fail(keyPath, `expected a host name, got ${describe(entry)}`);
    const problem = hostPatternProblem(entry);
    if (problem) reader.fail(keyPath, `${describe(entry)} cannot be allowed: ${problem}`);
    return normalizeHost(entry);
  });
}

export function readSecretNames(reader: Reader, value: unknown, keyPath: Path): string[] {
  const expected = 'expected an array of environment variable names such as ["ANTHROPIC_API_KEY"] (the values never go in this file)';
  if (!Array.isArray(value)) reader.fail(keyPath, `${expected}, got ${describe(value)}`);
  return value.map((entry) => {
    if (typeof entry !== 'string' || !ENV_NAME.test(entry)) {
      return reader.fail(keyPath, typeof entry === 'string' && entry.includes('=') ? `${describe(entry.split('=')[0] + '=...')}: name the variable only; its value comes from the host's environment or the editor's secret storage` : `${expected}, got ${describe(entry)}`);
    }
    return entry;
  });
}

export function readImage(reader: Reader, value: unknown, keyPath: Path): string {
  if (typeof value !== 'string' || value.trim() === '' || /\s/.test(value)) {
    reader.fail(keyPath, `expected an image reference such as "node:20-bookworm", got ${describe(value)}`);
  }
  return value;
}

export function readHostPath(reader: Reader, value: unknown, keyPath: Path, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') reader.fail(keyPath, `expected ${what}, got ${describe(value)}`);
  return resolveHostPath(value, reader.root);
}

export function readNetwork(reader: Reader, value: unknown, keyPath: Path): NetworkMode {
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

export function readEngine(reader: Reader, value: unknown, keyPath: Path): EngineChoice {
  const choice = typeof value === 'string' ? value.toLowerCase() : undefined;
  const found = ENGINES.find((e) => e === choice);
  if (!found) reader.fail(keyPath, `expected "auto", "docker" or "podman", got ${describe(value)}`);
  return found;
}

/** `unix:///absolute/path.sock`, or `tcp://`, `http://` or `https://` with a host and an optional port. */
export function readEngineHost(reader: Reader, value: unknown, keyPath: Path): string {
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

export function readCpus(reader: Reader, value: unknown, keyPath: Path): number {
  // AgentLoop's docs write `cpu_limit = "2"`: a decimal number in a string is that number.
  const cpus = typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) {
    reader.fail(keyPath, `expected a number greater than 0, got ${describe(value)}`);
  }
  if (cpus < MIN_CPUS || cpus > MAX_CPUS) reader.fail(keyPath, `expected a number of cores from ${MIN_CPUS} to ${MAX_CPUS}, got ${describe(value)}`);
  return cpus;
}

export function readMemory(reader: Reader, value: unknown, keyPath: Path): number {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    reader.fail(keyPath, `expected a size such as "4g", "512m" or a number of bytes, got ${describe(value)}`);
  }
  if (bytes < MIN_MEMORY_BYTES) {
    reader.fail(keyPath, `must be at least ${formatSize(MIN_MEMORY_BYTES)} (Docker's minimum), got ${describe(value)}`);
  }
  return bytes;
}

export function readCommand(reader: Reader, value: unknown, keyPath: Path): string[] {
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

export function readEnv(reader: Reader, value: unknown, keyPath: Path): Record<string, string> {
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

export function readPorts(reader: Reader, value: unknown, keyPath: Path): PortMapping[] {
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

export function readVolumes(reader: Reader, value: unknown, keyPath: Path): VolumeMount[] {
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

export function checkRoleName(reader: Reader, name: string, keyPath: Path): void {
  if (name.trim() === '') reader.fail(keyPath, 'a role needs a non-empty name');
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

export function has(table: Table, key: string): boolean {
  return Object.hasOwn(table, key);
}


export function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** Assigns without letting a key such as `__proto__` reach the prototype. */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

export function describe(value: unknown): string {
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

export function firstLine(message: string): string {
  return message.split(/\r?\n/, 1)[0];
}

export function displayPath(absolute: string, root: string, given: string = absolute): string {
  const relative = path.relative(root, absolute);
  if (relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative)) return relative;
  return given;
}

/** The known key nearest to `key` within edit distance 2, ignoring case. */
export function closest(key: string, known: readonly string[]): string | undefined {
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

