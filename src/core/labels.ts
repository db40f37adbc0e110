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
} as const;
