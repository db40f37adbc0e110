import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { demultiplex } from '../../src/core/engine/demux';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function collect(stream: PassThrough): () => string {
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  return () => Buffer.concat(parts).toString();
}

test('splits stdout and stderr frames, keeping each stream in order', () => {
  const source = new PassThrough();
  const out = new PassThrough();
  const err = new PassThrough();
  const stdout = collect(out);
  const stderr = collect(err);
  demultiplex(source, out, err);
  source.write(Buffer.concat([frame(1, 'a\n'), frame(1, 'b\n'), frame(2, 'oops\n'), frame(1, 'c\n')]));
  assert.equal(stdout(), 'a\nb\nc\n');
  assert.equal(stderr(), 'oops\n');
});

test('reassembles frames split across chunks at any byte, headers included', () => {
  const whole = Buffer.concat([frame(1, 'first line\n'), frame(2, 'to stderr\n'), frame(1, 'x'.repeat(70_000))]);
  for (const cut of [1, 3, 8, 9, 15, 25, whole.length - 1]) {
    const source = new PassThrough();
    const out = new PassThrough();
    const err = new PassThrough();
    const stdout = collect(out);
    const stderr = collect(err);
    demultiplex(source, out, err);
    source.write(whole.subarray(0, cut));
    source.write(whole.subarray(cut));
    assert.equal(stdout(), `first line\n${'x'.repeat(70_000)}`, `cut at ${cut}`);
    assert.equal(stderr(), 'to stderr\n', `cut at ${cut}`);
  }
});

test('handles 100,000 frames in one chunk without recursion and in few writes', () => {
  const source = new PassThrough();
  const out = new PassThrough();
  const err = new PassThrough();
  let writes = 0;
  const original = out.write.bind(out);
  out.write = ((chunk: Buffer) => {
    writes++;
    return original(chunk);
  }) as typeof out.write;
  const stdout = collect(out);
  demultiplex(source, out, err);
  source.write(Buffer.concat(Array.from({ length: 100_000 }, (_, i) => frame(1, `line ${i}\n`))));
  const lines = stdout().split('\n');
  assert.equal(lines.length, 100_001);
  assert.equal(lines[99_999], 'line 99999');
  assert.equal(writes, 1);
});
