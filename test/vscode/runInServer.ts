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
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as util from 'util';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { REPO_ROOT, Tail, VscodeServer, closeBrowser, locateServer, onSignals, openBrowser } from './server';
import { makeTestWorkspace } from './workspace';

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
      case '-h': case '--help': return usage();
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

/** How the run ended. */
type Verdict = { code: 0 | 1; why: string };

class Run {
  private readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-vscode-'));
  private server?: VscodeServer;
  private readonly workbenchTail = new Tail();
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
    const serverMain = locateServer(say);
    if (!fs.existsSync(TESTS_ENTRY)) throw new Error(`no ${TESTS_ENTRY}: run \`npx tsc -p .\` first`);
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('no dist/extension.js: run `npm run build` first');

    const workspace = this.options.workspace ?? path.join(this.root, 'workspace');
    if (!this.options.workspace) makeTestWorkspace(workspace);
    this.server = new VscodeServer({ serverMain, root: this.root, env: { AGENT_SANDBOX_VSCODE_MARK: MARK } });
    await this.server.start();
    void this.server.exited.then((why) => this.finish(1, why));
    say(`VS Code server on ${this.server.origin}, workspace ${workspace}`);
    await this.openBrowser(this.server.workbenchUrl(workspace, TESTS_ENTRY));
  }

  private async openBrowser(url: string): Promise<void> {
    const { browser, page } = await openBrowser({ width: 1400, height: 900 });
    this.browser = browser;
    this.page = page;
    browser.on('disconnected', () => this.finish(1, 'the browser went away'));
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

  /** The last lines of the server's output, the workbench's log and the logs the server and extension host wrote. */
  report(): string {
    const workbench: [string, string] = ['workbench log (the page)', this.workbenchTail.text()];
    return this.server?.report([workbench]) ?? `--- ${workbench[0]} ---\n${workbench[1] || '(none)'}`;
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
    await closeBrowser(this.browser);
    await this.server?.stop();
    if (this.options.keep) {
      say(`kept ${this.root}`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
    }
  }
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const run = new Run(options);
  const signalled = onSignals(say, () => run.cleanup());

  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => resolve({ code: 1, why: `no verdict within ${options.timeoutMs / 1000} s` }), options.timeoutMs);
    });
    const verdict = await Promise.race([run.start().then(() => Promise.race([run.verdict, timedOut])), timedOut]);
    const signal = signalled();
    if (signal !== undefined) return signal; // the signal handler is cleaning up and exits
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
    const signal = signalled();
    if (signal !== undefined) return signal;
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
