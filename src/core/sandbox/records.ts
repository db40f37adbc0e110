/**
 * What a sandbox is, as the front ends see it (SandboxInfo), and what the host keeps of it beside its worktree
 * (SandboxRecord), readable without the engine.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AgentRecord } from '../agents/launch';
import type { EngineKind } from '../engine/engine';
import type { WorktreePaths } from '../git/worktrees';
import { readUntrustedFile } from '../isolation/untrusted';

export type SandboxState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing' | 'missing';

export interface PublishedPort {
  containerPort: number;
  protocol: string;
  hostIp: string;
  hostPort: number;
}

export interface SandboxInfo {
  name: string;
  state: SandboxState;
  agent: string;
  branch: string;
  base: string;
  /** The branch's tip on the host, after importing the agent's commits. */
  head?: string;
  /** Why the agent's latest commits could not be imported (see Repository.importAgentCommits), if they could not. */
  importError?: string;
  worktree: string;
  task: string;
  containerId?: string;
  image?: string;
  exitCode?: number;
  /** The engine killed the agent for exceeding its memory limit. */
  oomKilled?: boolean;
  /** none, nat, host or allowlist, as the container was created. */
  network?: string;
  /** With an allowlist: the host names the agent may reach. */
  allow?: string[];
  limits?: { cpus: number; memoryBytes: number; pids: number };
  ports: PublishedPort[];
  createdAt: string;
  /** The engine the sandbox runs on (its container's); for one whose container is gone, the engine it was made on. */
  engine?: EngineKind;
  /** Its agent runs on a terminal, to attach to (Attach to Agent, `agent-sandbox attach`). */
  interactive?: boolean;
  /** An interactive agent that said it waits for the user (see AGENT_EVENTS_MOUNT). */
  waiting?: boolean;
  /** The agent preset it runs, and how its credential is held (never the value). */
  preset?: AgentRecord;
}

/** What the host keeps of a sandbox beside its worktree, readable without the engine. */
export interface SandboxRecord {
  name: string;
  agent: string;
  branch: string;
  base: string;
  task: string;
  image: string;
  container: string;
  createdAt: string;
  /** The engine it was made on. */
  engine?: EngineKind;
  /** Made with a terminal for its agent. */
  interactive?: boolean;
  /** The role's agent preset, as it was launched. */
  preset?: AgentRecord;
}

/**
 * A container's state in Docker's words. Podman's API also says `stopped` (exited, before its cleanup ran),
 * `configured` and `initialized` (created, not yet started) and `stopping`.
 */
export function sandboxState(engineState: string | undefined): SandboxState {
  switch (engineState) {
    case undefined:
    case '':
      return 'missing';
    case 'stopped':
      return 'exited';
    case 'configured':
    case 'initialized':
      return 'created';
    case 'stopping':
      return 'running';
    default:
      return engineState as SandboxState;
  }
}

/** The network as sandbox.toml names it: bridge (Docker, rootful Podman) and slirp4netns (rootless Podman) are NAT. */
export function networkName(mode: string | undefined): string | undefined {
  return mode === 'bridge' || mode === 'default' || mode === 'slirp4netns' || mode?.startsWith('slirp4netns:') ? 'nat' : mode;
}

/**
 * Whether an interactive agent last said it waits for the user: the first word of `events/state`, which the agent
 * writes, read as data (a regular file reached through no link, a few bytes at most); anything else says nothing.
 */
export async function readWaiting(paths: WorktreePaths): Promise<boolean | undefined> {
  const text = await readUntrustedFile(path.join(paths.stateDir, 'events'), 'state', 64).catch(() => undefined);
  const word = text?.toString('latin1').trim().split(/\s/)[0];
  return word === 'waiting' ? true : word === 'working' ? false : undefined;
}

export async function readRecord(paths: WorktreePaths): Promise<SandboxRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(paths.stateDir, 'sandbox.json'), 'utf8')) as SandboxRecord;
  } catch {
    return undefined;
  }
}
