/**
 * Brings a preset's CLI onto the host once, from the npm registry, into a cache folder that sandboxes mount
 * read-only: a new sandbox of a cached version needs no registry and no copy, and the agent cannot change the
 * CLI that the next sandbox runs. npm installs the build for the engine's platform (Linux, its architecture,
 * glibc or musl), whatever the host is.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { executableOnPath } from '../engine/engine';
import type { OutputSink } from '../engine/engine';
import { SandboxError } from '../errors';
import { AGENT_CLI_MOUNT, AGENT_CONFIG_DIR } from './presets';
import type { AgentPreset, InstallTarget } from './presets';

/** Where cached CLIs live: AGENT_SANDBOX_CACHE, else the user's cache folder. */
export function agentCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.AGENT_SANDBOX_CACHE || path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'agent-sandboxes');
  return path.join(base, 'agents');
}

export interface AgentCli {
  /** The host folder mounted at AGENT_CLI_MOUNT; undefined when the image brings the CLI itself. */
  hostDir?: string;
  /** The command that runs the CLI inside the container. */
  command: string[];
  /** The package spec installed, for messages. */
  spec?: string;
}

/** A version as npm takes it: digits and dots with an optional pre-release, or a dist-tag such as `latest`. */
const VERSION = /^(?:\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?|[a-z][a-z0-9-]*)$/;

export function checkVersion(version: string): string | undefined {
  return VERSION.test(version) && version.length <= 64 ? undefined : 'expected a version such as "2.1.197" or a tag such as "latest"';
}

/**
 * The CLI of a preset for this target, installed into the cache unless it is there already. Concurrent installs
 * of one version each write a folder of their own and the first to finish is kept.
 */
export async function ensureAgentCli(
  preset: AgentPreset,
  target: InstallTarget,
  output: OutputSink,
  options: { cacheRoot?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<AgentCli> {
  const install = preset.install;
  if (install.kind === 'image') return { command: [install.command] };
  // A tag (`latest`) names a version only today: resolved first, so the cache holds versions, never tags.
  if (!/^\d/.test(target.version)) target = { ...target, version: await resolveTag(install.npmName, target.version, options) };
  const pkg = install.kind === 'native' ? install.pkg(target) : { name: install.npmName, spec: `${install.npmName}@${target.version}` };
  const bin = install.kind === 'native' ? install.bin(target) : install.bin;
  const root = options.cacheRoot ?? agentCacheRoot(options.env);
  const dir = path.join(root, `${pkg.spec.replace(/^@/, '').replace(/[/@]/g, '_')}-linux-${target.cpu}-${target.libc}`);
  const command = install.kind === 'native' ? [path.posix.join(AGENT_CLI_MOUNT, bin)] : ['node', path.posix.join(AGENT_CLI_MOUNT, bin)];
  if (await isFile(path.join(dir, bin))) {
    await writeConfigFiles(preset, dir);
    return { hostDir: dir, command, spec: pkg.spec };
  }

  const npm = executableOnPath('npm', options.env);
  if (!npm) {
    throw new SandboxError(
      `The ${preset.id} preset installs ${pkg.spec} with npm, and npm is not on PATH.`,
      `Install Node.js with npm on this machine, or give the role an image that has ${preset.title} and a command that runs it.`,
    );
  }
  await fs.mkdir(root, { recursive: true });
  const staging = `${dir}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
  await fs.mkdir(staging);
  output(`Installing ${preset.title} (${pkg.spec}, linux-${target.cpu} ${target.libc}) from the npm registry into ${dir}\n`);
  try {
    await npmInstall(npm, staging, pkg.spec, target, options);
    if (!(await isFile(path.join(staging, bin)))) {
      throw new SandboxError(`${pkg.spec} was installed, but it has no ${bin}.`, `This version of ${preset.title} is laid out differently from the ones the preset knows: pin another version.`);
    }
    await fs.rename(staging, dir).catch(async (error: NodeJS.ErrnoException) => {
      // Another install of the same version finished first: its copy is as good.
      if (!['ENOTEMPTY', 'EEXIST'].includes(error.code ?? '') || !(await isFile(path.join(dir, bin)))) throw error;
    });
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  await writeConfigFiles(preset, dir);
  return { hostDir: dir, command, spec: pkg.spec };
}

/** The preset's own configuration files beside its CLI, as this version of Agent Sandboxes writes them. */
async function writeConfigFiles(preset: AgentPreset, dir: string): Promise<void> {
  const files = Object.entries(preset.configFiles ?? {});
  if (files.length === 0) return;
  await fs.mkdir(path.join(dir, AGENT_CONFIG_DIR), { recursive: true, mode: 0o755 });
  for (const [name, content] of files) {
    const file = path.join(dir, AGENT_CONFIG_DIR, name);
    if ((await fs.readFile(file, 'utf8').catch(() => undefined)) === content) continue;
    // Written whole, then renamed: a sandbox starting meanwhile reads the old file or the new one.
    await fs.writeFile(`${file}.${process.pid}`, content, { mode: 0o644 });
    await fs.rename(`${file}.${process.pid}`, file);
  }
}

/** The version a dist-tag names now, from the npm registry. */
function resolveTag(name: string, tag: string, options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<string> {
  const npm = executableOnPath('npm', options.env);
  if (!npm) return Promise.reject(new SandboxError(`Finding which version of ${name} is "${tag}" needs npm, and npm is not on PATH.`, 'Pin a version such as "1.2.3", or install Node.js with npm.'));
  return new Promise((resolve, reject) => {
    // In the home folder: `npm view` reads a project's .npmrc where it runs, and the workspace's is the repository's.
    execFile(npm, ['view', `${name}@${tag}`, 'version', '--json'], { env: options.env ?? process.env, signal: options.signal, timeout: 60_000, cwd: homedir() }, (error, stdout, stderr) => {
      let answer: unknown;
      try {
        answer = JSON.parse(String(stdout).trim() || 'null');
      } catch {
        answer = undefined;
      }
      const version = Array.isArray(answer) ? answer.at(-1) : answer;
      if (!error && typeof version === 'string' && /^\d+\.\d+\.\d+/.test(version)) return resolve(version);
      if (/\bE404\b/.test(String(stderr))) {
        return reject(new SandboxError(`The npm registry has no version of ${name} tagged "${tag}".`, `Pin a version that exists (npm view ${name} versions).`));
      }
      reject(new SandboxError(`Asking the npm registry which version of ${name} is "${tag}" failed: ${String(stderr).trim().split('\n').slice(-3).join(' ') || error?.message}`, 'Check that the npm registry is reachable from this machine (npm ping).', [{ do: 'retry' }]));
    });
  });
}

function npmInstall(npm: string, prefix: string, spec: string, target: InstallTarget, options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<void> {
  // Scripts never run: the packages are the agent's, and run inside the sandbox only.
  const args = ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', '--os=linux', `--cpu=${target.cpu}`, `--libc=${target.libc}`, spec];
  return new Promise((resolve, reject) => {
    // Run in the empty staging folder: npm reads a project's .npmrc from where it runs, and the workspace's is the
    // repository's to write (a registry of its choosing), never the user's.
    execFile(npm, args, { cwd: prefix, env: options.env ?? process.env, signal: options.signal, maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const text = String(stderr).trim();
      if (/\bE404\b|ETARGET|No matching version|is not in this registry/i.test(text)) {
        return reject(new SandboxError(`There is no ${spec} on the npm registry.`, `Pin a version that exists (npm view ${spec.replace(/@[^@]*$/, '')} versions).`));
      }
      reject(new SandboxError(`Installing ${spec} with npm failed: ${text.split('\n').slice(-6).join('\n') || error.message}`, 'Check that the npm registry is reachable from this machine (npm ping).', [{ do: 'retry' }]));
    });
  });
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}
