import type { Readable, Writable } from 'node:stream';

const HEADER = 8;

/**
 * Splits the engine's multiplexed stream (an 8-byte header per frame: stream type, then a big-endian
 * length) into stdout and stderr. docker-modem's own demuxStream recurses once per frame and overflows the
 * stack on long logs handed over in one piece, so this one loops.
 */
export function demultiplex(source: Readable, stdout: Writable, stderr: Writable): void {
  let pending: Buffer = Buffer.alloc(0);
  source.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    // One write per run of frames of the same stream, not one per frame (a frame is often a single line).
    let run: Buffer[] = [];
    let runTarget: Writable | undefined;
    const flush = () => {
      if (runTarget && run.length) runTarget.write(run.length === 1 ? run[0] : Buffer.concat(run));
      run = [];
    };
    while (pending.length - offset >= HEADER) {
      const size = pending.readUInt32BE(offset + 4);
      if (pending.length - offset - HEADER < size) break;
      const target = pending[offset] === 2 ? stderr : stdout;
      if (target !== runTarget) {
        flush();
        runTarget = target;
      }
      run.push(pending.subarray(offset + HEADER, offset + HEADER + size));
      offset += HEADER + size;
    }
    flush();
    pending = pending.subarray(offset);
  });
}
