import Docker from 'dockerode';
import { PassThrough, Readable } from 'node:stream';
import { demultiplex } from './demux';
import { EngineUnavailableError, ImageError, SandboxError } from './errors';

export type EngineKind = 'docker' | 'podman';

export interface EngineVersion {
  kind: EngineKind;
  version: string;
  apiVersion: string;
}

/** One line of build or pull output, as the engine sent it. */
export type OutputSink = (text: string) => void;

/**
 * The container engine, spoken to through dockerode. Docker and Podman (through its Docker-compatible
 * API) both answer here. Every call goes through `call`, which turns connection failures into an
 * EngineUnavailableError that says how to start an engine.
 */
export class Engine {
  readonly docker: Docker;
  readonly endpoint: string;

  constructor(options?: { socketPath?: string; host?: string }) {
    if (options?.socketPath) {
      this.docker = new Docker({ socketPath: options.socketPath });
      this.endpoint = `unix://${options.socketPath}`;
    } else if (options?.host) {
      this.docker = new Docker(hostOptions(options.host));
      this.endpoint = options.host;
    } else {
      // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) itself.
      this.docker = new Docker();
      this.endpoint = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
    }
  }

  async call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.translate(what, error);
    }
  }

  translate(what: string, error: unknown): Error {
    if (error instanceof SandboxError) return error;
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
      return new EngineUnavailableError(
        `Cannot reach the container engine at ${this.endpoint} (${code}).`,
        'Start one: Docker with `sudo systemctl start docker` (or `sudo dockerd &`), Podman with `systemctl --user start podman.socket`; or set DOCKER_HOST to an engine that runs.',
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new EngineUnavailableError(
        `Permission denied on the container engine's socket ${this.endpoint}.`,
        'Add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again), or use rootless Podman.',
      );
    }
    return new SandboxError(`${what}: ${engineMessage(error)}`);
  }

  async version(): Promise<EngineVersion> {
    const v = await this.call('Asking the engine for its version', () => this.docker.version());
    const isPodman = (v.Components ?? []).some((c) => /podman/i.test(c.Name));
    return { kind: isPodman ? 'podman' : 'docker', version: v.Version, apiVersion: v.ApiVersion };
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
  async logs(containerId: string, options: { follow: boolean; signal?: AbortSignal }): Promise<{ stdout: Readable; stderr: Readable; done: Promise<void> }> {
    const container = this.docker.getContainer(containerId);
    const answer = await this.call(`Reading the logs of ${containerId}`, () =>
      container.logs({ follow: options.follow, stdout: true, stderr: true, abortSignal: options.signal } as Docker.ContainerLogsOptions & { follow: true }),
    );
    // Without `follow`, dockerode hands back the whole multiplexed log as one buffer rather than a stream.
    const raw = Buffer.isBuffer(answer) ? Readable.from([answer]) : (answer as unknown as Readable);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    demultiplex(raw, stdout, stderr);
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
        const stream = (await engine.docker.getEvents({ filters: { type: ['container'], label: labels }, abortSignal: signal } as object)) as unknown as Readable;
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
                  onEvent(JSON.parse(line) as EngineEvent);
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
        if (!signal.aborted) onConnection(false, new EngineUnavailableError(`The engine at ${engine.endpoint} closed its event stream.`));
      } catch (error) {
        if (signal.aborted) return;
        onConnection(false, engine.translate('Following engine events', error));
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
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
