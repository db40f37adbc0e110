// The next steps an error carries, as each front end words them: a command line in the terminal, a button in the
// editor. One case per step: a step added to NextStep and left out of either front end fails here or in tsc.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { errorForTerminal, stepInWords } from '../../src/cli/errors';
import { ConfigError, ConflictError, EngineUnavailableError, SandboxError } from '../../src/core/errors';
import type { NextStep } from '../../src/core/errors';
import { presentError, showError, stepButton } from '../../src/ui/errors';

const CASES: Array<{ step: NextStep; terminal?: RegExp; button?: { label: string; command: string; args: unknown[] } }> = [
  { step: { do: 'list-sandboxes' }, terminal: /^List them: agent-sandbox ls$/, button: { label: 'Refresh', command: 'agentSandboxes.refresh', args: [] } },
  { step: { do: 'remove-sandbox', sandbox: 'fix' }, terminal: /^Remove it: agent-sandbox rm fix$/, button: { label: 'Remove fix...', command: 'agentSandboxes.remove', args: ['fix'] } },
  { step: { do: 'remove-sandbox', sandbox: 'fix', force: true }, terminal: /agent-sandbox rm --force fix$/, button: { label: 'Remove fix Anyway...', command: 'agentSandboxes.remove', args: ['fix'] } },
  { step: { do: 'start-sandbox', sandbox: 'fix' }, terminal: /agent-sandbox start fix$/, button: { label: 'Start fix', command: 'agentSandboxes.start', args: ['fix'] } },
  { step: { do: 'stop-a-sandbox' }, terminal: /agent-sandbox stop NAME/, button: { label: 'Stop a Sandbox...', command: 'agentSandboxes.stop', args: [] } },
  { step: { do: 'sync', sandbox: 'fix', mode: 'merge' }, terminal: /agent-sandbox sync fix --mode merge$/, button: { label: 'Sync Back...', command: 'agentSandboxes.syncBack', args: ['fix'] } },
  { step: { do: 'sync', sandbox: 'fix', mode: 'squash', onConflict: 'merge' }, terminal: /agent-sandbox sync fix --mode squash --on-conflict merge$/, button: { label: 'Sync Back...', command: 'agentSandboxes.syncBack', args: ['fix'] } },
  { step: { do: 'review-changes', sandbox: 'fix' }, terminal: /agent-sandbox diff fix --stat$/, button: { label: 'Review Changes', command: 'agentSandboxes.reviewChanges', args: ['fix'] } },
  { step: { do: 'set-secret', names: ['A', 'B'] }, terminal: /AGENT_SANDBOX_SECRETS_FROM_ENV=A,B$/, button: { label: 'Set A...', command: 'agentSandboxes.setSecret', args: ['A'] } },
  { step: { do: 'choose-base' }, terminal: /--base/ },
  { step: { do: 'overwrite-patch' }, terminal: /--force/ },
  { step: { do: 'open-config', file: 'sandbox.toml', line: 4 }, button: { label: 'Open sandbox.toml', command: 'agentSandboxes.openConfigAt', args: ['/ws/sandbox.toml', 4] } },
  { step: { do: 'start-podman', socket: '/run/podman/podman.sock' }, button: { label: "Start Podman's API Service", command: 'agentSandboxes.startPodmanService', args: [] } },
  { step: { do: 'retry' }, button: { label: 'Retry', command: 'agentSandboxes.retry', args: [] } },
  {
    step: { do: 'allow', setting: 'agentSandboxes.allowHostNetwork', env: 'AGENT_SANDBOX_ALLOW_HOST_NETWORK', value: '1' },
    terminal: /^Allow it for agent-sandbox: AGENT_SANDBOX_ALLOW_HOST_NETWORK=1$/,
    button: { label: 'Open User Settings', command: 'workbench.action.openSettings', args: ['agentSandboxes.allowHostNetwork'] },
  },
  {
    step: { do: 'allow', setting: 'agentSandboxes.allowedVolumePaths', env: 'AGENT_SANDBOX_ALLOWED_VOLUME_PATHS', value: '/data' },
    terminal: /AGENT_SANDBOX_ALLOWED_VOLUME_PATHS=\/data \(more than one: separated by ":"\)$/,
    button: { label: 'Open User Settings', command: 'workbench.action.openSettings', args: ['agentSandboxes.allowedVolumePaths'] },
  },
];

describe('next steps, in each front end', () => {
  for (const { step, terminal, button } of CASES) {
    test(`${JSON.stringify(step)}: the terminal ${terminal ? 'says a command' : 'adds nothing'}, the editor ${button ? 'offers a button' : 'none'}`, () => {
      const words = stepInWords(step);
      if (terminal) assert.match(words ?? '', terminal);
      else assert.equal(words, undefined);
      assert.deepEqual(stepButton(step, '/ws'), button);
    });
  }

  test('the terminal prints what happened, the hint, then each step on a line of its own; no VS Code words', () => {
    const error = new ConflictError('Removing "fix" would lose the agent\'s work.', 'Take it first, or remove it anyway.', [
      { do: 'sync', sandbox: 'fix', mode: 'merge' },
      { do: 'remove-sandbox', sandbox: 'fix', force: true },
    ]);
    assert.equal(
      errorForTerminal(error),
      'Removing "fix" would lose the agent\'s work.\nTake it first, or remove it anyway.\nTake it: agent-sandbox sync fix --mode merge\nRemove it anyway: agent-sandbox rm --force fix',
    );
    assert.equal(errorForTerminal(new Error('plain')), 'plain');
  });

  test('the editor shows the whole message and hint (not only a first line) and a button per step, no CLI words', () => {
    const error = new ConflictError('Removing "fix" would lose the agent\'s work.', 'Take it first, or remove it anyway.', [
      { do: 'sync', sandbox: 'fix', mode: 'merge' },
      { do: 'remove-sandbox', sandbox: 'fix', force: true },
    ]);
    const { text, buttons } = presentError(error);
    assert.equal(text, 'Removing "fix" would lose the agent\'s work. Take it first, or remove it anyway.');
    assert.doesNotMatch(text, /agent-sandbox/);
    assert.deepEqual(buttons.map((b) => b.label), ['Sync Back...', 'Remove fix Anyway...']);
  });

  test('a config error opens the file at its line; an unreachable engine offers Retry, and to start Podman where it can', () => {
    assert.deepEqual(presentError(new ConfigError('sandbox.toml', 5, 'sandbox.container.cpus', 'expected a number'), '/ws').buttons, [
      { label: 'Open sandbox.toml', command: 'agentSandboxes.openConfigAt', args: ['/ws/sandbox.toml', 5] },
    ]);
    assert.deepEqual(presentError(new EngineUnavailableError('Cannot reach the engine.', 'Start one.', '/run/podman/podman.sock')).buttons.map((b) => b.label), ["Start Podman's API Service", 'Retry']);
    assert.deepEqual(presentError(new EngineUnavailableError('Cannot reach the engine.', 'Start one.')).buttons.map((b) => b.label), ['Retry']);
  });

  test("a consent the repository cannot give: the editor names the user setting, the terminal the variable", () => {
    const error = new ConfigError('sandbox.toml', 7, 'sandbox.container.network', 'network = "host" gives the agent this machine\'s own network', 'Use nat.', [
      { do: 'allow', setting: 'agentSandboxes.allowHostNetwork', env: 'AGENT_SANDBOX_ALLOW_HOST_NETWORK', value: '1' },
    ]);
    const shown = presentError(error, '/ws');
    assert.match(shown.text, /turn on the user setting agentSandboxes\.allowHostNetwork\.$/);
    assert.doesNotMatch(shown.text, /AGENT_SANDBOX_/);
    assert.deepEqual(shown.buttons.map((b) => b.label), ['Open User Settings', 'Open sandbox.toml']);
    assert.match(errorForTerminal(error), /\nAllow it for agent-sandbox: AGENT_SANDBOX_ALLOW_HOST_NETWORK=1$/);
    assert.doesNotMatch(errorForTerminal(error), /agentSandboxes\./);
  });

  test('showError runs the button the user picks, and Show Log shows the log', async () => {
    const error = new SandboxError('There is no sandbox named "x".', undefined, [{ do: 'list-sandboxes' }]);
    const ran: unknown[][] = [];
    let shown = 0;
    const editor = (choice: string | undefined) => ({
      window: { showErrorMessage: async (text: string, ...items: string[]) => (ran.push(['shown', text, ...items]), choice) },
      commands: { executeCommand: async (command: string, ...args: unknown[]) => void ran.push([command, ...args]) },
    });
    await showError(error, editor('Refresh') as never, { show: () => void shown++ });
    assert.deepEqual(ran, [['shown', 'There is no sandbox named "x".', 'Refresh', 'Show Log'], ['agentSandboxes.refresh']]);
    ran.length = 0;
    await showError(error, editor('Show Log') as never, { show: () => void shown++ });
    assert.deepEqual([ran.length, shown], [1, 1]);
  });
});
