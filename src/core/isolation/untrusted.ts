/**
 * Reading files that an agent controls (its private git directory, its worktree) as data. An agent can put a
 * FIFO there (an ordinary read blocks a thread of the editor's pool for good), a link to `/dev/zero` or to
 * another of the user's files, or a file of any size, and can swap one for another while the host reads.
 * So a file is opened without following a link and without blocking, must be a regular file once open, must
 * have been reached through no link at all, and is read up to a cap.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fs, readlinkSync, readSync, realpathSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0);

/** Why a file an agent controls was not read. */
export class UntrustedFileError extends Error {
  constructor(
    /** The file, relative to the folder it was read from. */
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = new.target.name;
  }
}

function assertPlainPath(relative: string): void {
  if (relative.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new UntrustedFileError(relative, 'not a plain path');
}

/** An open that failed: undefined where the file is not there, else why it is refused. */
function absentOrRefused(error: unknown, relative: string): undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  if (code === 'ELOOP' || code === 'EMLINK') throw new UntrustedFileError(relative, 'a symbolic link');
  throw new UntrustedFileError(relative, `cannot be opened (${code ?? (error as Error).message})`);
}

function assertRegularWithin(stat: { isFile(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; size: number }, relative: string, maxBytes: number): void {
  if (!stat.isFile()) throw new UntrustedFileError(relative, stat.isFIFO() ? 'a FIFO, not a file' : stat.isCharacterDevice() || stat.isBlockDevice() ? 'a device, not a file' : 'not a regular file');
  if (stat.size > maxBytes) throw new UntrustedFileError(relative, `${stat.size} bytes, more than the ${maxBytes} allowed`);
}

/**
 * Opens `relative` (with forward slashes, no `..`) below `root`, which the host made and the agent cannot
 * replace. Undefined where the file does not exist; an UntrustedFileError where it is not a regular file, is a
 * link, lies beyond a link, or is larger than `maxBytes`.
 */
async function openUntrusted(root: string, relative: string, maxBytes: number): Promise<{ handle: FileHandle; size: number } | undefined> {
  assertPlainPath(relative);
  const full = path.join(root, relative);
  let handle: FileHandle;
  try {
    handle = await fs.open(full, OPEN_FLAGS);
  } catch (error) {
    return absentOrRefused(error, relative);
  }
  try {
    const stat = await handle.stat();
    assertRegularWithin(stat, relative, maxBytes);
    await assertReachedWithoutLinks(handle, root, relative);
    return { handle, size: stat.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * O_NOFOLLOW only covers the last part of a path: a folder on the way may be a link the agent made (to another
 * repository's refs, say). Where the system names an open file's path (/proc/self/fd), that path must be the one
 * asked for, which no swap after the open can change; elsewhere each folder on the way is checked with lstat.
 */
async function assertReachedWithoutLinks(handle: FileHandle, root: string, relative: string): Promise<void> {
  const expected = path.join(await realRoot(root), relative);
  const opened = await fs.readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
  if (opened !== undefined) {
    // Replaced after the open (git writes a ref to a lock file and renames it over the old one): what was read
    // was still the file at that path.
    if (opened !== expected && opened !== `${expected} (deleted)`) throw new UntrustedFileError(relative, 'reached through a symbolic link');
    return;
  }
  const parts = relative.split('/');
  for (let i = 1; i < parts.length; i++) {
    const stat = await fs.lstat(path.join(root, ...parts.slice(0, i)));
    if (!stat.isDirectory()) throw new UntrustedFileError(relative, 'reached through a symbolic link');
  }
}

const realRoots = new Map<string, Promise<string>>();

function realRoot(root: string): Promise<string> {
  let real = realRoots.get(root);
  if (!real) {
    real = fs.realpath(root);
    realRoots.set(root, real);
    // A failed or stale answer is not kept.
    real.catch(() => realRoots.delete(root));
    if (realRoots.size > 256) realRoots.delete(realRoots.keys().next().value as string);
  }
  return real;
}

/** A regular file's bytes, read as described above; undefined where it does not exist. */
export async function readUntrustedFile(root: string, relative: string, maxBytes: number): Promise<Buffer | undefined> {
  const opened = await openUntrusted(root, relative, maxBytes);
  if (!opened) return undefined;
  try {
    // Never more than the cap, even from a file that grows while it is read.
    const buffer = Buffer.alloc(Math.min(opened.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await opened.handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw new UntrustedFileError(relative, `more than the ${maxBytes} bytes allowed`);
    return buffer.subarray(0, length);
  } finally {
    await opened.handle.close();
  }
}

/**
 * Copies a regular file (read as described above) to `destination`, a new file of the host's; at most
 * `maxBytes`. Returns the bytes copied, or undefined where the file does not exist.
 */
export async function copyUntrustedFile(root: string, relative: string, destination: string, maxBytes: number): Promise<number | undefined> {
  const opened = await openUntrusted(root, relative, maxBytes);
  if (!opened) return undefined;
  const out = await fs.open(destination, 'wx', 0o600);
  try {
    const chunk = Buffer.alloc(Math.min(Math.max(opened.size, 1), 1024 * 1024));
    let total = 0;
    for (;;) {
      const { bytesRead } = await opened.handle.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw new UntrustedFileError(relative, `more than the ${maxBytes} bytes allowed`);
      await out.write(chunk, 0, bytesRead);
    }
    return total;
  } finally {
    await Promise.all([opened.handle.close(), out.close()]);
  }
}

/** The size up to which copySmallUntrustedFileSync copies; beyond it the caller copies with copyUntrustedFile. */
export const SMALL_FILE_BYTES = 256 * 1024;

/**
 * copyUntrustedFile for the many small files of a git directory (loose objects), without a trip through the
 * thread pool for each system call: the same checks, synchronously, which cannot block (the open does not wait
 * on a FIFO, and only a regular file of at most SMALL_FILE_BYTES is read). Returns the bytes copied, undefined
 * where the file does not exist, or 'large' where it is a regular file larger than SMALL_FILE_BYTES.
 */
export function copySmallUntrustedFileSync(root: string, relative: string, destination: string, maxBytes: number): number | undefined | 'large' {
  assertPlainPath(relative);
  let fd: number;
  try {
    fd = openSync(path.join(root, relative), OPEN_FLAGS);
  } catch (error) {
    return absentOrRefused(error, relative);
  }
  try {
    const stat = fstatSync(fd);
    assertRegularWithin(stat, relative, maxBytes);
    if (stat.size > SMALL_FILE_BYTES) return 'large';
    const expected = path.join(realRootSync(root), relative);
    let opened: string | undefined;
    try {
      opened = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      opened = undefined;
    }
    if (opened === undefined) {
      const parts = relative.split('/');
      for (let i = 1; i < parts.length; i++) {
        if (!lstatIsDirectory(path.join(root, ...parts.slice(0, i)))) throw new UntrustedFileError(relative, 'reached through a symbolic link');
      }
    } else if (opened !== expected && opened !== `${expected} (deleted)`) {
      throw new UntrustedFileError(relative, 'reached through a symbolic link');
    }
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) break;
      length += read;
    }
    if (length > maxBytes || length > SMALL_FILE_BYTES) throw new UntrustedFileError(relative, 'grew while it was read');
    writeFileSync(destination, buffer.subarray(0, length), { flag: 'wx', mode: 0o600 });
    return length;
  } finally {
    closeSync(fd);
  }
}

const realRootsSync = new Map<string, string>();

function realRootSync(root: string): string {
  let real = realRootsSync.get(root);
  if (real === undefined) {
    real = realpathSync(root);
    if (realRootsSync.size > 256) realRootsSync.clear();
    realRootsSync.set(root, real);
  }
  return real;
}

function lstatIsDirectory(dir: string): boolean {
  try {
    return lstatSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The entries of a folder the agent controls, by name and kind, never through a link: undefined where it does
 * not exist or is not a folder (a link to one included).
 */
export async function listUntrustedDir(root: string, relative: string): Promise<Array<{ name: string; file: boolean; dir: boolean }> | undefined> {
  const full = relative ? path.join(root, relative) : root;
  const stat = await fs.lstat(full).catch(() => undefined);
  if (!stat?.isDirectory()) return undefined;
  // A swap to a link between the lstat and the read lists another folder: what is then read from it is still
  // opened through openUntrusted, which refuses every path through a link.
  const entries = await fs.readdir(full, { withFileTypes: true }).catch(() => undefined);
  return entries?.map((e) => ({ name: e.name, file: e.isFile(), dir: e.isDirectory() }));
}
