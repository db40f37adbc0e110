import { promises as fs } from 'node:fs';

/** The user the agent runs as inside its container: never root. */
export interface AgentUser {
  uid: number;
  gid: number;
  /** True when the host side runs as another user (root), so the sandbox's files must be handed over. */
  chownNeeded: boolean;
}

/** The uid given to agents when everything on the host belongs to root (as on CI). */
export const FALLBACK_AGENT_ID = 1000;

/**
 * The agent runs as the host user, so what it writes in its worktree belongs to them. When the host user
 * is root, it runs as the owner of the repository if that is someone else, else as uid 1000.
 */
export async function agentUserFor(repoRoot: string): Promise<AgentUser> {
  const uid = process.getuid?.() ?? FALLBACK_AGENT_ID;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? uid, chownNeeded: false };
  const owner = await fs.stat(repoRoot);
  if (owner.uid !== 0) return { uid: owner.uid, gid: owner.gid, chownNeeded: true };
  return { uid: FALLBACK_AGENT_ID, gid: FALLBACK_AGENT_ID, chownNeeded: true };
}
