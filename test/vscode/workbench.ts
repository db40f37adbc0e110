// Finding things in the VS Code workbench page as a person sees them: the Sandboxes view behind its activity bar
// icon, a sandbox's row and its description. Used by the UI test (ui.ts) and the try-out's smoke check (trySmoke.ts).
import type { Locator, Page } from 'playwright-core';
import { sleep } from './server';

/** A step's expectation that did not come true: its message says what was seen instead. */
export class Expectation extends Error {}

/**
 * Polls `check` until it returns a value (not undefined) or `timeoutMs` passes; then fails with `what()`. An
 * Expectation thrown by `check` ends the wait at once; other errors (an element going away) count as not yet.
 */
export async function waitUntil<T>(timeoutMs: number, what: () => string | Promise<string>, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch((err: unknown) => {
      if (err instanceof Expectation) throw err;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Expectation(`${await what()} (waited ${(timeoutMs / 1000).toFixed(0)} s)`);
    await sleep(250);
  }
}

/** Waits for the workbench to be drawn: the activity bar holds its icons. */
export async function waitForWorkbench(page: Page, timeoutMs: number): Promise<void> {
  await page.locator('.part.activitybar .action-label').first().waitFor({ state: 'visible', timeout: timeoutMs })
    .catch(() => { throw new Expectation(`the workbench did not show its activity bar within ${timeoutMs / 1000} s`); });
}

/** The activity bar icon of the Sandboxes container, found by its accessible name. */
export function sandboxesIcon(page: Page): Locator {
  return page.locator('.part.activitybar .action-label[aria-label="Sandboxes"]');
}

/** Clicks the Sandboxes icon in the activity bar and waits until the side bar shows the Sandboxes view. */
export async function openSandboxesView(page: Page, timeoutMs: number): Promise<void> {
  const icon = sandboxesIcon(page);
  await waitUntil(timeoutMs, async () => `no "Sandboxes" icon in the activity bar (it has: ${(await activityBarLabels(page)).join(', ')})`,
    async () => ((await icon.count()) === 1 && (await icon.isVisible()) ? true : undefined));
  await icon.click();
  await waitUntil(timeoutMs, async () => `clicking the Sandboxes icon did not show the view (the side bar's title is "${await sideBarTitle(page)}")`,
    async () => ((await sideBarTitle(page)).toLowerCase() === 'sandboxes' ? true : undefined));
}

/** Drags the sash at the side bar's right edge until the side bar is `width` pixels wide, as a person would. */
export async function resizeSideBar(page: Page, width: number): Promise<void> {
  const sideBar = page.locator('.part.sidebar');
  const box = await sideBar.boundingBox();
  if (!box) throw new Expectation('the side bar is not shown');
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width - 1, y);
  await page.mouse.down();
  await page.mouse.move(box.x + width - 1, y, { steps: 8 });
  await page.mouse.up();
  const now = (await sideBar.boundingBox())?.width ?? 0;
  if (Math.abs(now - width) > 8) throw new Expectation(`dragging the side bar's edge made it ${now} px wide, not ${width} px`);
}

async function activityBarLabels(page: Page): Promise<string[]> {
  return page.locator('.part.activitybar .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? '?'));
}

async function sideBarTitle(page: Page): Promise<string> {
  const title = page.locator('.part.sidebar .composite.title h2');
  return (await title.isVisible()) ? (await title.innerText()).trim() : '(no side bar)';
}

/** Moves the pointer off to the empty editor area and lets hover effects and tooltips fade, for a screenshot. */
export async function settlePointer(page: Page): Promise<void> {
  await page.mouse.move(600, 300);
  await page.waitForTimeout(500);
}

/** The tree rows of the side bar's view. */
export function treeRows(page: Page): Locator {
  return page.locator('.part.sidebar .monaco-list-row[role="treeitem"]');
}

/** The tree row whose label is exactly `label`. */
export function treeRow(page: Page, label: string): Locator {
  return treeRows(page).filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) });
}

/** What the side bar's tree shows, one `label — description` a row, for messages. */
export async function describeTree(page: Page): Promise<string> {
  const rows = await treeRows(page).evaluateAll((els) =>
    els.map((e) => `${e.querySelector('.label-name')?.textContent ?? ''} — ${e.querySelector('.label-description')?.textContent ?? ''}`));
  if (rows.length) return rows.join('; ');
  const welcome = page.locator('.part.sidebar .welcome-view-content');
  return (await welcome.count()) ? `no rows; the view says "${(await welcome.first().innerText()).replace(/\s+/g, ' ').trim()}"` : 'no rows';
}

/** A row's description (the grey text after its label), '' when it has none. */
export async function rowDescription(row: Locator): Promise<string> {
  const description = row.locator('.label-description');
  return (await description.count()) ? ((await description.first().textContent()) ?? '').trim() : '';
}

/** Waits until the tree shows the row `label` and its description passes `ok`; returns that description. */
export async function waitForRow(page: Page, label: string, timeoutMs: number, ok: (description: string) => boolean, wanted: string): Promise<string> {
  const row = treeRow(page, label);
  return waitUntil(timeoutMs, async () => `the Sandboxes view never showed ${label} ${wanted}; it shows: ${await describeTree(page)}`, async () => {
    if ((await row.count()) !== 1) return undefined;
    const description = await rowDescription(row);
    return ok(description) ? description : undefined;
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
