// The entry point VS Code's extension host calls with the test flags (extensionTestsPath): loads every
// *.test.js next to this file (and below it) into one mocha run. Both runners use it: runInServer.ts (the VS Code
// server in a browser, used here and in CI) and runTest.ts (@vscode/test-electron, where VS Code can be downloaded).
import * as fs from 'fs';
import * as path from 'path';
import * as util from 'util';
import Mocha from 'mocha';

function findTests(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(full));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full);
  }
  return found.sort();
}

/**
 * runInServer.ts sets AGENT_SANDBOX_VSCODE_MARK: it then starts each line the extension host prints (mocha's
 * reporter, the tests' and the extensions' console output) with that mark, so that it can pick them out of the
 * workbench's own log, where VS Code sends the extension host's console when it runs tests.
 */
function markConsole(mark: string): void {
  let logMarked = false;
  for (const method of ['log', 'info', 'warn', 'error'] as const) {
    const original = console[method].bind(console);
    // VS Code's extension host makes these accessors that ignore assignment: redefine them.
    try {
      Object.defineProperty(console, method, {
        value: (...args: unknown[]): void => original(mark + util.format(...args)),
        writable: true, configurable: true, enumerable: true,
      });
      if (method === 'log') logMarked = true;
    } catch {
      /* then only mocha's reporter is marked, below */
    }
  }
  // Mocha's reporters keep the console.log they found when mocha was loaded.
  const base = Mocha.reporters.Base as unknown as { consoleLog: (...args: unknown[]) => void };
  base.consoleLog = (...args: unknown[]): void => console.log((logMarked ? '' : mark) + util.format(...args));
}

export function run(): Promise<void> {
  const mark = process.env.AGENT_SANDBOX_VSCODE_MARK;
  if (mark) markConsole(mark);
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60000 });
  // Optional: run only the tests whose full title matches (e.g. AGENT_SANDBOX_VSCODE_GREP=activation).
  const grep = process.env.AGENT_SANDBOX_VSCODE_GREP;
  if (grep) mocha.grep(grep);
  const files = findTests(__dirname);
  for (const file of files) mocha.addFile(file);
  return new Promise<void>((resolve, reject) => {
    if (files.length === 0) {
      reject(new Error(`no *.test.js under ${__dirname}: run \`npx tsc -p .\` first`));
      return;
    }
    try {
      mocha.run((failures) => {
        if (failures > 0) reject(new Error(`${failures} VS Code test(s) failed`));
        else resolve();
      });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
