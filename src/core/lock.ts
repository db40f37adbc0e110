import { promises as fs } from 'node:fs';
import { ConflictError } from './errors';

/** A lock older than this was left by a process that died holding it. */
const STALE_MS = 60_000;

/**
 * Runs `work` holding an exclusive lock file, across processes (the CLI and editor windows run side by side).
 * `git worktree add` is not safe against itself in parallel, and the parallel-agent limit must be checked and
 * acted on as one step.
 */
export async function withLock<T>(file: string, work: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      const handle = await fs.open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > STALE_MS) {
        await fs.rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ConflictError(`Timed out waiting for the lock ${file}.`, 'Another agent-sandbox command holds it; if none runs, delete the file.');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 100);
    }
  }
  try {
    return await work();
  } finally {
    await fs.rm(file, { force: true });
  }
}
