import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConflictError } from './errors';

export interface LockOptions {
  /** How long to wait for the lock before giving up. */
  timeoutMs?: number;
  /**
   * A lock whose file has not been touched for this long, held by a process on another machine (or one whose
   * liveness cannot be told), was left by a holder that died. Holders touch it every staleMs / 4.
   */
  staleMs?: number;
}

/** What a lock file holds: who holds it, and the token only that holder knows. */
interface Holder {
  token: string;
  pid: number;
  host: string;
  /** The process's start time (Linux: /proc/PID/stat), so a reused pid is not taken for the holder. */
  start?: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_STALE_MS = 30_000;

/**
 * Runs `work` holding an exclusive lock file, across processes (the CLI and editor windows run side by side).
 * `git worktree add` is not safe against itself in parallel, and the parallel-agent limit must be checked and
 * acted on as one step.
 *
 * A lock is never taken from a live holder, however long it works: the holder touches the file while it holds
 * it, and a holder on this machine is checked by pid and start time. A dead holder's lock is taken over at
 * once (same machine) or once its file is stale (another machine sharing the folder). Taking over is itself
 * serialized (`FILE.break`), so two waiters cannot both remove a dead lock and one the other just made; and
 * release removes the file only while it still holds this holder's token.
 */
export async function withLock<T>(file: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, staleMs = DEFAULT_STALE_MS } = options;
  const me = newHolder();
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    if (await tryCreate(file, me)) break;
    const broken = await breakIfDead(file, staleMs);
    if (broken) continue;
    if (Date.now() > deadline) {
      const holder = await readHolder(file);
      throw new ConflictError(
        `Timed out waiting for the lock ${file}${holder ? ` (held by process ${holder.pid} on ${holder.host})` : ''}.`,
        'Another Agent Sandboxes command (in an editor or a terminal) holds it and is still working: try again when it is done. If none runs, delete the file.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
  // Keep the lock fresh for as long as the work takes; a holder on another machine judges it by this.
  const touch = setInterval(() => {
    const now = new Date();
    void fs.utimes(file, now, now).catch(() => undefined);
  }, Math.max(10, Math.floor(staleMs / 4)));
  touch.unref();
  try {
    return await work();
  } finally {
    clearInterval(touch);
    await releaseOwn(file, me.token);
  }
}

/** This process as a holder, with a token of its own for each lock it takes. */
function newHolder(): Holder {
  return { token: randomBytes(16).toString('hex'), pid: process.pid, host: hostname(), start: startTime(process.pid) };
}

async function tryCreate(file: string, holder: Holder): Promise<boolean> {
  let handle;
  try {
    handle = await fs.open(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(holder));
  } finally {
    await handle.close();
  }
  return true;
}

/** The holder a lock file names; a lock of an older version holds only a pid. Undefined: no file, or not written yet. */
async function readHolder(file: string): Promise<Holder | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Holder>;
    if (typeof parsed === 'number') return { token: text, pid: parsed, host: hostname() };
    if (typeof parsed.token === 'string' && typeof parsed.pid === 'number' && typeof parsed.host === 'string') return parsed as Holder;
  } catch {
    // A file being written right now, or not ours: judged by its age alone.
  }
  return undefined;
}

/**
 * Whether the holder of `file` is gone: on this machine, its process no longer runs (or the pid now belongs
 * to another process); elsewhere, or when the file says nothing readable, the file was not touched for
 * `staleMs`.
 */
export async function holderIsDead(file: string, staleMs: number): Promise<boolean> {
  const [holder, stat] = await Promise.all([readHolder(file), fs.stat(file).catch(() => undefined)]);
  if (!stat) return false;
  if (holder && holder.host === hostname()) return !processRuns(holder.pid, holder.start);
  return Date.now() - stat.mtimeMs > staleMs;
}

/**
 * Removes a dead holder's lock, under `FILE.break` so that no other waiter removes a lock in the meantime.
 * True when this call removed it.
 */
async function breakIfDead(file: string, staleMs: number): Promise<boolean> {
  if (!(await holderIsDead(file, staleMs))) return false;
  const breaker = newHolder();
  const breakFile = `${file}.break`;
  if (!(await tryCreate(breakFile, breaker))) {
    // Another waiter is breaking it (a few milliseconds), or died doing so: then its break file goes the same way.
    if (await holderIsDead(breakFile, staleMs)) await fs.rm(breakFile, { force: true });
    return false;
  }
  try {
    // Judged again under the break lock: the lock may have been released and taken anew since.
    if (!(await holderIsDead(file, staleMs))) return false;
    await fs.rm(file, { force: true });
    return true;
  } finally {
    await releaseOwn(breakFile, breaker.token);
  }
}

/** Removes the lock only while it is still this holder's. */
async function releaseOwn(file: string, token: string): Promise<void> {
  const holder = await readHolder(file);
  if (holder?.token === token) await fs.rm(file, { force: true });
}

function processRuns(pid: number, start: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it runs, as another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = startTime(pid);
  return now === undefined || now === start;
}

/** A process's start time in clock ticks since boot (Linux); undefined where /proc does not tell. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
