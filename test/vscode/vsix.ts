// The packaged extension as a user gets it: the .vsix that `npm run package` made is installed into a real VS
// Code 1.100 (the server from scripts/vscode-server.sh) with no development path, a workspace with a sandbox.toml
// is opened in Chromium, and the installed bundle must activate, fill the Sandboxes view from the real engine,
// and bring up a sandbox with an egress allowlist through New Sandbox in the command palette: that builds the
// proxy's image from the bundles the package holds, which a package without them cannot.
//   node out/test/vscode/vsix.js VSIX
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import type { Page } from 'playwright-core';
import { closeBrowser, locateServer, openBrowser, REPO_ROOT, serverNode, VscodeServer } from './server';
import { describeTree, openSandboxesView, waitForRow, waitForWorkbench, waitUntil } from './workbench';

const EXTENSION_ID = 'agent-sandboxes.agent-sandboxes';
const SANDBOX = 'vsix-egress';
/** A role whose agent asks the proxy for a host off its allowlist: the denial in its log proves the proxy ran. */
const ALLOWLISTED_ROLE = `
[agents.allowlisted]
network = "nat"
allow = ["allowed.test"]
command = ["sh", "-c", "printf 'CONNECT denied.test:443 HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 3128 > /dev/null; echo probed; exec sleep 600"]
`;

function say(message: string): void {
  process.stdout.write(`vsix: ${message}\n`);
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

async function main(): Promise<number> {
  const vsix = path.resolve(process.argv[2] ?? '');
  if (!fs.existsSync(vsix)) throw new Error(`usage: vsix.js VSIX (no file at ${vsix})`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-vsix-'));
  const workspace = path.join(root, 'workspace');
  execFileSync('bash', [path.join(REPO_ROOT, 'test', 'vscode', 'make-workspace.sh'), workspace]);
  fs.appendFileSync(path.join(workspace, 'sandbox.toml'), ALLOWLISTED_ROLE);
  execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', 'commit', '-qam', 'an allowlisted role'], { cwd: workspace });
  const serverMain = locateServer(say);
  const server = new VscodeServer({ serverMain, root });
  let browser: Browser | undefined;
  let installedCli: string | undefined;
  const checks: Array<[string, boolean]> = [];
  try {
    // The server's own CLI installs extensions into its extensions folder, as `code --install-extension` does.
    const installed = execFileSync(serverNode(serverMain), [serverMain, '--install-extension', vsix, '--extensions-dir', server.extensions, '--server-data-dir', server.serverData], {
      encoding: 'utf8',
    });
    const product = JSON.parse(fs.readFileSync(path.join(path.dirname(serverMain), '..', 'package.json'), 'utf8')) as { version: string };
    say(`VS Code ${product.version} on Node ${execFileSync(serverNode(serverMain), ['--version'], { encoding: 'utf8' }).trim()}`);
    const folder = fs.readdirSync(server.extensions).find((name) => name.startsWith(`${EXTENSION_ID}-`));
    checks.push([`installed into the extensions folder as ${folder ?? '(nothing)'}`, Boolean(folder) && /successfully installed/i.test(installed)]);
    if (!folder) throw new Error(`the install said:\n${installed}`);
    installedCli = path.join(server.extensions, folder, 'dist', 'cli.js');

    await server.start();
    const opened = await openBrowser({ width: 1120, height: 680 });
    browser = opened.browser;
    // No payload: the installed extension, not a development copy.
    await opened.page.goto(`${server.origin}/?folder=${encodeURIComponent(workspace)}`, { waitUntil: 'domcontentloaded' });
    await waitForWorkbench(opened.page, 60_000);
    const activated = await waitUntil(60_000, () => 'the extension host to activate the extension', async () => {
      const logs = filesUnder(server.userData).concat(filesUnder(server.serverData)).filter((f) => f.endsWith('exthost.log'));
      const text = logs.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
      if (text.includes(`Activating extension ${EXTENSION_ID} failed`)) throw new Error(`activation failed:\n${text}`);
      return text.includes(`ExtensionService#_doActivateExtension ${EXTENSION_ID}`) ? text : undefined;
    });
    checks.push(['the installed extension activated (remoteexthost.log), without failing', activated.includes(EXTENSION_ID)]);
    await openSandboxesView(opened.page, 30_000);
    // The bundle reached the real engine: the empty view's welcome text for a ready workspace, not an error.
    const welcome = opened.page.getByText('No sandboxes yet.');
    await welcome.waitFor({ timeout: 30_000 });
    checks.push(['its Sandboxes view answers from the engine ("No sandboxes yet.")', await welcome.isVisible()]);

    await newSandboxFromPalette(opened.page, 'allowlisted', 'probe the proxy', SANDBOX);
    await waitForRow(opened.page, SANDBOX, 120_000, (d) => /running/.test(d), 'running');
    // The installed package's own CLI reads the log: the proxy, built from the packaged bundles, refused the host.
    const denied = await waitUntil(60_000, () => `no denial in the log of ${SANDBOX}`, async () => {
      // The proxy's denials come on the agent's stderr.
      const read = spawnSync(process.execPath, [installedCli ?? '', 'logs', SANDBOX, '--workspace', workspace], { encoding: 'utf8', timeout: 30_000 });
      const log = `${read.stdout}${read.stderr}`;
      return /agent-sandbox egress: denied denied\.test:443/.test(log) && log.includes('probed') ? log : undefined;
    });
    checks.push(['New Sandbox from the palette brought up an allowlisted sandbox whose proxy, built from the package, denied a host off its list', Boolean(denied)]);
    fs.mkdirSync(path.join(REPO_ROOT, '.test-artifacts'), { recursive: true });
    await opened.page.screenshot({ path: path.join(REPO_ROOT, '.test-artifacts', 'vsix.png') });
  } catch (error) {
    checks.push([`${(error as Error).message}\n${server.report()}`, false]);
  } finally {
    if (installedCli && fs.existsSync(installedCli)) {
      try {
        execFileSync(process.execPath, [installedCli, 'rm', '--force', SANDBOX, '--workspace', workspace], { stdio: 'ignore', timeout: 60_000 });
      } catch {
        /* never made */
      }
    }
    await closeBrowser(browser);
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  }
  for (const [what, ok] of checks) say(`${ok ? 'ok' : 'FAILED'} ${what}`);
  const failed = checks.filter(([, ok]) => !ok).length;
  say(`${checks.length - failed} passed, ${failed} failed`);
  return failed === 0 && checks.length === 4 ? 0 : 1;
}

/** Runs New Sandbox as a user does: the command palette, then the role, the task and the name it asks for. */
async function newSandboxFromPalette(page: Page, role: string, task: string, name: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('input');
  const opened = async (what: string, ok: (text: string) => boolean) =>
    waitUntil(20_000, async () => `${what} did not show (the quick input shows: ${await widget.innerText().catch(() => '?')}; the view: ${await describeTree(page)})`,
      async () => ((await widget.isVisible()) && ok(await widget.innerText()) ? true : undefined));
  await page.keyboard.press('F1');
  await opened('the command palette', () => true);
  await input.fill('>Agent Sandboxes: New Sandbox');
  await opened('New Sandbox in the palette', (text) => text.includes('New Sandbox'));
  await page.keyboard.press('Enter');
  await opened('the role pick', (text) => text.includes(role));
  await input.fill(role);
  await page.keyboard.press('Enter');
  await opened('the task box', (text) => /task/.test(text));
  await input.fill(task);
  await page.keyboard.press('Enter');
  await opened('the name box', (text) => /name/i.test(text));
  await input.fill(name);
  await page.keyboard.press('Enter');
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    say(`FAILED ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
