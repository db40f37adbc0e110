/** Identifiers shared by package.json and the code: one place, no scattered literals (the settings: settings.ts). */
export const VIEW_ID = 'agentSandboxes.sandboxes';
export const CONTEXT_STATE = 'agentSandboxes.state';
/** True while the engine is unreachable because Podman's API service is not running (it can be started). */
export const CONTEXT_PODMAN_STARTABLE = 'agentSandboxes.podmanStartable';
export const BASE_SCHEME = 'agent-sandbox-base';
export const COMMAND = {
  newSandbox: 'agentSandboxes.newSandbox',
  buildImage: 'agentSandboxes.buildImage',
  refresh: 'agentSandboxes.refresh',
  showLogs: 'agentSandboxes.showLogs',
  stop: 'agentSandboxes.stop',
  start: 'agentSandboxes.start',
  restart: 'agentSandboxes.restart',
  attachShell: 'agentSandboxes.attachShell',
  attachAgent: 'agentSandboxes.attachAgent',
  reviewChanges: 'agentSandboxes.reviewChanges',
  syncBack: 'agentSandboxes.syncBack',
  syncFile: 'agentSandboxes.syncFile',
  detach: 'agentSandboxes.detach',
  openWorktree: 'agentSandboxes.openWorktree',
  copyContainerId: 'agentSandboxes.copyContainerId',
  remove: 'agentSandboxes.remove',
  retry: 'agentSandboxes.retry',
  createConfig: 'agentSandboxes.createConfig',
  showMenu: 'agentSandboxes.showMenu',
  openChangedFile: 'agentSandboxes.openChangedFile',
  openConfigAt: 'agentSandboxes.openConfigAt',
  openPort: 'agentSandboxes.openPort',
  startPodmanService: 'agentSandboxes.startPodmanService',
  setSecret: 'agentSandboxes.setSecret',
} as const;
