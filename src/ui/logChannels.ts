import * as vscode from 'vscode';
import type { SandboxModel } from './model';

interface Stream {
  channel: vscode.OutputChannel;
  abort?: AbortController;
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

  constructor(
    private readonly model: SandboxModel,
    private readonly log: vscode.LogOutputChannel,
  ) {
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
      const append = (chunk: Buffer) => {
        if (abort.signal.aborted) return;
        const text = chunk.toString('utf8');
        stream!.channel.append(text);
        stream!.tail = (stream!.tail + text).slice(-TAIL_LIMIT);
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

  dispose(): void {
    this.subscription.dispose();
    for (const name of [...this.streams.keys()]) this.close(name);
  }
}
