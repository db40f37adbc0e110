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
import type { VolumeMount } from './config';
import { DOCKER_SOCKET, PODMAN_ROOTFUL_SOCKET, podmanRootlessSocket } from './engine';
import { SandboxError } from './errors';

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
export async function checkVolumes(volumes: VolumeMount[], policy: VolumePolicy): Promise<void> {
  if (volumes.length === 0) return;
  const places = await protectedPlaces(policy);
  for (const volume of volumes) await checkVolume(volume, places);
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
  };
}

async function checkVolume(volume: VolumeMount, places: Places): Promise<void> {
  const written = volume.hostPath;
  let real: string;
  try {
    real = await realpath(written);
  } catch (error) {
    throw await unresolvable(volume, error as NodeJS.ErrnoException, places);
  }
  await judge(volume, real, places);
  // The engine may clean the path (`a/link/..` to `a`) before the kernel follows it: judge that reading too.
  const cleaned = path.resolve(written);
  if (cleaned !== written) {
    const realCleaned = await realpath(cleaned).catch(() => undefined);
    if (realCleaned !== undefined && realCleaned !== real) await judge(volume, realCleaned, places);
  }
}

async function judge(volume: VolumeMount, real: string, places: Places): Promise<void> {
  const name = `${volume.hostPath}:${volume.containerPath}`;
  const via = await resolution(volume.hostPath, real);
  const refuse = (what: string, why: string, hint: string): never => {
    throw new SandboxError(`Volume ${name} ${what}${via}: ${why}.`, hint);
  };

  if (real === path.parse(real).root) {
    refuse('is the root of the host file system', 'it would give the agent the whole host', 'Mount only the folder the agent needs, inside the workspace.');
  }

  for (const home of places.home) {
    if (!isWithin(home, real)) continue;
    refuse(
      real === home ? 'is the home directory' : `contains the home directory ${home}`,
      'the agent could read your keys and credentials and change files that run on the host (shell startup files, ~/.ssh, ~/.gitconfig)',
      'Mount only the folder the agent needs: one inside the workspace, or one you allow outside it; never the home directory or a folder that contains it.',
    );
  }

  for (const socket of places.sockets) {
    if (!isWithin(socket, real)) continue;
    refuse(
      real === socket ? 'is the container engine socket' : `contains the container engine socket ${socket}`,
      'the engine socket gives whoever holds it the host',
      'Remove this volume: a sandbox must never reach the container engine. Mount a folder that holds no engine socket.',
    );
  }

  const stats = await stat(real).catch(() => undefined);
  if (stats?.isSocket()) {
    refuse(
      'is a unix socket',
      'a socket lets the agent talk to a host service, and an engine socket gives whoever holds it the host',
      'Remove this volume; mount folders and files only.',
    );
  }

  if (!volume.readOnly) {
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
        `Mount it read-only (${volume.hostPath}:${volume.containerPath}:ro), or mount a folder that does not hold the repository's .git.`,
      );
    }
  }

  if (!isWithin(real, places.workspace) && !places.allowed.some((folder) => isWithin(real, folder))) {
    refuse(
      `is outside the workspace ${places.workspace}`,
      'volumes may come from outside the workspace only from folders you allow',
      `To allow it, add ${real} (or a folder that contains it) to the editor setting \`${ALLOWED_VOLUME_PATHS_SETTING}\`, ` +
        `or on the command line to the environment variable ${ALLOWED_VOLUME_PATHS_ENV} (folders separated by "${path.delimiter}"). ` +
        'Otherwise move it into the workspace, or fix `volumes` in sandbox.toml.',
    );
  }
}

/** The error for a host path that realpath cannot follow. */
async function unresolvable(volume: VolumeMount, error: NodeJS.ErrnoException, places: Places): Promise<SandboxError> {
  const name = `${volume.hostPath}:${volume.containerPath}`;
  const link = await firstLink(volume.hostPath);
  const through = link ? ` (${link.path} is a symbolic link to ${link.target})` : '';
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
    return new SandboxError(
      `Volume ${name}: the host path ${volume.hostPath} does not exist${through}.`,
      `Create it, or fix \`volumes\` in sandbox.toml: host paths are relative to the workspace root (${places.workspaceRoot}).`,
    );
  }
  return new SandboxError(
    `Volume ${name}: the host path ${volume.hostPath} cannot be resolved${through}: ${error.message}.`,
    'Fix the path or its permissions, or fix `volumes` in sandbox.toml.',
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
