/**
 * The one facade the front ends call: the sandboxes of a workspace and everything done to them. Below it: the
 * container's specification (sandbox/container.ts), commands run inside (sandbox/exec.ts), records
 * (sandbox/records.ts), the user's policy (sandbox/policy.ts), and the engine, git, isolation, config and agent
 * parts in their folders.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type Docker from 'dockerode';
import { loadConfig } from './config/config';
import { originsOf, roleNamed } from './config/model';
import type { AgentRole, ContainerSettings, SandboxConfig } from './config/model';
import { effectiveSelection, Engine } from './engine/engine';
import type { EngineInfo, EngineKind, EngineSelection, OutputSink } from './engine/engine';
import { ConflictError, SandboxError, SandboxNotFoundError } from './errors';
import { ensureImage, imageNamePart } from './images';
import { LABEL } from './engine/labels';
import { sandboxUlimits } from './engine/ulimits';
import { agentUserFor } from './isolation/user';
import type { AgentUser } from './isolation/user';
import { agentIdentity, Repository, validateSandboxName } from './git/worktrees';
import { captureAgentWork, changesBetween, diffAgentWork } from './git/capture';
import type { AgentWork } from './git/capture';
import { syncAgentWork } from './git/sync';
import type { SyncOptions, SyncResult } from './git/sync';
import { withLock } from './lock';
import { createEgress, deliverCredentials, egressLog, removeEgress, startEgress, stopEgress } from './isolation/egress';
import { editorHazards } from './isolation/hazards';
import type { HazardReport } from './isolation/hazards';
import { knownSecrets, resolveSecrets, SecretMask, secretsScript, secretsWriter } from './isolation/secrets';
import { checkBuildSources, checkVolumes, defaultEngineSockets, hostToolFolders } from './isolation/volumes';
import type { VolumePolicy } from './isolation/volumes';
import { podmanSeccompOption } from './engine/seccomp';
import type { ChangedFile, GitIdentity, WorktreePaths } from './git/worktrees';
import { agentCredential, prepareAgent } from './agents/launch';
import type { AgentLaunch } from './agents/launch';
import { presetNamed } from './agents/presets';
import { AgentTranscript } from './agents/progress';
import type { AgentProgress } from './agents/progress';
import { containerOptions, WORKSPACE_IN_CONTAINER } from './sandbox/container';
import type { ContainerExtras } from './sandbox/container';
import { attachTerminal } from './sandbox/attach';
import type { AgentTerminal, AttachOptions } from './sandbox/attach';
import { TerminalText } from './sandbox/terminal';
import { execIn, execInteractive } from './sandbox/exec';
import type { ExecIo, InteractiveSession } from './sandbox/exec';
import { checkEngineHost, checkNetworkExposure, environmentPolicy } from './sandbox/policy';
import type { HostPolicy } from './sandbox/policy';
import { networkName, readRecord, readWaiting, sandboxState } from './sandbox/records';
import type { SandboxInfo, SandboxRecord } from './sandbox/records';

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
          interactive: role.interactive,
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
      ...(role.interactive ? { interactive: true } : {}),
    };
    let container: Docker.Container | undefined;
    try {
      await fs.writeFile(path.join(paths.stateDir, 'sandbox.json'), `${JSON.stringify(record, null, 2)}\n`);
      if (role.interactive) {
        const events = path.join(paths.stateDir, 'events');
        await fs.mkdir(events, { mode: 0o700 });
        if (this.agentUser.chownNeeded) await fs.chown(events, this.agentUser.uid, this.agentUser.gid);
      }
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
    const code = await execIn(this.engine, this.agentUser, name, container, secretsWriter(), { stdin: Readable.from([secretsScript(secrets)]), stdout: collect, stderr: collect }, what);
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
      ...(record?.interactive ? { interactive: true } : {}),
      ...(record?.interactive && state === 'running' && (await readWaiting(paths)) ? { waiting: true } : {}),
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
   * stream comes as a readable transcript (`transcript` reads where the agent is), and an interactive agent's
   * terminal as text, unless `raw`.
   */
  async logs(name: string, options: { follow: boolean; signal?: AbortSignal; raw?: boolean; tail?: number }): Promise<{ stdout: Readable; stderr: Readable; done: Promise<void>; transcript?: AgentTranscript }> {
    const [container, interactive] = await Promise.all([this.container(name), readRecord(this.repo.paths(name)).then((r) => r?.interactive === true)]);
    const [logs, denials, secrets, record] = await Promise.all([
      this.engine.logs(container.id, { ...options, tty: interactive }),
      egressLog(this.engine, this.containerName(name), options),
      // Every value known is masked, even when another one is missing now (a start would refuse; a read must not unmask).
      this.maskedNamesOf(name).then((names) => knownSecrets(names, this.policy.secrets)),
      readRecord(this.repo.paths(name)),
    ]);
    const masked = logs.stdout.pipe(new SecretMask(secrets.values()));
    const transcript = record?.preset && !options.raw && !interactive ? new AgentTranscript({ format: record.preset.events, workdir: WORKSPACE_IN_CONTAINER }) : undefined;
    const stdout = transcript ? masked.pipe(transcript) : interactive && !options.raw ? masked.pipe(new TerminalText()) : masked;
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
    return execIn(this.engine, this.agentUser, name, await this.container(name), command, io, `Running a command in "${name}"`);
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

  /**
   * Attaches to an interactive agent's terminal (see attachTerminal): the screen as it is now, then its output;
   * keys go to the agent; detaching leaves it running.
   */
  async attach(name: string, options: Omit<AttachOptions, 'masked'>): Promise<AgentTerminal> {
    const [container, record] = await Promise.all([this.container(name), readRecord(this.repo.paths(name))]);
    if (!record?.interactive) {
      throw new ConflictError(`The agent of "${name}" has no terminal to attach to: its role is not interactive.`, 'Set interactive = true in its role for an agent to talk to; a shell beside the agent is Attach Shell (agent-sandbox exec NAME -- sh).');
    }
    const state = sandboxState((await this.engine.inspectContainer(container.id, `Inspecting "${name}"`)).State.Status);
    if (state !== 'running') throw new ConflictError(`The agent of "${name}" is not running (it is ${state}).`, 'Start it first.', [{ do: 'start-sandbox', sandbox: name }]);
    const masked = await this.maskedNamesOf(name).then((names) => knownSecrets(names, this.policy.secrets));
    return attachTerminal(this.engine, container, `Attaching to "${name}"`, { ...options, masked: masked.values() });
  }

  /** An interactive command with a terminal in the running sandbox, for an editor's terminal to drive. */
  async execInteractive(name: string, command: string[], size: { columns: number; rows: number }): Promise<InteractiveSession> {
    return execInteractive(this.engine, this.agentUser, name, await this.container(name), command, size);
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
