/**
 * The sandbox.toml text that `init --preset` and the editor's New Sandbox write for an agent preset: one role,
 * commented, so the file explains itself.
 */
import { promises as fs } from 'node:fs';
import { parse } from 'smol-toml';
import { SandboxError } from '../errors';
import { presetNamed, PRESETS } from './presets';
import type { PresetId } from './presets';

/** The role name a preset is written under: `claude` for claude-code, else the preset's own. */
export function roleNameFor(preset: PresetId): string {
  return preset === 'claude-code' ? 'claude' : preset;
}

/** The `[agents.<role>]` table of a preset, with what it does in comments. */
export function presetRoleToml(id: PresetId): string {
  const preset = PRESETS[id];
  const install = preset.install;
  const names = preset.route.credentials.map((c) => c.secret);
  const lines = [
    `# ${preset.title}, headless on the task you give (agent-sandbox up NAME --agent ${roleNameFor(id)} --task "...").`,
    install.kind === 'image'
      ? `# ${install.howToInstall}`
      : `# Its CLI (${install.npmName}) is installed once on this machine and mounted read-only; version = "${install.defaultVersion}" by default.`,
    `# Its key (${names.join(' or ')}) never enters the sandbox: set it with Set Agent Secret (or allow it from your`,
    `# environment with AGENT_SANDBOX_SECRETS_FROM_ENV); the egress proxy adds it to requests bound for ${new URL(preset.route.upstream).hostname}.`,
    `[agents.${roleNameFor(id)}]`,
    `preset = "${id}"`,
    install.kind === 'image' ? '' : `# version = "${install.defaultVersion}"`,
    '# allow = ["registry.npmjs.org"]     # more hosts the agent may reach (its provider is reached already)',
    '# image = "node:22-bookworm"        # your toolchain; the agent runs on any glibc or musl based image',
  ];
  return `${lines.filter(Boolean).join('\n')}\n`;
}

/** A whole sandbox.toml for one preset. */
export function starterConfigFor(id: PresetId): string {
  return `# Agent Sandboxes: how agents run for this repository. Every key is optional; see the README.

[sandbox.container]
image = "node:22-bookworm"            # or: dockerfile = ".sandbox/Dockerfile"
network = "nat"                       # agent presets reach only their provider and what allow lists
cpus = 2
memory = "4g"

${presetRoleToml(id)}`;
}

/**
 * Writes a preset's role into sandbox.toml: a new file, or the role appended to an existing one that has no
 * role of that name. Returns the role's name.
 */
export async function addPresetRole(file: string, id: string): Promise<{ role: string; created: boolean }> {
  const preset = presetNamed(id);
  if (!preset) throw new SandboxError(`There is no agent preset "${id}".`, `Presets: ${Object.keys(PRESETS).join(', ')}.`);
  const role = roleNameFor(preset.id);
  const existing = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing === undefined) {
    await fs.writeFile(file, starterConfigFor(preset.id), { flag: 'wx' });
    return { role, created: true };
  }
  let agents: unknown;
  try {
    agents = (parse(existing) as Record<string, unknown>).agents;
  } catch {
    throw new SandboxError(`${file} does not parse as TOML, so no role was added to it.`, 'Fix the file first.', [{ do: 'open-config', file }]);
  }
  if (typeof agents === 'object' && agents !== null && Object.hasOwn(agents, role)) {
    throw new SandboxError(`${file} has a role "${role}" already.`, 'Edit that role, or remove it first.', [{ do: 'open-config', file }]);
  }
  await fs.appendFile(file, `${existing.endsWith('\n') ? '' : '\n'}\n${presetRoleToml(preset.id)}`);
  return { role, created: false };
}
