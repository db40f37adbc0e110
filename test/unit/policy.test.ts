import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { userPolicy } from '../../src/ui/policy';

/** Settings as VS Code's inspect() gives them: each key's user (global) and workspace values. */
function settingsWith(values: Record<string, { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }>) {
  return { inspect: <T>(key: string) => ({ key, ...(values[key] ?? {}) }) as { key: string; globalValue?: T } };
}
const noStorage = { get: async () => undefined };

const everything = {
  allowedVolumePaths: ['/data'],
  secretsFromEnvironment: ['GITHUB_TOKEN'],
  allowedEngineHosts: ['tcp://build.example:2375'],
  allowHostNetwork: true,
  allowPublicPorts: true,
  dangerouslyExposeEngineSocket: true,
};

describe('the editor\'s policy: only the user\'s own settings widen anything', () => {
  test('a workspace\'s (or folder\'s) settings allow nothing: they travel with the repository', async () => {
    const fromWorkspace = settingsWith(Object.fromEntries(Object.entries(everything).map(([key, value]) => [key, { workspaceValue: value, workspaceFolderValue: value }])));
    const policy = userPolicy(fromWorkspace, noStorage, { GITHUB_TOKEN: 'gh-value' });
    assert.deepEqual(
      [policy.allowedVolumePaths, policy.allowedEngineHosts, policy.allowHostNetwork, policy.allowPublicPorts, policy.exposeEngineSocket],
      [[], [], false, false, false],
    );
    assert.equal(await policy.secrets('GITHUB_TOKEN'), undefined, 'the editor\'s environment is not a source for a name the user did not allow');
  });

  test('the user\'s settings allow what they list', async () => {
    const fromUser = settingsWith(Object.fromEntries(Object.entries(everything).map(([key, value]) => [key, { globalValue: value }])));
    const policy = userPolicy(fromUser, noStorage, { GITHUB_TOKEN: 'gh-value', AWS_SECRET_ACCESS_KEY: 'aws' });
    assert.deepEqual(
      [policy.allowedVolumePaths, policy.allowedEngineHosts, policy.allowHostNetwork, policy.allowPublicPorts, policy.exposeEngineSocket],
      [['/data'], ['tcp://build.example:2375'], true, true, true],
    );
    assert.equal(await policy.secrets('GITHUB_TOKEN'), 'gh-value');
    assert.equal(await policy.secrets('AWS_SECRET_ACCESS_KEY'), undefined);
  });

  test('the secret storage comes first; the environment variables of the command line work in the editor too', async () => {
    const storage = { get: async (key: string) => (key === 'agentSandboxes.secret.ANTHROPIC_API_KEY' ? 'stored' : undefined) };
    const env = { ANTHROPIC_API_KEY: 'from-env', OTHER: 'other', AGENT_SANDBOX_SECRETS_FROM_ENV: 'ANTHROPIC_API_KEY,OTHER', AGENT_SANDBOX_ALLOW_HOST_NETWORK: '1' };
    const policy = userPolicy(settingsWith({}), storage, env);
    assert.equal(await policy.secrets('ANTHROPIC_API_KEY'), 'stored');
    assert.equal(await policy.secrets('OTHER'), 'other');
    assert.equal(policy.allowHostNetwork, true);
  });
});
