/**
 * Commands run in a sandbox's container, as the agent's user in /workspace: with their streams passed through,
 * or on a terminal for an editor to drive.
 */
import type { Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { demultiplex } from '../engine/demux';
import type { Engine } from '../engine/engine';
import { ConflictError } from '../errors';
import type { AgentUser } from '../isolation/user';
import { AGENT_HOME, WORKSPACE_IN_CONTAINER } from './container';
import { sandboxState } from './records';

/** Where a command run in a sandbox reads and writes; with `tty`, stdout gets both streams. */
export interface ExecIo {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  tty?: boolean;
}

export interface InteractiveSession {
  input: Writable;
  output: Readable;
  resize(columns: number, rows: number): Promise<unknown>;
  exitCode: Promise<number>;
}

export async function execIn(engine: Engine, user: AgentUser, name: string, container: Docker.Container, command: string[], io: ExecIo, what: string): Promise<number> {
  const exec = await execCall(engine, name, container, what, () =>
    container.exec({
      Cmd: command,
      AttachStdin: Boolean(io.stdin),
      AttachStdout: true,
      AttachStderr: true,
      Tty: Boolean(io.tty),
      User: `${user.uid}:${user.gid}`,
      WorkingDir: WORKSPACE_IN_CONTAINER,
    }),
  );
  const stream = await engine.call(what, () => exec.start({ hijack: true, stdin: Boolean(io.stdin), Tty: Boolean(io.tty) }));
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  if (io.tty) stream.pipe(io.stdout, { end: false });
  else demultiplex(stream, io.stdout, io.stderr);
  if (io.stdin) {
    io.stdin.pipe(stream, { end: false });
    // Half-close on the end of stdin so the command sees EOF, while its output keeps coming.
    io.stdin.on('end', () => (stream as unknown as { end(): void }).end());
  }
  await ended;
  io.stdin?.unpipe(stream);
  const result = await exec.inspect();
  return result.ExitCode ?? 1;
}


/**
 * Creates an exec session. A stopped sandbox refuses one in each engine's words (Docker: "is not running",
 * Podman: "container state improper"): say it in ours.
 */
async function execCall<T>(engine: Engine, name: string, container: Docker.Container, what: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (error) {
    const state = await container.inspect().then((c) => sandboxState(c.State.Status), () => undefined);
    if (state && state !== 'running') {
      throw new ConflictError(`${what}: the sandbox is not running (it is ${state}).`, 'Start it first.', [{ do: 'start-sandbox', sandbox: name }]);
    }
    throw engine.translate(what, error);
  }
}


/** An interactive command with a terminal in the running sandbox, for an editor's terminal to drive. */
export async function execInteractive(engine: Engine, user: AgentUser, name: string, container: Docker.Container, command: string[], size: { columns: number; rows: number }): Promise<InteractiveSession> {
  const what = `Opening a shell in "${name}"`;
  const exec = await execCall(engine, name, container, what, () =>
    container.exec({
      Cmd: command,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      User: `${user.uid}:${user.gid}`,
      WorkingDir: WORKSPACE_IN_CONTAINER,
      Env: [`HOME=${AGENT_HOME}`, 'TERM=xterm-256color'],
    }),
  );
  const stream = await engine.call(what, () => exec.start({ hijack: true, stdin: true, Tty: true }));
  const resize = (columns: number, rows: number) => exec.resize({ w: columns, h: rows }).catch(() => undefined);
  void resize(size.columns, size.rows);
  const exitCode = new Promise<number>((resolve) => {
    const finish = () => exec.inspect().then((r) => resolve(r.ExitCode ?? 0), () => resolve(1));
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', finish);
  });
  return { input: stream, output: stream, resize, exitCode };
}

