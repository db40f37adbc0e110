// The packaged extension as a user gets it: the .vsix that `vsce package` made is installed into a real VS Code
// 1.100 (the server from scripts/vscode-server.sh) with no development path, a workspace with a sandbox.toml is
// opened in Chromium, and the installed bundle must activate and fill the Sandboxes view from the real engine.
//   node out/test/vscode/vsix.js VSIX
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { closeBrowser, locateServer, openBrowser, REPO_ROOT, VscodeServer } from './server';
import { openSandboxesView, waitForWorkbench, waitUntil } from './workbench';

const EXTENSION_ID = 'agent-sandboxes.agent-sandboxes';

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
  const serverMain = locateServer(say);
  const server = new VscodeServer({ serverMain, root });
  let browser: Browser | undefined;
  const checks: Array<[string, boolean]> = [];
  try {
    // The server's own CLI installs extensions into its extensions folder, as `code --install-extension` does.
    const installed = execFileSync(process.execPath, [serverMain, '--install-extension', vsix, '--extensions-dir', server.extensions, '--server-data-dir', server.serverData], {
      encoding: 'utf8',
    });
    const folder = fs.readdirSync(server.extensions).find((name) => name.startsWith(`${EXTENSION_ID}-`));
    checks.push([`installed into the extensions folder as ${folder ?? '(nothing)'}`, Boolean(folder) && /successfully installed/i.test(installed)]);
    if (!folder) throw new Error(`the install said:\n${installed}`);

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
    fs.mkdirSync(path.join(REPO_ROOT, '.test-artifacts'), { recursive: true });
    await opened.page.screenshot({ path: path.join(REPO_ROOT, '.test-artifacts', 'vsix.png') });
  } catch (error) {
    checks.push([`${(error as Error).message}\n${server.report()}`, false]);
  } finally {
    await closeBrowser(browser);
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  }
  for (const [what, ok] of checks) say(`${ok ? 'ok' : 'FAILED'} ${what}`);
  const failed = checks.filter(([, ok]) => !ok).length;
  say(`${checks.length - failed} passed, ${failed} failed`);
  return failed === 0 && checks.length === 3 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    say(`FAILED ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
