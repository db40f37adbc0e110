import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withLock } from '../../src/core/lock';
import { ConflictError } from '../../src/core/errors';

const LOCK_MODULE = path.resolve(__dirname, '../../src/core/lock.js');

/**
 * A separate process that takes the lock, appends `<id> in` to the journal, works `holdMs`, appends `<id> out`
 * and releases. Each process is a real holder: its own pid, its own token.
 */
function holder(lock: string, journal: string, id: string, holdMs: number, staleMs: number, timeoutMs = 20_000): ChildProcess & { done: Promise<number> } {
  const script = `
    const { appendFileSync } = require('node:fs');
    const { withLock } = require(${JSON.stringify(LOCK_MODULE)});
    const note = (what) => appendFileSync(${JSON.stringify(journal)}, ${JSON.stringify(id)} + ' ' + what + '\\n');
    withLock(${JSON.stringify(lock)}, async () => {
      note('in');
      await new Promise((r) => setTimeout(r, ${holdMs}));
      note('out');
    }, { staleMs: ${staleMs}, timeoutMs: ${timeoutMs} }).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Object.assign(child, { done: exited(child) });
}

/** Call right after spawn: the exit code (-1 when killed by a signal). */
function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : 0))));
}

async function journalLines(journal: string): Promise<string[]> {
  return (await readFile(journal, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** No two holders inside at once: every `in` is followed by its own `out` before the next `in`. */
function assertOneAtATime(lines: string[]): void {
  for (let i = 0; i < lines.length; i += 2) {
    const [id, what] = lines[i].split(' ');
    assert.equal(what, 'in', lines.join(' | '));
    assert.equal(lines[i + 1], `${id} out`, `${id} was not alone holding the lock: ${lines.join(' | ')}`);
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-lock-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('withLock across processes', () => {
  test('a holder working far longer than the stale time keeps its lock: the waiter enters only after it, and its release leaves the waiter\'s lock', async () => {
    const lock = path.join(dir, 'long.lock');
    const journal = path.join(dir, 'long.journal');
    // Held ten times the stale time: a lock judged by age alone would be taken over after 150 ms.
    const a = holder(lock, journal, 'A', 1500, 150);
    await until('A to hold the lock', async () => (await journalLines(journal)).includes('A in'));
    const b = holder(lock, journal, 'B', 600, 150);
    // While B holds it, A's release (which came first) must not have removed B's file.
    await until('B to hold the lock', async () => (await journalLines(journal)).includes('B in'));
    assert.ok(existsSync(lock), 'B holds the lock, so its file is there');
    assert.deepEqual(await Promise.all([a.done, b.done]), [0, 0]);
    const lines = await journalLines(journal);
    assert.deepEqual(lines, ['A in', 'A out', 'B in', 'B out']);
    assert.equal(existsSync(lock), false, 'released');
  });

  test('five processes racing for a lock held longer than its stale time: one at a time, all of them', async () => {
    const lock = path.join(dir, 'race.lock');
    const journal = path.join(dir, 'race.journal');
    const children = ['P1', 'P2', 'P3', 'P4', 'P5'].map((id) => holder(lock, journal, id, 300, 100));
    assert.deepEqual(await Promise.all(children.map((c) => c.done)), [0, 0, 0, 0, 0]);
    const lines = await journalLines(journal);
    assert.equal(lines.length, 10, lines.join(' | '));
    assertOneAtATime(lines);
  });

  test('a holder killed while holding: the lock is taken over at once on this machine, without waiting for it to go stale', async () => {
    const lock = path.join(dir, 'killed.lock');
    const journal = path.join(dir, 'killed.journal');
    const a = holder(lock, journal, 'A', 60_000, 60_000);
    await until('A to hold the lock', async () => (await journalLines(journal)).includes('A in'));
    a.kill('SIGKILL');
    await a.done;
    const started = Date.now();
    await withLock(lock, async () => undefined, { staleMs: 60_000, timeoutMs: 5000 });
    assert.ok(Date.now() - started < 5000);
  });
});

describe('withLock, one process', () => {
  test('releases only its own lock: a file another holder wrote in its place stays', async () => {
    const lock = path.join(dir, 'own.lock');
    const other = JSON.stringify({ token: 'someone-else', pid: process.pid, host: os.hostname() });
    await withLock(lock, async () => {
      await writeFile(lock, other);
    });
    assert.equal(await readFile(lock, 'utf8'), other);
    await rm(lock);
  });

  test('a lock of a live process on this machine is never taken over, however old its file', async () => {
    const lock = path.join(dir, 'live.lock');
    await writeFile(lock, JSON.stringify({ token: 't', pid: process.pid, host: os.hostname() }));
    const old = new Date(Date.now() - 3600_000);
    await utimes(lock, old, old);
    await assert.rejects(
      withLock(lock, async () => undefined, { staleMs: 50, timeoutMs: 300 }),
      (error: unknown) => error instanceof ConflictError && /held by process \d+/.test(error.message) && /still working/.test(error.hint ?? ''),
    );
    await rm(lock);
  });

  test('a lock from another machine is judged by its age: fresh it is waited for, stale it is taken over', async () => {
    const lock = path.join(dir, 'remote.lock');
    await writeFile(lock, JSON.stringify({ token: 't', pid: 1, host: 'elsewhere.invalid' }));
    await assert.rejects(withLock(lock, async () => undefined, { staleMs: 5000, timeoutMs: 200 }), ConflictError);
    const old = new Date(Date.now() - 10_000);
    await utimes(lock, old, old);
    assert.equal(await withLock(lock, async () => 'taken', { staleMs: 5000, timeoutMs: 1000 }), 'taken');
  });

  test('a lock of an older version (a bare pid) of a process that is gone is taken over', async () => {
    const lock = path.join(dir, 'legacy.lock');
    const gone = spawn(process.execPath, ['-e', '']);
    await exited(gone);
    await writeFile(lock, String(gone.pid));
    assert.equal(await withLock(lock, async () => 'taken', { staleMs: 60_000, timeoutMs: 1000 }), 'taken');
  });

  test('the holder keeps its file fresh while it works', async () => {
    const lock = path.join(dir, 'fresh.lock');
    await withLock(
      lock,
      async () => {
        const old = new Date(Date.now() - 3600_000);
        await utimes(lock, old, old);
        await new Promise((r) => setTimeout(r, 150));
        const { mtimeMs } = await import('node:fs').then((fs) => fs.statSync(lock));
        assert.ok(Date.now() - mtimeMs < 1000, 'touched again');
      },
      { staleMs: 100 },
    );
  });
});
