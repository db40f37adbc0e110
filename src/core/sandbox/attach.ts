/**
 * Attaching to an interactive agent's terminal: keys in, output out, its size set; detaching leaves it running.
 * An attach first paints the screen as it is now, rebuilt from the end of the agent's output, then passes the live
 * output on, and nudges the agent's size so a full-screen program redraws itself.
 */
import { PassThrough, Transform } from 'node:stream';
import type { Readable, TransformCallback, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Engine } from '../engine/engine';
import { SecretMask } from '../isolation/secrets';
import { SCREEN_SOURCE_BYTES, TerminalGuard } from './terminal';

export interface AgentTerminal {
  /** The screen as it is now, then everything the agent writes (refused terminal commands left out). */
  output: Readable;
  /** Keys for the agent. */
  input: Writable;
  resize(columns: number, rows: number): Promise<void>;
  /** Ends this attachment; the agent runs on. */
  detach(): void;
  /** When the attachment has ended: detached, the detach keys pressed, or the agent gone. */
  ended: Promise<void>;
}

export interface AttachOptions {
  columns: number;
  rows: number;
  /** Keys that end the attachment, in Docker's words (`ctrl-p,ctrl-q`); none: only detach() does. */
  detachKeys?: string;
  /** Values never shown (the sandbox's secrets). */
  masked?: Iterable<string>;
}

/** Docker's words for detach keys: `ctrl-<letter>` or a single character, separated by commas. */
export function checkDetachKeys(keys: string): string | undefined {
  return /^(ctrl-[a-z@[\\\]^_]|[^,\s])(,(ctrl-[a-z@[\\\]^_]|[^,\s]))*$/.test(keys) ? undefined : `"${keys}" is not a key sequence such as ctrl-p,ctrl-q`;
}

/** The bytes a terminal sends for detach keys in Docker's words (`ctrl-p,ctrl-q`: 0x10 0x11). */
export function detachKeyBytes(keys: string): Buffer {
  return Buffer.from(
    keys.split(',').map((key) => {
      const ctrl = /^ctrl-(.)$/.exec(key);
      return ctrl ? ctrl[1].toUpperCase().charCodeAt(0) & 0x1f : key.charCodeAt(0);
    }),
  );
}

/**
 * Passes keys on to the agent until the detach keys come, which it keeps for itself and reports: not every engine
 * honours them (Podman passes them to the agent), so they are watched here as well. The start of the sequence is
 * held until the next key says whether it is one; a key that breaks it lets them through.
 */
export class DetachKeys extends Transform {
  private held = 0;
  private detached = false;

  constructor(
    private readonly sequence: Buffer,
    private readonly onDetach: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    // Once detached, nothing more reaches the agent.
    if (this.detached) return done();
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.sequence[this.held]) {
        this.held++;
        if (this.held === this.sequence.length) {
          this.detached = true;
          if (out.length) this.push(Buffer.from(out));
          this.onDetach();
          return done();
        }
        continue;
      }
      out.push(...this.sequence.subarray(0, this.held));
      this.held = byte === this.sequence[0] ? 1 : 0;
      if (this.held === 0) out.push(byte);
    }
    if (out.length) this.push(Buffer.from(out));
    done();
  }
}

export async function attachTerminal(engine: Engine, container: Docker.Container, what: string, options: AttachOptions): Promise<AgentTerminal> {
  // Attached first, then the past read: nothing written in between is lost (a little may show twice, and the
  // redraw below paints over it).
  const stream = await engine.attach(container.id, { stream: true, stdin: true, stdout: true, stderr: true, ...(options.detachKeys ? { detachKeys: options.detachKeys } : {}) }, what);
  const live: Buffer[] = [];
  const holdLive = (chunk: Buffer) => live.push(chunk);
  stream.on('data', holdLive);
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  // Docker's last lines; Podman's `tail` reorders the pieces of a terminal's lines, so its whole log is read (and
  // only its end kept).
  const docker = (await engine.info()).kind === 'docker';
  const past = await engine.logs(container.id, { follow: false, tty: true, ...(docker ? { tail: 5000 } : {}) });
  past.stderr.resume();
  const chunks: Buffer[] = [];
  let size = 0;
  past.stdout.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    // Only the end rebuilds the screen: older output is let go as it comes.
    while (size - chunks[0].length > SCREEN_SOURCE_BYTES) size -= chunks.shift()!.length;
  });
  await past.done;
  const { screenOf } = await import('./screen');
  const screen = await screenOf(Buffer.concat(chunks), options.columns, options.rows);

  const output = new PassThrough();
  const guard = new TerminalGuard();
  const mask = new SecretMask(options.masked ?? []);
  guard.pipe(mask).pipe(output);
  output.write(screen);
  stream.off('data', holdLive);
  for (const chunk of live) guard.write(chunk);
  stream.pipe(guard);

  const resize = (columns: number, rows: number) =>
    container.resize({ w: Math.max(1, columns), h: Math.max(1, rows) }).then(
      () => undefined,
      () => undefined,
    );
  // A size it already has sends the agent no SIGWINCH: one row less first, then the size, and it redraws.
  if (options.rows > 2) await resize(options.columns, options.rows - 1);
  await resize(options.columns, options.rows);
  return {
    output,
    input: stream as unknown as Writable,
    resize,
    detach: () => stream.destroy(),
    ended,
  };
}
