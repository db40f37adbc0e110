/**
 * What New Sandbox offers as the agent: the roles of sandbox.toml, then the agent presets no role uses yet (picking
 * one writes its role into sandbox.toml), and which credential a preset role still lacks. No editor API here, so
 * the unit tests check it as it is.
 */
import { credentialNames, presetNamed, PRESET_IDS, PRESETS } from '../core/agents/presets';
import type { PresetId } from '../core/agents/presets';
import { roleNameFor } from '../core/agents/starter';
import type { AgentRole, SandboxConfig } from '../core/config/model';

export interface RoleChoice {
  label: string;
  description?: string;
  /** A role of sandbox.toml. */
  role?: string;
  /** A preset to add to sandbox.toml as the role `roleNameFor(preset)`. */
  preset?: PresetId;
}

/**
 * The roles (of sandbox.toml; without one, the default role the core runs), then the presets that no role uses
 * and whose role name is free, with a `{ separator }` between the two groups when there are presets to offer.
 */
export function roleChoices(config: Pick<SandboxConfig, 'agents' | 'defaultAgent' | 'file'>, fileName = 'sandbox.toml'): Array<RoleChoice | { separator: string }> {
  const roles = Object.values(config.agents);
  const used = new Set(roles.map((r) => r.agent?.preset).filter(Boolean));
  const ownRoles: RoleChoice[] = roles.map((r) => ({
    label: r.name,
    description: [r.name === config.defaultAgent ? 'default' : undefined, r.agent ? `preset: ${r.agent.preset}` : undefined, config.file ? undefined : `no ${fileName} yet: the image's own command`]
      .filter(Boolean)
      .join(' · ') || undefined,
    role: r.name,
  }));
  const presets: RoleChoice[] = PRESET_IDS.filter((id) => !used.has(id) && !Object.hasOwn(config.agents, roleNameFor(id))).map((id) => ({
    label: PRESETS[id].title,
    description: `preset: ${id}, adds [agents.${roleNameFor(id)}] to ${fileName}`,
    preset: id,
  }));
  return presets.length ? [...ownRoles, { separator: 'Agent presets' }, ...presets] : ownRoles;
}

/** The role that runs a preset already, if one does. */
export function roleOfPreset(config: Pick<SandboxConfig, 'agents'>, preset: string): string | undefined {
  return Object.values(config.agents).find((r) => r.agent?.preset === preset)?.name;
}

/** The credential names a preset role takes, in the order they are looked for; none for a role without a preset. */
export function roleCredentials(role: Pick<AgentRole, 'agent'> | undefined): string[] {
  if (!role?.agent) return [];
  const preset = presetNamed(role.agent.preset);
  if (!preset) return [];
  return role.agent.credential ? [role.agent.credential] : credentialNames(preset);
}

/** The first of `names` that has a value, or undefined when none does (then the first is the one to ask for). */
export async function firstSet(names: string[], secret: (name: string) => Promise<string | undefined>): Promise<string | undefined> {
  for (const name of names) if (await secret(name)) return name;
  return undefined;
}
