import * as vscode from 'vscode';
import { isStuck, progressSummary } from '../core/agents/progress';
import type { AgentProgress } from '../core/agents/progress';
import type { AgentStreamReader } from '../core/agents/progress';
import { COMMAND } from './ids';
import type { SandboxModel } from './model';

interface Stream {
  channel: vscode.OutputChannel;
  abort?: AbortController;
  /** An agent preset's event stream, read as it comes: where the agent is. */
  reader?: AgentStreamReader;
  /** When this window began following it, for telling a stuck agent. */
  since?: number;
  /** What the user was told already: the verdict, or that it is stuck. */
  told?: 'result' | 'stuck';
  /** The end of what the channel holds (VS Code cannot read a channel back), for copying and checking. */
  tail: string;
}

const TAIL_LIMIT = 1024 * 1024;

/**
 * One output channel per sandbox with the agent's output. Each (re)attach reads the log from its first line
 * into a cleared channel, so a reload, a restart of the container or a reattach loses nothing and doubles
 * nothing.
 */
export class LogChannels implements vscode.Disposable {
  private readonly streams = new Map<string, Stream>();
  private readonly subscription: vscode.Disposable;
  private readonly progressEmitter = new vscode.EventEmitter<string>();
  /** Fires with a sandbox's name when its agent preset's progress changed. */
  readonly onDidChangeProgress = this.progressEmitter.event;
  private readonly stuckTimer: NodeJS.Timeout;

  constructor(
    private readonly model: SandboxModel,
    private readonly log: vscode.LogOutputChannel,
    /** Seconds without an event after which an agent counts as stuck. */
    private readonly stuckAfterSeconds: () => number = () => 300,
  ) {
    this.stuckTimer = setInterval(() => this.checkStuck(), 10_000);
    this.subscription = model.onDidSandboxEvent(({ name, action }) => {
      // A restart sends `start` too: attaching on both would read the log twice.
      if (action === 'start') void this.attach(name);
      if (action === 'destroy') this.close(name);
    });
  }

  /** Streams every running sandbox's output, as after a reload. */
  async attachRunning(): Promise<void> {
    for (const sandbox of this.model.list) if (sandbox.state === 'running') await this.attach(sandbox.name);
  }

  /** The last megabyte of what the sandbox's channel shows. */
  received(name: string): string {
    return this.streams.get(name)?.tail ?? '';
  }

  /** Where an agent preset's agent is, as its followed output says; undefined for other sandboxes. */
  progress(name: string): AgentProgress | undefined {
    return this.streams.get(name)?.reader?.progress;
  }

  isAttached(name: string): boolean {
    return Boolean(this.streams.get(name)?.abort);
  }

  channelName(name: string): string {
    return `Sandbox: ${name}`;
  }

  /** Shows the channel; `preserveFocus` when the user did not ask for it (a new sandbox revealing its output). */
  async show(name: string, preserveFocus = false): Promise<void> {
    if (!this.isAttached(name)) await this.attach(name);
    this.streams.get(name)?.channel.show(preserveFocus);
  }

  /** (Re)reads the sandbox's whole output into its channel and follows it while the container runs. */
  async attach(name: string): Promise<void> {
    const core = this.model.core;
    if (!core) return;
    let stream = this.streams.get(name);
    if (!stream) {
      stream = { channel: vscode.window.createOutputChannel(this.channelName(name)), tail: '' };
      this.streams.set(name, stream);
    }
    stream.abort?.abort();
    const abort = new AbortController();
    stream.abort = abort;
    stream.channel.clear();
    stream.tail = '';
    try {
      const logs = await core.logs(name, { follow: true, signal: abort.signal });
      stream.reader = logs.transcript?.reader;
      stream.since = Date.now();
      stream.told = undefined;
      const append = (chunk: Buffer) => {
        if (abort.signal.aborted) return;
        const text = chunk.toString('utf8');
        stream!.channel.append(text);
        stream!.tail = (stream!.tail + text).slice(-TAIL_LIMIT);
        if (stream!.reader) this.progressChanged(name, stream!);
      };
      logs.stdout.on('data', append);
      logs.stderr.on('data', append);
      void logs.done.then(() => {
        if (stream!.abort === abort) stream!.abort = undefined;
      });
    } catch (error) {
      stream.abort = undefined;
      this.log.warn(`Could not read the output of ${name}: ${(error as Error).message}`);
    }
  }

  /** Stops following the sandbox's output; the container keeps running. */
  detach(name: string): void {
    const stream = this.streams.get(name);
    stream?.abort?.abort();
    if (stream) {
      stream.abort = undefined;
      stream.channel.appendLine('\n[Detached: the sandbox keeps running. Show Logs attaches again.]');
    }
  }

  close(name: string): void {
    const stream = this.streams.get(name);
    stream?.abort?.abort();
    stream?.channel.dispose();
    this.streams.delete(name);
  }

  /** Tells the tree, and the user once the stream gives its verdict (from a follow that saw the agent run). */
  private progressChanged(name: string, stream: Stream): void {
    this.progressEmitter.fire(name);
    const progress = stream.reader?.progress;
    if (!progress?.result || stream.told === 'result') return;
    stream.told = 'result';
    const { verdict } = progress.result;
    const text = `${name}: ${progressSummary(progress)}`;
    const show = verdict === 'success' ? vscode.window.showInformationMessage : verdict === 'denied' ? vscode.window.showWarningMessage : vscode.window.showErrorMessage;
    void show(text, 'Review Changes', 'Show Logs').then((choice) => {
      if (choice === 'Review Changes') void vscode.commands.executeCommand(COMMAND.reviewChanges, name);
      if (choice === 'Show Logs') void this.show(name);
    });
  }

  private checkStuck(): void {
    const after = this.stuckAfterSeconds() * 1000;
    for (const [name, stream] of this.streams) {
      const progress = stream.reader?.progress;
      if (!progress || !stream.abort || stream.told || !isStuck(progress, Date.now(), after, stream.since)) continue;
      stream.told = 'stuck';
      this.progressEmitter.fire(name);
      void vscode.window.showWarningMessage(`${name}: the agent has reported nothing for ${Math.round(after / 1000)} s.`, 'Show Logs').then((choice) => {
        if (choice) void this.show(name);
      });
    }
  }

  dispose(): void {
    clearInterval(this.stuckTimer);
    this.progressEmitter.dispose();
    this.subscription.dispose();
    for (const name of [...this.streams.keys()]) this.close(name);
  }
}
