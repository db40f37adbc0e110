import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { editorHazards } from '../../src/core/isolation/hazards';

/** A user's folder and an agent's worktree, on disk, with these files (a string is a file's content). */
function folders(user: Record<string, string>, agent: Record<string, string>) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-hazards-'));
  const make = (base: string, files: Record<string, string>) => {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(base, file)), { recursive: true });
      writeFileSync(path.join(base, file), content);
    }
  };
  const userRoot = path.join(root, 'user');
  const worktree = path.join(root, 'worktree');
  mkdirSync(userRoot);
  mkdirSync(worktree);
  make(userRoot, user);
  make(worktree, agent);
  return { root, userRoot, worktree, done: () => rmSync(root, { recursive: true, force: true }) };
}

describe('editorHazards', () => {
  test('a worktree with only the user\'s own editor files and its own .git file has none', async () => {
    const f = folders({ '.vscode/settings.json': '{"a":1}', '.vscode/tasks.json': '{}' }, { '.git': 'gitdir: /x', '.vscode/settings.json': '{"a":1}', '.vscode/tasks.json': '{}', 'src/a.ts': 'x', 'notes.git.md': 'x' });
    try {
      assert.deepEqual(await editorHazards(f.worktree, f.userRoot), { hazards: [], incomplete: false });
    } finally {
      f.done();
    }
  });

  test('every nested .git, at any depth, file or folder, is one; what is inside a .git is not looked through', async () => {
    const f = folders({}, { '.git': 'gitdir: /x', 'sub/.git/config': '[core]\n\tfsmonitor = ./evil', 'a/b/c/.git': 'gitdir: ../../..', 'sub/.git/modules/x/.git/config': '' });
    try {
      const { hazards } = await editorHazards(f.worktree, f.userRoot);
      assert.deepEqual(hazards.map((h) => h.path).sort(), ['a/b/c/.git', 'sub/.git']);
      assert.match(hazards[0].why, /git repository the agent made/);
    } finally {
      f.done();
    }
  });

  test('editor settings, tasks, launch and MCP configurations and workspace files the agent wrote or changed', async () => {
    const f = folders(
      { '.vscode/settings.json': '{"a":1}', '.vscode/launch.json': '{}', 'team.code-workspace': '{}' },
      { '.vscode/settings.json': '{"a":2}', '.vscode/launch.json': '{}', '.vscode/tasks.json': '{"runOn":"folderOpen"}', '.vscode/mcp.json': '{}', 'team.code-workspace': '{}', 'x.code-workspace': '{}', '.vscode/extensions.json': '{}' },
    );
    try {
      const { hazards } = await editorHazards(f.worktree, f.userRoot);
      assert.deepEqual(
        hazards.map((h) => `${h.path}: ${h.why}`).sort(),
        ['.vscode/mcp.json: written by the agent', '.vscode/settings.json: changed by the agent', '.vscode/tasks.json: written by the agent', 'x.code-workspace: written by the agent'],
      );
    } finally {
      f.done();
    }
  });

  test('links are reported and never followed, neither for .vscode nor for the files in it nor for folders', async () => {
    const f = folders({ '.vscode/settings.json': '{}' }, { 'real/.git': 'gitdir: /x', 'other/settings.json': '{}' });
    try {
      symlinkSync(path.join(f.worktree, 'real'), path.join(f.worktree, 'linked'));
      symlinkSync(path.join(f.worktree, 'other'), path.join(f.worktree, '.vscode'));
      let { hazards } = await editorHazards(f.worktree, f.userRoot);
      assert.deepEqual(hazards.map((h) => h.path).sort(), ['.vscode', 'real/.git']);
      rmSync(path.join(f.worktree, '.vscode'));
      mkdirSync(path.join(f.worktree, '.vscode'));
      symlinkSync(path.join(f.userRoot, '.vscode', 'settings.json'), path.join(f.worktree, '.vscode', 'settings.json'));
      ({ hazards } = await editorHazards(f.worktree, f.userRoot));
      assert.deepEqual(hazards.map((h) => `${h.path}: ${h.why}`), ['real/.git: a git repository the agent made: git run there (by VS Code\'s git extension too) uses its hooks and configuration', '.vscode/settings.json: a symbolic link the agent made']);
    } finally {
      f.done();
    }
  });

  test('a worktree larger than the entries it may read says it was not looked through whole', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`f${i}`] = '';
    const f = folders({}, files);
    try {
      assert.equal((await editorHazards(f.worktree, f.userRoot, 20)).incomplete, true);
      assert.equal((await editorHazards(f.worktree, f.userRoot, 50)).incomplete, false);
    } finally {
      f.done();
    }
  });
});
