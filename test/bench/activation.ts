/**
 * Part 6: activation inside a real VS Code (the server build, driven by Chromium): how long activate() takes
 * against the time until the view has the engine's first answer, which activation must not wait for. The
 * measuring is the VS Code suite's test "activates without waiting" (test/vscode/suite/activation.test.ts),
 * run alone through out/test/vscode/runInServer.js; it writes .test-artifacts/activation.json.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, run } from './common';

const ARTIFACT = path.join(ROOT, '.test-artifacts', 'activation.json');
/** The first run installs the VS Code server (npm, apt): minutes. */
const INSTALL_TIMEOUT_MS = 20 * 60_000;
/** runInServer gives up by itself after 600 s. */
const SUITE_TIMEOUT_MS = 11 * 60_000;

export interface ActivationResults {
  activateMs: number;
  firstLoadMs: number;
}

export async function benchActivation(): Promise<ActivationResults> {
  // The scripts' own progress goes to stderr as it comes, as when they run from a shell.
  const server = (await run('bash', [path.join(ROOT, 'scripts', 'vscode-server.sh')], { timeoutMs: INSTALL_TIMEOUT_MS, stderr: 'inherit' })).stdout.trim();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandbox-bench-activation-'));
  // Not an earlier run's numbers if this one writes none.
  await fs.rm(ARTIFACT, { force: true });
  await fs.mkdir(path.dirname(ARTIFACT), { recursive: true });
  try {
    const workspace = path.join(tmp, 'project');
    await run('bash', [path.join(ROOT, 'test', 'vscode', 'make-workspace.sh'), workspace], { stderr: 'inherit' });
    await run(process.execPath, [path.join(ROOT, 'out', 'test', 'vscode', 'runInServer.js'), '--workspace', workspace], {
      cwd: ROOT,
      env: { ...process.env, AGENT_SANDBOX_VSCODE_SERVER: server, AGENT_SANDBOX_VSCODE_GREP: 'activates without waiting', AGENT_SANDBOX_ACTIVATION_OUT: ARTIFACT },
      timeoutMs: SUITE_TIMEOUT_MS,
      stderr: 'inherit',
    });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return JSON.parse(await fs.readFile(ARTIFACT, 'utf8')) as ActivationResults;
}

export function reportActivation(t: ActivationResults): string {
  return [
    '5. activation in VS Code 1.100 (ms)      activate()  first view answer  ratio',
    `                                          ${t.activateMs.toFixed(1).padStart(10)}  ${t.firstLoadMs.toFixed(1).padStart(17)}  ${(t.activateMs / t.firstLoadMs).toFixed(2)}x`,
    'activate() returns before any engine call answers; the view fills in afterwards.',
  ].join('\n');
}
