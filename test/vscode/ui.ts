// The extension used as a person would, in a real VS Code (the VS Code server 1.100.3 in Debian's chromium), with
// no test entry: the normal workbench with our extension in development mode on a fresh repository. Each step
// clicks what a person clicks and checks what a person would see; a step that does not happen fails with a
// message saying what was seen instead and a screenshot.
//
//   node out/test/vscode/ui.js            (bash scripts/test-ui.sh builds first)
//
// Steps: a. the Sandboxes icon in the activity bar shows the view; b. a sandbox started by the CLI (another
// process) shows up in the view by itself, running, and its changed files under it; c. its inline Stop action
// stops it; d. the status bar item's quick pick lists it and its "Show Logs" shows the agent's output; e. the
// summary row's inline Sync Back (squash, every file) brings the agent's files into the workspace; f. an
// interactive agent (a shell) started by the CLI: its row's inline Attach to Agent opens a terminal where typed keys
// reach the agent and its output shows; g. closing that terminal leaves the agent running, and attaching again
// shows the same screen; h. every screenshot was saved (.test-artifacts/ui/01-view.png ... 07-attach-agent.png).
// Env: AGENT_SANDBOX_VSCODE_SERVER (server-main.js; default: what scripts/vscode-server.sh prints),
//      AGENT_SANDBOX_CHROMIUM (default /usr/bin/chromium), AGENT_SANDBOX_UI_KEEP=1 keeps the temp folder.
// Exit code: 0 when every step passed, 1 otherwise; 130/143 on SIGINT/SIGTERM.
import type { ChildProcess} from 'child_process';
import { execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser, Locator, Page } from 'playwright-core';
import { REPO_ROOT, Tail, VscodeServer, closeBrowser, locateServer, onSignals, openBrowser } from './server';
import { Expectation, describeTree, openSandboxesView, resizeSideBar, settlePointer, treeRow, waitForRow, waitForWorkbench, waitUntil } from './workbench';

const ARTIFACTS = path.join(REPO_ROOT, '.test-artifacts', 'ui');
const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');
const NAME = 'ui-demo';
const TASK = 'Say hello';
const AGENT = 'ui-agent';
const SCREENSHOTS = ['01-view.png', '02-running.png', '03-stopped.png', '04-quickpick.png', '05-logs.png', '06-sync.png', '07-attach-agent.png'];

function say(message: string): void {
  process.stdout.write(`ui: ${message}\n`);
}

class UiRun {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-ui-'));
  readonly workspace = path.join(this.root, 'workspace');
  private server?: VscodeServer;
  private browser?: Browser;
  private page?: Page;
  private cli?: ChildProcess;
  private readonly cliOutput = new Tail(40);
  private cleaned?: Promise<void>;

  get p(): Page {
    if (!this.page) throw new Expectation('the workbench page is not open');
    return this.page;
  }

  /** A repository with the `engineer` and `quick` roles; the server; chromium on the workbench without tests. */
  async open(): Promise<void> {
    if (!fs.existsSync(CLI)) throw new Error('no dist/cli.js: run `npm run build` first');
    execFileSync('bash', [path.join(REPO_ROOT, 'test', 'vscode', 'make-workspace.sh'), this.workspace], { stdio: ['ignore', 'ignore', 'inherit'] });
    this.server = new VscodeServer({ serverMain: locateServer(say), root: path.join(this.root, 'vscode') });
    await this.server.start();
    const url = this.server.workbenchUrl(this.workspace);
    say(`VS Code server on ${this.server.origin}, workspace ${this.workspace}`);
    const { browser, page } = await openBrowser({ width: 1120, height: 680 });
    this.browser = browser;
    this.page = page;
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await waitForWorkbench(page, 60000);
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(ARTIFACTS, name);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await settlePointer(this.p); // no hover or tooltip left over from the last click
    await this.p.screenshot({ path: file, timeout: 15000 });
    return file;
  }

  /** a. The activity bar icon titled "Sandboxes" shows the view, which is ready and empty; widened, rows show in full. */
  async openView(): Promise<void> {
    await openSandboxesView(this.p, 30000);
    await resizeSideBar(this.p, 400);
    await waitUntil(60000, async () => `the Sandboxes view did not say "No sandboxes yet." (it shows: ${await describeTree(this.p)})`,
      async () => ((await this.p.locator('.part.sidebar').getByText('No sandboxes yet.').isVisible()) ? true : undefined));
    await this.screenshot('01-view.png');
  }

  /** b. `agent-sandbox up` in another process: the row comes by itself, running; expanded, it lists the agent's files. */
  async startFromCli(): Promise<string> {
    const cli = spawn(process.execPath, [CLI, 'up', NAME, '--agent', 'engineer', '--task', TASK, '--workspace', this.workspace], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.cli = cli;
    cli.stdout?.on('data', (chunk: Buffer) => this.cliOutput.push(chunk.toString()));
    cli.stderr?.on('data', (chunk: Buffer) => this.cliOutput.push(chunk.toString()));
    const cliExit = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    let cliFailed: string | undefined;
    void cliExit.then((code) => {
      if (code !== 0) cliFailed = `\`agent-sandbox up\` exited with ${code}:\n${this.cliOutput.text()}`;
    });
    const description = await waitForRow(this.p, NAME, 180000, (d) => {
      if (cliFailed) throw new Expectation(cliFailed);
      return /\brunning\b/.test(d);
    }, 'as running').catch((err: Error) => {
      throw cliFailed ? new Expectation(cliFailed) : err;
    });
    const code = await Promise.race([cliExit, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30000).unref())]);
    if (code !== 0) throw new Expectation(`the row shows "${description}" but \`agent-sandbox up\` ${code === 'hung' ? 'did not return' : `exited with ${code}`}:\n${this.cliOutput.text()}`);

    // Expand it (a click on the row) and wait for the agent's changes: it commits hello.txt and changes README.md.
    const row = treeRow(this.p, NAME);
    await row.click();
    await waitUntil(30000, async () => `expanding ${NAME} did not list hello.txt and README.md; the view shows: ${await describeTree(this.p)}`,
      async () => ((await row.getAttribute('aria-expanded')) === 'true' &&
        (await treeRow(this.p, 'hello.txt').count()) === 1 && (await treeRow(this.p, 'README.md').count()) === 1 ? true : undefined));
    await this.screenshot('02-running.png');
    return description;
  }

  /** c. Hover the row, click its inline Stop action: the description leaves "running" for how the agent ended. */
  async stopInline(): Promise<string> {
    const row = treeRow(this.p, NAME);
    await row.hover();
    const stop = row.locator('.actions .action-label[aria-label="Stop"], .actions .action-label[title="Stop"]');
    await waitUntil(10000, async () => `hovering ${NAME} showed no inline "Stop" action (its actions: ${await actionLabels(row)})`,
      async () => ((await stop.count()) === 1 && (await stop.isVisible()) ? true : undefined));
    await stop.click();
    const description = await waitForRow(this.p, NAME, 60000, (d) => !/\brunning\b/.test(d) && /\b(stopped|finished|failed \(\d+\))/.test(d),
      'as ended (stopped, finished or failed (143))');
    await this.screenshot('03-stopped.png');
    return description;
  }

  /** d. The status bar item, its quick pick of sandboxes, then "Show Logs": the sandbox's output channel shows the agent's text. */
  async logsFromStatusBar(): Promise<string> {
    const page = this.p;
    const item = page.locator('.part.statusbar .statusbar-item').filter({ hasText: 'Docker:' });
    await waitUntil(10000, async () => `no status bar item with "Docker:" (the status bar shows: ${await page.locator('.part.statusbar').innerText().catch(() => '?')})`,
      async () => ((await item.count()) === 1 && (await item.isVisible()) ? true : undefined));
    const itemText = (await item.innerText()).trim();
    await item.click();
    await settlePointer(page); // else its tooltip shows up in the screenshots
    const sandboxChoice = await this.quickPickOption(NAME, 'the status bar item\'s quick pick');
    await this.screenshot('04-quickpick.png');
    await sandboxChoice.click();
    const showLogs = await this.quickPickOption('Show Logs', `the quick pick of ${NAME}'s actions`);
    await showLogs.click();

    const channel = `Sandbox: ${NAME}`;
    const panel = page.locator('.part.panel');
    await waitUntil(30000, async () => `the output panel did not show the channel "${channel}" (it shows: ${await outputChannel(page)})`,
      async () => ((await outputChannel(page)) === channel ? true : undefined));
    const text = `task: ${TASK}`;
    await waitUntil(30000, async () => `the channel "${channel}" does not show "${text}"; it shows: ${(await panel.locator('.view-lines').first().innerText().catch(() => '?')).slice(0, 400)}`,
      async () => ((await panel.locator('.view-lines').first().innerText()).replace(/\u00a0/g, ' ').includes(text) ? true : undefined));
    // Focus comes back to the status bar item, whose tooltip then covers the panel's corner: click into the output,
    // as a person reading it would.
    const output = panel.locator('.monaco-editor').first();
    const box = await output.boundingBox();
    await output.click({ position: { x: (box?.width ?? 400) - 40, y: (box?.height ?? 100) - 10 } }); // below the text
    await this.screenshot('05-logs.png');
    return itemText;
  }

  /**
   * e. The summary row's inline Sync Back, "Squash into working tree", every file (the file pick's default):
   * the agent's files arrive in the workspace, uncommitted, and a notification says so.
   */
  async syncFromSummaryRow(): Promise<string> {
    const page = this.p;
    const summary = treeRow(page, '2 files changed');
    await waitUntil(15000, async () => `no summary row "2 files changed" under ${NAME} (the view shows: ${await describeTree(page)})`,
      async () => ((await summary.count()) === 1 ? true : undefined));
    await summary.hover();
    const sync = summary.locator('.actions .action-label[aria-label^="Sync Back"], .actions .action-label[title^="Sync Back"]');
    await waitUntil(10000, async () => `hovering the summary row showed no inline "Sync Back" action (its actions: ${await actionLabels(summary)})`,
      async () => ((await sync.count()) === 1 && (await sync.isVisible()) ? true : undefined));
    await sync.click();
    const squash = await this.quickPickOption('Squash into working tree', 'Sync Back');
    await this.screenshot('06-sync.png');
    await squash.click();
    // The file pick opens with every file picked: accept it as it is.
    const widget = page.locator('.quick-input-widget');
    await waitUntil(15000, async () => `the file pick did not open with both files picked (the quick input shows: ${await widget.innerText().catch(() => '?')})`,
      async () => ((await widget.isVisible()) && /which files\?/.test(await widget.innerText()) && (await widget.getByText('2 Selected').count()) === 1 ? true : undefined));
    await page.keyboard.press('Enter');
    const hello = path.join(this.workspace, 'hello.txt');
    await waitUntil(30000, async () => `hello.txt did not arrive in the workspace (notifications: ${await page.locator('.notifications-toasts').innerText().catch(() => '?')})`,
      async () => (fs.existsSync(hello) ? true : undefined));
    const readme = fs.readFileSync(path.join(this.workspace, 'README.md'), 'utf8');
    if (!readme.endsWith('changed\n')) throw new Expectation(`README.md did not take the agent's change: ${JSON.stringify(readme)}`);
    const toast = page.locator('.notifications-toasts').getByText(/Applied 2 files from ui-demo/);
    await waitUntil(15000, async () => `no notification "Applied 2 files from ui-demo" (notifications: ${await page.locator('.notifications-toasts').innerText().catch(() => '?')})`,
      async () => ((await toast.count()) >= 1 ? true : undefined));
    return (await toast.first().innerText()).trim();
  }

  /**
   * f. An interactive agent (the `shell` role) started by the CLI; its row's inline Attach to Agent opens a terminal;
   * keys typed there reach the shell, and its answer shows in the terminal.
   */
  async attachAgentInline(): Promise<string> {
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [CLI, 'up', AGENT, '--agent', 'shell', '--task', 'Talk to me', '--workspace', this.workspace], { timeout: 180000 }, (error, stdout, stderr) =>
        error ? reject(new Expectation(`\`agent-sandbox up ${AGENT}\` failed: ${stderr || error.message}`)) : resolve(),
      ),
    );
    await waitForRow(this.p, AGENT, 60000, (d) => /\brunning\b/.test(d), 'as running');
    await this.clickAttachAgent();
    const rows = await this.terminalRows('a prompt', (text) => text.trim().length > 0);
    await this.p.locator('.part.panel .terminal-wrapper.active .xterm').first().click();
    await this.p.keyboard.type('echo hello-$((6*7))');
    await this.p.keyboard.press('Enter');
    await this.terminalRows('the line hello-42', (text) => /^hello-42\s*$/m.test(text));
    await this.runCommand('Notifications: Clear All Notifications'); // Sync Back's, over the terminal
    await this.screenshot('07-attach-agent.png');
    return `the terminal showed ${JSON.stringify(rows.trim().slice(0, 40))}, then hello-42`;
  }

  /** g. The panel's Kill Terminal closes the terminal (the attachment), the agent runs on; Attach again: the same screen. */
  async closeAndReattach(): Promise<string> {
    const page = this.p;
    await this.runCommand('Terminal: Kill the Active Terminal Instance');
    await waitUntil(15000, async () => 'the terminal did not close', async () => ((await page.locator('.part.panel .xterm-rows').count()) === 0 ? true : undefined));
    const description = await waitForRow(page, AGENT, 10000, (d) => /\brunning\b/.test(d), 'as still running');
    const clicked = Date.now();
    await this.clickAttachAgent();
    await this.terminalRows('the screen as it was, with hello-42', (text) => /^hello-42\s*$/m.test(text));
    return `${description}; attached again, hello-42 on the screen ${Date.now() - clicked} ms after the click`;
  }

  /** Runs a command from the command palette (F1), by its title. */
  private async runCommand(title: string): Promise<void> {
    const page = this.p;
    await page.keyboard.press('F1');
    await waitUntil(10000, async () => 'F1 did not open the command palette', async () => ((await page.locator('.quick-input-widget input').isVisible()) ? true : undefined));
    await page.keyboard.type(title);
    await (await this.quickPickOption(title, 'the command palette')).click();
  }

  private async clickAttachAgent(): Promise<void> {
    const row = treeRow(this.p, AGENT);
    await row.hover();
    const attach = row.locator('.actions .action-label[aria-label="Attach to Agent"], .actions .action-label[title="Attach to Agent"]');
    await waitUntil(10000, async () => `hovering ${AGENT} showed no inline "Attach to Agent" action (its actions: ${await actionLabels(row)})`,
      async () => ((await attach.count()) === 1 && (await attach.isVisible()) ? true : undefined));
    await attach.click();
  }

  /** The text of the panel's terminal (xterm's rows in the DOM) once `ok` holds for it. */
  private async terminalRows(what: string, ok: (text: string) => boolean): Promise<string> {
    const rows = this.p.locator('.part.panel .terminal-wrapper.active .xterm-rows');
    let seen = '(no terminal)';
    return waitUntil(30000, async () => `the terminal did not show ${what}; it shows: ${JSON.stringify(seen.slice(-600))}`, async () => {
      if ((await rows.count()) === 0) return undefined;
      seen = (await rows.first().innerText()).replace(/\u00a0/g, ' ');
      return ok(seen) ? seen : undefined;
    });
  }

  /** The visible quick pick's option whose label is `label`, once it shows. */
  private async quickPickOption(label: string, where: string): Promise<Locator> {
    const widget = this.p.locator('.quick-input-widget');
    const option = widget.locator('.monaco-list-row[role="option"]').filter({ has: this.p.locator('.label-name', { hasText: label }) });
    await waitUntil(15000, async () => `${where} did not offer "${label}" (it ${await widget.isVisible() ? `offers: ${(await widget.locator('.monaco-list-row .label-name').allInnerTexts()).join(', ')}` : 'did not open'})`,
      async () => ((await widget.isVisible()) && (await option.count()) >= 1 ? true : undefined));
    return option.first();
  }

  /** Removes the sandbox (its container by label if the CLI cannot), closes the browser and the server, removes the temp folder. */
  cleanup(): Promise<void> {
    this.cleaned ??= this.doCleanup();
    return this.cleaned;
  }

  private async doCleanup(): Promise<void> {
    this.cli?.kill('SIGKILL');
    await closeBrowser(this.browser);
    await this.server?.stop();
    if (fs.existsSync(path.join(this.workspace, '.git'))) {
      try {
        execFileSync(process.execPath, [CLI, 'rm', '--force', NAME, '--workspace', this.workspace], { stdio: 'ignore', timeout: 60000 });
      } catch {
        /* not created, or the CLI failed: the label finds what is left */
      }
      try {
        const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=dev.agent-sandboxes.workspace=${this.workspace}`], { encoding: 'utf8', timeout: 30000 }).split('\n').filter(Boolean);
        if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore', timeout: 60000 });
      } catch {
        /* no docker CLI or engine: nothing we can remove */
      }
    }
    if (process.env.AGENT_SANDBOX_UI_KEEP === '1') say(`kept ${this.root}`);
    else fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
  }

  report(): string {
    const cli: [string, string] = ['agent-sandbox up output', this.cliOutput.text()];
    return this.server?.report([cli]) ?? '';
  }
}

async function actionLabels(row: Locator): Promise<string> {
  const labels = await row.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.getAttribute('title') ?? '?'));
  return labels.length ? labels.join(', ') : 'none';
}

/** The output channel the panel shows (its channel picker's value), or what is there instead. */
async function outputChannel(page: Page): Promise<string> {
  const panel = page.locator('.part.panel');
  if (!(await panel.isVisible())) return '(the panel is closed)';
  const select = panel.locator('select.monaco-select-box');
  if ((await select.count()) === 0) return '(no output channel picker: the panel shows another view)';
  return select.first().evaluate((e) => {
    const s = e as unknown as { selectedIndex: number; options: ArrayLike<{ text: string }> };
    return s.options[s.selectedIndex]?.text ?? '(none)';
  });
}

interface Step {
  id: string;
  title: string;
  run: () => Promise<string | void>;
}

async function main(): Promise<number> {
  const run = new UiRun();
  const signalled = onSignals(say, () => run.cleanup());
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  const steps: Step[] = [
    { id: 'a', title: 'the "Sandboxes" activity bar icon opens the Sandboxes view (widened by its edge)', run: () => run.openView() },
    { id: 'b', title: `\`agent-sandbox up ${NAME}\` from another process shows the row by itself, running, with its changed files`, run: () => run.startFromCli() },
    { id: 'c', title: `the row's inline Stop action stops ${NAME}`, run: () => run.stopInline() },
    { id: 'd', title: `the status bar item's quick pick, ${NAME}, Show Logs shows the agent's output`, run: () => run.logsFromStatusBar() },
    { id: 'e', title: `the summary row's inline Sync Back, Squash, every file: the agent's files arrive in the workspace`, run: () => run.syncFromSummaryRow() },
    { id: 'f', title: `an interactive agent's inline Attach to Agent opens its terminal: typed keys reach it, its output shows`, run: () => run.attachAgentInline() },
    { id: 'g', title: 'closing the terminal leaves the agent running; Attach to Agent again shows the same screen', run: () => run.closeAndReattach() },
    {
      id: 'h', title: `the screenshots are in ${path.relative(REPO_ROOT, ARTIFACTS)}`, run: async () => {
        const missing = SCREENSHOTS.filter((f) => !(fs.statSync(path.join(ARTIFACTS, f), { throwIfNoEntry: false })?.size));
        if (missing.length) throw new Expectation(`missing: ${missing.join(', ')}`);
        return SCREENSHOTS.join(', ');
      },
    },
  ];
  try {
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    const t0 = Date.now();
    await run.open();
    say(`workbench open in ${seconds(t0)}`);
    for (const [index, step] of steps.entries()) {
      const t = Date.now();
      try {
        const seen = await step.run();
        passed++;
        say(`ok ${step.id}. ${step.title} (${seconds(t)}${seen ? `; ${seen}` : ''})`);
      } catch (err) {
        failed++;
        const shot = await run.screenshot(`failed-${step.id}.png`).catch((e: Error) => `(no screenshot: ${e.message})`);
        say(`FAILED ${step.id}. ${step.title} (${seconds(t)}): ${err instanceof Expectation ? err.message : (err as Error).stack ?? String(err)}`);
        say(`screenshot: ${shot}`);
        const rest = steps.slice(index + 1).map((s) => s.id);
        if (rest.length) say(`not run: ${rest.join(', ')} (they need this one)`);
        if (!(err instanceof Expectation)) process.stderr.write(run.report() + '\n');
        break;
      }
    }
  } catch (err) {
    const signal = signalled();
    if (signal !== undefined) return signal;
    failed++;
    say(`FAILED to open the workbench: ${(err as Error).stack ?? String(err)}`);
    process.stderr.write(run.report() + '\n');
  } finally {
    await run.cleanup();
  }
  const signal = signalled();
  if (signal !== undefined) return signal;
  say(`finished in ${seconds(started)}`);
  say(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === steps.length ? 0 : 1;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`FAILED: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
