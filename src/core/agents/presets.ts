/**
 * The agents people use, as presets: what a role with `preset = "claude-code"` gets without writing it out. A
 * preset names the agent's CLI on the npm registry, its headless command for the task, the switches that keep it
 * quiet and non-interactive, where its login state lives, the credential it takes and how that credential is
 * kept out of the sandbox (a placeholder in the agent's environment, the real value added by the egress proxy on
 * requests to the provider only). Everything here is fixed data: sandbox.toml picks a preset, it cannot change one.
 */

import type { AgentEventFormat } from './progress';

export type PresetId = 'claude-code' | 'codex' | 'gemini' | 'aider' | 'opencode';
export type Libc = 'glibc' | 'musl';

/** Where the agent's CLI comes from and how it is run. */
export type AgentInstall =
  /**
   * One npm package per platform holding a native executable: `pkg` and `version` name it for the target
   * (`cpu`: the engine's architecture in npm's words; `libc`), `bin` is the executable inside the package folder.
   */
  | { kind: 'native'; npmName: string; defaultVersion: string; pkg(target: InstallTarget): { name: string; spec: string }; bin(target: InstallTarget): string; libc: 'any' | 'static' }
  /** A JavaScript package, run by the image's own Node.js. */
  | { kind: 'node'; npmName: string; defaultVersion: string; bin: string; minNode: number }
  /** Not installed by Agent Sandboxes: the image must have it (Aider is a Python package, and PyPI is not npm). */
  | { kind: 'image'; command: string; howToInstall: string };

export interface InstallTarget {
  /** npm's names: x64, arm64. */
  cpu: 'x64' | 'arm64';
  libc: Libc;
  version: string;
}

/**
 * The agent's credential, kept outside: the agent's `env` names it with a placeholder value, and its provider's
 * base URL points at the egress proxy's credential route, which forwards to `upstream` with the real value in
 * `header`.
 */
export interface CredentialKind {
  /** The secret's name, as the editor's secret storage and the host's environment know it. */
  secret: string;
  header: 'x-api-key' | 'authorization' | 'x-goog-api-key';
  /** `Bearer`: the header's value is `Bearer <secret>`. */
  scheme?: 'Bearer';
}

export interface ProviderRoute {
  /** The provider's name in `agentSandboxes.providerEndpoints` and on the proxy's route (`/credential/<id>`). */
  id: 'anthropic' | 'openai' | 'google';
  /** Where requests go by default. The user's own settings may point it elsewhere (a gateway, a test's server). */
  upstream: string;
  /** The credentials the agent can take, in the order they are looked for. */
  credentials: CredentialKind[];
}

export interface AgentPreset {
  id: PresetId;
  title: string;
  install: AgentInstall;
  /** The headless command: the CLI, then the task. */
  headless(cli: string[], task: string, endpoint: string): string[];
  /** The flags that pick a model, when the role names one. */
  modelFlags(model: string): string[];
  /** Its own terminal UI, for `interactive = true`: the CLI, then the task as its first prompt when there is one. */
  interactive(cli: string[], task: string, endpoint: string): string[];
  /** Environment that keeps the agent quiet, non-interactive and inside its sandbox; a role's `env` overrides it key by key. */
  env: Record<string, string>;
  /** How the agent is told its provider's base URL and its (placeholder) credential, given the proxy's route URL. */
  endpointEnv(routeUrl: string, credential: CredentialKind, placeholder: string): Record<string, string>;
  route: ProviderRoute;
  /** Hosts the agent itself needs beyond its provider's API (which it reaches through the credential route). */
  allow: string[];
  /** The variable that moves its state (login, settings, sessions) into the preset's persistent folder. */
  stateEnv?: string;
  /**
   * Files of Agent Sandboxes' own that the CLI reads (its settings), written beside it into the read-only cache:
   * path under AGENT_CONFIG_DIR, content.
   */
  configFiles?: Record<string, string>;
  events: AgentEventFormat;
  /** Its shell tool needs bash (a busybox-only image breaks it). */
  needsBash: boolean;
  /** Whether its real CLI runs in this project's tests, and which version. */
  tested: boolean;
}

/** Where the preset's CLI is mounted (read-only) inside the container. */
export const AGENT_CLI_MOUNT = '/opt/agent-sandbox/agent';
/** The preset's persistent state folder inside the container (login, settings, session history). */
export const AGENT_STATE_MOUNT = '/opt/agent-sandbox/state';
/**
 * Where an interactive agent says whether it waits for the user: it writes `waiting` or `working` into the file
 * `state` there, which the host reads as data (AGENT_SANDBOX_EVENTS in the agent's environment).
 */
export const AGENT_EVENTS_MOUNT = '/opt/agent-sandbox/events';

/** Claude Code's hooks that say so: waiting when it stops or asks, working when it is given a prompt or runs a tool. */
export function claudeWaitingHooks(): string {
  const say = (state: 'waiting' | 'working') => [{ hooks: [{ type: 'command', command: `printf '%s\\n' ${state} > "$AGENT_SANDBOX_EVENTS/state"` }] }];
  return JSON.stringify({ hooks: { Notification: say('waiting'), Stop: say('waiting'), UserPromptSubmit: say('working'), PreToolUse: say('working') } });
}

/** Where a preset's own configuration files are, in the CLI's folder (read-only: the agent cannot change them). */
export const AGENT_CONFIG_DIR = 'agent-sandbox-config';

const cpuTriple = (cpu: InstallTarget['cpu']) => (cpu === 'x64' ? 'x86_64' : 'aarch64');

const claudeCode: AgentPreset = {
  id: 'claude-code',
  title: 'Claude Code',
  install: {
    kind: 'native',
    npmName: '@anthropic-ai/claude-code',
    defaultVersion: '2.1.197',
    // The umbrella package's postinstall links the platform's executable into place; the platform package alone
    // holds the same executable and runs no script.
    pkg: (t) => {
      const name = `@anthropic-ai/claude-code-linux-${t.cpu}${t.libc === 'musl' ? '-musl' : ''}`;
      return { name, spec: `${name}@${t.version}` };
    },
    bin: (t) => `node_modules/@anthropic-ai/claude-code-linux-${t.cpu}${t.libc === 'musl' ? '-musl' : ''}/claude`,
    libc: 'any',
  },
  headless: (cli, task) => [...cli, '-p', task, '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions'],
  modelFlags: (model) => ['--model', model],
  interactive: (cli, task) => [...cli, '--dangerously-skip-permissions', '--settings', claudeWaitingHooks(), ...(task ? [task] : [])],
  env: {
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
  },
  endpointEnv: (url, credential, placeholder) => ({
    ANTHROPIC_BASE_URL: url,
    [credential.secret === 'ANTHROPIC_API_KEY' ? 'ANTHROPIC_API_KEY' : credential.secret]: placeholder,
  }),
  route: {
    id: 'anthropic',
    upstream: 'https://api.anthropic.com',
    credentials: [
      { secret: 'ANTHROPIC_API_KEY', header: 'x-api-key' },
      { secret: 'CLAUDE_CODE_OAUTH_TOKEN', header: 'authorization', scheme: 'Bearer' },
      { secret: 'ANTHROPIC_AUTH_TOKEN', header: 'authorization', scheme: 'Bearer' },
    ],
  },
  allow: [],
  stateEnv: 'CLAUDE_CONFIG_DIR',
  events: 'claude-stream-json',
  needsBash: true,
  tested: true,
};

/** What Codex needs in a sandbox, headless or not: its provider through the credential route, nothing else. */
function codexFlags(endpoint: string): string[] {
  return [
    // Codex's own sandbox (bubblewrap) cannot nest in a container, and fails silently; this container is the sandbox.
    '--dangerously-bypass-approvals-and-sandbox',
    '--disable',
    'plugins',
    '-c',
    'analytics.enabled=false',
    '-c',
    'model_provider="agent-sandbox"',
    '-c',
    `model_providers.agent-sandbox={name="OpenAI through Agent Sandboxes",base_url="${endpoint}/v1",wire_api="responses",env_key="OPENAI_API_KEY"}`,
  ];
}

const codex: AgentPreset = {
  id: 'codex',
  title: 'OpenAI Codex CLI',
  install: {
    kind: 'native',
    npmName: '@openai/codex',
    defaultVersion: '0.171.0',
    // Each platform's build is a version of the package itself (`0.171.0-linux-x64`), a static musl executable.
    pkg: (t) => ({ name: '@openai/codex', spec: `@openai/codex@${t.version}-linux-${t.cpu}` }),
    bin: (t) => `node_modules/@openai/codex/vendor/${cpuTriple(t.cpu)}-unknown-linux-musl/bin/codex`,
    libc: 'static',
  },
  headless: (cli, task, endpoint) => [...cli, 'exec', '--json', '--skip-git-repo-check', ...codexFlags(endpoint), task],
  modelFlags: (model) => ['-m', model],
  interactive: (cli, task, endpoint) => [...cli, ...codexFlags(endpoint), ...(task ? [task] : [])],
  env: {},
  endpointEnv: (_url, _credential, placeholder) => ({ OPENAI_API_KEY: placeholder }),
  route: { id: 'openai', upstream: 'https://api.openai.com', credentials: [{ secret: 'OPENAI_API_KEY', header: 'authorization', scheme: 'Bearer' }] },
  allow: [],
  stateEnv: 'CODEX_HOME',
  events: 'codex-json',
  needsBash: true,
  tested: true,
};

const gemini: AgentPreset = {
  id: 'gemini',
  title: 'Gemini CLI',
  install: { kind: 'node', npmName: '@google/gemini-cli', defaultVersion: '0.61.0', bin: 'node_modules/@google/gemini-cli/bundle/gemini.js', minNode: 20 },
  headless: (cli, task) => [...cli, '-p', task, '--yolo', '--output-format', 'stream-json'],
  modelFlags: (model) => ['--model', model],
  interactive: (cli, task) => [...cli, '--yolo', ...(task ? ['--prompt-interactive', task] : [])],
  // Its own sandbox (a container of its own) must stay off inside ours. Its system settings (which win over a
  // user's) pick the API key, and turn off folder trust (which would override --yolo), statistics and updates.
  env: { GEMINI_SANDBOX: 'false', GEMINI_CLI_SYSTEM_SETTINGS_PATH: `${AGENT_CLI_MOUNT}/${AGENT_CONFIG_DIR}/gemini-settings.json` },
  configFiles: {
    'gemini-settings.json': `${JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: false } }, privacy: { usageStatisticsEnabled: false }, general: { disableAutoUpdate: true } }, null, 2)}\n`,
  },
  endpointEnv: (url, _credential, placeholder) => ({ GOOGLE_GEMINI_BASE_URL: url, GEMINI_API_KEY: placeholder }),
  route: { id: 'google', upstream: 'https://generativelanguage.googleapis.com', credentials: [{ secret: 'GEMINI_API_KEY', header: 'x-goog-api-key' }] },
  allow: [],
  stateEnv: undefined,
  events: 'gemini-stream-json',
  needsBash: true,
  tested: true,
};

const aider: AgentPreset = {
  id: 'aider',
  title: 'Aider',
  install: { kind: 'image', command: 'aider', howToInstall: 'Aider is a Python package: install it in the role\'s image (for example `RUN pip install aider-chat` in its Dockerfile).' },
  headless: (cli, task) => [...cli, '--message', task, '--yes-always', '--no-check-update', '--no-analytics'],
  modelFlags: (model) => ['--model', model],
  interactive: (cli) => [...cli, '--yes-always', '--no-check-update', '--no-analytics'],
  env: { AIDER_CHECK_UPDATE: 'false', AIDER_ANALYTICS: 'false' },
  endpointEnv: (url, _credential, placeholder) => ({ OPENAI_API_BASE: `${url}/v1`, OPENAI_API_KEY: placeholder }),
  route: { id: 'openai', upstream: 'https://api.openai.com', credentials: [{ secret: 'OPENAI_API_KEY', header: 'authorization', scheme: 'Bearer' }] },
  allow: [],
  events: 'text',
  needsBash: false,
  tested: false,
};

const opencode: AgentPreset = {
  id: 'opencode',
  title: 'OpenCode',
  install: {
    kind: 'native',
    npmName: 'opencode-ai',
    defaultVersion: '1.18.33',
    pkg: (t) => {
      const name = `opencode-linux-${t.cpu}${t.libc === 'musl' ? '-musl' : ''}`;
      return { name, spec: `${name}@${t.version}` };
    },
    bin: (t) => `node_modules/opencode-linux-${t.cpu}${t.libc === 'musl' ? '-musl' : ''}/bin/opencode`,
    libc: 'any',
  },
  headless: (cli, task) => [...cli, 'run', '--format', 'json', '--auto', task],
  modelFlags: (model) => ['--model', model],
  interactive: (cli) => cli,
  env: { OPENCODE_DISABLE_AUTOUPDATE: '1', OPENCODE_DISABLE_MODELS_FETCH: '1', OPENCODE_DISABLE_LSP_DOWNLOAD: '1', OPENCODE_DISABLE_SHARE: '1' },
  // Its configuration, in one variable: Anthropic's API through the credential route.
  endpointEnv: (url, _credential, placeholder) => ({
    OPENCODE_CONFIG_CONTENT: JSON.stringify({ autoupdate: false, share: 'disabled', provider: { anthropic: { options: { baseURL: `${url}/v1`, apiKey: placeholder } } } }),
  }),
  route: { id: 'anthropic', upstream: 'https://api.anthropic.com', credentials: [{ secret: 'ANTHROPIC_API_KEY', header: 'x-api-key' }] },
  // At start it installs packages of its own with npm.
  allow: ['registry.npmjs.org'],
  events: 'opencode-json',
  needsBash: true,
  tested: false,
};

export const PRESETS: Readonly<Record<PresetId, AgentPreset>> = Object.freeze({ 'claude-code': claudeCode, codex, gemini, aider, opencode });
export const PRESET_IDS = Object.keys(PRESETS) as PresetId[];

/** The preset of that name; never one of a plain object's own members such as `toString`. */
export function presetNamed(id: string): AgentPreset | undefined {
  return Object.hasOwn(PRESETS, id) ? PRESETS[id as PresetId] : undefined;
}

/** What a role gets from its preset: the credential to use, in the order the preset looks for them. */
export function credentialNames(preset: AgentPreset): string[] {
  return preset.route.credentials.map((c) => c.secret);
}
