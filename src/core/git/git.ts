import { execFile, spawn } from 'node:child_process';
import { simpleGit } from 'simple-git';
import type { SimpleGit } from 'simple-git';
import { GitError } from '../errors';

/**
 * Config that every host-side git call gets on its command line. The sandboxes' worktrees hold files an
 * agent wrote, and their owner may be another user (the agent's uid), so git must neither run hooks nor
 * refuse the repository for its owner. Command-line config is "protected": a repository cannot override it.
 */
const HARDENED_CONFIG = ['core.hooksPath=/dev/null', 'core.fsmonitor=false', 'safe.directory=*'];

/** `args` with the hardened config before them. */
export function hardenedArgs(args: string[]): string[] {
  return HARDENED_CONFIG.flatMap((c) => ['-c', c]).concat(args);
}

export function hostGit(baseDir: string): SimpleGit {
  return simpleGit({
    baseDir,
    config: HARDENED_CONFIG,
    unsafe: { allowUnsafeHooksPath: true, allowUnsafeFsMonitor: true },
  });
}

/**
 * Runs git directly, with the same hardened config: for stdin (simple-git has none) and for the hot path of
 * `up`, where simple-git's overhead measured as much as git's own work (`git worktree add`: 58 ms alone,
 * 110 to 230 ms through simple-git).
 */
export function gitWithInput(
  cwd: string,
  args: string[],
  input = '',
  env: NodeJS.ProcessEnv = process.env,
  options: { timeoutMs?: number } = {},
): Promise<string> {
  return gitRaw(cwd, args, { input, env, timeoutMs: options.timeoutMs }).then((result) => {
    if (result.code === 0) return result.stdout.toString('utf8');
    throw new GitError(`git ${args[0]} failed: ${result.stderr.trim()}`);
  });
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/**
 * git with the hardened config, resolving with its exit code and raw output whatever the code: for the
 * commands whose exit code is an answer (merge-file, merge-tree) and for binary output. `timeoutMs`: killed
 * after that long (a GitTimeoutError), for git reading files an agent controls, where a FIFO blocks it forever.
 */
export function gitRaw(cwd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<GitResult> {
  const fullArgs = hardenedArgs(args);
  return new Promise((resolve, reject) => {
    const child = spawn('git', fullArgs, { cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), options.timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      if (timedOut) reject(new GitTimeoutError(`git ${args.find((a) => !a.startsWith('-')) ?? ''} did not finish within ${Math.round((options.timeoutMs ?? 0) / 1000)} s and was stopped.`));
      else resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    // git may exit before reading its input (an error, or a command that reads none): not our failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** git killed for taking longer than its caller allowed. */
export class GitTimeoutError extends GitError {}

/** How long one git command reading what an agent wrote (its worktree) may take before it is stopped. */
export const agentGitLimits = { timeoutMs: 60_000 };

/**
 * The environment with every filter driver configured for the host (in any of its config files) switched
 * off: no clean or process command, and not required. Attributes can only name drivers, so none runs.
 */
export async function withoutFilterDrivers(root: string, scope: string[]): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const listed = await gitRaw(root, [...scope, 'config', '-z', '--name-only', '--get-regexp', '^filter\\.']);
  const names = new Set<string>();
  for (const key of listed.stdout.toString('utf8').split('\0')) {
    const last = key.lastIndexOf('.');
    if (key.startsWith('filter.') && last > 'filter.'.length) names.add(key.slice('filter.'.length, last));
  }
  let count = Number(env.GIT_CONFIG_COUNT ?? 0) || 0;
  for (const driver of names) {
    for (const [key, value] of [['clean', ''], ['smudge', ''], ['process', ''], ['required', 'false']]) {
      env[`GIT_CONFIG_KEY_${count}`] = `filter.${driver}.${key}`;
      env[`GIT_CONFIG_VALUE_${count}`] = value;
      count++;
    }
  }
  if (count > 0) env.GIT_CONFIG_COUNT = String(count);
  return env;
}

/** Whether `git` is on PATH at all: a clearer failure than simple-git's spawn error. */
export function assertGitInstalled(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('git', ['--version'], (error) =>
      error
        ? reject(new GitError('git is not installed or not on PATH.', 'Install git (Debian: apt-get install git).'))
        : resolve(),
    );
  });
}
