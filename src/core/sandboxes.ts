import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { loadConfig } from './config/config';
import { originsOf, roleNamed } from './config/model';
import type { AgentRole, ContainerSettings, SandboxConfig } from './config/model';
import { demultiplex } from './engine/demux';
import { ALLOWED_ENGINE_HOSTS_ENV, ALLOWED_ENGINE_HOSTS_SETTING, allowedEngineHostsFromEnv, effectiveSelection, Engine, engineHostAllowed } from './engine/engine';
import type { EngineInfo, EngineKind, EngineSelection, OutputSink } from './engine/engine';
import { configErrorAt, ConflictError, SandboxError, SandboxNotFoundError } from './errors';
import { ensureImage, imageNamePart } from './images';
import { LABEL } from './engine/labels';
import { sandboxUlimits } from './engine/ulimits';
import type { Ulimit } from './engine/ulimits';
import { agentUserFor } from './isolation/user';
import type { AgentUser } from './isolation/user';
import { agentIdentity, CONTAINER_GIT_DIR, CONTAINER_HOST_OBJECTS, Repository, validateSandboxName } from './git/worktrees';
import { captureAgentWork, changesBetween, diffAgentWork } from './git/capture';
import type { AgentWork } from './git/capture';
import { syncAgentWork } from './git/sync';
import type { SyncOptions, SyncResult } from './git/sync';
import { withLock } from './lock';
import { agentEgressSettings, createEgress, deliverCredentials, egressLog, removeEgress, startEgress, stopEgress } from './isolation/egress';
import { editorHazards } from './isolation/hazards';
import type { HazardReport } from './isolation/hazards';
import { environmentSecrets, knownSecrets, resolveSecrets, SecretMask, secretsEntrypoint, secretsScript, secretsWriter, SECRETS_DIR } from './isolation/secrets';
import type { SecretSource } from './isolation/secrets';
import { allowedVolumePathsFromEnv, checkBuildSources, checkVolumes, defaultEngineSockets, hostToolFolders } from './isolation/volumes';
import type { VolumePolicy } from './isolation/volumes';
import { podmanSeccompOption } from './engine/seccomp';
import type { ChangedFile, GitIdentity, WorktreePaths } from './git/worktrees';
import { agentCredential, prepareAgent, providerEndpoints, PROVIDER_ENDPOINTS_ENV } from './agents/launch';
import type { AgentLaunch, AgentRecord } from './agents/launch';
import { presetNamed } from './agents/presets';
import { AgentTranscript } from './agents/progress';
import type { AgentProgress } from './agents/progress';

export const WORKSPACE_IN_CONTAINER = '/workspace';
const AGENT_HOME = '/home/agent';

export type SandboxState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing' | 'missing';

export interface PublishedPort {
  containerPort: number;
  protocol: string;
  hostIp: string;
  hostPort: number;
}

export interface SandboxInfo {
  name: string;
  state: SandboxState;
  agent: string;
  branch: string;
  base: string;
  /** The branch's tip on the host, after importing the agent's commits. */
  head?: string;
  /** Why the agent's latest commits could not be imported (see Repository.importAgentCommits), if they could not. */
  importError?: string;
  worktree: string;
  task: string;
  containerId?: string;
  image?: string;
  exitCode?: number;
  /** The engine killed the agent for exceeding its memory limit. */
  oomKilled?: boolean;
  /** none, nat, host or allowlist, as the container was created. */
  network?: string;
  /** With an allowlist: the host names the agent may reach. */
  allow?: string[];
  limits?: { cpus: number; memoryBytes: number; pids: number };
  ports: PublishedPort[];
  createdAt: string;
  /** The engine the sandbox runs on (its container's); for one whose container is gone, the engine it was made on. */
  engine?: EngineKind;
  /** The agent preset it runs, and how its credential is held (never the value). */
  preset?: AgentRecord;
}

/** What the host keeps of a sandbox beside its worktree, readable without the engine. */
export interface SandboxRecord {
  name: string;
  agent: string;
  branch: string;
  base: string;
  task: string;
  image: string;
  container: string;
  createdAt: string;
  /** The engine it was made on. */
  engine?: EngineKind;
  /** The role's agent preset, as it was launched. */
  preset?: AgentRecord;
}

/** Where a command run in a sandbox reads and writes; with `tty`, stdout gets both streams. */
export interface ExecIo {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  tty?: boolean;
}

export interface InteractiveSession {
  input: Writable;
  output: Readable;
  resize(columns: number, rows: number): Promise<unknown>;
  exitCode: Promise<number>;
}

/**
 * What only the user decides, never sandbox.toml (which an agent's synced change could rewrite): where
 * volumes outside the workspace may come from, whether the agent gets the engine's socket, and where
 * secrets' values come from.
 */
export interface HostPolicy {
  /** Host folders volumes may mount from outside the workspace (agentSandboxes.allowedVolumePaths). */
  allowedVolumePaths: string[];
  /** Hands the agent the engine's socket, and with it the host (agentSandboxes.dangerouslyExposeEngineSocket). */
  exposeEngineSocket: boolean;
  secrets: SecretSource;
  /** Extra `name:address` entries for the egress proxy's /etc/hosts (split-horizon names; test hosts). */
  egressHosts: string[];
  /** Engine addresses sandbox.toml's engine_host may name beyond this machine's own (agentSandboxes.allowedEngineHosts). */
  allowedEngineHosts: string[];
  /** sandbox.toml may ask for `network = "host"` (agentSandboxes.allowHostNetwork). */
  allowHostNetwork: boolean;
  /** sandbox.toml may publish ports on addresses other than loopback (agentSandboxes.allowPublicPorts). */
  allowPublicPorts: boolean;
  /** Where each provider's credential route forwards to, in place of the preset's (agentSandboxes.providerEndpoints). */
  providerEndpoints: Record<string, string>;
}

/** The user's consent, on the command line, to sandbox.toml's `network = "host"`. */
export const ALLOW_HOST_NETWORK_ENV = 'AGENT_SANDBOX_ALLOW_HOST_NETWORK';
/** The user's consent, on the command line, to ports published on addresses other than loopback. */
export const ALLOW_PUBLIC_PORTS_ENV = 'AGENT_SANDBOX_ALLOW_PUBLIC_PORTS';

/** The policy of a command-line run: the environment says it. */
export function environmentPolicy(env: NodeJS.ProcessEnv = process.env): HostPolicy {
  return {
    allowedVolumePaths: allowedVolumePathsFromEnv(env),
    exposeEngineSocket: env.AGENT_SANDBOX_DANGEROUSLY_EXPOSE_ENGINE_SOCKET === '1',
    secrets: environmentSecrets(env),
    egressHosts: (env.AGENT_SANDBOX_EGRESS_HOSTS ?? '').split(',').map((entry) => entry.trim().replace('=', ':')).filter(Boolean),
    allowedEngineHosts: allowedEngineHostsFromEnv(env),
    allowHostNetwork: env[ALLOW_HOST_NETWORK_ENV] === '1',
    allowPublicPorts: env[ALLOW_PUBLIC_PORTS_ENV] === '1',
    providerEndpoints: providerEndpoints((env[PROVIDER_ENDPOINTS_ENV] ?? '').split(',').map((e) => e.trim()).filter(Boolean), PROVIDER_ENDPOINTS_ENV),
  };
}

export interface UpOptions {
  name: string;
  agent?: string;
  task?: string;
  base?: string;
  output?: OutputSink;
  signal?: AbortSignal;
}

/**
 * The sandboxes of one workspace: a git repository, its sandbox.toml and a container engine. Nothing is
 * cached between calls: every answer is rebuilt from the engine's labels and the repository, so any
 * process sees the same sandboxes.
 */
export class Sandboxes {
  private constructor(
    readonly repo: Repository,
    readonly config: SandboxConfig,
    readonly engine: Engine,
    private readonly agentUser: AgentUser,
    private readonly policy: HostPolicy,
  ) {}

  /**
   * Opens a workspace. The engine is `options.engine`, else the one the editor's settings (`engineSettings`, when
   * they name one) or sandbox.toml's `engine` and `engine_host` select (see Engine.connect).
   */
  static async open(
    workspace: string,
    options: { engine?: Engine; engineSettings?: Partial<EngineSelection>; configFile?: string; policy?: Partial<HostPolicy> } = {},
  ): Promise<Sandboxes> {
    const repo = await Repository.open(workspace);
    const config = await loadConfig(repo.root, options.configFile);
    const policy = { ...environmentPolicy(), ...options.policy };
    const selection = effectiveSelection({ engine: config.engine, host: config.engineHost }, options.engineSettings);
    if (!options.engine) checkEngineHost(config, selection, options.engineSettings, policy);
    const [engine, agentUser] = await Promise.all([options.engine ?? Engine.connect(selection), agentUserFor(repo.root)]);
    return new Sandboxes(repo, config, engine, agentUser, policy);
  }

  role(agent?: string): AgentRole {
    const name = agent ?? this.config.defaultAgent;
    const role = roleNamed(this.config, name);
    if (!role) {
      throw new SandboxError(`There is no agent role "${name}".`, `Roles in ${this.config.file ?? 'the default config'}: ${Object.keys(this.config.agents).join(', ')}.`);
    }
    return role;
  }

  containerName(name: string): string {
    const digest = createHash('sha256').update(this.repo.root).digest('hex').slice(0, 8);
    return `agent-sandbox-${imageNamePart(this.repo.name)}-${digest}-${name}`;
  }

  /** Builds (or pulls) the image of a role; skipped when nothing that decides it changed, unless `force`. */
  async build(agent: string | undefined, output: OutputSink, options: { force?: boolean; signal?: AbortSignal } = {}) {
    const settings = await this.buildable(this.role(agent).container);
    return ensureImage(this.engine, settings, this.repo.name, output, { ...options, cacheDir: this.repo.stateRoot });
  }

  /**
   * The settings to build from: the Dockerfile and context checked by the rules of volumes (see
   * checkBuildSources) and replaced by their real paths, so that the build reads exactly what was judged.
   */
  private async buildable(settings: ContainerSettings, places: Promise<VolumePolicy> = this.hostPaths()): Promise<ContainerSettings> {
    const sources = await checkBuildSources(settings, await places, originsOf(settings));
    return sources ? { ...settings, ...sources } : settings;
  }

  /** What a sandbox may read of the host: the workspace, and the folders the user allowed (see checkVolumes). */
  private async hostPaths(): Promise<VolumePolicy> {
    // git's own reading of core.hooksPath (husky sets it): the agent must not write the hooks the host runs.
    const hooksPath = (await this.repo.run(['config', '--get', 'core.hooksPath']).catch(() => '')).trim() || undefined;
    return {
      workspaceRoot: this.repo.root,
      gitCommonDir: this.repo.commonDir,
      allowedOutside: this.policy.allowedVolumePaths,
      engineSockets: [...defaultEngineSockets(), this.engineSocket()].filter((socket): socket is string => socket !== undefined),
      hostToolFolders: hostToolFolders(this.repo.root, hooksPath),
    };
  }

  async up(options: UpOptions): Promise<SandboxInfo> {
    const output = options.output ?? (() => undefined);
    validateSandboxName(options.name);
    const role = this.role(options.agent);
    checkNetworkExposure(role.container, this.policy);
    // Independent checks at once: each is a round trip to the engine, git or the disk. What sandbox.toml asks
    // of the host (its build context, volumes, secrets) is judged before anything is built, sent or made.
    const places = this.hostPaths();
    const preset = role.agent ? presetNamed(role.agent.preset) : undefined;
    const [buildable, , secrets, engine, , , base, credential] = await Promise.all([
      this.buildable(role.container, places),
      places.then((policy) => checkVolumes(role.container.volumes, policy, originsOf(role.container).volumes)),
      resolveSecrets(role.container.secrets, this.policy.secrets),
      this.engine.info(),
      this.assertNameFree(options.name),
      this.assertRoomForAnother(),
      this.repo.resolveCommit(options.base ?? 'HEAD'),
      preset && role.agent ? agentCredential(preset, role.agent, this.policy.secrets) : undefined,
    ]);
    const image = await ensureImage(this.engine, buildable, this.repo.name, output, { signal: options.signal, cacheDir: this.repo.stateRoot });
    const agent = role.agent && credential
      ? await prepareAgent({
          engine: this.engine,
          image: image.ref,
          choice: role.agent,
          command: role.command,
          task: options.task ?? '',
          credential,
          endpoints: this.policy.providerEndpoints,
          stateRoot: this.repo.stateRoot,
          user: this.agentUser,
          output,
          signal: options.signal,
        })
      : undefined;
    const paths = await this.repo.createSandboxWorktree(options.name, base, this.agentUser, agentIdentity(options.name, role.name));
    const record: SandboxRecord = {
      name: options.name,
      agent: role.name,
      branch: paths.branch,
      base,
      task: options.task ?? '',
      image: image.ref,
      container: this.containerName(options.name),
      createdAt: new Date().toISOString(),
      engine: engine.kind,
      ...(agent ? { preset: agent.record } : {}),
    };
    let container: Docker.Container | undefined;
    try {
      await fs.writeFile(path.join(paths.stateDir, 'sandbox.json'), `${JSON.stringify(record, null, 2)}\n`);
      // Checked again where it counts: under the lock, with containers created but not yet started, so that
      // concurrent ups (other processes included) cannot pass the limit together.
      container = await this.repo.locked(async () => {
        await this.assertRoomForAnother();
        if (role.container.allow) {
          await createEgress(this.engine, engine, record.container, role.container.allow, this.ownerLabels(record), sandboxUlimits(), output, this.policy.egressHosts, await this.seccompOptions(engine), agent ? [agent.route] : []);
        }
        // The proxy holds the key before the agent can ask for it.
        const [created] = await Promise.all([
          this.createContainer(record, role, paths, engine, output, agent),
          agent ? deliverCredentials(this.engine, record.container, { [agent.route.id]: agent.value }) : undefined,
        ]);
        return created;
      });
      await this.engine.call(`Starting the sandbox "${options.name}"`, () => container!.start());
      await this.deliverSecrets(options.name, container, secrets);
    } catch (error) {
      // Nothing half made: the container, its egress path, the worktree and the branch go with the failure.
      if (container) await container.remove({ force: true, v: true }).catch(() => undefined);
      if (role.container.allow) await removeEgress(this.engine, record.container);
      await this.repo.removeSandboxWorktree(options.name).catch(() => undefined);
      throw error;
    }
    return this.get(options.name);
  }

  private async createContainer(record: SandboxRecord, role: AgentRole, paths: WorktreePaths, engine: EngineInfo, output: OutputSink, agent?: AgentLaunch): Promise<Docker.Container> {
    const settings = role.container;
    const extras: ContainerExtras = {};
    if (agent) extras.agent = { command: agent.command, env: agent.env, binds: agent.binds };
    if (settings.secrets.length > 0) {
      // The wrapper runs in place of the image's entrypoint, and runs it (with the command) once the secrets are in.
      const image = await this.engine.inspectImage(record.image, `Reading the image ${record.image}`);
      extras.secrets = { entrypoint: image.Config.Entrypoint ? [...image.Config.Entrypoint] : [], cmd: agent?.command ?? role.command ?? image.Config.Cmd ?? [] };
    }
    const socket = this.engineSocket();
    if (this.policy.exposeEngineSocket) {
      if (!socket) throw new SandboxError('agentSandboxes.dangerouslyExposeEngineSocket is on, but the engine is not reached through a unix socket here.', 'Turn the setting off; only a local engine\'s socket can be handed over.');
      output(`WARNING: this sandbox gets the engine's socket (${socket}), as agentSandboxes.dangerouslyExposeEngineSocket asks: its agent can control every container and the host.\n`);
      extras.engineSocket = { path: socket, gid: (await fs.stat(socket)).gid };
    }
    extras.securityOpt = await this.seccompOptions(engine);
    const options = containerOptions(record, role, paths, this.repo, this.agentUser, engine, sandboxUlimits(), extras);
    const what = `Creating the container for "${record.name}"`;
    return this.engine.createContainer(options, what, (message) => {
      if (settings.diskBytes === undefined || !/storage-?opt|storage option|quota/i.test(message)) return undefined;
      // Most storage drivers (overlay2 on ext4, for one) cannot cap a container's disk: say so and go on.
      output(`warning: the engine cannot limit disk size here (${message}); the sandbox runs without a disk limit.\n`);
      delete options.HostConfig!.StorageOpt;
      return options;
    });
  }

  /** Podman's seccomp profile, with namespaces and mounts closed as Docker's default closes them (see seccomp.ts). */
  private async seccompOptions(engine: EngineInfo): Promise<string[]> {
    if (engine.kind !== 'podman') return [];
    const option = await podmanSeccompOption(this.repo.stateRoot);
    return option ? [option] : [];
  }

  /** The engine's unix socket on this machine, if it is reached through one. */
  private engineSocket(): string | undefined {
    return this.engine.endpoint.startsWith('unix://') ? this.engine.endpoint.slice('unix://'.length) : undefined;
  }

  private ownerLabels(record: SandboxRecord): Record<string, string> {
    return { [LABEL.egressWorkspace]: this.repo.root, [LABEL.egressName]: record.name };
  }

  /**
   * Writes the secrets into the started container's tmpfs over an exec session's stdin (never its
   * configuration), which lets the waiting command go on.
   */
  private async deliverSecrets(name: string, container: Docker.Container, secrets: Map<string, string>): Promise<void> {
    if (secrets.size === 0) return;
    const what = `Handing the secrets to "${name}"`;
    const output: Buffer[] = [];
    const collect = new PassThrough().on('data', (chunk: Buffer) => output.push(chunk));
    const code = await this.execIn(name, container, secretsWriter(), { stdin: Readable.from([secretsScript(secrets)]), stdout: collect, stderr: collect }, what);
    if (code !== 0) throw new SandboxError(`${what} failed (exit ${code}): ${Buffer.concat(output).toString('utf8').trim()}`, 'Secrets need /bin/sh in the image.');
  }

  /** A started proxy's credential, again: it lives in the proxy's memory only. */
  private async redeliverCredential(name: string): Promise<void> {
    const preset = (await readRecord(this.repo.paths(name)))?.preset;
    if (!preset) return;
    const [value] = (await resolveSecrets([preset.credential], this.policy.secrets)).values();
    await deliverCredentials(this.engine, this.containerName(name), { [preset.route]: value });
  }

  /** The secrets a sandbox's role names, from the policy's source (at each start: they live in memory only). */
  private async secretsOf(name: string): Promise<Map<string, string>> {
    return resolveSecrets(await this.secretNamesOf(name), this.policy.secrets);
  }

  /** The names whose values never show in a sandbox's output: its secrets, and its preset's credential (which it never holds). */
  private async maskedNamesOf(name: string): Promise<string[]> {
    const [names, record] = await Promise.all([this.secretNamesOf(name), readRecord(this.repo.paths(name))]);
    return record?.preset ? [...names, record.preset.credential] : names;
  }

  /** The names of the secrets a sandbox's role has. */
  private async secretNamesOf(name: string): Promise<string[]> {
    const record = await readRecord(this.repo.paths(name));
    const role = record ? roleNamed(this.config, record.agent) : undefined;
    return role?.container.secrets ?? [];
  }

  private async assertNameFree(name: string): Promise<void> {
    const existing = await this.findContainers(name);
    if (existing.length > 0 || (await this.repo.sandboxNames()).includes(name)) {
      throw new ConflictError(`A sandbox named "${name}" already exists in ${this.repo.root}.`, 'Choose another name, or remove that sandbox first.', [{ do: 'remove-sandbox', sandbox: name }]);
    }
  }

  private async assertRoomForAnother(): Promise<void> {
    const running = (await this.findContainers()).map((c) => sandboxState(c.State)).filter((s) => s === 'running' || s === 'created' || s === 'restarting').length;
    const max = this.config.maxParallelAgents;
    if (running >= max) {
      throw new ConflictError(
        `${running} sandboxes are running already, and max_parallel_agents is ${max}.`,
        'Stop one, or raise [orchestrator] max_parallel_agents in sandbox.toml.',
        [{ do: 'stop-a-sandbox' }],
      );
    }
  }

  private findContainers(name?: string): Promise<Docker.ContainerInfo[]> {
    const label = [`${LABEL.workspace}=${this.repo.root}`];
    if (name) label.push(`${LABEL.name}=${name}`);
    return this.engine.listContainers(label);
  }

  async list(): Promise<SandboxInfo[]> {
    const [containers, engine] = await Promise.all([this.findContainers(), this.engine.info()]);
    const names = new Set(await this.repo.sandboxNames());
    for (const c of containers) names.add(c.Labels[LABEL.name]);
    const infos = await Promise.all(
      [...names].sort().map((name) => this.describe(name, engine.kind, containers.find((c) => c.Labels[LABEL.name] === name))),
    );
    return infos;
  }

  async get(name: string): Promise<SandboxInfo> {
    const [[container], engine] = await Promise.all([this.findContainers(name), this.engine.info()]);
    if (!container && !(await this.repo.sandboxNames()).includes(name)) {
      throw new SandboxNotFoundError(`There is no sandbox named "${name}" in ${this.repo.root}.`, undefined, [{ do: 'list-sandboxes' }]);
    }
    return this.describe(name, engine.kind, container);
  }

  private async describe(name: string, engine: EngineKind, container?: Docker.ContainerInfo): Promise<SandboxInfo> {
    const paths = this.repo.paths(name);
    const record = await readRecord(paths);
    let importError: string | undefined;
    const head = await this.repo.importAgentCommits(name).catch((error: unknown) => {
      // One sandbox's broken git directory is a line about it, never a failure of the whole list.
      if (error instanceof SandboxError) importError = error.message;
      return undefined;
    });
    const inspected = container ? await this.engine.inspectContainer(container.Id, `Inspecting ${container.Id}`).catch(() => undefined) : undefined;
    // The state from inspect, not from the list: Docker sends `die` before its list reflects the exit, and
    // inspect reads the container itself.
    const state = sandboxState(inspected?.State.Status ?? container?.State);
    const ended = state === 'exited' || state === 'dead';
    const host = inspected?.HostConfig;
    const allowLabel = container?.Labels[LABEL.allow];
    const allow = allowLabel !== undefined ? allowLabel.split(',').filter(Boolean) : undefined;
    return {
      name,
      state,
      agent: container?.Labels[LABEL.agent] ?? record?.agent ?? '',
      branch: container?.Labels[LABEL.branch] ?? record?.branch ?? paths.branch,
      base: container?.Labels[LABEL.base] ?? record?.base ?? '',
      head,
      ...(importError ? { importError } : {}),
      worktree: container?.Labels[LABEL.worktree] ?? paths.worktree,
      task: record?.task ?? '',
      containerId: container?.Id,
      image: container?.Image ?? record?.image,
      exitCode: ended ? inspected?.State.ExitCode : undefined,
      oomKilled: ended && inspected?.State.OOMKilled ? true : undefined,
      network: host ? (allow ? 'allowlist' : networkName(host.NetworkMode)) : undefined,
      allow,
      limits: host ? { cpus: (host.NanoCpus ?? 0) / 1e9, memoryBytes: host.Memory ?? 0, pids: host.PidsLimit ?? 0 } : undefined,
      ports: (container?.Ports ?? [])
        .filter((p) => p.PublicPort)
        .map((p) => ({ containerPort: p.PrivatePort, protocol: p.Type, hostIp: p.IP ?? '', hostPort: p.PublicPort })),
      createdAt: record?.createdAt ?? (container ? new Date(container.Created * 1000).toISOString() : ''),
      engine: container ? engine : record?.engine,
      ...(record?.preset ? { preset: record.preset } : {}),
    };
  }

  private async container(name: string): Promise<Docker.Container> {
    const [info] = await this.findContainers(name);
    if (!info) {
      const known = (await this.repo.sandboxNames()).includes(name);
      throw new SandboxNotFoundError(
        known ? `The sandbox "${name}" has no container any more (it was removed outside Agent Sandboxes).` : `There is no sandbox named "${name}" in ${this.repo.root}.`,
        known ? 'Remove what is left of it.' : undefined,
        [known ? { do: 'remove-sandbox', sandbox: name } : { do: 'list-sandboxes' }],
      );
    }
    return this.engine.container(info.Id);
  }

  /**
   * The agent's output from its first line; with `follow`, until the container stops. An agent preset's event
   * stream comes as a readable transcript (`transcript` reads where the agent is), unless `raw`.
   */
  async logs(name: string, options: { follow: boolean; signal?: AbortSignal; raw?: boolean; tail?: number }): Promise<{ stdout: Readable; stderr: Readable; done: Promise<void>; transcript?: AgentTranscript }> {
    const container = await this.container(name);
    const [logs, denials, secrets, record] = await Promise.all([
      this.engine.logs(container.id, options),
      egressLog(this.engine, this.containerName(name), options),
      // Every value known is masked, even when another one is missing now (a start would refuse; a read must not unmask).
      this.maskedNamesOf(name).then((names) => knownSecrets(names, this.policy.secrets)),
      readRecord(this.repo.paths(name)),
    ]);
    const masked = logs.stdout.pipe(new SecretMask(secrets.values()));
    const transcript = record?.preset && !options.raw ? new AgentTranscript({ format: record.preset.events, workdir: WORKSPACE_IN_CONTAINER }) : undefined;
    const stdout = transcript ? masked.pipe(transcript) : masked;
    const stderr = new SecretMask(secrets.values());
    // The proxy's denials join the agent's stderr. Followed, it ends when the agent's output does; read
    // once, when both have been read whole.
    logs.stderr.pipe(stderr, { end: false });
    denials?.on('data', (line: Buffer) => stderr.write(line));
    // After the agent's stderr has been read whole ('end', not logs.done, which comes before the pipe is through).
    void Promise.all([ended(logs.stderr), !options.follow && denials ? ended(denials) : undefined]).then(() => {
      denials?.destroy();
      stderr.end();
    });
    // Done once both masked streams have passed on everything, a held-back end of a line included.
    const done = logs.done.then(() => Promise.all([ended(stdout), ended(stderr)])).then(() => undefined);
    return { stdout, stderr, done, ...(transcript ? { transcript } : {}) };
  }

  /**
   * Where an agent preset's agent is, from its event stream: the step, turns, tokens, cost and, once it has
   * ended, the verdict the stream gives (never the exit code). Undefined for a sandbox without a preset.
   */
  async progress(name: string): Promise<AgentProgress | undefined> {
    const record = await readRecord(this.repo.paths(name));
    if (!record?.preset) return undefined;
    const logs = await this.logs(name, { follow: false });
    logs.stdout.resume();
    logs.stderr.resume();
    await logs.done;
    const progress = logs.transcript?.reader.progress;
    // A stream without its result is unfinished only once the agent has ended.
    const running = await this.container(name).then((c) => c.inspect()).then((i) => i.State.Running, () => false);
    if (progress && running && progress.result?.verdict === 'incomplete') delete progress.result;
    return progress;
  }

  /** Waits for the agent to end and returns its exit code; its commits are on the branch afterwards. */
  async wait(name: string): Promise<number> {
    const container = await this.container(name);
    const result = await this.engine.read(`Waiting for "${name}"`, () => container.wait());
    await this.settleEgress(name);
    await this.repo.importAgentCommits(name);
    return result.StatusCode as number;
  }

  /**
   * Stops an allowlisted sandbox's proxy and forwarder once its agent has exited: nothing else uses them, and
   * starting the sandbox brings them back. Under the repository's lock, which start and restart hold too, so
   * it never undoes one of them.
   */
  async settleEgress(name: string): Promise<void> {
    await this.repo.locked(async () => {
      const [info] = await this.findContainers(name);
      if (!info || info.Labels[LABEL.allow] === undefined) return;
      const inspected = await this.engine.inspectContainer(info.Id, `Inspecting "${name}"`);
      if (inspected.State.Running || inspected.State.Restarting) return;
      await stopEgress(this.engine, this.containerName(name));
    });
  }

  async stop(name: string): Promise<void> {
    const container = await this.container(name);
    await this.engine.call(`Stopping "${name}"`, () => container.stop({ t: 10 })).catch((error) => {
      if (!/not running|already stopped/i.test(errorText(error))) throw error;
    });
    // After the agent: its network is the forwarder's.
    await stopEgress(this.engine, this.containerName(name));
    await this.repo.importAgentCommits(name);
  }

  async start(name: string): Promise<void> {
    const container = await this.container(name);
    const secrets = await this.secretsOf(name);
    const inspected = await container.inspect();
    // Running already (started outside Agent Sandboxes, say): it may still be waiting for its secrets.
    if (inspected.State.Running) return this.deliverSecrets(name, container, secrets);
    await this.repo.locked(async () => {
      await this.assertRoomForAnother();
      if (inspected.Config.Labels?.[LABEL.allow] !== undefined) {
        await startEgress(this.engine, this.containerName(name));
        await this.redeliverCredential(name);
      }
      await this.engine.call(`Starting "${name}"`, () => container.start()).catch((error) => {
        if (!/already (started|running)/i.test(errorText(error))) throw error;
      });
    });
    await this.deliverSecrets(name, container, secrets);
  }

  /**
   * Runs a command in the running sandbox as the agent's user, in /workspace, and returns its exit code.
   * stdin is passed through when given.
   */
  async exec(name: string, command: string[], io: ExecIo): Promise<number> {
    return this.execIn(name, await this.container(name), command, io, `Running a command in "${name}"`);
  }

  private async execIn(name: string, container: Docker.Container, command: string[], io: ExecIo, what: string): Promise<number> {
    const exec = await this.execCall(name, container, what, () =>
      container.exec({
        Cmd: command,
        AttachStdin: Boolean(io.stdin),
        AttachStdout: true,
        AttachStderr: true,
        Tty: Boolean(io.tty),
        User: `${this.agentUser.uid}:${this.agentUser.gid}`,
        WorkingDir: WORKSPACE_IN_CONTAINER,
      }),
    );
    const stream = await this.engine.call(what, () => exec.start({ hijack: true, stdin: Boolean(io.stdin), Tty: Boolean(io.tty) }));
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    if (io.tty) stream.pipe(io.stdout, { end: false });
    else demultiplex(stream, io.stdout, io.stderr);
    if (io.stdin) {
      io.stdin.pipe(stream, { end: false });
      // Half-close on the end of stdin so the command sees EOF, while its output keeps coming.
      io.stdin.on('end', () => (stream as unknown as { end(): void }).end());
    }
    await ended;
    io.stdin?.unpipe(stream);
    const result = await exec.inspect();
    return result.ExitCode ?? 1;
  }

  /**
   * Creates an exec session. A stopped sandbox refuses one in each engine's words (Docker: "is not running",
   * Podman: "container state improper"): say it in ours.
   */
  private async execCall<T>(name: string, container: Docker.Container, what: string, create: () => Promise<T>): Promise<T> {
    try {
      return await create();
    } catch (error) {
      const state = await container.inspect().then((c) => sandboxState(c.State.Status), () => undefined);
      if (state && state !== 'running') {
        throw new ConflictError(`${what}: the sandbox is not running (it is ${state}).`, 'Start it first.', [{ do: 'start-sandbox', sandbox: name }]);
      }
      throw this.engine.translate(what, error);
    }
  }

  async restart(name: string): Promise<void> {
    const container = await this.container(name);
    const secrets = await this.secretsOf(name);
    // Under the lock, so the egress path is not settled between the agent's stop and its start.
    await this.repo.locked(() => this.engine.call(`Restarting "${name}"`, () => container.restart({ t: 10 })));
    await this.deliverSecrets(name, container, secrets);
  }

  /** What VS Code would act on, of the agent's making, if it opened the sandbox's worktree as a folder. */
  editorHazards(name: string): Promise<HazardReport> {
    return editorHazards(this.repo.paths(name).worktree, this.repo.root);
  }

  /** What removing the sandbox would lose of the agent's work (after importing its latest commits). */
  async removalImpact(name: string): Promise<{ branch: string; unmergedCommits: number; uncommittedFiles: string[] }> {
    await this.repo.importAgentCommits(name);
    return {
      branch: this.repo.paths(name).branch,
      unmergedCommits: await this.repo.unmergedCommits(name),
      uncommittedFiles: await this.repo.uncommittedChanges(name),
    };
  }

  /**
   * Removes the container and the worktree, and the branch. Refuses, unless `force`, when that would lose
   * the agent's work: commits on its branch that are merged nowhere, or uncommitted files in its worktree.
   */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    const [info] = await this.findContainers(name);
    if (!info && !(await this.repo.sandboxNames()).includes(name)) {
      throw new SandboxNotFoundError(`There is no sandbox named "${name}" in ${this.repo.root}.`, undefined, [{ do: 'list-sandboxes' }]);
    }
    if (!options.force) {
      const { branch, unmergedCommits, uncommittedFiles } = await this.removalImpact(name);
      const lost: string[] = [];
      if (unmergedCommits > 0) lost.push(`${unmergedCommits} commit${unmergedCommits === 1 ? '' : 's'} on ${branch} that no other branch holds`);
      if (uncommittedFiles.length > 0) lost.push(`${uncommittedFiles.length} uncommitted file${uncommittedFiles.length === 1 ? '' : 's'} in its worktree (${uncommittedFiles.slice(0, 5).join(', ')}${uncommittedFiles.length > 5 ? ', ...' : ''})`);
      if (lost.length > 0) {
        throw new ConflictError(
          `Removing "${name}" would lose the agent's work: ${lost.join(' and ')}.`,
          'Take it first, or remove it anyway.',
          [{ do: 'sync', sandbox: name, mode: 'merge' }, { do: 'remove-sandbox', sandbox: name, force: true }],
        );
      }
    }
    if (info) {
      await this.engine.removeContainer(info.Id, `Removing the container of "${name}"`, { force: true, v: true }).catch((error) => {
        if ((error as { statusCode?: number }).statusCode !== 404 && !/no such container/i.test(errorText(error))) throw error;
      });
    }
    await removeEgress(this.engine, this.containerName(name));
    await this.repo.removeSandboxWorktree(name);
  }

  /** The files the agent changed against the sandbox's base, committed or not, with lines added and removed. */
  async changedFiles(name: string): Promise<ChangedFile[]> {
    const work = await this.agentWork(name, { commit: false }).catch((error) => {
      if (error instanceof SandboxNotFoundError) return undefined;
      throw error;
    });
    return work ? changesBetween(this.repo.root, work.base, work.tip) : [];
  }

  /** The agent's work as commits: its own, and one holding what it left uncommitted (see captureAgentWork). */
  async agentWork(name: string, options: { commit?: boolean } = {}): Promise<AgentWork> {
    return (await this.capture(name, options.commit !== false)).work;
  }

  private async capture(name: string, commit: boolean): Promise<{ work: AgentWork; identity: GitIdentity }> {
    const record = await readRecord(this.repo.paths(name));
    if (!record) throw new SandboxNotFoundError(`There is no sandbox named "${name}" in ${this.repo.root}.`, undefined, [{ do: 'list-sandboxes' }]);
    const identity = agentIdentity(name, record.agent);
    return { work: await captureAgentWork(this.repo, name, record.base, commit ? identity : undefined), identity };
  }

  /**
   * The agent's changes against its base as a unified diff, or its --stat summary (`binary`: a patch that
   * `git apply` takes whole). `onSkipped` hears of worktree paths no diff can hold (see captureAgentWork).
   */
  async diff(name: string, options: { stat?: boolean; color?: boolean; files?: string[]; binary?: boolean } = {}, onSkipped?: (paths: string[]) => void): Promise<Buffer> {
    const work = await this.agentWork(name, { commit: false });
    if (work.skipped.length > 0) onSkipped?.(work.skipped);
    return diffAgentWork(this.repo.root, work, options);
  }

  /**
   * Brings the agent's work into the workspace (see syncAgentWork). One sync at a time per repository: two
   * at once would each check the workspace and then both write it.
   */
  async sync(name: string, options: SyncOptions): Promise<SyncResult> {
    await fs.mkdir(this.repo.stateRoot, { recursive: true });
    return withLock(path.join(this.repo.stateRoot, 'sync.lock'), async () => {
      const { work, identity } = await this.capture(name, true);
      return syncAgentWork(this.repo, work, options, identity);
    });
  }

  /** A file as it was at the sandbox's base commit (undefined where it did not exist there). */
  async fileAtBase(name: string, file: string): Promise<Buffer | undefined> {
    const record = await readRecord(this.repo.paths(name));
    return record ? this.repo.fileAt(record.base, file) : undefined;
  }

  /** An interactive command with a terminal in the running sandbox, for an editor's terminal to drive. */
  async execInteractive(name: string, command: string[], size: { columns: number; rows: number }): Promise<InteractiveSession> {
    const container = await this.container(name);
    const what = `Opening a shell in "${name}"`;
    const exec = await this.execCall(name, container, what, () =>
      container.exec({
        Cmd: command,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
        User: `${this.agentUser.uid}:${this.agentUser.gid}`,
        WorkingDir: WORKSPACE_IN_CONTAINER,
        Env: [`HOME=${AGENT_HOME}`, 'TERM=xterm-256color'],
      }),
    );
    const stream = await this.engine.call(what, () => exec.start({ hijack: true, stdin: true, Tty: true }));
    const resize = (columns: number, rows: number) => exec.resize({ w: columns, h: rows }).catch(() => undefined);
    void resize(size.columns, size.rows);
    const exitCode = new Promise<number>((resolve) => {
      const finish = () => exec.inspect().then((r) => resolve(r.ExitCode ?? 0), () => resolve(1));
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', finish);
    });
    return { input: stream, output: stream, resize, exitCode };
  }
}

/**
 * Refuses what would open the machine's network to or for the agent without the user's consent: the host's
 * network (its loopback services and abstract unix sockets: D-Bus, X11, containerd's shim), and ports
 * published on an address other than loopback (reachable from other machines).
 */
export function checkNetworkExposure(settings: ContainerSettings, policy: Pick<HostPolicy, 'allowHostNetwork' | 'allowPublicPorts'>): void {
  const origins = originsOf(settings);
  if (settings.network === 'host' && !policy.allowHostNetwork) {
    throw configErrorAt(
      origins.network,
      'network = "host" gives the agent this machine\'s own network: every service listening on its loopback (databases, an engine\'s TCP API, development servers) and its abstract unix sockets (D-Bus, X11, containerd\'s shim), which no container should reach',
      'Use network = "nat" (with ports to publish) or "none"; or, if you mean it, allow it (only your own settings can).',
      [{ do: 'allow', setting: 'agentSandboxes.allowHostNetwork', env: ALLOW_HOST_NETWORK_ENV, value: '1' }],
    );
  }
  if (settings.network !== 'nat' || settings.allow !== undefined || policy.allowPublicPorts) return;
  const open = settings.ports.find((port) => !isLoopback(port.hostIp));
  if (open) {
    throw configErrorAt(
      origins.ports,
      `the port ${open.containerPort}/${open.protocol} is published on ${open.hostIp}, where other machines reach what the agent serves (its files, its secrets)`,
      `Publish on loopback (write the port without an address: "${open.hostPort ?? ''}${open.hostPort ? ':' : ''}${open.containerPort}"); or, if you mean it, allow it (only your own settings can).`,
      [{ do: 'allow', setting: 'agentSandboxes.allowPublicPorts', env: ALLOW_PUBLIC_PORTS_ENV, value: '1' }],
    );
  }
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}

/**
 * Refuses an engine only the repository named: sandbox.toml's engine_host, in force (the user's settings name
 * no engine), that is none of this machine's own engines and that the user did not allow. Nothing has been
 * sent to it yet: not the build context, the task or the secrets, not even a ping.
 */
function checkEngineHost(config: SandboxConfig, selection: EngineSelection, settings: Partial<EngineSelection> | undefined, policy: HostPolicy): void {
  const host = config.engineHost;
  if (host === undefined || selection.host !== host || settings?.host?.trim() === host) return;
  if (engineHostAllowed(host, policy.allowedEngineHosts)) return;
  throw configErrorAt(
    config.engineHostOrigin,
    `the engine ${host} is named by the repository only: it is none of this machine's own engines (DOCKER_HOST, Docker's or Podman's socket) and you have not allowed it, and an engine receives the build context, the task and the secrets`,
    'If you trust it, allow it or choose the engine yourself (only your own settings can). Otherwise remove engine_host from sandbox.toml.',
    [{ do: 'allow', setting: ALLOWED_ENGINE_HOSTS_SETTING, env: ALLOWED_ENGINE_HOSTS_ENV, value: host }],
  );
}

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
  };
  return {
    name: record.container,
    Image: record.image,
    ...(extras.secrets ? { Entrypoint: secretsEntrypoint(), Cmd: [...extras.secrets.entrypoint, ...extras.secrets.cmd] } : { Cmd: extras.agent?.command ?? role.command }),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    User: `${user.uid}:${user.gid}`,
    WorkingDir: WORKSPACE_IN_CONTAINER,
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

/**
 * A container's state in Docker's words. Podman's API also says `stopped` (exited, before its cleanup ran),
 * `configured` and `initialized` (created, not yet started) and `stopping`.
 */
export function sandboxState(engineState: string | undefined): SandboxState {
  switch (engineState) {
    case undefined:
    case '':
      return 'missing';
    case 'stopped':
      return 'exited';
    case 'configured':
    case 'initialized':
      return 'created';
    case 'stopping':
      return 'running';
    default:
      return engineState as SandboxState;
  }
}

/** The network as sandbox.toml names it: bridge (Docker, rootful Podman) and slirp4netns (rootless Podman) are NAT. */
export function networkName(mode: string | undefined): string | undefined {
  return mode === 'bridge' || mode === 'default' || mode === 'slirp4netns' || mode?.startsWith('slirp4netns:') ? 'nat' : mode;
}

async function readRecord(paths: WorktreePaths): Promise<SandboxRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(paths.stateDir, 'sandbox.json'), 'utf8')) as SandboxRecord;
  } catch {
    return undefined;
  }
}

/** Resolves when a readable stream has emitted its last data (or was destroyed). */
function ended(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once('end', resolve).once('close', resolve);
  });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
