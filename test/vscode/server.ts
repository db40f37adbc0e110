// What starting a real VS Code (a VS Code server from scripts/vscode-server.sh: 1.100.3 or 1.139.1) and opening its workbench
// in Debian's chromium takes, shared by the test runner (runInServer.ts), the UI test (ui.ts) and the try-out's
// editor and its smoke check (serve.ts, trySmoke.ts):
//   - a temp folder with the user data, server data and extensions dirs, and settings that turn workspace trust,
//     updates, telemetry and the welcome page off (without trust off extensions stay in Restricted Mode);
//   - the server spawned in its own process group on a loopback port (0: a free one), read back from its output;
//   - the workbench URL: a folder and a payload with our extension's development path (and a tests entry);
//   - chromium's launch options for playwright-core;
//   - ending the server and every process it started (extension host, pty host, file watcher) at once.
import type { ChildProcess} from 'child_process';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { Browser, LaunchOptions, Page} from 'playwright-core';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * The Node.js a VS Code server runs on: each release needs its own (1.100 Node 20, 1.139 Node 24), as the desktop
 * VS Code ships its own in Electron. scripts/vscode-server.sh writes its path into `.node` at the top of the
 * install; without one, the Node running the tests.
 */
export function serverNode(serverMain: string): string {
  for (let dir = path.dirname(serverMain); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, '.node');
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  }
  return process.execPath;
}

/** The VS Code server's server-main.js: AGENT_SANDBOX_VSCODE_SERVER, else what scripts/vscode-server.sh prints. */
export function locateServer(say: (message: string) => void): string {
  const fromEnv = process.env.AGENT_SANDBOX_VSCODE_SERVER;
  if (fromEnv) return fromEnv;
  say('locating the VS Code server (scripts/vscode-server.sh)');
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'vscode-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop() ?? '';
}

/** Keeps the last lines written to a stream, for the report when something goes wrong. */
export class Tail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly max = 60) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  text(): string {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].join('\n');
  }
}

function lastLines(file: string, count: number): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    return lines.slice(-count - 1).join('\n').trimEnd();
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

function findFiles(dir: string, match: (name: string) => boolean): string[] {
  const found: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findFiles(full, match));
    else if (entry.isFile() && match(entry.name)) found.push(full);
  }
  return found.sort();
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The user settings every run gets: trust off (or extensions stay restricted), no welcome page, no updates. */
const SETTINGS = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'workbench.enableExperiments': false,
  'git.openRepositoryInParentFolders': 'never',
  // The terminal's text in the DOM (.xterm-rows), where the UI test reads it; the browser has no GPU anyway.
  'terminal.integrated.gpuAcceleration': 'off',
};

/**
 * The workbench of the server on 127.0.0.1:`port`, opening `folder`, with our extension in development mode
 * (extensionDevelopmentPath) and, when given one, the tests entry VS Code runs (extensionTestsPath).
 */
export function workbenchUrl(port: number, folder: string, extensionTestsPath?: string): string {
  const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload: Array<[string, string]> = [['extensionDevelopmentPath', remote(REPO_ROOT)]];
  if (extensionTestsPath) payload.push(['extensionTestsPath', remote(extensionTestsPath)]);
  return `http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

export interface ServerOptions {
  /** server-main.js (see locateServer). */
  serverMain: string;
  /** A folder of ours: the server's dirs, its temp dir (the TMPDIR of the server and extension host) and log go here. */
  root: string;
  /** The port to listen on on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Added to this process's environment, which the server and the extension host inherit. */
  env?: NodeJS.ProcessEnv;
}

/** One VS Code server process (and its process group), listening on 127.0.0.1. */
export class VscodeServer {
  readonly userData: string;
  readonly serverData: string;
  readonly extensions: string;
  readonly tmp: string;
  readonly log: string;
  /** The server's last output lines. */
  readonly output = new Tail();
  /** Settles with why once the server has exited (for whatever reason). */
  readonly exited: Promise<string>;
  private child?: ChildProcess;
  private onExited!: (why: string) => void;
  private stopped?: Promise<void>;
  port = 0;

  constructor(private readonly options: ServerOptions) {
    this.userData = path.join(options.root, 'user-data');
    this.serverData = path.join(options.root, 'server-data');
    this.extensions = path.join(options.root, 'extensions');
    this.tmp = path.join(options.root, 'tmp');
    this.log = path.join(options.root, 'server.log');
    this.exited = new Promise<string>((resolve) => { this.onExited = resolve; });
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Writes the settings, spawns the server and resolves with its port once it listens. */
  start(): Promise<number> {
    if (!fs.existsSync(this.options.serverMain)) return Promise.reject(new Error(`no VS Code server at ${this.options.serverMain}`));
    fs.mkdirSync(this.tmp, { recursive: true });
    fs.mkdirSync(this.extensions, { recursive: true });
    // The browser side reads its user settings from the user data dir; the server's copies do no harm.
    writeJson(path.join(this.userData, 'User', 'settings.json'), SETTINGS);
    writeJson(path.join(this.serverData, 'data', 'User', 'settings.json'), SETTINGS);
    writeJson(path.join(this.serverData, 'data', 'Machine', 'settings.json'), SETTINGS);

    const log = fs.openSync(this.log, 'a');
    const args = [this.options.serverMain, '--host', '127.0.0.1', '--port', String(this.options.port ?? 0),
      '--without-connection-token', '--accept-server-license-terms', '--disable-telemetry',
      '--user-data-dir', this.userData, '--server-data-dir', this.serverData, '--extensions-dir', this.extensions,
      // A built web workbench takes the URL's payload (our development path, the tests entry) only with this, from
      // VS Code 1.10x on; 1.100 took it without.
      '--enable-smoke-test-driver'];
    // The extension host inherits the server's environment: everything we were given, TMPDIR aside (the
    // server's and the extension host's temp files go into our folder and leave with it).
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: this.tmp, ...this.options.env };
    delete env.ELECTRON_RUN_AS_NODE;
    delete env.VSCODE_IPC_HOOK_CLI;
    const child = spawn(serverNode(this.options.serverMain), args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    return new Promise<number>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString();
        fs.writeSync(log, text);
        this.output.push(text);
        if (!this.port) {
          const m = /Extension host agent listening on (\d+)/.exec(this.output.text());
          if (m) {
            this.port = Number(m[1]);
            resolve(this.port);
          }
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on('error', (err) => reject(err));
      child.on('close', () => fs.closeSync(log)); // after its output has all been read
      child.on('exit', (code, signal) => {
        const why = `the VS Code server exited (${signal ?? code})`;
        if (!this.port) reject(new Error(`${why} before listening:\n${this.output.text()}`));
        this.onExited(why);
      });
    });
  }

  /** See workbenchUrl. */
  workbenchUrl(folder: string, extensionTestsPath?: string): string {
    return workbenchUrl(this.port, folder, extensionTestsPath);
  }

  /** The server's last output, then the last lines of the extension host's and server's logs. */
  report(more: Array<[string, string]> = []): string {
    const parts = [`--- VS Code server output (${this.log}) ---`, this.output.text() || '(none)'];
    for (const [title, text] of more) parts.push(`--- ${title} ---`, text || '(none)');
    const logs = findFiles(this.userData, (n) => n.endsWith('.log')).concat(findFiles(this.serverData, (n) => n.endsWith('.log')));
    const wanted = logs.filter((f) => /exthost|remoteagent/.test(path.basename(f)));
    for (const file of wanted.length ? wanted : logs) {
      parts.push(`--- ${path.relative(this.options.root, file)} ---`, lastLines(file, 40));
    }
    return parts.join('\n');
  }

  /** Ends the server and everything it started (all in its process group). Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    const child = this.child;
    if (child?.pid === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      killGroup(child.pid, 'SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
    // The extension host, pty host and file watcher are in the server's process group: none outlives it.
    killGroup(child.pid, 'SIGKILL');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** `port` when nothing listens on it on 127.0.0.1, else 0 (the server then picks a free one). */
export function portOrAny(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(port)));
  });
}

/** Debian's chromium (or AGENT_SANDBOX_CHROMIUM), headless; signals are ours to handle, not playwright's. */
export function chromiumOptions(): LaunchOptions {
  return {
    executablePath: process.env.AGENT_SANDBOX_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  };
}

/** Chromium with one page of the given size, not yet navigated (so handlers can be set up first). */
export async function openBrowser(viewport: { width: number; height: number }): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch(chromiumOptions());
  const context = await browser.newContext({ viewport });
  return { browser, page: await context.newPage() };
}

/** Closes the browser, giving up after 10 s. */
export async function closeBrowser(browser: Browser | undefined): Promise<void> {
  if (browser) await Promise.race([browser.close().catch(() => undefined), sleep(10000)]);
}

/**
 * Runs `cleanup` once on the first SIGINT, SIGTERM or SIGHUP, then exits 130 or 143. Returns a getter that says
 * whether a signal came (and with which exit code).
 */
export function onSignals(say: (message: string) => void, cleanup: () => Promise<void>): () => number | undefined {
  let signalled: number | undefined;
  const handler = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) return;
    signalled = signal === 'SIGINT' ? 130 : 143;
    say(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(signalled));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, handler);
  return () => signalled;
}
