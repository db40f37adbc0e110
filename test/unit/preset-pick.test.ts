import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { addPresetRole } from '../../src/core/agents/starter';
import { loadConfig, parseConfig } from '../../src/core/config/config';
import { firstSet, roleChoices, roleCredentials, roleOfPreset } from '../../src/ui/presetPick';

const ALL_PRESETS = ['Claude Code', 'OpenAI Codex CLI', 'Gemini CLI', 'Aider', 'OpenCode'];

describe("New Sandbox's role pick", () => {
  test('without sandbox.toml: the default role, then every preset, each saying which role it adds to which file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'preset-pick-'));
    try {
      const config = await loadConfig(dir, 'agents.toml');
      assert.equal(config.file, undefined);
      const choices = roleChoices(config, 'agents.toml');
      assert.deepEqual(choices[0], { label: 'default', description: "default · no agents.toml yet: the image's own command", role: 'default' });
      assert.deepEqual(choices[1], { separator: 'Agent presets' });
      assert.deepEqual(choices.slice(2).map((c) => 'label' in c && c.label), ALL_PRESETS);
      assert.deepEqual(choices[2], { label: 'Claude Code', description: 'preset: claude-code, adds [agents.claude] to agents.toml', preset: 'claude-code' });
      assert.deepEqual(choices[3], { label: 'OpenAI Codex CLI', description: 'preset: codex, adds [agents.codex] to agents.toml', preset: 'codex' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the file's roles first; a preset some role runs, or whose role name is taken, is not offered again", () => {
    const config = parseConfig('[agents.engineer]\ncommand = ["true"]\n\n[agents.mine]\npreset = "claude-code"\n\n[agents.codex]\ncommand = ["true"]\n', 'sandbox.toml', '/w');
    const choices = roleChoices(config);
    assert.deepEqual(
      choices.map((c) => ('separator' in c ? '--' : `${c.label}${c.role ? '' : ` (${c.preset})`}`)),
      ['engineer', 'mine', 'codex', '--', 'Gemini CLI (gemini)', 'Aider (aider)', 'OpenCode (opencode)'],
    );
    assert.equal((choices[1] as { description?: string }).description, 'preset: claude-code');
    assert.equal(roleOfPreset(config, 'claude-code'), 'mine');
    assert.equal(roleOfPreset(config, 'codex'), undefined, 'a role named codex that runs no preset is not the preset');
  });

  test('every preset used: no separator, the roles only', () => {
    const toml = ['claude-code', 'codex', 'gemini', 'aider', 'opencode'].map((id) => `[agents.r-${id}]\npreset = "${id}"\n`).join('\n');
    const config = parseConfig(toml, 'sandbox.toml', '/w');
    assert.equal(roleChoices(config).length, 5);
    assert.ok(roleChoices(config).every((c) => 'role' in c));
  });

  test("a preset role's credentials, in the order the core looks for them; the one a role names; none without a preset", () => {
    const config = parseConfig('[agents.claude]\npreset = "claude-code"\n\n[agents.oauth]\npreset = "claude-code"\ncredential = "CLAUDE_CODE_OAUTH_TOKEN"\n\n[agents.plain]\ncommand = ["true"]\n', 'sandbox.toml', '/w');
    assert.deepEqual(roleCredentials(config.agents.claude), ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN', 'ANTHROPIC_AUTH_TOKEN']);
    assert.deepEqual(roleCredentials(config.agents.oauth), ['CLAUDE_CODE_OAUTH_TOKEN']);
    assert.deepEqual(roleCredentials(config.agents.plain), []);
  });

  test('firstSet: the first name with a value; an empty value is none', async () => {
    const values: Record<string, string> = { A: '', B: 'b', C: 'c' };
    assert.equal(await firstSet(['A', 'B', 'C'], async (n) => values[n]), 'B');
    assert.equal(await firstSet(['A', 'X'], async (n) => values[n]), undefined);
  });

  test('a preset picked without a file writes one that loads with its role; picked again, it adds to the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'preset-pick-'));
    try {
      const file = path.join(dir, 'sandbox.toml');
      assert.deepEqual(await addPresetRole(file, 'claude-code'), { role: 'claude', created: true });
      let config = await loadConfig(dir);
      assert.equal(config.agents.claude.agent?.preset, 'claude-code');
      assert.deepEqual(roleChoices(config).filter((c) => 'preset' in c).map((c) => (c as { preset: string }).preset), ['codex', 'gemini', 'aider', 'opencode']);
      assert.deepEqual(await addPresetRole(file, 'codex'), { role: 'codex', created: false });
      config = await loadConfig(dir);
      assert.deepEqual(Object.keys(config.agents), ['claude', 'codex']);
      assert.match(await fs.readFile(file, 'utf8'), /^\[agents\.claude\]\npreset = "claude-code"$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
