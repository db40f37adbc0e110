import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Transform } from 'node:stream';
import { checkDetachKeys, detachKeyBytes, DetachKeys } from '../../src/core/sandbox/attach';
import { screenOf } from '../../src/core/sandbox/screen';
import { TerminalGuard, TerminalText } from '../../src/core/sandbox/terminal';

/** What a transform makes of `input`, fed whole or one byte at a time. */
async function through(make: () => Transform, input: Buffer, bytewise: boolean): Promise<Buffer> {
  const stream = make();
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer | string) => out.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  const done = new Promise((resolve) => stream.on('end', resolve));
  if (bytewise) for (const byte of input) stream.write(Buffer.from([byte]));
  else stream.write(input);
  stream.end();
  await done;
  return Buffer.concat(out);
}

describe('an interactive agent\'s terminal', () => {
  const hostile = Buffer.from(
    'a\x1b]52;c;SGVsbG8=\x07b\x1b]0;a title\x07c\x1b]1337;File=name=eA==:AAAA\x1b\\d é ✓ \x1b[31mred\x1b[0m\x1b]5522;type=write\x07e\x1b]8;;https://x.test\x1b\\link\x1b]8;;\x1b\\ \x1b]52;p;?\x1b\\f',
    'utf8',
  );
  for (const bytewise of [false, true]) {
    test(`the guard drops clipboard, kitty clipboard and iTerm2 commands and passes the rest, ${bytewise ? 'one byte at a time' : 'whole'}`, async () => {
      const out = (await through(() => new TerminalGuard(), hostile, bytewise)).toString('utf8');
      assert.equal(out, 'ab\x1b]0;a title\x07cd é ✓ \x1b[31mred\x1b[0me\x1b]8;;https://x.test\x1b\\link\x1b]8;;\x1b\\ f');
    });
  }

  test('an unterminated refused command is dropped up to a bound, and what follows it passes', async () => {
    const endless = Buffer.concat([Buffer.from('x\x1b]52;c;'), Buffer.alloc(2 * 1024 * 1024, 'A'), Buffer.from('\x07after')]);
    const out = (await through(() => new TerminalGuard(), endless, false)).toString('latin1');
    assert.ok(out.startsWith('x'));
    assert.ok(out.endsWith('after'));
    assert.ok(out.length < 1024 * 1024 + 16, 'at most the bound of it passes');
  });

  test('the text transcript strips control sequences and keeps what carriage returns leave', async () => {
    const text = (await through(() => new TerminalText(), Buffer.from('\x1b[2J\x1b[Hprogress 10%\rprogress 100%\r\n\x1b[32mok\x1b[0m \x1b]52;c;eA==\x07done\n\n\nlast'), true)).toString();
    assert.equal(text, 'progress 100%\nok done\nlast\n');
  });

  test('the screen is what the output leaves, not the whole history', async () => {
    const history = Buffer.from(`${Array.from({ length: 500 }, (_, i) => `old line ${i}`).join('\r\n')}\r\n\x1b[2J\x1b[Hnow \x1b[1mbold\x1b[0m\r\n$ `);
    const screen = await screenOf(history, 40, 5);
    assert.ok(screen.startsWith('\x1b[H\x1b[2J'), 'painted on a cleared terminal');
    assert.match(screen, /now .*bold/);
    assert.doesNotMatch(screen, /old line/);
  });

  test('detach keys are Docker\'s words', () => {
    assert.equal(checkDetachKeys('ctrl-p,ctrl-q'), undefined);
    assert.equal(checkDetachKeys('ctrl-x'), undefined);
    assert.equal(checkDetachKeys('a,b'), undefined);
    assert.match(checkDetachKeys('ctrl-p ctrl-q') ?? '', /not a key sequence/);
    assert.match(checkDetachKeys('') ?? '', /not a key sequence/);
  });

  test('the detach keys are kept from the agent and end the attachment; a broken sequence passes on', async () => {
    assert.deepEqual([...detachKeyBytes('ctrl-p,ctrl-q')], [0x10, 0x11]);
    assert.deepEqual([...detachKeyBytes('ctrl-x')], [0x18]);
    for (const bytewise of [false, true]) {
      let detached = 0;
      const out = await through(() => new DetachKeys(detachKeyBytes('ctrl-p,ctrl-q'), () => detached++), Buffer.from('ab\x10c\x10\x10\x11 rest'), bytewise);
      assert.equal(out.toString('latin1'), 'ab\x10c\x10', 'the keys before the sequence, a lone ctrl-p included, and nothing after it');
      assert.equal(detached, 1);
    }
  });
});
