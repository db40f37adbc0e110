/**
 * Attach to Agent: an integrated terminal on an interactive agent's own terminal (the core's attach). Keys go to
 * the agent, its output comes back, the terminal's size is the agent's; closing the terminal detaches and the
 * agent runs on. One such terminal per sandbox in this window: attaching again shows the open one.
 */
import { StringDecoder } from 'node:string_decoder';
import * as vscode from 'vscode';
import type { AgentTerminal } from '../core/sandbox/attach';
import type { Sandboxes } from '../core/sandboxes';

/** How much of what an attachment received is kept for its record (the tests read the screen from it). */
const RECORD_CHARS = 64 * 1024;

/** One attachment as it went: what it received (its end), its first chunk (the screen as it was) and when. */
export interface AttachmentRecord {
  name: string;
  /** The last RECORD_CHARS characters written to the terminal. */
  received: string;
  /** The first output: the screen as it was when attached. */
  firstScreen?: string;
  /** From the terminal's open to that first output, in ms. */
  firstScreenMs?: number;
  /** Resizes as the terminal's setDimensions does. */
  resize(columns: number, rows: number): Promise<void>;
  /** Whether the attachment has ended (the terminal closed, or the agent gone). */
  ended: boolean;
}

export class AgentTerminals implements vscode.Disposable {
  private readonly open = new Map<string, vscode.Terminal>();
  private readonly records = new Map<string, AttachmentRecord>();

  /** The sandbox's Attach terminal: the one open in this window, or a new one on a new attachment. */
  attach(core: Sandboxes, name: string): vscode.Terminal {
    const existing = this.open.get(name);
    if (existing && existing.exitStatus === undefined) {
      existing.show();
      return existing;
    }
    const terminal = this.create(core, name);
    this.open.set(name, terminal);
    terminal.show();
    return terminal;
  }

  /** The latest attachment to the sandbox in this window. */
  last(name: string): AttachmentRecord | undefined {
    return this.records.get(name);
  }

  dispose(): void {
    for (const terminal of this.open.values()) terminal.dispose();
    this.open.clear();
  }

  private create(core: Sandboxes, name: string): vscode.Terminal {
    const write = new vscode.EventEmitter<string>();
    const close = new vscode.EventEmitter<void>();
    const decoder = new StringDecoder('utf8');
    let attached: AgentTerminal | undefined;
    let closed = false;
    let exited = false;
    let size = { columns: 120, rows: 30 };
    // Keys typed before the attachment is made (sendText right after the command) reach the agent once it is.
    const early: string[] = [];
    const record: AttachmentRecord = {
      name,
      received: '',
      ended: false,
      resize: async (columns, rows) => {
        size = { columns, rows };
        await attached?.resize(columns, rows);
      },
    };
    this.records.set(name, record);
    const show = (text: string) => {
      if (!text) return;
      record.received = (record.received + text).slice(-RECORD_CHARS);
      write.fire(text);
    };
    let ptyTerminal: vscode.Terminal | undefined;
    // Attaching again, once this one has ended, makes a new terminal.
    const forget = () => {
      if (this.open.get(name) === ptyTerminal) this.open.delete(name);
    };

    const pty: vscode.Pseudoterminal = {
      onDidWrite: write.event,
      onDidClose: close.event,
      open: (dimensions) => {
        const opened = performance.now();
        if (dimensions) size = { columns: dimensions.columns, rows: dimensions.rows };
        const asked = size;
        core.attach(name, asked).then(
          (terminal) => {
            if (closed) return terminal.detach();
            attached = terminal;
            // Resized while attaching: the size it has now.
            if (size !== asked) void terminal.resize(size.columns, size.rows);
            terminal.output.on('data', (chunk: Buffer) => {
              if (record.firstScreenMs === undefined) {
                record.firstScreenMs = performance.now() - opened;
                record.firstScreen = chunk.toString('utf8');
              }
              show(decoder.write(chunk));
            });
            for (const keys of early.splice(0)) terminal.input.write(keys);
            void terminal.ended.then(() => {
              record.ended = true;
              if (closed) return;
              exited = true;
              show(decoder.end());
              show(`\r\n\x1b[2m[The agent of ${name} has ended: this terminal is detached. Press any key to close it.]\x1b[0m\r\n`);
              forget();
            });
          },
          (error: Error) => {
            record.ended = true;
            exited = true;
            show(`\r\nCould not attach to the agent of ${name}: ${error.message}\r\n\x1b[2m[Press any key to close this terminal.]\x1b[0m\r\n`);
            forget();
          },
        );
      },
      handleInput: (data) => {
        if (exited) return close.fire();
        if (attached) attached.input.write(data);
        else early.push(data);
      },
      setDimensions: (dimensions) => void record.resize(dimensions.columns, dimensions.rows),
      close: () => {
        // The user closed the terminal: detach, the agent runs on.
        closed = true;
        record.ended = true;
        attached?.detach();
        forget();
        write.dispose();
        close.dispose();
      },
    };
    ptyTerminal = vscode.window.createTerminal({ name: `Agent: ${name}`, pty, iconPath: new vscode.ThemeIcon('terminal-tmux') });
    return ptyTerminal;
  }
}
