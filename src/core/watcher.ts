/**
 * The one way a front end follows a workspace's sandboxes: the engine's events filtered to this workspace's
 * sandboxes, with what the core does on them itself (an agent that died has its egress path settled), passed
 * on as changes. The editor's view follows it for as long as a workspace is open; the CLI while it follows an
 * agent's output.
 */
import { watchEngineEvents } from './engine/engine';
import type { EngineEvent } from './engine/engine';
import { LABEL } from './engine/labels';
import type { Sandboxes } from './sandboxes';

/** Something to let go of; the editor's `Disposable` has this shape too. */
export interface Disposable {
  dispose(): void;
}

/** An engine event of one of the workspace's sandboxes. */
export interface SandboxChange {
  /** The sandbox's name, when its container carries one. */
  name: string | undefined;
  /** The event's action without its detail: `start`, `die`, `destroy`, `exec_start`... */
  action: string;
  event: EngineEvent;
}

export interface SandboxWatchListener {
  /** Each engine event of one of the workspace's sandboxes. */
  change?(change: SandboxChange): void;
  /** The event stream (re)connected, or was lost and is being reconnected (with why). */
  connection?(connected: boolean, error?: Error): void;
  /** Settling the egress path of an agent that died failed. */
  egressError?(name: string, error: Error): void;
}

export class SandboxWatcher implements Disposable {
  private readonly abort = new AbortController();
  private readonly settling = new Set<Promise<void>>();

  constructor(
    private readonly sandboxes: Sandboxes,
    private readonly listener: SandboxWatchListener,
  ) {
    const signal = this.abort.signal;
    watchEngineEvents(
      sandboxes.engine,
      [`${LABEL.workspace}=${sandboxes.repo.root}`],
      (event) => {
        if (signal.aborted) return;
        const name = event.Actor.Attributes[LABEL.name];
        listener.change?.({ name, action: event.Action.split(':')[0], event });
        // An allowlisted agent that ended leaves its proxy with nothing to serve.
        if (name && event.Action === 'die') this.settle(name);
      },
      (connected, error) => {
        if (!signal.aborted) listener.connection?.(connected, error);
      },
      signal,
    );
  }

  private settle(name: string): void {
    const settled: Promise<void> = this.sandboxes
      .settleEgress(name)
      .catch((error: Error) => this.listener.egressError?.(name, error))
      .finally(() => this.settling.delete(settled));
    this.settling.add(settled);
  }

  /** Stops following the engine's events. */
  dispose(): void {
    this.abort.abort();
  }

  /** Stops following, and waits for what the events seen so far started (an egress path being settled). */
  async close(): Promise<void> {
    this.dispose();
    await Promise.all(this.settling);
  }
}
