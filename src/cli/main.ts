import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { version } from '../../package.json';
import { addPresetRole } from '../core/agents/starter';
import { checkDetachKeys, detachKeyBytes, DetachKeys } from '../core/sandbox/attach';
import { progressSummary } from '../core/agents/progress';
import type { AgentProgress } from '../core/agents/progress';
import { CONFIG_FILE_NAME, formatWarning } from '../core/config/model';
import { SandboxError } from '../core/errors';
import { errorForTerminal } from './errors';
import { Sandboxes } from '../core/sandboxes';
import { SandboxWatcher } from '../core/watcher';
import type { SandboxInfo } from '../core/sandbox/records';
import { skippedNote } from '../core/git/capture';
import { describeSyncResult, SYNC_MODES } from '../core/git/sync';
import type { ConflictPolicy, SyncMode } from '../core/git/sync';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes, before or after its name (as `git -C`, `docker -H` and `kubectl -n` are). */
const GLOBAL = {
  workspace: { type: 'string', short: 'w' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const satisfies Options;

interface Command {
  /** What follows the command's name in its usage line. */
  args: string;
  options: Options;
}

const COMMANDS: Record<string, Command> = {
  up: {
    args: 'NAME [--agent ROLE] [--task TEXT] [--base REF] [--wait] [--follow]',
    options: { agent: { type: 'string', short: 'a' }, task: { type: 'string', short: 't' }, base: { type: 'string' }, wait: { type: 'boolean' }, follow: { type: 'boolean', short: 'f' } },
  },
  init: { args: '[--preset claude-code|codex|gemini|aider|opencode]', options: { preset: { type: 'string', short: 'p' } } },
  ls: { args: '[--json]', options: {} },
  logs: { args: 'NAME [--follow] [--raw]', options: { follow: { type: 'boolean', short: 'f' }, raw: { type: 'boolean' } } },
  exec: { args: 'NAME -- CMD [ARG...]', options: {} },
  attach: { args: 'NAME [--detach-keys ctrl-p,ctrl-q]', options: { 'detach-keys': { type: 'string' } } },
  stop: { args: 'NAME', options: {} },
  start: { args: 'NAME', options: {} },
  build: { args: '[--agent ROLE] [--force]', options: { agent: { type: 'string', short: 'a' }, force: { type: 'boolean' } } },
  rm: { args: 'NAME [--force]', options: { force: { type: 'boolean' } } },
  diff: { args: 'NAME [--stat] [--binary] [--files PATH...]', options: { stat: { type: 'boolean' }, binary: { type: 'boolean' }, files: { type: 'string', multiple: true } } },
  sync: {
    args: 'NAME --mode merge|squash|cherry-pick|patch [--files PATH...]\n                     [--on-conflict stop|merge] [--output FILE] [--force]',
    options: {
      mode: { type: 'string', short: 'm' },
      files: { type: 'string', multiple: true },
      'on-conflict': { type: 'string' },
      output: { type: 'string', short: 'o' },
      force: { type: 'boolean' },
    },
  },
};

const USAGE = `agent-sandbox: run coding agents in containers, each on its own git worktree

Usage:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  agent-sandbox ${name} ${command.args}`)
  .join('\n')}
  agent-sandbox help [COMMAND]
  agent-sandbox --version

Every command takes --workspace DIR (-w; default: the current directory), before or after its name.
The workspace's sandbox.toml configures images, limits, network and agent roles.
diff and sync include what the agent left uncommitted. sync never overwrites, resets or stashes your own
uncommitted work: where the agent's changes meet it, sync stops before changing anything and names the
files (--on-conflict stop, the default), or merges three ways and leaves conflict markers to resolve
(--on-conflict merge; exit status 3). patch writes to --output (default: sandbox-NAME.patch here).`;

function commandUsage(name: string): string {
  return `Usage: agent-sandbox ${name} ${COMMANDS[name].args}\n\nOptions every command takes: --workspace DIR (-w), --json, --help (-h).\nagent-sandbox help: every command.`;
}

/** Thrown for a command line that does not parse: exit status 2 and the usage. */
class UsageError extends SandboxError {}

/** `sync` left conflict markers for the user to resolve: done, but not cleanly. */
const EXIT_CONFLICTS = 3;

/**
 * Splits the command line at the command's name: what stands before it may only be global options, whose
 * values are skipped so that `--workspace up up` finds the command `up`.
 */
function findCommand(argv: string[]): number {
  const takesValue = new Set(Object.entries(GLOBAL).flatMap(([long, o]) => (o.type === 'string' ? [`--${long}`, `-${o.short}`] : [])));
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') return -1;
    if (!token.startsWith('-') || token === '-') return i;
    if (takesValue.has(token)) i++;
  }
  return -1;
}

export async function main(argv: string[]): Promise<number> {
  const at = findCommand(argv);
  const command = at >= 0 ? argv[at] : undefined;
  const before = at >= 0 ? argv.slice(0, at) : argv;
  let rest = at >= 0 ? argv.slice(at + 1) : [];
  let global;
  try {
    global = parseArgs({ args: before, options: GLOBAL, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message, USAGE);
  }
  if (global.version) {
    process.stdout.write(`agent-sandbox ${version}\n`);
    return 0;
  }
  if (command === 'help') {
    const topic = rest.find((arg) => !arg.startsWith('-'));
    if (topic && !Object.hasOwn(COMMANDS, topic)) throw new UsageError(`Unknown command "${topic}".`, USAGE);
    process.stdout.write(`${topic ? commandUsage(topic) : USAGE}\n`);
    return 0;
  }
  if (!command) {
    process.stdout.write(`${USAGE}\n`);
    return global.help ? 0 : 2;
  }
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`Unknown command "${command}".`, USAGE);
  const options = { ...GLOBAL, ...COMMANDS[command].options };
  // exec passes everything after `--` to the container untouched.
  const split = command === 'exec' ? rest.indexOf('--') : -1;
  const theirs = split >= 0 ? rest.slice(split + 1) : [];
  if (split >= 0) rest = rest.slice(0, split);
  let parsed;
  try {
    parsed = parseArgs({ args: [...before, ...rest], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, commandUsage(command));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(`${commandUsage(command)}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`agent-sandbox ${version}\n`);
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
    if (positionals.length !== 1) throw new UsageError(`agent-sandbox ${command} takes one sandbox NAME.`, commandUsage(String(command)));
    return positionals[0];
  };
  const workspace = path.resolve(String(values.workspace ?? process.cwd()));
  if (command === 'init') {
    // Before opening the workspace: there is no sandbox.toml to read yet, or one to add a role to.
    const { role, created } = await addPresetRole(path.join(workspace, CONFIG_FILE_NAME), String(values.preset ?? 'claude-code'));
    process.stderr.write(`${created ? 'Wrote' : 'Added the role'} ${role} ${created ? 'in a new' : 'to'} ${CONFIG_FILE_NAME}. Start it with: agent-sandbox up NAME --agent ${role} --task "..."
`);
    return 0;
  }
  const sandboxes = await Sandboxes.open(workspace);
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
      const list = await Promise.all((await sandboxes.list()).map(async (s) => (s.preset ? { ...s, progress: await sandboxes.progress(s.name) } : s)));
      if (json) printJson(list);
      else process.stdout.write(formatTable(list));
      for (const s of list) if (s.importError) process.stderr.write(`agent-sandbox: ${s.importError}\n`);
      return 0;
    }
    case 'logs': {
      const name = needName();
      if (values.follow) await followLogs(sandboxes, name, Boolean(values.raw));
      else {
        const logs = await sandboxes.logs(name, { follow: false, raw: Boolean(values.raw) });
        logs.stdout.pipe(process.stdout, { end: false });
        logs.stderr.pipe(process.stderr, { end: false });
        await logs.done;
        await drained(process.stdout);
      }
      return 0;
    }
    case 'attach':
      return attach(sandboxes, needName(), String(values['detach-keys'] ?? process.env.AGENT_SANDBOX_DETACH_KEYS ?? 'ctrl-p,ctrl-q'));
    case 'exec': {
      const name = needName();
      if (theirs.length === 0) throw new UsageError('agent-sandbox exec NAME -- CMD: the command is missing.', commandUsage('exec'));
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
      const out = await sandboxes.diff(needName(), { stat: Boolean(values.stat), binary: Boolean(values.binary), color: Boolean(process.stdout.isTTY), files }, (skipped) =>
        process.stderr.write(`${skippedNote(skipped)}\n`),
      );
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
  if (!mode || !SYNC_MODES.includes(mode)) throw new UsageError(`agent-sandbox sync needs --mode ${SYNC_MODES.join('|')}.`, commandUsage('sync'));
  const onConflict = (values['on-conflict'] ?? 'stop') as ConflictPolicy;
  if (onConflict !== 'stop' && onConflict !== 'merge') throw new UsageError('--on-conflict is stop or merge.', commandUsage('sync'));
  const patchFile = mode === 'patch' ? path.resolve(String(values.output ?? `sandbox-${name}.patch`)) : undefined;
  const result = await sandboxes.sync(name, { mode, files, onConflict, patchFile, overwritePatch: Boolean(values.force) });
  if (json) printJson(result);
  else process.stdout.write(`${describeSyncResult(name, result)}\n`);
  return result.conflicts.length > 0 ? EXIT_CONFLICTS : 0;
}

/**
 * Streams the agent's output until it stops; Ctrl-C detaches and leaves the sandbox running. Meanwhile the
 * workspace's sandboxes are watched as the editor watches them, so an agent that ends has its egress path settled.
 */
async function followLogs(sandboxes: Sandboxes, name: string, raw = false): Promise<void> {
  const controller = new AbortController();
  const detach = () => {
    process.stderr.write(`\nDetached. The sandbox keeps running; follow it again with: agent-sandbox logs --follow ${name}\n`);
    controller.abort();
  };
  process.once('SIGINT', detach);
  const watcher = new SandboxWatcher(sandboxes, {
    egressError: (sandbox, error) => process.stderr.write(`agent-sandbox: stopping the egress proxy of ${sandbox}: ${error.message}\n`),
  });
  try {
    const logs = await sandboxes.logs(name, { follow: true, signal: controller.signal, raw });
    logs.stdout.pipe(process.stdout, { end: false });
    logs.stderr.pipe(process.stderr, { end: false });
    await logs.done;
    await drained(process.stdout);
  } finally {
    process.removeListener('SIGINT', detach);
    await watcher.close();
  }
}

/**
 * The interactive agent's terminal in this one, until the detach keys (Docker's `ctrl-p,ctrl-q` unless
 * --detach-keys) or the agent's end; the terminal's mode is restored on every way out.
 */
async function attach(sandboxes: Sandboxes, name: string, detachKeys: string): Promise<number> {
  const problem = checkDetachKeys(detachKeys);
  if (problem) throw new UsageError(`--detach-keys: ${problem}.`, commandUsage('attach'));
  if (!process.stdin.isTTY || !process.stdout.isTTY) throw new UsageError('agent-sandbox attach needs a terminal: run it in one.', commandUsage('attach'));
  const terminal = await sandboxes.attach(name, { columns: process.stdout.columns, rows: process.stdout.rows, detachKeys });
  const restore = () => {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
  };
  const resize = () => void terminal.resize(process.stdout.columns, process.stdout.rows);
  // An exit that skips the finally below (a signal, an uncaught error) still gives the terminal back.
  process.once('exit', restore);
  process.stdin.setRawMode(true);
  process.stdin.resume();
  const keys = new DetachKeys(detachKeyBytes(detachKeys), () => terminal.detach());
  process.stdin.pipe(keys).pipe(terminal.input);
  terminal.output.pipe(process.stdout, { end: false });
  process.stdout.on('resize', resize);
  const hangUp = () => terminal.detach();
  process.once('SIGHUP', hangUp);
  process.once('SIGTERM', hangUp);
  try {
    await terminal.ended;
  } finally {
    process.stdin.unpipe(keys);
    keys.unpipe(terminal.input);
    process.stdout.off('resize', resize);
    process.off('SIGHUP', hangUp);
    process.off('SIGTERM', hangUp);
    restore();
    process.stdin.pause();
  }
  const info = await sandboxes.get(name).catch(() => undefined);
  process.stderr.write(info?.state === 'running' ? `\r\nDetached from ${name}: the agent keeps running (agent-sandbox attach ${name} again).\r\n` : `\r\nThe agent of ${name} has ended${info?.exitCode !== undefined ? ` (exit ${info.exitCode})` : ''}.\r\n`);
  return 0;
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

export function formatTable(list: Array<SandboxInfo & { progress?: AgentProgress }>): string {
  if (list.length === 0) return 'No sandboxes in this workspace. Start one with: agent-sandbox up NAME --task "..."\n';
  // What an agent preset's agent is doing, where any sandbox runs one.
  const progress = list.some((s) => s.preset);
  const rows = [
    ['NAME', 'STATE', 'AGENT', ...(progress ? ['PROGRESS'] : []), 'BRANCH', 'ENGINE', 'PORTS', 'CONTAINER', 'IMAGE', 'WORKTREE'],
    ...list.map((s) => [
      s.name,
      stateText(s),
      s.agent,
      ...(progress ? [s.progress ? progressSummary(s.progress) : '-'] : []),
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
      process.stderr.write(`agent-sandbox: ${errorForTerminal(error)}\n`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
}
