// A first test inside a real VS Code: our extension is installed from the development path and activates.
import * as assert from 'assert';
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
