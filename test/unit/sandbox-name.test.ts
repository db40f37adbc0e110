import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateSandboxName } from '../../src/core/git/worktrees';
import { suggestName } from '../../src/ui/sandboxName';

describe('the name New Sandbox suggests', () => {
  test('the first four words of the task, lowercased and joined by dashes', () => {
    assert.equal(suggestName('Fix the Login bug, then write tests', new Set()), 'fix-the-login-bug');
  });

  test('a number after a name that is taken', () => {
    assert.equal(suggestName('fix it', new Set(['fix-it', 'fix-it-2'])), 'fix-it-3');
  });

  test('"sandbox" when the text has no letter or digit', () => {
    assert.equal(suggestName('!!!', new Set()), 'sandbox');
  });

  test('a valid sandbox name, however long the task', () => {
    const name = suggestName(`${'a'.repeat(30)} ${'b'.repeat(30)}`, new Set());
    assert.ok(name.length <= 40);
    assert.doesNotThrow(() => validateSandboxName(name));
  });
});
