// The standard runner for machines that can download VS Code: @vscode/test-electron downloads it (1.100.3 unless
// AGENT_SANDBOX_VSCODE_VERSION says otherwise; 'stable' for the newest) and runs the same suite, with the same
// extension development path, tests entry and workspace as runInServer.ts, which is what runs here and in CI.
//
//   npx tsc -p . && npm run build && node out/test/vscode/runTest.js [--workspace DIR]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runTests } from '@vscode/test-electron';
import { makeTestWorkspace } from './workspace';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let workspace: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--workspace' && args[i + 1]) workspace = path.resolve(args[++i]);
    else if (args[i].startsWith('--workspace=')) workspace = path.resolve(args[i].slice('--workspace='.length));
    else {
      console.error(`runTest: unknown argument ${args[i]}\nusage: node out/test/vscode/runTest.js [--workspace DIR]`);
      return 2;
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-vscode-'));
  try {
    if (!workspace) {
      workspace = path.join(tmp, 'workspace');
      makeTestWorkspace(workspace);
    }
    const version = process.env.AGENT_SANDBOX_VSCODE_VERSION || '1.100.3';
    await runTests({
      version,
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath: path.join(REPO_ROOT, 'out', 'test', 'vscode', 'suite', 'index.js'),
      launchArgs: [
        workspace,
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        '--user-data-dir', path.join(tmp, 'user-data'),
        '--extensions-dir', path.join(tmp, 'extensions'),
      ],
    });
    return 0;
  } catch (err) {
    console.error(`runTest: the VS Code tests failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
  }
}

main().then((code) => process.exit(code));
