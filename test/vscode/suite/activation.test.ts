// A first test inside a real VS Code: our extension is installed from the development path and activates.
import * as assert from 'assert';
import * as fs from 'fs';
import * as vscode from 'vscode';

const EXTENSION_ID = 'agent-sandboxes.agent-sandboxes';

interface Manifest {
  contributes?: { views?: Record<string, Array<{ id: string }>> };
}

describe('Extension activation', () => {
  it(`${EXTENSION_ID} is installed and activates`, async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not among ${vscode.extensions.all.map((e) => e.id).join(', ')}`);
    await extension.activate();
    assert.strictEqual(extension.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.length > 0, 'VS Code lists no commands');
  });

  it('activates without waiting for the engine, and records how long it took', async () => {
    const extension = vscode.extensions.getExtension<{ timings: { activateMs: number; firstLoadMs?: number } }>(EXTENSION_ID);
    assert.ok(extension);
    const { timings } = await extension.activate();
    assert.ok(timings.activateMs > 0, 'activate() measured itself');
    const deadline = Date.now() + 30000;
    while (timings.firstLoadMs === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(timings.firstLoadMs !== undefined, 'the view got its first answer');
    // The engine's answer comes after activate() returned: activation never waited for it.
    assert.ok(timings.firstLoadMs > timings.activateMs, `first load ${timings.firstLoadMs} ms, activate ${timings.activateMs} ms`);
    const out = process.env.AGENT_SANDBOX_ACTIVATION_OUT;
    if (out) fs.writeFileSync(out, JSON.stringify(timings) + '\n');
  });

  it('contributes the Sandboxes view', () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension);
    const manifest = extension.packageJSON as Manifest;
    assert.strictEqual(manifest.contributes?.views?.agentSandboxes?.[0]?.id, 'agentSandboxes.sandboxes');
  });

  it('runs in the expected VS Code version', function () {
    const expected = process.env.AGENT_SANDBOX_EXPECT_VSCODE;
    if (!expected) this.skip();
    assert.ok(
      vscode.version === expected || vscode.version.startsWith(`${expected}.`),
      `VS Code ${vscode.version}, expected ${expected}.x`,
    );
  });
});
