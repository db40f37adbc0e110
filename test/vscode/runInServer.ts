// Runs the VS Code test suite (out/test/vscode/suite/index.js) inside a real VS Code without downloading one:
// the VS Code server from scripts/vscode-server.sh (VS Code 1.100.3) serves the workbench, Debian's chromium
// opens it through playwright-core with the extension development and test flags in the URL's payload, and the
// extension host, a Node process the server starts, runs the suite exactly as under @vscode/test-electron.
//
//   node out/test/vscode/runInServer.js [--workspace DIR] [--screenshot FILE] [--timeout SECONDS] [--keep]
//
// --workspace DIR     the folder VS Code opens (default: a fresh git repository with one commit holding a sandbox.toml)
// --screenshot FILE   save a PNG of the page just before closing it
// --timeout SECONDS   give up after this long (default 600, or AGENT_SANDBOX_VSCODE_TIMEOUT)
// --keep              keep the temp folder (user data, logs, workspace) and print where it is
// Env: AGENT_SANDBOX_VSCODE_SERVER (server-main.js; default: what scripts/vscode-server.sh prints),
//      AGENT_SANDBOX_CHROMIUM (default /usr/bin/chromium). All of this process's environment reaches the
//      extension host, so the tests see it (TMPDIR is pointed into the temp folder, which is removed at the end).
// Exit code: 0 when every test passed, 1 otherwise (failure, no verdict, hang, crash); 130/143 on SIGINT/SIGTERM.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as util from 'util';
import { Browser, ConsoleMessage, Page, chromium } from 'playwright-core';
import { makeTestWorkspace } from './workspace';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const TESTS_ENTRY = path.join(REPO_ROOT, 'out', 'test', 'vscode', 'suite', 'index.js');
// suite/index.ts starts every line the extension host prints with this (see there).
const MARK = '[exthost] ';

interface Options {
  workspace?: string;
  screenshot?: string;
  timeoutMs: number;
  keep: boolean;
}

function usage(message?: string): never {
  process.stderr.write((message ? `runInServer: ${message}\n` : '') +
    'usage: node out/test/vscode/runInServer.js [--workspace DIR] [--screenshot FILE] [--timeout SECONDS] [--keep]\n');
  process.exit(message ? 2 : 0);
}

function parseArgs(argv: string[]): Options {
  const envTimeout = Number(process.env.AGENT_SANDBOX_VSCODE_TIMEOUT || 600);
  const options: Options = { timeoutMs: envTimeout * 1000, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') usage(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--workspace': options.workspace = path.resolve(value()); break;
      case '--screenshot': options.screenshot = path.resolve(value()); break;
      case '--timeout': {
        const seconds = Number(value());
        if (!(seconds > 0)) usage('--timeout takes a number of seconds');
        options.timeoutMs = seconds * 1000;
        break;
      }
      case '--keep': options.keep = true; break;
      case '-h': case '--help': usage();
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!(options.timeoutMs > 0)) usage('AGENT_SANDBOX_VSCODE_TIMEOUT must be a number of seconds');
  if (options.workspace && !fs.statSync(options.workspace, { throwIfNoEntry: false })?.isDirectory()) {
    usage(`--workspace ${options.workspace} is not a folder`);
  }
  return options;
}

function say(message: string): void {
  process.stderr.write(`runInServer: ${message}\n`);
}

/** Keeps the last lines written to a stream, for the report when something goes wrong. */
class Tail {
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

function locateServer(): string {
  const fromEnv = process.env.AGENT_SANDBOX_VSCODE_SERVER;
  if (fromEnv) return fromEnv;
  say('locating the VS Code server (scripts/vscode-server.sh)');
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'vscode-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop() ?? '';
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** How the run ended. */
type Verdict = { code: 0 | 1; why: string };

class Run {
  private readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-vscode-'));
  private readonly userData = path.join(this.root, 'user-data');
  private readonly serverData = path.join(this.root, 'server-data');
  private readonly extensions = path.join(this.root, 'extensions');
  private readonly tmp = path.join(this.root, 'tmp');
  private readonly serverLog = path.join(this.root, 'server.log');
  private readonly serverTail = new Tail();
  private readonly workbenchTail = new Tail();
  private server?: ChildProcess;
  private browser?: Browser;
  private page?: Page;
  private settle!: (verdict: Verdict) => void;
  readonly verdict = new Promise<Verdict>((resolve) => { this.settle = resolve; });
  private settled = false;
  private cleaned?: Promise<void>;
  private readonly counts = { passing: 0, failing: 0, pending: 0, seen: false };

  constructor(private readonly options: Options) {}

  private finish(code: 0 | 1, why: string): void {
    if (this.settled) return;
    this.settled = true;
    this.settle({ code, why });
  }

  async start(): Promise<void> {
    const serverMain = locateServer();
    if (!fs.existsSync(serverMain)) throw new Error(`no VS Code server at ${serverMain}`);
    if (!fs.existsSync(TESTS_ENTRY)) throw new Error(`no ${TESTS_ENTRY}: run \`npx tsc -p .\` first`);
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('no dist/extension.js: run `npm run build` first');

    const workspace = this.options.workspace ?? path.join(this.root, 'workspace');
    if (!this.options.workspace) makeTestWorkspace(workspace);
    fs.mkdirSync(this.tmp, { recursive: true });
    fs.mkdirSync(this.extensions, { recursive: true });
    // Without this the trust dialog keeps extensions in Restricted Mode. The browser side reads its user settings
    // from the user data dir; the server's copy does no harm.
    const settings = {
      'security.workspace.trust.enabled': false,
      'workbench.startupEditor': 'none',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'update.mode': 'none',
      'telemetry.telemetryLevel': 'off',
      'workbench.enableExperiments': false,
      'git.openRepositoryInParentFolders': 'never',
    };
    writeJson(path.join(this.userData, 'User', 'settings.json'), settings);
    writeJson(path.join(this.serverData, 'data', 'User', 'settings.json'), settings);
    writeJson(path.join(this.serverData, 'data', 'Machine', 'settings.json'), settings);

    const port = await this.startServer(serverMain);
    const base = `http://127.0.0.1:${port}`;
    const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', remote(REPO_ROOT)],
      ['extensionTestsPath', remote(TESTS_ENTRY)],
    ]);
    const url = `${base}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`;
    say(`VS Code server on ${base}, workspace ${workspace}`);
    await this.openBrowser(url);
  }

  private startServer(serverMain: string): Promise<number> {
    const log = fs.openSync(this.serverLog, 'a');
    const args = [serverMain, '--host', '127.0.0.1', '--port', '0', '--without-connection-token',
      '--accept-server-license-terms', '--disable-telemetry',
      '--user-data-dir', this.userData, '--server-data-dir', this.serverData, '--extensions-dir', this.extensions];
    // The extension host inherits the server's environment: everything we were given, TMPDIR aside (the
    // server's and the tests' temp files go into our temp folder and leave with it).
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: this.tmp, AGENT_SANDBOX_VSCODE_MARK: MARK };
    delete env.ELECTRON_RUN_AS_NODE;
    delete env.VSCODE_IPC_HOOK_CLI;
    const server = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = server;
    return new Promise<number>((resolve, reject) => {
      let port = 0;
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString();
        fs.writeSync(log, text);
        this.serverTail.push(text);
        if (!port) {
          const m = /Extension host agent listening on (\d+)/.exec(this.serverTail.text());
          if (m) {
            port = Number(m[1]);
            resolve(port);
          }
        }
      };
      server.stdout?.on('data', onData);
      server.stderr?.on('data', onData);
      server.on('error', (err) => reject(err));
      server.on('close', () => fs.closeSync(log)); // after its output has all been read
      server.on('exit', (code, signal) => {
        const why = `the VS Code server exited (${signal ?? code})`;
        if (!port) reject(new Error(`${why} before listening:\n${this.serverTail.text()}`));
        this.finish(1, why);
      });
    });
  }

  private async openBrowser(url: string): Promise<void> {
    this.browser = await chromium.launch({
      executablePath: process.env.AGENT_SANDBOX_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    this.browser.on('disconnected', () => this.finish(1, 'the browser went away'));
    const context = await this.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    this.page = page;
    page.on('crash', () => this.finish(1, 'the page crashed'));
    page.on('pageerror', (err) => this.debug(`page error: ${err.message}`));
    page.on('console', (msg) => this.onConsole(msg));
    // The workbench calls this with the suite's verdict once run() settles (or the extension host dies).
    await page.exposeFunction('codeAutomationExit', (code: unknown) => {
      this.finish(code === 0 ? 0 : 1, `the suite finished with exit code ${String(code)}`);
    });
    // With test flags the workbench sends everything its log service gets here, as [format, ...args], the
    // extension host's console (so mocha's reporter) included.
    await page.exposeFunction('codeAutomationLog', (level: unknown, message: unknown) => {
      this.onLog(String(level), Array.isArray(message) ? util.format(...(message as unknown[])) : String(message));
    });
    await page.goto(url, { waitUntil: 'domcontentloaded' });
  }

  private debug(line: string): void {
    if (process.env.AGENT_SANDBOX_VSCODE_DEBUG) say(line);
  }

  private onConsole(msg: ConsoleMessage): void {
    this.debug(`console.${msg.type()}: ${msg.text()}`);
  }

  private onLog(level: string, message: string): void {
    this.debug(`log.${level}: ${message}`);
    if (message.startsWith(MARK)) this.relay(message.slice(MARK.length));
    else this.workbenchTail.push(`[${level}] ${message}\n`);
  }

  /** Prints the extension host's console output (mocha's reporter), and counts mocha's summary. */
  private relay(text: string): void {
    for (const line of text.replace(/\n$/, '').split('\n')) {
      const m = /^\s*(\d+) (passing|failing|pending)\b/.exec(line);
      if (m) {
        this.counts[m[2] as 'passing' | 'failing' | 'pending'] = Number(m[1]);
        this.counts.seen = true;
      }
      process.stdout.write(line + '\n');
    }
  }

  summary(): string | undefined {
    const c = this.counts;
    return c.seen ? `${c.passing} passed, ${c.failing} failed${c.pending ? `, ${c.pending} skipped` : ''}` : undefined;
  }

  /** The last lines of the server's log and of the logs the server and extension host wrote. */
  report(): string {
    const parts = [`--- VS Code server output (${this.serverLog}) ---`, this.serverTail.text() || '(none)',
      '--- workbench log (the page) ---', this.workbenchTail.text() || '(none)'];
    const logs = findFiles(this.userData, (n) => n.endsWith('.log'))
      .concat(findFiles(this.serverData, (n) => n.endsWith('.log')));
    const wanted = logs.filter((f) => /exthost|remoteagent/.test(path.basename(f)));
    for (const file of wanted.length ? wanted : logs) {
      parts.push(`--- ${path.relative(this.root, file)} ---`, lastLines(file, 40));
    }
    return parts.join('\n');
  }

  async screenshot(): Promise<void> {
    if (!this.options.screenshot || !this.page) return;
    try {
      fs.mkdirSync(path.dirname(this.options.screenshot), { recursive: true });
      await this.page.screenshot({ path: this.options.screenshot, timeout: 15000 });
      say(`screenshot: ${this.options.screenshot}`);
    } catch (err) {
      say(`could not take the screenshot: ${(err as Error).message}`);
    }
  }

  /** Closes the browser, ends the server and everything it started, removes the temp folder. Idempotent. */
  cleanup(): Promise<void> {
    this.cleaned ??= this.doCleanup();
    return this.cleaned;
  }

  private async doCleanup(): Promise<void> {
    if (this.browser) {
      await Promise.race([this.browser.close().catch(() => undefined), sleep(10000)]);
    }
    const server = this.server;
    if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      killGroup(server.pid, 'SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
    // The extension host, pty host and file watcher are in the server's process group: none outlives it.
    if (server?.pid !== undefined) killGroup(server.pid, 'SIGKILL');
    if (this.options.keep) {
      say(`kept ${this.root}`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
    }
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const run = new Run(options);
  let signalled: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) return;
    signalled = signal === 'SIGINT' ? 130 : 143;
    say(`${signal}: cleaning up`);
    void run.cleanup().finally(() => process.exit(signalled));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => resolve({ code: 1, why: `no verdict within ${options.timeoutMs / 1000} s` }), options.timeoutMs);
    });
    const verdict = await Promise.race([run.start().then(() => Promise.race([run.verdict, timedOut])), timedOut]);
    if (signalled !== undefined) return signalled; // the signal handler is cleaning up and exits
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    await run.screenshot();
    if (verdict.code !== 0) {
      say(`FAILED: ${verdict.why} after ${seconds} s`);
      process.stderr.write(run.report() + '\n');
    } else {
      say(`passed in ${seconds} s`);
    }
    const summary = run.summary();
    if (summary) process.stdout.write(`vscode: ${summary}\n`);
    else if (verdict.code === 0) {
      say('the suite passed but mocha printed no summary');
    }
    return verdict.code;
  } catch (err) {
    if (signalled !== undefined) return signalled;
    say(`FAILED: ${(err as Error).stack ?? String(err)}`);
    process.stderr.write(run.report() + '\n');
    return 1;
  } finally {
    if (timer) clearTimeout(timer);
    await run.cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`FAILED: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
