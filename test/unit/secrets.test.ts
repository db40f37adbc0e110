import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { environmentSecrets, knownSecrets, resolveSecrets, SecretMask, secretNamesFromEnv, secretsScript } from '../../src/core/isolation/secrets';
import { SandboxError } from '../../src/core/errors';
import { errorForTerminal } from '../../src/cli/errors';
import { presentError } from '../../src/ui/errors';

async function masked(values: string[], chunks: Array<string | Buffer>): Promise<string> {
  const out: string[] = [];
  const mask = Readable.from(chunks, { objectMode: false }).pipe(new SecretMask(values));
  for await (const chunk of mask) out.push(String(chunk));
  return out.join('');
}

describe('SecretMask', () => {
  test('masks every occurrence, also across chunk boundaries', async () => {
    const secret = 'sk-ant-0123456789';
    assert.equal(await masked([secret], [`key=${secret}\n`, `again ${secret}`]), 'key=***\nagain ***');
    // Split at every position: the value never passes whole or in part.
    for (let i = 1; i < secret.length; i++) {
      const text = await masked([secret], [`a ${secret.slice(0, i)}`, `${secret.slice(i)} b`]);
      assert.equal(text, 'a *** b', `split at ${i}`);
    }
  });

  test('holds back only what could begin a secret, and lets it out at the end', async () => {
    assert.equal(await masked(['secret-value'], ['abc secr']), 'abc secr');
    assert.equal(await masked(['secret-value'], ['abc secr', 'et-valueable']), 'abc ***able');
  });

  test('masks the longer of two overlapping secrets whole; ignores values too short to mask', async () => {
    assert.equal(await masked(['token-1', 'token-12345'], ['x token-12345 y token-1 z']), 'x *** y *** z');
    assert.equal(await masked(['abc'], ['abc abc']), 'abc abc');
  });

  test('a multi-byte character split across chunks survives', async () => {
    const bytes = Buffer.from('é secret-value ü');
    assert.equal(await masked(['secret-value'], [bytes.subarray(0, 1), bytes.subarray(1)]), 'é *** ü');
  });
});

describe('secrets', () => {
  test('secretsScript quotes values so the shell never runs them', () => {
    const values = new Map([
      ['A', "it's $(touch /tmp/x) `id` \\ \"q\""],
      ['B', 'line1\nline2'],
    ]);
    const out = execFileSync('sh', ['-c', `${secretsScript(values)}printf '%s|%s' "$A" "$B"`], { encoding: 'utf8' });
    assert.equal(out, "it's $(touch /tmp/x) `id` \\ \"q\"|line1\nline2");
  });

  test('resolveSecrets names every missing secret, and the next step: set them (each front end words how)', async () => {
    const source = environmentSecrets({ PRESENT: 'v1', EMPTY: '' }, ['PRESENT', 'MISSING', 'EMPTY']);
    assert.deepEqual([...(await resolveSecrets(['PRESENT'], source))], [['PRESENT', 'v1']]);
    await assert.rejects(resolveSecrets(['PRESENT', 'MISSING', 'EMPTY'], source), (error: unknown) => {
      assert.ok(error instanceof SandboxError);
      assert.match(error.message, /the secrets MISSING, EMPTY, and they are not set/);
      assert.deepEqual(error.next, [{ do: 'set-secret', names: ['MISSING', 'EMPTY'] }]);
      assert.match(errorForTerminal(error), /AGENT_SANDBOX_SECRETS_FROM_ENV=MISSING,EMPTY/);
      const { text, buttons } = presentError(error);
      assert.match(text, /user setting agentSandboxes\.secretsFromEnvironment/);
      assert.deepEqual(buttons, [{ label: 'Set MISSING...', command: 'agentSandboxes.setSecret', args: ['MISSING'] }]);
      return true;
    });
  });
});

describe('secrets from the environment', () => {
  const env = { AWS_SECRET_ACCESS_KEY: 'aws-value', GITHUB_TOKEN: 'gh-value', ANTHROPIC_API_KEY: 'ant-value' };

  test('only the names the user allowed pass: sandbox.toml cannot name any variable of the host', async () => {
    const source = environmentSecrets(env, ['ANTHROPIC_API_KEY']);
    assert.equal(await source('ANTHROPIC_API_KEY'), 'ant-value');
    assert.equal(await source('AWS_SECRET_ACCESS_KEY'), undefined);
    assert.equal(await source('GITHUB_TOKEN'), undefined);
    await assert.rejects(resolveSecrets(['GITHUB_TOKEN'], source), /the secret GITHUB_TOKEN, and it is not set/);
  });

  test('the allowed names come from AGENT_SANDBOX_SECRETS_FROM_ENV by default; unset, none pass', async () => {
    assert.equal(await environmentSecrets(env)('GITHUB_TOKEN'), undefined);
    const allowed = { ...env, AGENT_SANDBOX_SECRETS_FROM_ENV: ' GITHUB_TOKEN , ANTHROPIC_API_KEY,' };
    assert.deepEqual(secretNamesFromEnv(allowed), ['GITHUB_TOKEN', 'ANTHROPIC_API_KEY']);
    assert.equal(await environmentSecrets(allowed)('GITHUB_TOKEN'), 'gh-value');
    assert.equal(await environmentSecrets(allowed)('AWS_SECRET_ACCESS_KEY'), undefined);
  });

  test('knownSecrets gives every value known, whatever is missing: masking needs them all', async () => {
    const source = environmentSecrets(env, ['ANTHROPIC_API_KEY', 'GITHUB_TOKEN', 'GONE']);
    assert.deepEqual([...(await knownSecrets(['GONE', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN'], source))], [['ANTHROPIC_API_KEY', 'ant-value'], ['GITHUB_TOKEN', 'gh-value']]);
    const failing = async (name: string) => {
      if (name === 'BROKEN') throw new Error('secret storage unavailable');
      return `value-of-${name}`;
    };
    assert.deepEqual([...(await knownSecrets(['BROKEN', 'OTHER'], failing))], [['OTHER', 'value-of-OTHER']]);
    // And masked, all of them, in one stream.
    const values = await knownSecrets(['GONE', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN'], source);
    assert.equal(await masked([...values.values()], ['a=ant-value b=gh-value']), 'a=*** b=***');
  });
});
