// The try-out's check that its editor works (scripts/try.sh with AGENT_SANDBOX_TRY_SMOKE=1): opens the workbench
// URL the try-out printed in a real headless chromium, opens the Sandboxes view from the activity bar and waits
// until it shows the demo sandbox's row, then saves a screenshot.
//
//   node out/test/vscode/trySmoke.js URL SANDBOX SCREENSHOT
//
// Exit code: 0 when the row showed (the screenshot shows it), 1 otherwise (with a screenshot of what showed).
import * as fs from 'fs';
import * as path from 'path';
import type { Browser } from 'playwright-core';
import { closeBrowser, onSignals, openBrowser } from './server';
import { Expectation, openSandboxesView, resizeSideBar, settlePointer, waitForRow, waitForWorkbench } from './workbench';

function say(message: string): void {
  process.stderr.write(`try-smoke: ${message}\n`);
}

async function main(): Promise<number> {
  const [url, name, screenshot] = process.argv.slice(2);
  if (!url || !name || !screenshot) {
    say('usage: node out/test/vscode/trySmoke.js URL SANDBOX SCREENSHOT');
    return 2;
  }
  let browser: Browser | undefined;
  onSignals(say, () => closeBrowser(browser));
  const started = Date.now();
  const opened = await openBrowser({ width: 1120, height: 680 });
  browser = opened.browser;
  const page = opened.page;
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await waitForWorkbench(page, 60000);
    await openSandboxesView(page, 30000);
    await resizeSideBar(page, 400);
    const description = await waitForRow(page, name, 60000, () => true, 'at all');
    await settlePointer(page);
    await page.screenshot({ path: screenshot });
    say(`the Sandboxes view shows ${name} (${description}) after ${((Date.now() - started) / 1000).toFixed(1)} s; screenshot: ${screenshot}`);
    return 0;
  } catch (err) {
    await page.screenshot({ path: screenshot }).catch(() => undefined);
    say(`FAILED: ${err instanceof Expectation ? err.message : (err as Error).stack ?? String(err)}; screenshot: ${screenshot}`);
    return 1;
  } finally {
    await closeBrowser(browser);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`FAILED: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
