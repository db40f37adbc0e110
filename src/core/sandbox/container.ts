/**
 * The container of a sandbox, as the engine is asked to create it: mounts, user, limits, network, log options,
 * labels, and what a role's secrets, preset or the engine socket add.
 */
import * as path from 'node:path';
import type Docker from 'dockerode';
import type { AgentRole } from '../config/model';
import type { EngineInfo, EngineKind } from '../engine/engine';
import { LABEL } from '../engine/labels';
import { sandboxUlimits } from '../engine/ulimits';
import type { Ulimit } from '../engine/ulimits';
import { CONTAINER_GIT_DIR, CONTAINER_HOST_OBJECTS } from '../git/worktrees';
import type { Repository, WorktreePaths } from '../git/worktrees';
import { AGENT_EVENTS_MOUNT } from '../agents/presets';
import { agentEgressSettings } from '../isolation/egress';
import { secretsEntrypoint, SECRETS_DIR } from '../isolation/secrets';
import type { AgentUser } from '../isolation/user';
import type { SandboxRecord } from './records';

export const WORKSPACE_IN_CONTAINER = '/workspace';
export const AGENT_HOME = '/home/agent';

/**
 * What the engine is asked to create. Where Docker and Podman differ, `engine` decides: the tmpfs home's owner
 * (Docker: uid=/gid= options; Podman: `U`, the container's user), the user namespace (rootless Podman:
 * keep-id, so the agent's files in the worktree belong to the host user), SELinux relabelling of the mounts
 * this makes (`z`, where SELinux is enforced) and NAT (rootless Podman: slirp4netns). Ulimits are explicit
 * on both, at or under the machine's hard limits.
 */
export function containerOptions(
  record: SandboxRecord,
  role: AgentRole,
  paths: WorktreePaths,
  repo: Pick<Repository, 'root' | 'commonDir'>,
  user: AgentUser,
  engine: EngineInfo,
  ulimits: Ulimit[] = sandboxUlimits(),
  extras: ContainerExtras = {},
): Docker.ContainerCreateOptions {
  const settings = role.container;
  const egress = settings.allow !== undefined ? agentEgressSettings(record.container) : undefined;
  const podman = engine.kind === 'podman';
  // A tmpfs only the agent's user can use. Podman refuses uid=/gid= on a tmpfs; its `U` gives it to the container's user.
  const agentsTmpfs = (options: string) => (podman ? `${options},U,mode=0700` : `${options},uid=${user.uid},gid=${user.gid},mode=0700`);
  // Relabel only what Agent Sandboxes mounts for itself: the user's own volumes may be system folders.
  const relabel = engine.selinux ? ',z' : '';
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of settings.ports) {
    const key = `${port.containerPort}/${port.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: port.hostIp, HostPort: port.hostPort ? String(port.hostPort) : '' });
  }
  const env = {
    HOME: AGENT_HOME,
    ...settings.env,
    ...egress?.env,
    ...extras.agent?.env,
    ...(extras.engineSocket ? { DOCKER_HOST: 'unix:///var/run/docker.sock' } : {}),
    SANDBOX_NAME: record.name,
    SANDBOX_AGENT: record.agent,
    SANDBOX_TASK: record.task,
    ...(role.interactive ? { TERM: 'xterm-256color', AGENT_SANDBOX_EVENTS: AGENT_EVENTS_MOUNT } : {}),
  };
  return {
    name: record.container,
    Image: record.image,
    ...(extras.secrets ? { Entrypoint: secretsEntrypoint(), Cmd: [...extras.secrets.entrypoint, ...extras.secrets.cmd] } : { Cmd: extras.agent?.command ?? role.command }),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    User: `${user.uid}:${user.gid}`,
    WorkingDir: WORKSPACE_IN_CONTAINER,
    // An interactive agent gets a terminal and an open stdin that outlives every attachment.
    ...(role.interactive ? { Tty: true, OpenStdin: true, StdinOnce: false } : {}),
    ExposedPorts: exposed,
    Labels: {
      [LABEL.managed]: 'true',
      [LABEL.workspace]: repo.root,
      [LABEL.name]: record.name,
      [LABEL.agent]: record.agent,
      [LABEL.branch]: record.branch,
      [LABEL.base]: record.base,
      [LABEL.worktree]: paths.worktree,
      ...(settings.allow !== undefined ? { [LABEL.allow]: settings.allow.join(',') } : {}),
    },
    HostConfig: {
      Binds: [
        `${paths.worktree}:${WORKSPACE_IN_CONTAINER}:rw${relabel}`,
        // The agent's git sees its private git dir, never the host's .git (hooks, config, other branches).
        `${paths.gitFile}:${WORKSPACE_IN_CONTAINER}/.git:ro${relabel}`,
        `${paths.privateGitDir}:${CONTAINER_GIT_DIR}:rw${relabel}`,
        `${path.join(repo.commonDir, 'objects')}:${CONTAINER_HOST_OBJECTS}:ro${relabel}`,
        ...settings.volumes.map((v) => `${v.hostPath}:${v.containerPath}:${v.readOnly ? 'ro' : 'rw'}`),
        ...(extras.engineSocket ? [`${extras.engineSocket.path}:/var/run/docker.sock`] : []),
        ...(extras.agent?.binds ?? []),
        // Where an interactive agent says it waits for the user: the sandbox's own folder, read by the host as data.
        ...(role.interactive ? [`${path.join(paths.stateDir, 'events')}:${AGENT_EVENTS_MOUNT}:rw${relabel}`] : []),
      ],
      ...(extras.engineSocket ? { GroupAdd: [String(extras.engineSocket.gid)] } : {}),
      Tmpfs: {
        [AGENT_HOME]: agentsTmpfs('rw,exec'),
        // Secrets live in memory only, readable by the agent's user alone.
        ...(extras.secrets ? { [SECRETS_DIR]: agentsTmpfs('rw,noexec,nosuid,size=1m') } : {}),
      },
      // Rootless Podman maps container uids to subordinate ids: keep-id maps the host user to itself.
      ...(podman && engine.rootless ? { UsernsMode: 'keep-id' } : {}),
      NetworkMode: egress ? egress.networkMode : settings.network === 'nat' ? (podman && engine.rootless ? 'slirp4netns' : 'bridge') : settings.network,
      PortBindings: settings.network === 'nat' && !egress ? bindings : {},
      NanoCpus: Math.round(settings.cpus * 1e9),
      Memory: settings.memoryBytes,
      MemorySwap: settings.memoryBytes,
      PidsLimit: settings.pids,
      ...(settings.diskBytes !== undefined ? { StorageOpt: { size: String(settings.diskBytes) } } : {}),
      // An init as PID 1 forwards signals and reaps zombies; an agent as PID 1 would ignore its own crashes.
      // Podman's init is catatonit: without it, creating the container fails (see Engine.translate).
      Init: true,
      Ulimits: ulimits,
      // The agent's output is kept by the engine on the host's disk: capped, or an agent printing without end
      // fills it. json-file on both engines (Podman's compat API takes it as its k8s-file driver).
      LogConfig: containerLogConfig(engine.kind),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges', ...(extras.securityOpt ?? [])],
    },
  };
}

/**
 * The most of an agent's output the engine keeps on disk: Docker, in three files of 64 MiB; Podman, one of
 * 192 MiB. Files this large matter as much as the cap: Docker's follower loses what rotates away under it, and
 * with 10 MiB files a `logs --follow` (the output channel) of a fast agent missed most of 25 MB.
 */
export const LOG_MAX_BYTES = 192 * 1024 ** 2;

/**
 * The engine's log options for a sandbox. Docker rotates json-file logs (`max-size` per file, `max-file`
 * files), so `logs` shows the newest 128 to 192 MiB. Podman's json-file (its k8s-file) takes `max-size` only,
 * as its log_size_max, and empties the file when it is reached, so `logs` shows what came after that.
 */
export function containerLogConfig(kind: EngineKind): { Type: string; Config: Record<string, string> } {
  if (kind === 'podman') return { Type: 'json-file', Config: { 'max-size': String(LOG_MAX_BYTES) } };
  return { Type: 'json-file', Config: { 'max-size': String(LOG_MAX_BYTES / 3), 'max-file': '3' } };
}

/** What a container gets beyond its role's settings, decided at create time. */
export interface ContainerExtras {
  /** The role names secrets: the image's entrypoint and the command, run by the wrapper once they arrive. */
  secrets?: { entrypoint: string[]; cmd: string[] };
  /** The user asked, loudly, to hand the agent the engine's socket. */
  engineSocket?: { path: string; gid: number };
  /** More security options (Podman: the hardened seccomp profile). */
  securityOpt?: string[];
  /** The role's agent preset: its command, its environment (a placeholder for the key) and its mounts (CLI, state). */
  agent?: { command: string[]; env: Record<string, string>; binds: string[] };
}
