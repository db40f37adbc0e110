import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { formatWarning } from '../core/config';
import { errorMessage, SandboxError } from '../core/errors';
import { Sandboxes } from '../core/sandboxes';
import type { SandboxInfo } from '../core/sandboxes';
import { describeSyncResult, SYNC_MODES } from '../core/sync';
import type { ConflictPolicy, SyncMode } from '../core/sync';

const USAGE = `agent-sandbox: run coding agents in containers, each on its own git worktree

Usage:
  agent-sandbox up NAME [--agent ROLE] [--task TEXT] [--base REF] [--wait] [--follow]
  agent-sandbox ls [--json]
  agent-sandbox logs NAME [--follow]
  agent-sandbox exec NAME -- CMD [ARG...]
  agent-sandbox stop NAME
  agent-sandbox start NAME
  agent-sandbox build [--agent ROLE] [--force]
  agent-sandbox rm NAME [--force]
  agent-sandbox diff NAME [--stat] [--files PATH...]
  agent-sandbox sync NAME --mode merge|squash|cherry-pick|patch [--files PATH...]
                     [--on-conflict stop|merge] [--output FILE] [--force]

Every command takes --workspace DIR (default: the current directory).
The workspace's sandbox.toml configures images, limits, network and agent roles.
diff and sync include what the agent left uncommitted. sync never overwrites, resets or stashes your own
uncommitted work: where the agent's changes meet it, sync stops before changing anything and names the
files (--on-conflict stop, the default), or merges three ways and leaves conflict markers to resolve
(--on-conflict merge; exit status 3). patch writes to --output (default: sandbox-NAME.patch here).`;

/** Thrown for a command line that does not parse: exit status 2 and the usage. */
class UsageError extends SandboxError {}

const COMMON = {
  workspace: { type: 'string', short: 'w' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS: Record<string, ParseArgsConfig['options']> = {
  up: { ...COMMON, agent: { type: 'string', short: 'a' }, task: { type: 'string', short: 't' }, base: { type: 'string' }, wait: { type: 'boolean' }, follow: { type: 'boolean', short: 'f' } },
  ls: COMMON,
  logs: { ...COMMON, follow: { type: 'boolean', short: 'f' } },
  exec: COMMON,
  stop: COMMON,
  start: COMMON,
  build: { ...COMMON, agent: { type: 'string', short: 'a' }, force: { type: 'boolean' } },
  rm: { ...COMMON, force: { type: 'boolean' } },
  diff: { ...COMMON, stat: { type: 'boolean' }, files: { type: 'string', multiple: true } },
  sync: {
    ...COMMON,
    mode: { type: 'string', short: 'm' },
    files: { type: 'string', multiple: true },
    'on-conflict': { type: 'string' },
    output: { type: 'string', short: 'o' },
    force: { type: 'boolean' },
  },
};

/** `sync` left conflict markers for the user to resolve: done, but not cleanly. */
const EXIT_CONFLICTS = 3;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const options = OPTIONS[command];
  if (!options) throw new UsageError(`Unknown command "${command}".`, USAGE);
  // exec passes everything after `--` to the container untouched.
  const split = command === 'exec' ? rest.indexOf('--') : -1;
  const ours = split >= 0 ? rest.slice(0, split) : rest;
  const theirs = split >= 0 ? rest.slice(split + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({ args: ours, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, USAGE);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let positionals = parsed.positionals;
  // `--files a b c`: the paths after the first one arrive as positionals.
  const files = values.files as unknown as string[] | undefined;
  if (files) {
    files.push(...positionals.slice(1));
    positionals = positionals.slice(0, 1);
  }
  const needName = (): string => {
    if (positionals.length !== 1) throw new UsageError(`agent-sandbox ${command} takes one sandbox NAME.`, USAGE);
    return positionals[0];
  };
  const sandboxes = await Sandboxes.open(path.resolve(String(values.workspace ?? process.cwd())));
  for (const warning of sandboxes.config.warnings) process.stderr.write(`warning: ${formatWarning(warning)}\n`);
  const json = Boolean(values.json);

  switch (command) {
    case 'up': {
      const name = needName();
      const info = await sandboxes.up({
        name,
        agent: values.agent as string | undefined,
        task: values.task as string | undefined,
        base: values.base as string | undefined,
        output: (text) => process.stderr.write(text),
      });
      if (json) printJson(info);
      else process.stderr.write(`Sandbox ${name} is ${info.state}: agent ${info.agent} on ${info.branch}, worktree ${info.worktree}\n`);
      if (values.follow) await followLogs(sandboxes, name);
      if (values.wait) return sandboxes.wait(name);
      return 0;
    }
    case 'ls': {
      const list = await sandboxes.list();
      if (json) printJson(list);
      else process.stdout.write(formatTable(list));
      for (const s of list) if (s.importError) process.stderr.write(`agent-sandbox: ${s.importError}\n`);
      return 0;
    }
    case 'logs': {
      const name = needName();
      if (values.follow) await followLogs(sandboxes, name);
      else {
        const logs = await sandboxes.logs(name, { follow: false });
        logs.stdout.pipe(process.stdout, { end: false });
        logs.stderr.pipe(process.stderr, { end: false });
        await logs.done;
        await drained(process.stdout);
      }
      return 0;
    }
    case 'exec': {
      const name = needName();
      if (theirs.length === 0) throw new UsageError('agent-sandbox exec NAME -- CMD: the command is missing.', USAGE);
      const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
      if (tty) process.stdin.setRawMode(true);
      try {
        return await sandboxes.exec(name, theirs, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, tty });
      } finally {
        if (tty) process.stdin.setRawMode(false);
        process.stdin.pause();
      }
    }
    case 'stop':
      await sandboxes.stop(needName());
      return 0;
    case 'start':
      await sandboxes.start(needName());
      return 0;
    case 'build': {
      const result = await sandboxes.build(values.agent as string | undefined, (text) => process.stderr.write(text), { force: Boolean(values.force) });
      if (json) printJson(result);
      else process.stdout.write(`${result.ref}\n`);
      return 0;
    }
    case 'rm':
      await sandboxes.remove(needName(), { force: Boolean(values.force) });
      return 0;
    case 'diff': {
      const out = await sandboxes.diff(needName(), { stat: Boolean(values.stat), color: Boolean(process.stdout.isTTY), files });
      process.stdout.write(out);
      await drained(process.stdout);
      return 0;
    }
    case 'sync':
      return sync(sandboxes, needName(), values, files, json);
  }
  return 2;
}

async function sync(sandboxes: Sandboxes, name: string, values: Record<string, string | boolean | undefined>, files: string[] | undefined, json: boolean): Promise<number> {
  const mode = values.mode as SyncMode | undefined;
  if (!mode || !SYNC_MODES.includes(mode)) throw new UsageError(`agent-sandbox sync needs --mode ${SYNC_MODES.join('|')}.`, USAGE);
  const onConflict = (values['on-conflict'] ?? 'stop') as ConflictPolicy;
  if (onConflict !== 'stop' && onConflict !== 'merge') throw new UsageError('--on-conflict is stop or merge.', USAGE);
  const patchFile = mode === 'patch' ? path.resolve(String(values.output ?? `sandbox-${name}.patch`)) : undefined;
  const result = await sandboxes.sync(name, { mode, files, onConflict, patchFile, overwritePatch: Boolean(values.force) });
  if (json) printJson(result);
  else process.stdout.write(`${describeSyncResult(name, result)}\n`);
  return result.conflicts.length > 0 ? EXIT_CONFLICTS : 0;
}

/** Streams the agent's output until it stops; Ctrl-C detaches and leaves the sandbox running. */
async function followLogs(sandboxes: Sandboxes, name: string): Promise<void> {
  const controller = new AbortController();
  const detach = () => {
    process.stderr.write(`\nDetached. The sandbox keeps running; follow it again with: agent-sandbox logs --follow ${name}\n`);
    controller.abort();
  };
  process.once('SIGINT', detach);
  try {
    const logs = await sandboxes.logs(name, { follow: true, signal: controller.signal });
    logs.stdout.pipe(process.stdout, { end: false });
    logs.stderr.pipe(process.stderr, { end: false });
    await logs.done;
    await drained(process.stdout);
  } finally {
    process.removeListener('SIGINT', detach);
  }
}

function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => (stream.writableNeedDrain ? stream.once('drain', resolve) : resolve()));
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function stateText(info: SandboxInfo): string {
  return info.exitCode !== undefined ? `${info.state} (${info.exitCode})` : info.state;
}

export function formatTable(list: SandboxInfo[]): string {
  if (list.length === 0) return 'No sandboxes in this workspace. Start one with: agent-sandbox up NAME --task "..."\n';
  const rows = [
    ['NAME', 'STATE', 'AGENT', 'BRANCH', 'ENGINE', 'PORTS', 'CONTAINER', 'IMAGE', 'WORKTREE'],
    ...list.map((s) => [
      s.name,
      stateText(s),
      s.agent,
      s.branch,
      s.engine ?? '-',
      s.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(',') || '-',
      s.containerId?.slice(0, 12) ?? '-',
      s.image ?? '-',
      s.worktree,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`agent-sandbox: ${errorMessage(error)}\n`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
}
