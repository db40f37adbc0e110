/**
 * What the user can do next, as data. The core names the step; each front end words it once, in its own terms:
 * the CLI as a command line (src/cli/errors.ts), the editor as a button (src/ui/errors.ts).
 */
export type NextStep =
  | { do: 'list-sandboxes' }
  | { do: 'remove-sandbox'; sandbox: string; force?: boolean }
  | { do: 'start-sandbox'; sandbox: string }
  | { do: 'stop-a-sandbox' }
  | { do: 'sync'; sandbox: string; mode: 'merge' | 'squash' | 'cherry-pick'; onConflict?: 'merge' }
  | { do: 'review-changes'; sandbox: string }
  | { do: 'set-secret'; names: string[] }
  | { do: 'choose-base' }
  | { do: 'overwrite-patch' }
  | { do: 'open-config'; file: string; line?: number }
  | { do: 'start-podman'; socket: string }
  | { do: 'retry' }
  /** Only the user's own settings can allow this: `setting` in the editor, `env` (set to `value`) in a terminal. */
  | { do: 'allow'; setting: string; env: string; value: string };

/**
 * Typed errors thrown by the core. Each carries a message that says what happened, where there is one a hint in
 * words that fit every front end, and the next steps as data (`next`).
 */
export class SandboxError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly next: readonly NextStep[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** The message and the hint, for a log (the front ends add the next steps in their own words). */
  describe(): string {
    return this.hint ? `${this.message}\n${this.hint}` : this.message;
  }
}

/** A problem in sandbox.toml (or the AgentLoop layout) that stops it from loading. */
export class ConfigError extends SandboxError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly key: string | undefined,
    readonly detail: string,
    hint?: string,
    next: readonly NextStep[] = [],
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${key ? `${key}: ` : ''}${detail}`, hint, [...next, { do: 'open-config', file, line }]);
  }
}

/** Where sandbox.toml (or the AgentLoop layout) set a value: for errors found after loading, in its words. */
export interface ConfigOrigin {
  /** As shown in messages: relative to the workspace root when inside it. */
  file: string;
  line?: number;
  /** The key path, as written in TOML (`agents.reviewer.context`). */
  key: string;
}

/** A ConfigError about a value sandbox.toml set, found after loading (a path that leads outside, an engine not allowed). */
export function configErrorAt(origin: ConfigOrigin | undefined, detail: string, hint?: string, next: readonly NextStep[] = []): SandboxError {
  return origin ? new ConfigError(origin.file, origin.line, origin.key, detail, hint, next) : new SandboxError(detail, hint, next);
}

/** The container engine cannot be reached, or refuses us. */
export class EngineUnavailableError extends SandboxError {
  constructor(
    message: string,
    hint?: string,
    /** Podman is installed here and its API service would answer on this socket once started: an editor may offer to. */
    readonly podmanSocket?: string,
  ) {
    super(message, hint, [...(podmanSocket ? [{ do: 'start-podman' as const, socket: podmanSocket }] : []), { do: 'retry' }]);
  }
}

/** An image could not be pulled or built. */
export class ImageError extends SandboxError {}

/** A git operation on the host repository failed, or the workspace is not a repository. */
export class GitError extends SandboxError {}

/** The named sandbox does not exist in this workspace. */
export class SandboxNotFoundError extends SandboxError {}

/** The request conflicts with what exists (a name taken, a branch with unmerged commits, ...). */
export class ConflictError extends SandboxError {}

/** Why a sync stopped: the user's uncommitted or staged work, conflicts, or their sparse checkout. */
export type SyncStopReason = 'local-changes' | 'staged-changes' | 'conflicts' | 'sparse-checkout';

/** A sync that stopped before changing anything, with the files in the way. */
export class SyncConflictError extends ConflictError {
  constructor(
    message: string,
    hint: string,
    readonly reason: SyncStopReason,
    readonly files: string[],
    next: readonly NextStep[] = [],
  ) {
    super(message, hint, next);
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof SandboxError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}
