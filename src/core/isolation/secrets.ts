/**
 * Secrets the agent needs (API keys). Their values never reach sandbox.toml, the container's configuration
 * (which the engine keeps on disk and shows to `inspect`), labels, logs or any file on disk: they are written,
 * at each start, over an exec session's stdin into a tmpfs inside the container, and the agent's command
 * waits for them and reads them into its environment. The agent's output has them masked.
 */
import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { TransformCallback } from 'node:stream';
import { SandboxError } from '../errors';

/** Where the secrets live inside the container: a tmpfs only the agent's user can read. */
export const SECRETS_DIR = '/run/agent-sandbox/secrets';

/** Looks a secret up by name: the editor's secret storage, the host's environment (names the user allowed). */
export type SecretSource = (name: string) => Promise<string | undefined>;

/** The editor setting listing the secrets that may come from the editor's environment. */
export const SECRETS_FROM_ENV_SETTING = 'agentSandboxes.secretsFromEnvironment';
/** The same list for the command line (and the editor's environment): names separated by commas. */
export const SECRETS_FROM_ENV = 'AGENT_SANDBOX_SECRETS_FROM_ENV';

/** The names listed in AGENT_SANDBOX_SECRETS_FROM_ENV. */
export function secretNamesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[SECRETS_FROM_ENV] ?? '').split(',').map((name) => name.trim()).filter(Boolean);
}

/**
 * The host's environment as a source of secrets, for the names the user allowed only (by default those in
 * AGENT_SANDBOX_SECRETS_FROM_ENV): sandbox.toml names the secrets a repository wants, and must not be able to
 * name AWS_SECRET_ACCESS_KEY or GITHUB_TOKEN and have it copied into the agent.
 */
export const environmentSecrets =
  (env: NodeJS.ProcessEnv = process.env, allowed: readonly string[] = secretNamesFromEnv(env)): SecretSource =>
  async (name) =>
    (allowed.includes(name) && env[name]) || undefined;

/** Every named secret's value, or an error naming the ones missing and how to set or allow them. */
export async function resolveSecrets(names: string[], source: SecretSource): Promise<Map<string, string>> {
  const values = await knownSecrets(names, source);
  const missing = names.filter((name) => !values.has(name));
  if (missing.length > 0) {
    throw new SandboxError(
      `The agent needs ${missing.length === 1 ? 'the secret' : 'the secrets'} ${missing.join(', ')}, and ${missing.length === 1 ? 'it is' : 'they are'} not set.`,
      "sandbox.toml only names secrets: their values never go there, and no variable of your environment reaches an agent unless you allow its name.",
      [{ do: 'set-secret', names: missing }],
    );
  }
  return values;
}

/** The value of every named secret the source knows, leaving out the ones it does not (never throws for those). */
export async function knownSecrets(names: string[], source: SecretSource): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const name of new Set(names)) {
    const value = await source(name).catch(() => undefined);
    if (value !== undefined && value !== '') values.set(name, value);
  }
  return values;
}

/** The file the wrapper sources: `export NAME='value'` lines, single-quoted so no value is ever run. */
export function secretsScript(values: Map<string, string>): string {
  return [...values].map(([name, value]) => `export ${name}='${value.replace(/'/g, `'\\''`)}'\n`).join('');
}

/**
 * The entrypoint of a sandbox with secrets: waits for them (delivered right after start), reads them and
 * runs the agent's command in its place, so the agent is still the init's only child.
 */
export function secretsEntrypoint(): string[] {
  const wait = `while [ ! -e ${SECRETS_DIR}/ready ]; do sleep 0.05 2>/dev/null || sleep 1; done`;
  return ['/bin/sh', '-c', `${wait}; . ${SECRETS_DIR}/env; exec "$@"`, 'agent-sandbox'];
}

/** The command that writes the secrets from stdin, as the agent's user, then signals the wrapper. */
export function secretsWriter(): string[] {
  return ['/bin/sh', '-c', `umask 077 && cat > ${SECRETS_DIR}/env && : > ${SECRETS_DIR}/ready`];
}

/**
 * Replaces every secret's value with `***` in a stream. A value split across chunks is masked too: the end
 * of a chunk that could begin a secret waits for the next chunk (or the end) before it is passed on.
 */
export class SecretMask extends Transform {
  private carry = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly secrets: string[];

  constructor(values: Iterable<string>) {
    super();
    // Longest first, so that a secret containing another is masked whole. Very short values would mask
    // ordinary text and reveal more by their gaps than they hide.
    this.secrets = [...new Set(values)].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    const text = this.mask(this.carry + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk)));
    const keep = this.pendingPrefix(text);
    this.carry = text.slice(text.length - keep);
    const out = text.slice(0, text.length - keep);
    if (out) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = this.mask(this.carry + this.decoder.end());
    if (rest) this.push(rest);
    done();
  }

  private mask(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }

  /** The length of the longest end of `text` that is the start of some secret. */
  private pendingPrefix(text: string): number {
    let longest = 0;
    for (const secret of this.secrets) {
      for (let n = Math.min(secret.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(secret.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
