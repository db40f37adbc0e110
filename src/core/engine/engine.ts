import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import * as path from 'node:path';
import Docker from 'dockerode';
import { PassThrough, Readable } from 'node:stream';
import { demultiplex } from './demux';
import { EngineUnavailableError, ImageError, SandboxError } from '../errors';

export type EngineKind = 'docker' | 'podman';

/** Which engine sandbox.toml (`[sandbox] engine`) or the editor's setting asks for. */
export type EngineChoice = 'auto' | EngineKind;

/** The engine to use: a kind, and optionally its address (`unix:///path.sock`, `tcp://host:port`). */
export interface EngineSelection {
  engine: EngineChoice;
  host?: string;
}

export interface EngineVersion {
  kind: EngineKind;
  version: string;
  apiVersion: string;
}

/** What the core needs to know of the engine beyond its name: where the two engines differ. */
export interface EngineInfo extends EngineVersion {
  /** Rootless Podman (or rootless Docker): container uids map to the host's subordinate ids. */
  rootless: boolean;
  /** SELinux is enforced on the engine's host: bind mounts need relabelling (`:z`). */
  selinux: boolean;
}

/** One line of build or pull output, as the engine sent it. */
export type OutputSink = (text: string) => void;

export const DOCKER_SOCKET = '/var/run/docker.sock';
export const PODMAN_ROOTFUL_SOCKET = '/run/podman/podman.sock';

/** Rootless Podman's socket: `$XDG_RUNTIME_DIR/podman/podman.sock` (`/run/user/UID/...` without the variable). */
export function podmanRootlessSocket(env: NodeJS.ProcessEnv = process.env, uid: number | undefined = process.getuid?.()): string | undefined {
  const runtimeDir = env.XDG_RUNTIME_DIR || (uid !== undefined ? `/run/user/${uid}` : undefined);
  return runtimeDir ? path.posix.join(runtimeDir, 'podman', 'podman.sock') : undefined;
}

/** Where to find the engine, before asking it anything. */
export interface EndpointChoice {
  /** The address to use when none of `candidates` answers (or there is only one): `unix:///...` or `tcp://...`. */
  endpoint: string;
  /** The kind the selection insists on; undefined for `auto`. */
  expect?: EngineKind;
  /** Addresses that exist, in order of preference; the first that answers wins. */
  candidates: string[];
  /** Every place looked at, for the message when nothing answers. */
  tried: string[];
}

/**
 * Where the engine is, by the rules of the README: an explicit host wins; `docker` is DOCKER_HOST or Docker's
 * socket; `podman` is the rootful Podman socket, else the rootless one (for a user other than root: the rootless
 * one first); `auto` is DOCKER_HOST, else the first
 * socket that exists of Docker's, rootful Podman's and rootless Podman's. Pure but for `exists`.
 */
export function chooseEndpoint(
  selection: EngineSelection,
  env: NodeJS.ProcessEnv = process.env,
  exists: (socketPath: string) => boolean = socketExists,
  uid: number | undefined = process.getuid?.(),
): EndpointChoice {
  const expect = selection.engine === 'auto' ? undefined : selection.engine;
  const explicit = (address: string): EndpointChoice => ({ endpoint: address, expect, candidates: [address], tried: [address] });
  if (selection.host) return explicit(selection.host);
  const dockerHost = env.DOCKER_HOST?.trim();
  const docker = `unix://${DOCKER_SOCKET}`;
  if (selection.engine === 'docker') return explicit(dockerHost || docker);
  const rootless = podmanRootlessSocket(env, uid);
  const podmanSockets = [PODMAN_ROOTFUL_SOCKET, ...(rootless ? [rootless] : [])];
  if (selection.engine === 'podman') {
    // A user's own (rootless) Podman before the system's, which only root may use; root the other way round.
    if (uid !== 0) podmanSockets.reverse();
    const found = podmanSockets.filter(exists).map((s) => `unix://${s}`);
    const fallback = uid === 0 || !rootless ? PODMAN_ROOTFUL_SOCKET : rootless;
    return { endpoint: found[0] ?? `unix://${fallback}`, expect, candidates: found, tried: podmanSockets.map((s) => `unix://${s}`) };
  }
  if (dockerHost) return { endpoint: dockerHost, candidates: [dockerHost], tried: [`DOCKER_HOST=${dockerHost}`] };
  const sockets = [DOCKER_SOCKET, ...podmanSockets];
  const found = sockets.filter(exists).map((s) => `unix://${s}`);
  return { endpoint: found[0] ?? docker, candidates: found, tried: sockets.map((s) => `unix://${s}`) };
}

/**
 * The selection in force: the editor's settings when either names something (an engine other than `auto`, or a
 * host), else sandbox.toml's. A machine's engine is the user's business more than the repository's.
 */
export function effectiveSelection(fromConfig: EngineSelection, fromSettings?: Partial<EngineSelection>): EngineSelection {
  const host = fromSettings?.host?.trim() || undefined;
  const engine = fromSettings?.engine ?? 'auto';
  if (engine !== 'auto' || host) return host ? { engine, host } : { engine };
  return fromConfig;
}

/** The editor setting listing engine addresses that sandbox.toml's `engine_host` may name. */
export const ALLOWED_ENGINE_HOSTS_SETTING = 'agentSandboxes.allowedEngineHosts';
/** The same list for the command line: addresses separated by commas. */
export const ALLOWED_ENGINE_HOSTS_ENV = 'AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS';

/** The addresses listed in AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS. */
export function allowedEngineHostsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[ALLOWED_ENGINE_HOSTS_ENV] ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
}

/**
 * This machine's own engines, which a repository may choose between without asking (as `engine` does):
 * DOCKER_HOST, Docker's sockets, and rootful and rootless Podman's.
 */
export function localEngineAddresses(env: NodeJS.ProcessEnv = process.env, uid: number | undefined = process.getuid?.()): string[] {
  const rootless = podmanRootlessSocket(env, uid);
  const sockets = [DOCKER_SOCKET, '/run/docker.sock', PODMAN_ROOTFUL_SOCKET, ...(rootless ? [rootless] : [])];
  const dockerHost = env.DOCKER_HOST?.trim();
  return [...(dockerHost ? [dockerHost] : []), ...sockets.map((socket) => `unix://${socket}`)];
}

/** An address written two ways (`unix:///run//docker.sock`, `tcp://h:1/`) compared as one. */
function sameAddress(a: string, b: string): boolean {
  const normal = (address: string) => {
    const text = address.trim();
    if (text.startsWith('unix://')) return `unix://${path.posix.normalize(text.slice('unix://'.length))}`;
    return text.replace(/\/+$/, '').toLowerCase();
  };
  return normal(a) === normal(b);
}

/**
 * Whether sandbox.toml's `engine_host` may be used: it is one of this machine's own engines, or the user
 * allowed it (agentSandboxes.allowedEngineHosts, AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS). The engine receives the
 * build context, the task and the secrets, so a repository must not pick a remote one on its own.
 */
export function engineHostAllowed(host: string, allowed: readonly string[], env: NodeJS.ProcessEnv = process.env, uid: number | undefined = process.getuid?.()): boolean {
  return [...localEngineAddresses(env, uid), ...allowed].some((address) => sameAddress(address, host));
}

export interface EngineOptions {
  socketPath?: string;
  host?: string;
  /** The kind asked for: info() fails, saying so, when the endpoint answers as the other engine. */
  expect?: EngineKind;
  /** Every place looked at before settling on this endpoint, for the message when it does not answer. */
  tried?: string[];
}

/**
 * The container engine, spoken to through dockerode. Docker and Podman (through its Docker-compatible
 * API) both answer here. Every call goes through `call`, which turns connection failures into an
 * EngineUnavailableError that says how to start an engine.
 */
export class Engine {
  /** dockerode's client: only the engine talks to it, so every call goes through its error translation. */
  private readonly docker: Docker;
  readonly endpoint: string;
  readonly expect?: EngineKind;
  private readonly tried: string[];
  private infoPromise?: Promise<EngineInfo>;

  constructor(options?: EngineOptions) {
    if (options?.socketPath) {
      this.docker = new Docker({ socketPath: options.socketPath });
      this.endpoint = `unix://${options.socketPath}`;
    } else if (options?.host) {
      this.docker = new Docker(hostOptions(options.host));
      this.endpoint = options.host;
    } else {
      // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) itself.
      this.docker = new Docker();
      this.endpoint = process.env.DOCKER_HOST || `unix://${DOCKER_SOCKET}`;
    }
    this.expect = options?.expect;
    this.tried = options?.tried ?? [this.endpoint];
  }

  /**
   * The engine a selection names (see chooseEndpoint). Where several sockets exist, the first that answers wins,
   * so a stale Docker socket does not hide a running Podman. Never throws: an engine that does not answer
   * gives an Engine whose calls say how to start one.
   */
  static async connect(selection: EngineSelection, env: NodeJS.ProcessEnv = process.env): Promise<Engine> {
    const choice = chooseEndpoint(selection, env);
    const make = (address: string) => {
      // DOCKER_HOST itself goes through dockerode's own reading of it (TLS variables included).
      if (!selection.host && env.DOCKER_HOST?.trim() === address && env === process.env) return new Engine({ expect: choice.expect, tried: choice.tried });
      return new Engine({ host: address, expect: choice.expect, tried: choice.tried });
    };
    if (choice.candidates.length > 1) {
      for (const candidate of choice.candidates) {
        const engine = make(candidate);
        if (await engine.answers()) return engine;
      }
    }
    return make(choice.endpoint);
  }

  /** Whether the engine answers a ping within a few seconds. */
  async answers(timeoutMs = 3000): Promise<boolean> {
    try {
      // dockerode's ping takes an abortSignal; its type declarations do not say so.
      await (this.docker.ping as unknown as (options: { abortSignal: AbortSignal }) => Promise<unknown>).call(this.docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
      return true;
    } catch {
      return false;
    }
  }

  async call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.translate(what, error);
    }
  }

  /**
   * `call` for an operation that only reads, tried again when it trips over a container that exited mid-read:
   * Podman before 4.4 (Debian 12 ships 4.3) fails `ps` and `wait` with "read /proc/N/cgroup: no such process"
   * in that window (containers/podman#16383), where later versions treat it as the container having stopped.
   */
  async read<T>(what: string, operation: () => Promise<T>, attempts = 4): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (attempt >= attempts || !exitedMidRead(error)) throw this.translate(what, error);
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  translate(what: string, error: unknown): Error {
    if (error instanceof SandboxError) return error;
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
      const podman = this.podmanToStart();
      return new EngineUnavailableError(`Cannot reach the container engine at ${this.endpoint} (${code}).`, unreachableHint(this.expect, this.tried, podman), podman);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new EngineUnavailableError(
        `Permission denied on the container engine's socket ${this.endpoint}.`,
        /podman/.test(this.endpoint)
          ? "Use your own user's rootless Podman (`systemctl --user start podman.socket`, then set engine_host to unix://$XDG_RUNTIME_DIR/podman/podman.sock), or run as root for rootful Podman."
          : 'Add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again), or use rootless Podman.',
      );
    }
    const message = engineMessage(error);
    if (/container-init binary not found|catatonit/i.test(message)) {
      return new SandboxError(
        `${what}: Podman cannot run an init process as PID 1 in the sandbox: its init, catatonit, is missing (${message}).`,
        'Install it, then try again: `sudo apt-get install catatonit` (Debian, Ubuntu) or `sudo dnf install catatonit` (Fedora).',
      );
    }
    if (/error setting rlimit|setrlimit/i.test(message)) {
      return new SandboxError(
        `${what}: the engine cannot give the sandbox its ulimits (${message}).`,
        'Agent Sandboxes asks for open files and processes at the hard limits of this machine (/proc/self/limits); this engine runs with lower ones and cannot raise them. Start the engine with limits at least as high as `ulimit -Hn` and `ulimit -Hu` show (systemd: LimitNOFILE=, LimitNPROC= in its unit).',
      );
    }
    return new SandboxError(`${what}: ${message}`);
  }

  /** The Podman socket to offer starting, when Podman is installed here and this endpoint is (or may be) it. */
  private podmanToStart(): string | undefined {
    if (this.expect === 'docker' || !podmanInstalled()) return undefined;
    if (this.endpoint.startsWith('unix://') && (this.expect === 'podman' || /podman/.test(this.endpoint))) return this.endpoint.slice('unix://'.length);
    // auto found no socket at all: Podman's own, for this user.
    if (this.expect === undefined && this.tried.length > 1) return process.getuid?.() === 0 ? PODMAN_ROOTFUL_SOCKET : (podmanRootlessSocket() ?? PODMAN_ROOTFUL_SOCKET);
    return undefined;
  }

  async version(): Promise<EngineVersion> {
    const { kind, version, apiVersion } = await this.info();
    return { kind, version, apiVersion };
  }

  /**
   * The engine's kind, version and the features where engines differ. Asked once per Engine (an endpoint does
   * not change engine), again after a failure. Fails when the selection insisted on the other engine.
   */
  info(): Promise<EngineInfo> {
    this.infoPromise ??= this.readInfo().catch((error) => {
      this.infoPromise = undefined;
      throw error;
    });
    return this.infoPromise;
  }

  private async readInfo(): Promise<EngineInfo> {
    const what = 'Asking the engine for its version';
    const [v, system] = await this.call(what, () => Promise.all([this.docker.version(), this.docker.info() as Promise<{ SecurityOptions?: string[]; Rootless?: boolean }>]));
    const isPodman = (v.Components ?? []).some((c) => /podman/i.test(c.Name));
    // Docker says rootless and SELinux in SecurityOptions; Podman before 5 says neither there (it has a Rootless
    // field), so its own API is asked.
    const security = (system.SecurityOptions ?? []).join(' ');
    let rootless = system.Rootless === true || /name=rootless/.test(security);
    let selinux = /name=selinux/.test(security);
    if (isPodman && !selinux) {
      const podman = await this.call(what, () => this.libpod<{ host?: { security?: { rootless?: boolean; selinuxEnabled?: boolean } } }>('/v4.0.0/libpod/info'));
      rootless ||= podman.host?.security?.rootless === true;
      selinux = podman.host?.security?.selinuxEnabled === true;
    }
    const info: EngineInfo = { kind: isPodman ? 'podman' : 'docker', version: v.Version, apiVersion: v.ApiVersion, rootless, selinux };
    if (this.expect && info.kind !== this.expect) {
      throw new EngineUnavailableError(
        `The engine at ${this.endpoint} is ${engineName(info.kind)} ${info.version}, but ${engineName(this.expect)} was asked for (engine = "${this.expect}").`,
        `Point engine_host (sandbox.toml) or agentSandboxes.engineHost at ${engineName(this.expect)}'s socket, or set engine = "auto" to use whichever answers.`,
      );
    }
    return info;
  }

  /** A GET on Podman's own API (beside the Docker-compatible one), through dockerode's connection. */
  private libpod<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial({ path, method: 'GET', statusCodes: { 200: true, 404: 'not found', 500: 'server error' } }, (error: unknown, data: unknown) =>
        error ? reject(error) : resolve(data as T),
      );
    });
  }

  /**
   * The name an image built here gets for `name` (`agent-sandbox/repo:hash`): Podman names local images
   * `localhost/...` (its CLI does so; its Docker API would say `docker.io/...`), Docker takes the name as it is.
   */
  async localImageName(name: string): Promise<string> {
    return (await this.info()).kind === 'podman' ? `localhost/${name}` : name;
  }

  /**
   * A container's terminal, attached: its output and its stdin over one upgraded connection. Sent with an empty
   * body of a stated length: docker-modem would send the options as a chunked JSON body, which Podman reads as
   * the first keys typed into the terminal (and waits for the body's end before it answers).
   */
  attach(idOrName: string, query: Record<string, string | boolean>, what: string): Promise<NodeJS.ReadWriteStream & { destroy(): void }> {
    return this.call(
      what,
      () =>
        new Promise((resolve, reject) => {
          this.docker.modem.dial(
            {
              path: `/containers/${encodeURIComponent(idOrName)}/attach?`,
              method: 'POST',
              hijack: true,
              openStdin: true,
              file: Buffer.alloc(0),
              headers: { 'Content-Type': 'text/plain' },
              statusCodes: { 101: true, 200: true, 404: 'no such container', 409: 'container is not running', 500: 'server error' },
              options: query,
            },
            (error: unknown, stream: unknown) => (error ? reject(error) : resolve(stream as NodeJS.ReadWriteStream & { destroy(): void })),
          );
        }),
    );
  }

  /** A handle on a container by id or name; nothing is asked of the engine until it is used. */
  container(idOrName: string): Docker.Container {
    return this.docker.getContainer(idOrName);
  }

  /** The containers (running or not) that carry all of `labels` (`key=value`). */
  listContainers(labels: string[]): Promise<Docker.ContainerInfo[]> {
    return this.read('Listing containers', () => this.docker.listContainers({ all: true, filters: { label: labels } }));
  }

  inspectContainer(idOrName: string, what: string): Promise<Docker.ContainerInspectInfo> {
    return this.read(what, () => this.docker.getContainer(idOrName).inspect());
  }

  /**
   * Creates a container. Where the engine refuses `options` and `retry`, given the engine's own words for why,
   * returns other options, those are tried once instead.
   */
  async createContainer(options: Docker.ContainerCreateOptions, what: string, retry?: (message: string) => Docker.ContainerCreateOptions | undefined): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(options);
    } catch (error) {
      const instead = retry?.(engineMessage(error));
      if (!instead) throw this.translate(what, error);
      return this.call(what, () => this.docker.createContainer(instead));
    }
  }

  removeContainer(idOrName: string, what: string, options: { force?: boolean; v?: boolean }): Promise<void> {
    return this.call(what, () => this.docker.getContainer(idOrName).remove(options) as Promise<void>);
  }

  inspectImage(ref: string, what: string): Promise<Docker.ImageInspectInfo> {
    return this.call(what, () => this.docker.getImage(ref).inspect());
  }

  async createVolume(options: Docker.VolumeCreateOptions, what: string): Promise<void> {
    await this.call(what, () => this.docker.createVolume(options));
  }

  removeVolume(name: string, what: string): Promise<void> {
    return this.call(what, () => this.docker.getVolume(name).remove() as Promise<void>);
  }

  /** The engine's stream of container events for containers with all of `labels`, one JSON object a line. */
  containerEvents(labels: string[], signal: AbortSignal): Promise<Readable> {
    return this.call('Following engine events', async () => (await this.docker.getEvents({ filters: { type: ['container'], label: labels }, abortSignal: signal } as object)) as unknown as Readable);
  }

  async imageId(ref: string): Promise<string | undefined> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return info.Id;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw this.translate(`Inspecting image ${ref}`, error);
    }
  }

  async pull(ref: string, output: OutputSink, signal?: AbortSignal): Promise<void> {
    output(`Pulling ${ref}\n`);
    let stream: Readable;
    try {
      stream = (await this.docker.pull(ref, { abortSignal: signal })) as Readable;
    } catch (error) {
      throw this.pullError(ref, error);
    }
    await this.followProgress(stream, output).catch((error) => {
      throw this.pullError(ref, error);
    });
    output(`Pulled ${ref}\n`);
  }

  private pullError(ref: string, error: unknown): Error {
    const translated = this.translate(`Pulling ${ref}`, error);
    if (translated instanceof EngineUnavailableError) return translated;
    return new ImageError(
      `Could not pull the image ${ref}: ${engineMessage(error)}`,
      'Check the image name and that the engine can reach its registry (proxy, login: `docker login`), or build it locally: set `dockerfile` instead of `image` in sandbox.toml.',
    );
  }

  /** Builds from a tar context; resolves to the new image's id. */
  async build(context: Readable, options: { tag: string; dockerfile: string; labels: Record<string, string> }, output: OutputSink, signal?: AbortSignal): Promise<string> {
    let stream: Readable;
    try {
      stream = (await this.docker.buildImage(context, {
        t: options.tag,
        dockerfile: options.dockerfile,
        labels: options.labels,
        rm: true,
        forcerm: true,
        abortSignal: signal,
      } as Docker.ImageBuildOptions)) as Readable;
    } catch (error) {
      throw this.buildError(options.tag, error);
    }
    const events = await this.followProgress(stream, output).catch((error) => {
      throw this.buildError(options.tag, error);
    });
    const id = await this.imageId(options.tag);
    if (!id) throw new ImageError(`The build of ${options.tag} ended without an image${lastLines(events)}.`, 'Read the build output above.');
    return id;
  }

  private buildError(tag: string, error: unknown): Error {
    const translated = this.translate(`Building ${tag}`, error);
    if (translated instanceof EngineUnavailableError) return translated;
    return new ImageError(`The image ${tag} failed to build: ${engineMessage(error)}`, 'Fix the Dockerfile or its context; the build output above shows the failing step.');
  }

  /** Streams an engine progress stream (build or pull) line by line; rejects on an error event. */
  private followProgress(stream: Readable, output: OutputSink): Promise<ProgressEvent[]> {
    return new Promise((resolve, reject) => {
      const events: ProgressEvent[] = [];
      this.docker.modem.followProgress(
        stream,
        (error: Error | null) => {
          const failed = events.find((e) => e.error || e.errorDetail);
          if (error) reject(error);
          else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
          else resolve(events);
        },
        (event: ProgressEvent) => {
          events.push(event);
          if (event.stream) output(event.stream);
          else if (event.status) output(`${event.id ? `${event.id}: ` : ''}${event.status}${event.progress ? ` ${event.progress}` : ''}\n`);
        },
      );
    });
  }

  /**
   * The container's output, stdout and stderr demultiplexed, from its first line. With `follow`, the
   * stream stays open until the container stops (or `signal` aborts).
   */
  /**
   * A container's output. With `tty` (a container made with a terminal) the engine sends it as the terminal wrote
   * it, one stream, not multiplexed: it all comes on stdout.
   */
  async logs(containerId: string, options: { follow: boolean; signal?: AbortSignal; tail?: number; tty?: boolean }): Promise<{ stdout: Readable; stderr: Readable; done: Promise<void> }> {
    const container = this.docker.getContainer(containerId);
    const answer = await this.call(`Reading the logs of ${containerId}`, () =>
      container.logs({ follow: options.follow, stdout: true, stderr: true, abortSignal: options.signal, ...(options.tail !== undefined ? { tail: options.tail } : {}) } as Docker.ContainerLogsOptions & { follow: true }),
    );
    // Without `follow`, dockerode hands back the whole multiplexed log as one buffer rather than a stream.
    const raw = Buffer.isBuffer(answer) ? Readable.from([answer]) : (answer as unknown as Readable);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    if (options.tty) raw.pipe(stdout, { end: false });
    else demultiplex(raw, stdout, stderr);
    const done = new Promise<void>((resolve) => {
      const finish = () => {
        stdout.end();
        stderr.end();
        resolve();
      };
      raw.on('end', finish);
      raw.on('close', finish);
      raw.on('error', finish);
    });
    return { stdout, stderr, done };
  }
}

export interface EngineEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

/**
 * An event in Docker's words. Podman's Docker-compatible stream says `remove` where Docker says `destroy`
 * (and older Podmans `died` for `die`); it also sends `init` and `cleanup`, which Docker has no word for and
 * which pass through as they are. Podman puts the container's labels in Actor.Attributes, as Docker does.
 */
export function normalizeEvent(event: EngineEvent): EngineEvent {
  const [action, ...rest] = (event.Action ?? '').split(':');
  const docker = PODMAN_ACTIONS[action];
  if (!docker) return event;
  return { ...event, Action: [docker, ...rest].join(':') };
}

const PODMAN_ACTIONS: Record<string, string> = { remove: 'destroy', died: 'die' };

/**
 * Follows the engine's event stream for containers with the given labels until `signal` aborts, through
 * engine restarts: a broken stream is reopened with a growing delay, and `onConnection` says whether the
 * engine answers, so a view can show it.
 */
export function watchEngineEvents(
  engine: Engine,
  labels: string[],
  onEvent: (event: EngineEvent) => void,
  onConnection: (connected: boolean, error?: Error) => void,
  signal: AbortSignal,
): void {
  let delay = 250;
  const connect = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        const stream = await engine.containerEvents(labels, signal);
        delay = 250;
        onConnection(true);
        await new Promise<void>((resolve) => {
          let buffered = '';
          stream.on('data', (chunk: Buffer) => {
            buffered += chunk.toString('utf8');
            let newline: number;
            while ((newline = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, newline).trim();
              buffered = buffered.slice(newline + 1);
              if (line) {
                try {
                  onEvent(normalizeEvent(JSON.parse(line) as EngineEvent));
                } catch {
                  // A line that is not JSON is not an event; the next one will be.
                }
              }
            }
          });
          stream.on('end', resolve);
          stream.on('close', resolve);
          stream.on('error', () => resolve());
        });
        if (signal.aborted) return;
        onConnection(false, new EngineUnavailableError(`The engine at ${engine.endpoint} closed its event stream.`));
      } catch (error) {
        if (signal.aborted) return;
        onConnection(false, engine.translate('Following engine events', error));
      }
      // Cut short by the abort: a CLI that stops following exits at once, not after the wait.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
      delay = Math.min(delay * 2, 5000);
    }
  };
  void connect();
}

interface ProgressEvent {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message: string };
}

function hostOptions(host: string): Docker.DockerOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port) || 2375, protocol: url.protocol === 'https:' ? 'https' : 'http' };
}

/** Podman's error when a container's process ended while it read that process's /proc files. */
export function exitedMidRead(error: unknown): boolean {
  return /\/proc\/\d+\/[\w/]+: no such (process|file or directory)/.test(engineMessage(error));
}

/** The engine's own words for an error, without dockerode's "(HTTP code 500) server error - " prefix. */
export function engineMessage(error: unknown): string {
  const e = error as { json?: { message?: string }; reason?: string; message?: string };
  const text = e?.json?.message ?? e?.message ?? String(error);
  return String(text).replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

function lastLines(events: ProgressEvent[]): string {
  const text = events.map((e) => e.stream ?? '').join('').trim().split('\n').slice(-3).join(' / ');
  return text ? ` (${text})` : '';
}

/** "Docker" or "Podman", for messages and the editor. */
export function engineName(kind: EngineKind): string {
  return kind === 'podman' ? 'Podman' : 'Docker';
}

/** How to start Podman's API service on `socket`, for a message. */
export function podmanStartCommand(socket: string): string {
  const direct = `\`podman system service --time=0 unix://${socket} &\``;
  if (socket === PODMAN_ROOTFUL_SOCKET) return `\`sudo systemctl start podman.socket\` (or without systemd: ${direct})`;
  if (socket === podmanRootlessSocket()) return `\`systemctl --user start podman.socket\` (or without systemd: ${direct})`;
  return direct;
}

function unreachableHint(expect: EngineKind | undefined, tried: string[], podmanSocket: string | undefined): string {
  const lines: string[] = [];
  if (podmanSocket) lines.push(`Podman is installed but its API service is not running: start it with ${podmanStartCommand(podmanSocket)}.`);
  else if (expect === 'podman' && !podmanInstalled()) lines.push('Podman is not installed: `sudo apt-get install podman catatonit` (Debian, Ubuntu), then start its API service: `sudo systemctl start podman.socket`.');
  else if (expect === 'podman') lines.push('Start Podman\'s API service where the address points (`podman system service --time=0 ADDRESS`).');
  if (expect === 'docker') lines.push('Start Docker with `sudo systemctl start docker` (or `sudo dockerd &`); or set DOCKER_HOST to a Docker engine that runs.');
  else if (expect === undefined && podmanSocket) lines.push('Or start Docker with `sudo systemctl start docker` (or `sudo dockerd &`); or set DOCKER_HOST to an engine that runs.');
  else if (expect === undefined) lines.push('Start one: Docker with `sudo systemctl start docker` (or `sudo dockerd &`), Podman with `systemctl --user start podman.socket`; or set DOCKER_HOST to an engine that runs.');
  else lines.push('Or point engine_host (sandbox.toml) or agentSandboxes.engineHost at the socket where it runs.');
  if (tried.length > 1) lines.push(`Looked for an engine at ${tried.join(', ')}.`);
  return lines.join('\n');
}

function socketExists(socketPath: string): boolean {
  try {
    return statSync(socketPath).isSocket();
  } catch {
    return false;
  }
}

/** Whether a `podman` executable is on PATH. */
export function podmanInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  return executableOnPath('podman', env) !== undefined;
}

/** Where a program is found on PATH, as a shell would find it; undefined when it is not. */
export function executableOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, name), fsConstants.X_OK);
      return path.join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}
