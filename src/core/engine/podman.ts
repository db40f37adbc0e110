import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine, PODMAN_ROOTFUL_SOCKET, podmanInstalled } from './engine';
import { SandboxError } from '../errors';

export interface StartedService {
  /** `unix:///...`: the address that answers now. */
  endpoint: string;
  /** How it was started: systemd's socket unit, or a `podman system service` process of ours. */
  how: 'systemd' | 'process';
  /** The service's log and process id, when it is a process of ours. */
  log?: string;
  pid?: number;
}

/**
 * Starts Podman's Docker-compatible API service on `socket` and waits until it answers. Where systemd runs
 * (and the socket is its default one), through its socket unit (`podman.socket`, rootful or `--user`), as
 * Podman's packages intend; else as a `podman system service --time=0` process of its own, detached from
 * this one, logging to a file. Throws a SandboxError that says what to do when it cannot.
 */
export async function startPodmanService(socket: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<StartedService> {
  const env = options.env ?? process.env;
  if (!podmanInstalled(env)) {
    throw new SandboxError('Podman is not installed here.', 'Install it: `sudo apt-get install podman catatonit` (Debian, Ubuntu) or `sudo dnf install podman catatonit` (Fedora).');
  }
  const endpoint = `unix://${socket}`;
  const engine = new Engine({ host: endpoint });
  if (await engine.answers()) return { endpoint, how: 'process' };
  const rootful = socket === PODMAN_ROOTFUL_SOCKET;
  const userSocket = !rootful && env.XDG_RUNTIME_DIR && socket === path.join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock');
  if ((rootful || userSocket) && existsSync('/run/systemd/system')) {
    const args = [...(rootful ? [] : ['--user']), 'start', 'podman.socket'];
    const result = spawnSync('systemctl', args, { encoding: 'utf8', env, timeout: 30_000 });
    if (result.status === 0 && (await waitForAnswer(engine, options.timeoutMs))) return { endpoint, how: 'systemd' };
  }
  mkdirSync(path.dirname(socket), { recursive: true });
  const log = path.join(os.tmpdir(), `agent-sandboxes-podman-service-${process.getuid?.() ?? 'user'}.log`);
  const fd = openSync(log, 'a');
  let pid: number | undefined;
  try {
    const child = spawn('podman', ['system', 'service', '--time=0', endpoint], { detached: true, stdio: ['ignore', fd, fd], env, cwd: '/' });
    child.on('error', () => undefined);
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(fd);
  }
  if (await waitForAnswer(engine, options.timeoutMs)) return { endpoint, how: 'process', log, pid };
  throw new SandboxError(`Podman's API service did not answer on ${endpoint} after it was started.`, `Read its log, ${log}; or start it yourself: podman system service --time=0 ${endpoint}`);
}

async function waitForAnswer(engine: Engine, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await engine.answers(1000)) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}
