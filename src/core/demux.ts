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
    while (pending.length - offset >= HEADER) {
      const size = pending.readUInt32BE(offset + 4);
      if (pending.length - offset - HEADER < size) break;
      const payload = pending.subarray(offset + HEADER, offset + HEADER + size);
      (pending[offset] === 2 ? stderr : stdout).write(payload);
      offset += HEADER + size;
    }
    pending = pending.subarray(offset);
  });
}
