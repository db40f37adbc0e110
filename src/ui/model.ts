import { mkdirSync, watch } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SandboxConfig } from '../core/config/model';
import type { EngineKind, EngineSelection, EngineVersion } from '../core/engine/engine';
import { ConfigError, EngineUnavailableError, GitError } from '../core/errors';
import { Sandboxes } from '../core/sandboxes';
import type { HostPolicy } from '../core/sandbox/policy';
import type { SandboxInfo } from '../core/sandbox/records';
import type { ChangedFile } from '../core/git/worktrees';
import { SandboxWatcher } from '../core/watcher';
import { CONTEXT_PODMAN_STARTABLE, CONTEXT_STATE } from './ids';

/** How often at most file changes in the sandboxes refresh the view. */
const FILE_REFRESH_MS = 300;

/** What the view can show: mirrors the welcome contents in package.json. */
export type ViewState = 'loading' | 'untrusted' | 'noFolder' | 'notGitRepository' | 'configError' | 'engineUnreachable' | 'noConfig' | 'ready';

/** A sandbox as the view shows it: the core's description, plus what the UI is doing to it. */
export interface SandboxView extends SandboxInfo {
  /** Set while this window builds or creates it. */
  pending?: 'building';
  changes: ChangedFile[];
}

/**
 * The one place the UI learns about sandboxes. It follows the engine's event stream and the worktrees'
 * files, so the view stays right whatever changes them (this window, the CLI, another window), and it
 * never polls.
 */
export class SandboxModel implements vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changeEmitter.event;
  private readonly disposables: vscode.Disposable[] = [this.changeEmitter];
  private sandboxes: Sandboxes | undefined;
  private items: SandboxView[] = [];
  private readonly pending = new Map<string, SandboxView>();
  private watchAbort: AbortController | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private queuedRefresh: Promise<void> | undefined;
  private lastError: Error | undefined;
  /** The engine that answered last: its kind and version. */
  engineVersion: EngineVersion | undefined;
  state: ViewState = 'loading';

  /** Fired for each engine event of this workspace's sandboxes, after the list is refreshed. */
  private readonly eventEmitter = new vscode.EventEmitter<{ name: string; action: string }>();
  readonly onDidSandboxEvent = this.eventEmitter.event;

  constructor(
    private readonly folder: vscode.Uri | undefined,
    /** The editor's engine settings; when they name an engine or a host, they win over sandbox.toml's. */
    private readonly engineSettings: () => Partial<EngineSelection>,
    private readonly configPath: () => string,
    private readonly log: vscode.LogOutputChannel,
    /** What only the user decides (volumes outside the workspace, the engine socket, secrets): never sandbox.toml. */
    private readonly policy: () => Partial<HostPolicy> = () => ({}),
  ) {
    this.disposables.push(this.eventEmitter);
  }

  get core(): Sandboxes | undefined {
    return this.sandboxes;
  }

  get config(): SandboxConfig | undefined {
    return this.sandboxes?.config;
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  get engineKind(): EngineKind | undefined {
    return this.engineVersion?.kind;
  }

  /** Where the engine is (or was looked for). */
  get engineEndpoint(): string | undefined {
    return this.sandboxes?.engine.endpoint;
  }

  /** The socket of a Podman that is installed but whose API service does not run, when that is why the engine is unreachable. */
  get podmanToStart(): string | undefined {
    return this.state === 'engineUnreachable' && this.lastError instanceof EngineUnavailableError ? this.lastError.podmanSocket : undefined;
  }

  get list(): readonly SandboxView[] {
    const merged = [...this.items];
    for (const view of this.pending.values()) if (!merged.some((s) => s.name === view.name)) merged.push(view);
    return merged.sort((a, b) => a.name.localeCompare(b.name));
  }

  find(name: string): SandboxView | undefined {
    return this.list.find((s) => s.name === name);
  }

  /** (Re)opens the workspace: config, repository, engine. Never throws: failures become the view's state. */
  async open(): Promise<void> {
    this.watchAbort?.abort();
    this.sandboxes = undefined;
    this.items = [];
    // Another engine may answer now (the settings or sandbox.toml changed): ask again.
    this.engineVersion = undefined;
    // The error stays with its state until this open settles on another: cleared here, a second open (each
    // settings change opens again) showed "engine unreachable" with no error to say why, as a CI run caught.
    if (!vscode.workspace.isTrusted) return this.settle('untrusted');
    if (!this.folder) return this.settle('noFolder');
    try {
      const configFile = path.resolve(this.folder.fsPath, this.configPath());
      this.sandboxes = await Sandboxes.open(this.folder.fsPath, { engineSettings: this.engineSettings(), configFile, policy: this.policy() });
    } catch (error) {
      this.lastError = error as Error;
      if (error instanceof GitError) return this.setState('notGitRepository');
      if (error instanceof ConfigError) return this.setState('configError');
      this.log.error(`Opening the workspace failed: ${(error as Error).message}`);
      return this.setState('notGitRepository');
    }
    this.watchEngine(this.sandboxes);
    await this.refresh();
  }

  private watchEngine(sandboxes: Sandboxes): void {
    const abort = new AbortController();
    this.watchAbort = abort;
    const watcher = new SandboxWatcher(sandboxes, {
      change: ({ name, action, event }) => {
        this.log.trace(`engine event: ${event.Action} ${name ?? event.Actor.ID}`);
        this.scheduleRefresh();
        // Listeners (the log channels) need the event itself, not the refreshed list: fire it now, always.
        if (name) this.eventEmitter.fire({ name, action });
      },
      connection: (connected, error) => {
        if (connected) {
          this.log.info(`Following events of the engine at ${sandboxes.engine.endpoint}`);
          this.scheduleRefresh();
        } else {
          this.log.warn(error?.message ?? 'The engine stopped answering');
          this.lastError = error;
          this.setState('engineUnreachable');
        }
      },
      egressError: (name, error) => this.log.warn(`Stopping the egress proxy of ${name}: ${error.message}`),
    });
    abort.signal.addEventListener('abort', () => watcher.dispose());
    // Node's own recursive watcher on the sandboxes' folders (worktrees and the agents' git dirs): VS Code's
    // file watcher, measured here, did not reliably report changes under .git/.
    mkdirSync(sandboxes.repo.stateRoot, { recursive: true });
    try {
      const watcher = watch(sandboxes.repo.stateRoot, { recursive: true }, () => this.scheduleRefresh(FILE_REFRESH_MS));
      watcher.on('error', (error) => this.log.warn(`Watching ${sandboxes.repo.stateRoot} failed: ${error.message}; the view follows engine events only`));
      abort.signal.addEventListener('abort', () => watcher.close());
    } catch (error) {
      this.log.warn(`Cannot watch ${sandboxes.repo.stateRoot}: ${(error as Error).message}; the view follows engine events only`);
    }
  }

  /**
   * Coalesces bursts of events (a build, an agent writing many files) into one refresh at most every
   * `delayMs`: a throttle, not a debounce, so a steady stream of writes cannot postpone it for ever.
   */
  scheduleRefresh(delayMs = 150): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, delayMs);
  }

  /**
   * Reloads the list. A call made while a load runs gets a load that starts after it, so what the caller
   * changed just before is always in what it awaits.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.load().finally(() => {
        this.refreshing = undefined;
      });
      return this.refreshing;
    }
    this.queuedRefresh ??= this.refreshing.then(() => {
      this.queuedRefresh = undefined;
      return this.refresh();
    });
    return this.queuedRefresh;
  }

  private async load(): Promise<void> {
    const sandboxes = this.sandboxes;
    if (!sandboxes) return;
    try {
      this.engineVersion ??= await sandboxes.engine.version();
      const infos = await sandboxes.list();
      const items = await Promise.all(infos.map(async (info) => ({ ...info, changes: await sandboxes.changedFiles(info.name).catch(() => []) })));
      // open() may have switched workspace or engine meanwhile: this answer is then about the old one.
      if (this.sandboxes !== sandboxes) return;
      this.items = items;
      this.settle(sandboxes.config.file ? 'ready' : 'noConfig');
    } catch (error) {
      if (this.sandboxes !== sandboxes) return;
      this.lastError = error as Error;
      if (error instanceof EngineUnavailableError) {
        this.engineVersion = undefined;
        this.items = [];
        this.setState('engineUnreachable');
      } else {
        this.log.error(`Listing sandboxes failed: ${(error as Error).message}`);
        this.changeEmitter.fire();
      }
    }
  }

  /** Shows a sandbox as building while `work` creates it. */
  async trackPending<T>(name: string, agent: string, work: () => Promise<T>): Promise<T> {
    this.pending.set(name, { name, agent, state: 'created', pending: 'building', branch: `sandbox/${name}`, base: '', worktree: '', task: '', ports: [], createdAt: '', changes: [] });
    this.changeEmitter.fire();
    try {
      return await work();
    } finally {
      this.pending.delete(name);
      await this.refresh();
    }
  }

  get building(): boolean {
    return this.pending.size > 0;
  }

  /** A state that has no error to go with it. */
  private settle(state: ViewState): void {
    this.lastError = undefined;
    this.setState(state);
  }

  private setState(state: ViewState): void {
    this.state = state;
    void vscode.commands.executeCommand('setContext', CONTEXT_STATE, state);
    void vscode.commands.executeCommand('setContext', CONTEXT_PODMAN_STARTABLE, Boolean(this.podmanToStart));
    this.changeEmitter.fire();
  }

  dispose(): void {
    this.watchAbort?.abort();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const d of this.disposables) d.dispose();
  }
}
