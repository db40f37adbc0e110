/**
 * What a role's preset adds to its container at `up`: the CLI (installed for the image's platform and mounted
 * read-only), its headless command, its environment with a placeholder in place of the credential, its state
 * folder, and the egress proxy's credential route that holds the real value.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AgentPresetChoice } from '../config/model';
import type { Engine, OutputSink } from '../engine/engine';
import { SandboxError } from '../errors';
import { PROXY_URL } from '../isolation/egress';
import { knownSecrets } from '../isolation/secrets';
import type { SecretSource } from '../isolation/secrets';
import type { AgentUser } from '../isolation/user';
import type { CredentialRoute } from '../../egress/proxy';
import { imageFacts } from './imagefacts';
import { ensureAgentCli } from './install';
import { AGENT_CLI_MOUNT, AGENT_STATE_MOUNT, presetNamed } from './presets';
import type { AgentPreset, CredentialKind, PresetId } from './presets';
import type { AgentEventFormat } from './progress';

/** What the host keeps of a sandbox's agent preset (in its record): never the credential's value. */
export interface AgentRecord {
  preset: PresetId;
  version: string;
  /** The credential's name (ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ...). */
  credential: string;
  /** Which proxy route carries it. */
  route: string;
  /** What the agent holds instead: not a secret. */
  placeholder: string;
  events: AgentEventFormat;
}

export interface AgentLaunch {
  command: string[];
  env: Record<string, string>;
  binds: string[];
  route: CredentialRoute;
  /** The real value, for the proxy's memory only. */
  value: string;
  record: AgentRecord;
}

/** The credential a preset role uses: the one it names, else the first of the preset's that is set. */
export async function agentCredential(preset: AgentPreset, choice: AgentPresetChoice, source: SecretSource): Promise<{ kind: CredentialKind; value: string }> {
  const kinds = preset.route.credentials.filter((c) => !choice.credential || c.secret === choice.credential);
  const known = await knownSecrets(kinds.map((k) => k.secret), source);
  const kind = kinds.find((k) => known.has(k.secret));
  if (!kind) {
    const names = kinds.map((k) => k.secret);
    throw new SandboxError(
      `${preset.title} needs ${names.length === 1 ? names[0] : `one of ${names.join(', ')}`}, and ${names.length === 1 ? 'it is' : 'none is'} set.`,
      'The key stays outside the sandbox: the egress proxy adds it to requests bound for the provider, and the agent sees only a placeholder.',
      [{ do: 'set-secret', names: [names[0]] }],
    );
  }
  return { kind, value: known.get(kind.secret)! };
}

/** `anthropic=https://gateway.example/anthropic,openai=http://model.test:8080`: the user's own provider endpoints. */
export const PROVIDER_ENDPOINTS_ENV = 'AGENT_SANDBOX_PROVIDER_ENDPOINTS';

/** Provider endpoints from entries `id=url`; an entry that is not one is an error naming it (these are the user's own). */
export function providerEndpoints(entries: string[], where: string): Record<string, string> {
  const endpoints: Record<string, string> = {};
  for (const entry of entries) {
    const [id, ...rest] = entry.split('=');
    const url = rest.join('=').trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!/^[a-z0-9-]+$/.test(id.trim()) || !parsed || !/^https?:$/.test(parsed.protocol) || parsed.username || parsed.password) {
      throw new SandboxError(`${where}: "${entry}" is not a provider endpoint.`, 'Write it as anthropic=https://host/path (the provider, then an http or https URL without a user or password).');
    }
    Object.defineProperty(endpoints, id.trim(), { value: url.replace(/\/$/, ''), enumerable: true, writable: true, configurable: true });
  }
  return endpoints;
}

/** A placeholder shaped like the key it stands for (its public prefix), so that a CLI checking the shape takes it. */
export function placeholderFor(value: string): string {
  const prefix = /^(?:[A-Za-z0-9]+-){1,3}/.exec(value)?.[0] ?? '';
  return `${prefix.slice(0, 16)}agent-sandbox-placeholder-${randomBytes(12).toString('hex')}`;
}

export async function prepareAgent(options: {
  engine: Engine;
  image: string;
  choice: AgentPresetChoice;
  /** The role's own command, which replaces the preset's headless one. */
  command?: string[];
  /** The role runs the agent's own terminal UI (see AgentRole.interactive). */
  interactive?: boolean;
  task: string;
  /** The credential, resolved before anything was made (see agentCredential). */
  credential: { kind: CredentialKind; value: string };
  /** The user's own endpoints per provider (agentSandboxes.providerEndpoints), in place of the preset's. */
  endpoints: Record<string, string>;
  stateRoot: string;
  user: AgentUser;
  output: OutputSink;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}): Promise<AgentLaunch> {
  const preset = presetNamed(options.choice.preset)!;
  const credential = options.credential;
  if (!options.command && !options.interactive && options.task.trim() === '') {
    throw new SandboxError(`${preset.title} runs on a task, and none was given.`, 'Say what the agent should do (the task), or give the role a command of its own.');
  }
  const facts = await imageFacts(options.engine, options.image, options.stateRoot);
  const install = preset.install;
  if (install.kind === 'native') {
    if (facts.cpu === 'other') throw new SandboxError(`The image ${options.image} is for an architecture ${preset.title} has no Linux build for.`, 'Use an image for x86_64 (amd64) or arm64.');
    if (install.libc === 'any' && !facts.libc) {
      throw new SandboxError(
        `${preset.title} cannot run on the image ${options.image}: it has neither glibc's nor musl's loader (for example /lib64/ld-linux-x86-64.so.2 or /lib/ld-musl-x86_64.so.1), which ${preset.title}'s executable needs.`,
        'Use an image with a C library: a Debian, Ubuntu or Alpine based one (node:22-bookworm, python:3.12, alpine).',
      );
    }
  }
  if (preset.needsBash && !facts.bash) options.output(`warning: the image ${options.image} has no bash, and ${preset.title}'s shell tool needs it: its commands will fail (file edits still work).\n`);
  const version = options.choice.version ?? (install.kind === 'image' ? 'image' : install.defaultVersion);
  const cli = await ensureAgentCli(
    preset,
    { cpu: facts.cpu === 'arm64' ? 'arm64' : 'x64', libc: facts.libc ?? 'musl', version },
    options.output,
    { env: options.env, signal: options.signal },
  );
  const stateDir = path.join(options.stateRoot, 'agent-state', preset.id);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  if (options.user.chownNeeded) await fs.chown(stateDir, options.user.uid, options.user.gid);
  const routeUrl = `${PROXY_URL}/credential/${preset.route.id}`;
  const placeholder = placeholderFor(credential.value);
  const env: Record<string, string> = {
    ...preset.endpointEnv(routeUrl, credential.kind, placeholder),
    ...(preset.stateEnv ? { [preset.stateEnv]: AGENT_STATE_MOUNT } : {}),
    ...(facts.bash ? { SHELL: facts.bash } : {}),
  };
  return {
    // The model flags go before the task, which Codex takes as its last argument.
    command:
      options.command ??
      withModel(
        options.interactive ? preset.interactive(cli.command, options.task, routeUrl) : preset.headless(cli.command, options.task, routeUrl),
        options.task,
        options.choice.model ? preset.modelFlags(options.choice.model) : [],
      ),
    env,
    binds: [...(cli.hostDir ? [`${cli.hostDir}:${AGENT_CLI_MOUNT}:ro`] : []), `${stateDir}:${AGENT_STATE_MOUNT}:rw`],
    route: {
      id: preset.route.id,
      upstream: options.endpoints[preset.route.id] ?? preset.route.upstream,
      header: credential.kind.header,
      ...(credential.kind.scheme ? { scheme: credential.kind.scheme } : {}),
      placeholder,
    },
    value: credential.value,
    // A terminal UI's output is a screen, not an event stream.
    record: { preset: preset.id, version, credential: credential.kind.secret, route: preset.route.id, placeholder, events: options.interactive ? 'text' : preset.events },
  };
}

/** The command with the model's flags put right after the CLI's own words, before the task and what follows it. */
function withModel(command: string[], task: string, flags: string[]): string[] {
  if (flags.length === 0) return command;
  const at = command.indexOf(task);
  return at < 0 ? [...command, ...flags] : [...command.slice(0, at), ...flags, ...command.slice(at)];
}
