/** The command that writes a starter sandbox.toml. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SandboxError } from '../../core/errors';
import { configPathSetting } from '../settings';
import { STARTER_CONFIG } from '../starterConfig';
import type { CommandContext } from './context';

/** Writes the starter sandbox.toml where the settings look for it (an existing file is kept), and opens it. */
export async function createConfig(ctx: CommandContext): Promise<vscode.Uri> {
  if (!ctx.folder) throw new SandboxError('Open a folder first.');
  const file = path.join(ctx.folder.fsPath, configPathSetting(ctx.settings()));
  await fs.writeFile(file, STARTER_CONFIG, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const uri = vscode.Uri.file(file);
  await vscode.window.showTextDocument(uri);
  await ctx.model.open();
  return uri;
}
