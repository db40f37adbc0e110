/**
 * The check a sandbox's extra volumes (`volumes` in sandbox.toml) pass before the container is created. The
 * agent is treated as hostile: a volume must not hand it the host (the engine's socket, the home directory,
 * the repository's hooks and config), and must stay inside the workspace unless the user allowed the folder.
 *
 * Every rule is applied to the real path (symbolic links and `..` followed as the kernel follows them when it
 * mounts), never to the text written in sandbox.toml.
 */
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import type { ContainerOrigins, VolumeMount } from '../config/model';
import { DOCKER_SOCKET, PODMAN_ROOTFUL_SOCKET, podmanRootlessSocket } from '../engine/engine';
import { configErrorAt } from '../errors';
import type { ConfigOrigin, NextStep, SandboxError } from '../errors';

/** The editor setting that lists host folders volumes may come from outside the workspace. */
export const ALLOWED_VOLUME_PATHS_SETTING = 'agentSandboxes.allowedVolumePaths';
/** The same list for the command line: folders separated by `path.delimiter`. */
export const ALLOWED_VOLUME_PATHS_ENV = 'AGENT_SANDBOX_ALLOWED_VOLUME_PATHS';

export interface VolumePolicy {
  /** The repository's working tree root. */
  workspaceRoot: string;
  /** The host repository's common git directory (relative paths are taken against workspaceRoot). */
  gitCommonDir: string;
  /** Host folders the user allowed volumes in, outside the workspace; may be empty. */
  allowedOutside: string[];
  /** Defaults to os.homedir(). */
  home?: string;
  /** Known engine socket paths; defaults to defaultEngineSockets(). */
  engineSockets?: string[];
  /**
   * Folders of the workspace whose files tools on the host run or obey without being asked: git's hooks folder
   * when core.hooksPath moves it (husky's `.husky/_`), and by default `.husky` and `.vscode` (tasks, launch
   * configurations and settings an editor acts on). Never mounted read-write. Defaults to hostToolFolders().
   */
  hostToolFolders?: string[];
}

/** The folders of a workspace that host tools act on (see VolumePolicy.hostToolFolders), given core.hooksPath if set. */
export function hostToolFolders(workspaceRoot: string, hooksPath?: string): string[] {
  const folders = [path.join(workspaceRoot, '.vscode'), path.join(workspaceRoot, '.husky')];
  if (hooksPath) folders.push(path.resolve(workspaceRoot, hooksPath));
  return folders;
}

/**
 * The engine sockets a volume must never reach: Docker's (/var/run/docker.sock, /run/docker.sock), rootful
 * and rootless Podman's, DOCKER_HOST's when it is a unix socket, and, as defense in depth, rootless Docker's
 * ($XDG_RUNTIME_DIR/docker.sock), Docker Desktop's (~/.docker/run/docker.sock) and containerd's.
 */
export function defaultEngineSockets(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string[] {
  const sockets = [DOCKER_SOCKET, '/run/docker.sock', PODMAN_ROOTFUL_SOCKET];
  const rootless = podmanRootlessSocket(env);
  if (rootless) sockets.push(rootless);
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost?.startsWith('unix://') && dockerHost.length > 'unix://'.length) sockets.push(dockerHost.slice('unix://'.length));
  const runtimeDir = rootless ? path.posix.dirname(path.posix.dirname(rootless)) : undefined;
  if (runtimeDir) sockets.push(path.posix.join(runtimeDir, 'docker.sock'));
  sockets.push(path.join(home, '.docker', 'run', 'docker.sock'), '/run/containerd/containerd.sock');
  return [...new Set(sockets)];
}

/**
 * The folders listed in AGENT_SANDBOX_ALLOWED_VOLUME_PATHS (separated by `path.delimiter`), empty entries
 * ignored, relative ones resolved against the current directory.
 */
export function allowedVolumePathsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const value = env[ALLOWED_VOLUME_PATHS_ENV];
  if (!value) return [];
  return value
    .split(path.delimiter)
    .filter((entry) => entry.trim() !== '')
    .map((entry) => path.resolve(entry));
}

/**
 * Checks every volume, in order, and throws a SandboxError for the first one that must not be mounted. The
 * volumes are not changed.
 */
export async function checkVolumes(volumes: VolumeMount[], policy: VolumePolicy, origin?: ConfigOrigin): Promise<void> {
  if (volumes.length === 0) return;
  const places = await protectedPlaces(policy);
  for (const volume of volumes) await checkVolume(volumeSubject(volume, origin), places);
}

/** A role's Dockerfile and build context, as their real paths (links resolved), once they passed checkBuildSources. */
export interface BuildSources {
  dockerfile: string;
  context: string;
}

/**
 * Checks a role's Dockerfile and build context by the rules of volumes: what the engine receives leaves this
 * machine's file system for the image, which the agent reads. Both are judged by their real paths and must
 * stay inside the workspace (or a folder the user allowed); never `/`, the home directory or a folder holding
 * it, or an engine socket. The Dockerfile must be a file and the context a folder. Returns their real paths,
 * which the build must use (not the written ones, whose links could be changed after the check). Undefined
 * for a role that builds nothing.
 */
export async function checkBuildSources(
  settings: { dockerfile?: string; context?: string },
  policy: VolumePolicy,
  origins: ContainerOrigins = {},
): Promise<BuildSources | undefined> {
  if (settings.dockerfile === undefined) return undefined;
  const places = await protectedPlaces(policy);
  const context = settings.context ?? path.dirname(settings.dockerfile);
  const dockerfileSubject: Subject = { label: `The Dockerfile ${settings.dockerfile}`, written: settings.dockerfile, readOnly: true, kind: 'build', key: 'dockerfile', origin: origins.dockerfile };
  // A context not written in sandbox.toml is the Dockerfile's folder: its errors belong to `dockerfile`.
  const contextSubject: Subject = { label: `The build context ${context}`, written: context, readOnly: true, kind: 'build', key: 'context', origin: origins.context ?? origins.dockerfile };
  const realDockerfile = await checkVolume(dockerfileSubject, places);
  const realContext = await checkVolume(contextSubject, places);
  const [fileStats, contextStats] = await Promise.all([stat(realDockerfile), stat(realContext)]);
  if (!fileStats.isFile()) {
    throw refusal(dockerfileSubject, `is not a file${await resolution(settings.dockerfile, realDockerfile)}`, 'Point `dockerfile` in sandbox.toml at a Dockerfile.');
  }
  if (!contextStats.isDirectory()) {
    throw refusal(contextSubject, `is not a folder${await resolution(context, realContext)}`, 'Point `context` in sandbox.toml at a folder (or leave it out: the Dockerfile\'s folder).');
  }
  return { dockerfile: realDockerfile, context: realContext };
}

// ---------------------------------------------------------------------------------------------------

interface Places {
  workspaceRoot: string;
  /** Real path of the workspace root. */
  workspace: string;
  /** Real paths of the allowed folders. */
  allowed: string[];
  /** Each in its written (resolved) and real form: a volume is refused when either matches. */
  home: string[];
  sockets: string[];
  /** The common git dir, and the workspace's own `.git` (a file pointing elsewhere in a linked worktree). */
  git: string[];
  /** Folders whose files host tools run (hooks) or obey (editor settings and tasks). */
  tools: string[];
}

async function protectedPlaces(policy: VolumePolicy): Promise<Places> {
  const workspaceRoot = path.resolve(policy.workspaceRoot);
  const home = policy.home ?? homedir();
  const sockets = policy.engineSockets ?? defaultEngineSockets(process.env, home);
  const gitDirs = [path.resolve(workspaceRoot, policy.gitCommonDir), path.join(workspaceRoot, '.git')];
  return {
    workspaceRoot,
    workspace: await realpathLoose(workspaceRoot),
    allowed: await Promise.all(policy.allowedOutside.map((folder) => realpathLoose(folder))),
    home: await bothForms([home]),
    sockets: await bothForms(sockets),
    git: await bothForms(gitDirs),
    tools: await bothForms(policy.hostToolFolders ?? hostToolFolders(workspaceRoot)),
  };
}

/** What is judged: a volume's host path, or a build's Dockerfile or context. */
interface Subject {
  /** How messages name it: `Volume ./a:/a`, `The build context ~`. */
  label: string;
  written: string;
  readOnly: boolean;
  kind: 'volume' | 'build';
  /** The sandbox.toml key that set it. */
  key: 'volumes' | 'dockerfile' | 'context';
  origin?: ConfigOrigin;
  /** For a volume: how to write it read-only. */
  readOnlyForm?: string;
}

function volumeSubject(volume: VolumeMount, origin?: ConfigOrigin): Subject {
  return {
    label: `Volume ${volume.hostPath}:${volume.containerPath}`,
    written: volume.hostPath,
    readOnly: volume.readOnly,
    kind: 'volume',
    key: 'volumes',
    origin,
    readOnlyForm: `${volume.hostPath}:${volume.containerPath}:ro`,
  };
}

/** The error for a subject: where sandbox.toml set it (file, line, key), when known. */
function refusal(subject: Subject, what: string, hint: string, next: readonly NextStep[] = []): SandboxError {
  return configErrorAt(subject.origin, `${subject.label} ${what}.`, hint, next);
}

/** Judges a subject by its real path (and, where it differs, by its cleaned path's); returns the real path. */
async function checkVolume(subject: Subject, places: Places): Promise<string> {
  const written = subject.written;
  let real: string;
  try {
    real = await realpath(written);
  } catch (error) {
    throw await unresolvable(subject, error as NodeJS.ErrnoException, places);
  }
  await judge(subject, real, places);
  // The engine may clean the path (`a/link/..` to `a`) before the kernel follows it: judge that reading too.
  const cleaned = path.resolve(written);
  if (cleaned !== written) {
    const realCleaned = await realpath(cleaned).catch(() => undefined);
    if (realCleaned !== undefined && realCleaned !== real) await judge(subject, realCleaned, places);
  }
  return real;
}

async function judge(subject: Subject, real: string, places: Places): Promise<void> {
  const via = await resolution(subject.written, real);
  const build = subject.kind === 'build';
  const refuse = (what: string, why: string, hint: string, next: readonly NextStep[] = []): never => {
    throw refusal(subject, `${what}${via}: ${why}`, hint, next);
  };
  const key = `\`${subject.key}\``;

  const only = build
    ? `Build from a folder inside the workspace (fix ${key} in sandbox.toml), or one you allow outside it`
    : 'Mount only the folder the agent needs: one inside the workspace, or one you allow outside it';
  if (real === path.parse(real).root) {
    refuse(
      'is the root of the host file system',
      build ? 'the engine would receive the whole host, and the image could copy any of it for the agent' : 'it would give the agent the whole host',
      `${only}.`,
    );
  }

  for (const home of places.home) {
    if (!isWithin(home, real)) continue;
    refuse(
      real === home ? 'is the home directory' : `contains the home directory ${home}`,
      build
        ? 'the engine would receive your keys and credentials (~/.ssh, ~/.aws, ~/.gitconfig), and a Dockerfile line such as COPY .ssh would hand them to the agent in its image'
        : 'the agent could read your keys and credentials and change files that run on the host (shell startup files, ~/.ssh, ~/.gitconfig)',
      `${only}; never the home directory or a folder that contains it.`,
    );
  }

  for (const socket of places.sockets) {
    if (!isWithin(socket, real)) continue;
    refuse(
      real === socket ? 'is the container engine socket' : `contains the container engine socket ${socket}`,
      'the engine socket gives whoever holds it the host',
      build ? `${only}, that holds no engine socket.` : 'Remove this volume: a sandbox must never reach the container engine. Mount a folder that holds no engine socket.',
    );
  }

  const stats = await stat(real).catch(() => undefined);
  if (stats?.isSocket()) {
    refuse(
      'is a unix socket',
      'a socket lets the agent talk to a host service, and an engine socket gives whoever holds it the host',
      build ? `Fix ${key} in sandbox.toml.` : 'Remove this volume; mount folders and files only.',
    );
  }

  if (!subject.readOnly) {
    for (const git of places.git) {
      const what =
        real === git
          ? `is the repository's git directory ${git}`
          : isWithin(real, git)
            ? `is inside the repository's git directory ${git}`
            : isWithin(git, real)
              ? `contains the repository's git directory ${git}`
              : undefined;
      if (what === undefined) continue;
      refuse(
        `${what}, mounted read-write`,
        'hooks and config the agent writes there run on the host the next time you run git',
        `Mount it read-only (${subject.readOnlyForm}), or mount a folder that does not hold the repository's .git.`,
      );
    }
    for (const folder of places.tools) {
      const what = isWithin(real, folder) ? `is ${real === folder ? '' : 'inside '}${folder}` : isWithin(folder, real) ? `contains ${folder}` : undefined;
      if (what === undefined) continue;
      refuse(
        `${what}, mounted read-write`,
        'tools on the host run or obey the files there without asking (git hooks through core.hooksPath or husky, the editor\'s tasks, launch configurations and settings)',
        `Mount it read-only (${subject.readOnlyForm}), or mount a folder that holds none of them.`,
      );
    }
  }

  if (!isWithin(real, places.workspace) && !places.allowed.some((folder) => isWithin(real, folder))) {
    refuse(
      `is outside the workspace ${places.workspace}`,
      build
        ? 'sandbox.toml may build only from the workspace: the engine receives the context, and the image hands it to the agent; outside it, only from folders you allow'
        : 'volumes may come from outside the workspace only from folders you allow',
      `Move it into the workspace or fix ${key} in sandbox.toml; or allow ${real} (or a folder that contains it): only your own settings can.`,
      [{ do: 'allow', setting: ALLOWED_VOLUME_PATHS_SETTING, env: ALLOWED_VOLUME_PATHS_ENV, value: real }],
    );
  }
}

/** The error for a host path that realpath cannot follow. */
async function unresolvable(subject: Subject, error: NodeJS.ErrnoException, places: Places): Promise<SandboxError> {
  const link = await firstLink(subject.written);
  const through = link ? ` (${link.path} is a symbolic link to ${link.target})` : '';
  const key = `\`${subject.key}\``;
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
    return configErrorAt(
      subject.origin,
      `${subject.label}: the host path ${subject.written} does not exist${through}.`,
      `Create it, or fix ${key} in sandbox.toml: host paths are relative to the workspace root (${places.workspaceRoot}).`,
    );
  }
  return configErrorAt(
    subject.origin,
    `${subject.label}: the host path ${subject.written} cannot be resolved${through}: ${error.message}.`,
    `Fix the path or its permissions, or fix ${key} in sandbox.toml.`,
  );
}

/** `" (… resolves to …)"` when the written path is not the real one, naming the symbolic link followed, if any. */
async function resolution(written: string, real: string): Promise<string> {
  if (real === written || real === path.resolve(written)) {
    if (real === written) return '';
    // Only `.`, `..` or doubled separators differ: say where it leads all the same.
    return ` (${written} resolves to ${real})`;
  }
  const link = await firstLink(written);
  const through = link && link.path !== path.resolve(written) ? `, through the symbolic link ${link.path} -> ${link.target}` : '';
  return ` (${written} resolves to ${real}${through})`;
}

/** The first symbolic link met walking the path as the kernel does, component by component. */
async function firstLink(written: string): Promise<{ path: string; target: string } | undefined> {
  const absolute = path.isAbsolute(written) ? written : path.join(process.cwd(), written);
  const { root } = path.parse(absolute);
  let prefix = root;
  for (const part of absolute.slice(root.length).split(/[\\/]+/)) {
    if (part === '' || part === '.') continue;
    prefix = prefix.endsWith(path.sep) ? prefix + part : prefix + path.sep + part;
    if (part === '..') continue;
    try {
      if ((await lstat(prefix)).isSymbolicLink()) return { path: prefix, target: await readlink(prefix) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Whether `child` is `parent` or below it; `/a/bc` is not below `/a/b`. Both absolute. */
function isWithin(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/**
 * The real path of a place that may not exist (yet): the real path of its deepest existing ancestor, with the
 * rest appended. A socket that appears later must be protected as much as one that is there now.
 */
async function realpathLoose(place: string): Promise<string> {
  const absolute = path.resolve(place);
  const rest: string[] = [];
  let existing = absolute;
  for (;;) {
    try {
      return path.join(await realpath(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return absolute;
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** Each place as written (resolved) and as it really is, without duplicates. */
async function bothForms(places: string[]): Promise<string[]> {
  const forms = await Promise.all(places.map(async (place) => [path.resolve(place), await realpathLoose(place)]));
  return [...new Set(forms.flat())];
}
