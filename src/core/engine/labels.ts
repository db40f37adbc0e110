/** Labels put on everything Agent Sandboxes makes in the engine, so it can be found again from any process. */
export const LABEL = {
  managed: 'dev.agent-sandboxes.managed',
  workspace: 'dev.agent-sandboxes.workspace',
  name: 'dev.agent-sandboxes.name',
  agent: 'dev.agent-sandboxes.agent',
  branch: 'dev.agent-sandboxes.branch',
  base: 'dev.agent-sandboxes.base',
  worktree: 'dev.agent-sandboxes.worktree',
  contextHash: 'dev.agent-sandboxes.context-hash',
  /** On an egress proxy, forwarder or volume: the agent container it serves. */
  egressFor: 'dev.agent-sandboxes.egress-for',
  /** On an egress proxy, forwarder or volume: the workspace and the sandbox it belongs to (not `workspace`, which marks sandboxes). */
  egressWorkspace: 'dev.agent-sandboxes.egress-workspace',
  egressName: 'dev.agent-sandboxes.egress-name',
  /** On an agent container with an allowlist: the host names allowed, comma-separated. */
  allow: 'dev.agent-sandboxes.allow',
} as const;
