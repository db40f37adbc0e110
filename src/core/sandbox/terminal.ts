/**
 * An interactive agent's terminal output, as the host passes it on: made safe for the user's own terminal, and
 * made into plain text for a transcript. (Its screen is rebuilt in screen.ts.)
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { stripControls } from '../agents/progress';

/** How much of the end of the output rebuilds the screen: a full-screen program redraws far more often than this. */
export const SCREEN_SOURCE_BYTES = 2 * 1024 * 1024;

// Operating system commands an agent must not send to the user's terminal: clipboard writes and reads (52; a read
// makes the terminal type the user's clipboard into the agent's stdin), kitty's clipboard (5522), iTerm2's file
// transfers and its other commands (1337).
const REFUSED_OSC = ['52', '5522', '1337'];
const LONGEST_OSC_PREFIX = 2 + Math.max(...REFUSED_OSC.map((code) => code.length)) + 1;
const MAX_OSC_BYTES = 1024 * 1024;

/**
 * Passes a terminal's output on without the operating system commands in REFUSED_OSC, across chunk boundaries.
 * A refused command is dropped up to its end (BEL or ST), and an unterminated one up to MAX_OSC_BYTES.
 */
export class TerminalGuard extends Transform {
  private carry = '';
  private dropping = false;
  private dropped = 0;
  private readonly decoder = new StringDecoder('latin1');

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    // latin1 keeps every byte as one character: UTF-8 passes through unchanged.
    this.push(Buffer.from(this.withoutRefused(this.carry + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk))), 'latin1'));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.dropping && this.carry) this.push(Buffer.from(this.carry, 'latin1'));
    done();
  }

  private withoutRefused(text: string): string {
    this.carry = '';
    let out = '';
    let at = 0;
    while (at < text.length) {
      if (this.dropping) {
        // eslint-disable-next-line no-control-regex -- BEL and ST end an operating system command
        const end = text.slice(at).search(/\x07|\x1b\\/);
        if (end < 0) {
          this.dropped += text.length - at;
          if (this.dropped > MAX_OSC_BYTES) this.dropping = false;
          // ST's ESC may end this chunk, its backslash begin the next.
          else if (text.endsWith('\x1b')) this.carry = '\x1b';
          return out;
        }
        at += end + (text[at + end] === '\x07' ? 1 : 2);
        this.dropping = false;
        continue;
      }
      const esc = text.indexOf('\x1b]', at);
      if (esc < 0) {
        // An ESC at the very end may begin a command the next chunk finishes.
        const last = text.lastIndexOf('\x1b');
        if (last >= at && last >= text.length - LONGEST_OSC_PREFIX) {
          out += text.slice(at, last);
          this.carry = text.slice(last);
        } else out += text.slice(at);
        return out;
      }
      out += text.slice(at, esc);
      const rest = text.slice(esc + 2, esc + 2 + LONGEST_OSC_PREFIX);
      // eslint-disable-next-line no-control-regex -- the command's number ends at `;`, BEL or ESC
      const code = /^(\d+)[;\x07\x1b]/.exec(rest);
      if (!code && /^\d*$/.test(rest) && esc + 2 + rest.length >= text.length) {
        // The command's number is not all here yet.
        this.carry = text.slice(esc);
        return out;
      }
      if (code && REFUSED_OSC.includes(code[1])) {
        this.dropping = true;
        this.dropped = 0;
        at = esc + 2 + code[1].length;
        continue;
      }
      out += '\x1b]';
      at = esc + 2;
    }
    return out;
  }
}

/**
 * A terminal's output as plain text for a transcript: control sequences removed, each line as the terminal
 * would end up showing it after carriage returns (a progress bar's last state).
 */
export class TerminalText extends Transform {
  private line = '';
  private readonly decoder = new StringDecoder('utf8');

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    this.append(typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    done();
  }

  override _flush(done: TransformCallback): void {
    this.append(this.decoder.end());
    const last = this.render(this.line);
    if (last.trim()) this.push(`${last}\n`);
    done();
  }

  private append(text: string): void {
    const parts = (this.line + text).split('\n');
    this.line = parts.pop() ?? '';
    // A line longer than this is cut: a terminal program can write without a newline for ever.
    if (this.line.length > 64 * 1024) this.line = this.line.slice(-64 * 1024);
    const lines = parts.map((part) => this.render(part)).filter((line) => line.trim() !== '');
    if (lines.length > 0) this.push(`${lines.join('\n')}\n`);
  }

  private render(raw: string): string {
    // What follows the last carriage return overwrote what came before it on the line.
    const segments = raw.replace(/\r+$/, '').split('\r');
    return stripControls(segments[segments.length - 1]).trimEnd();
  }
}
