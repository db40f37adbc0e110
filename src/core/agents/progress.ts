/**
 * Reads an agent's own event stream (Claude Code's `--output-format stream-json --verbose`, Codex's
 * `exec --json`, Gemini CLI's `--output-format stream-json`, OpenCode's `run --format json`) into progress for a tree item and a readable
 * transcript for an output channel. Pure: the caller feeds the bytes and supplies the clock.
 *
 * The stream is written by the agent inside the sandbox, so every value in it is hostile: lines are bounded
 * before they are buffered whole, every text is stripped of terminal control sequences and truncated, wrong
 * types are ignored rather than trusted, fields are read as own properties only, and what is tracked by the
 * stream's own ids is capped.
 */

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

export type AgentEventFormat = 'claude-stream-json' | 'codex-json' | 'gemini-stream-json' | 'opencode-json' | 'text';

export type AgentVerdict = 'success' | 'error' | 'denied' | 'incomplete';

export interface AgentStep {
  tool: string;
  target?: string;
  /** What the agent is doing in a few words: "editing src/app.ts", "running npm test". */
  summary: string;
}

export interface AgentResult {
  verdict: AgentVerdict;
  /** The agent's last message, bounded. */
  message?: string;
  /** Tool calls the agent was refused. */
  denials?: number;
  detail?: string;
}

export interface AgentProgress {
  /** 'text' until the stream shows which agent wrote it (when the reader was not told). */
  format: AgentEventFormat;
  step?: AgentStep;
  turns?: number;
  tokens?: { input: number; output: number; cacheRead?: number };
  costUsd?: number;
  result?: AgentResult;
  /** When the last line of any kind arrived (ms, from the reader's clock): what `isStuck` judges by. */
  lastEventAt?: number;
  /** JSON events read. */
  events: number;
  model?: string;
  sessionId?: string;
}

export interface AgentStreamLimits {
  /** A longer line is left out, and never buffered whole. */
  lineBytes: number;
  /** An agent message or a plain text line. */
  messageChars: number;
  /** A step's target (a path, a command). */
  targetChars: number;
  toolNameChars: number;
  /** A tool's output is folded to this many lines... */
  outputLines: number;
  /** ...each this long. */
  outputLineChars: number;
  /** The final result's line quotes this much of the last message. */
  resultQuoteChars: number;
  /** Content blocks (or file changes) read from one event. */
  blocksPerEvent: number;
  /** Tool calls remembered between their start and their result. */
  trackedCalls: number;
}

export const agentStreamLimits: Readonly<AgentStreamLimits> = Object.freeze({
  lineBytes: 1024 * 1024,
  messageChars: 4096,
  targetChars: 500,
  toolNameChars: 100,
  outputLines: 3,
  outputLineChars: 300,
  resultQuoteChars: 200,
  blocksPerEvent: 50,
  trackedCalls: 64,
});

export interface AgentStreamReaderOptions {
  /** Which agent wrote the stream; 'auto' (the default) tells by the first event it recognises. */
  format?: AgentEventFormat | 'auto';
  /** The clock for `lastEventAt`; Date.now by default. */
  now?: () => number;
  /** The agent's working directory as the agent sees it: paths under it are shown relative. */
  workdir?: string;
  limits?: Partial<AgentStreamLimits>;
}

type Json = Record<string, unknown>;

type ToolKind = 'edit' | 'read' | 'run' | 'search' | 'list' | 'fetch' | 'web' | 'delegate' | 'plan' | 'other';

interface TrackedCall {
  kind: ToolKind;
  commits: boolean;
}

const NEWLINE = 0x0a;

// CSI (ESC [ or the 8-bit \x9b) up to its final byte; OSC, DCS, SOS, PM and APC (ESC ] P X ^ _ or their 8-bit
// forms) up to BEL or ST, or to the end when unterminated; any other ESC with the one character after it.
// eslint-disable-next-line no-control-regex
const TERMINAL_SEQUENCE = /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[\s\S]?/g;
// C0 and C1 controls but \t and \n, DEL, and the bidirectional overrides that reorder what a reader sees.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with no terminal control sequence or control character left but \n and \t. */
export function stripControls(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(TERMINAL_SEQUENCE, '').replace(CONTROL, '');
}

/** At most `max` characters (an ellipsis included), never splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A hostile string made safe to show: controls stripped, bounded. Only a small window is ever scanned. */
function clean(text: string, max: number): string {
  return truncate(stripControls(text.length > max * 4 ? text.slice(0, max * 4) : text), max);
}

/** One line for a tool call or a summary: whitespace runs (newlines too) become one space. */
function oneLine(text: string, max: number): string {
  const window = text.length > max * 4 ? text.slice(0, max * 4) : text;
  return truncate(stripControls(window).replace(/\s+/g, ' ').trim(), max);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property only: a stream's `__proto__` or `constructor` key is data, and the prototype's are never read. */
function field(value: unknown, key: string): unknown {
  return isObject(value) && Object.prototype.hasOwnProperty.call(value, key) ? value[key] : undefined;
}

function text(value: unknown, key: string): string | undefined {
  const v = field(value, key);
  return typeof v === 'string' ? v : undefined;
}

function count(value: unknown, key: string): number | undefined {
  const v = field(value, key);
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(Math.floor(v), Number.MAX_SAFE_INTEGER) : undefined;
}

function list(value: unknown, key: string): unknown[] | undefined {
  const v = field(value, key);
  return Array.isArray(v) ? v : undefined;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function formatCost(usd: number, digits: number): string {
  return `$${usd.toFixed(digits)}`;
}

/** The kind of a tool by its name, across the agents' naming (Write, write_file, apply_patch, ...). */
function toolKind(tool: string): ToolKind {
  const name = tool.toLowerCase().replace(/[^a-z]/g, '');
  if (/^(write|edit|multiedit|notebookedit|writefile|replace|applypatch|patch|edit(ing)?file|create|delete)$/.test(name)) return 'edit';
  if (/^(read|readfile|readmanyfiles|view|notebookread|cat)$/.test(name)) return 'read';
  if (/^(bash|shell|runshellcommand|command|exec|localshell)$/.test(name)) return 'run';
  if (/^(grep|glob|search|searchfilecontent|find|findfiles|codesearch)$/.test(name)) return 'search';
  if (/^(ls|listdirectory|list)$/.test(name)) return 'list';
  if (/^(webfetch|fetch)$/.test(name)) return 'fetch';
  if (/^(websearch|googlewebsearch)$/.test(name)) return 'web';
  if (/^(task|agent)$/.test(name)) return 'delegate';
  if (/^(todowrite|updateplan|writetodos)$/.test(name)) return 'plan';
  return 'other';
}

/** The input keys that name a tool call's target, most telling first, by kind. */
const TARGET_KEYS: Record<ToolKind, string[]> = {
  edit: ['file_path', 'filePath', 'notebook_path', 'absolute_path', 'path'],
  read: ['file_path', 'filePath', 'notebook_path', 'absolute_path', 'path'],
  run: ['command', 'cmd', 'description'],
  search: ['pattern', 'query', 'glob', 'path'],
  list: ['path', 'dir_path', 'absolute_path'],
  fetch: ['url'],
  web: ['query'],
  delegate: ['description', 'subagent_type'],
  plan: [],
  other: ['file_path', 'filePath', 'path', 'command', 'pattern', 'query', 'url', 'description'],
};

const VERB: Record<ToolKind, string> = {
  edit: 'editing',
  read: 'reading',
  run: 'running',
  search: 'searching for',
  list: 'listing',
  fetch: 'fetching',
  web: 'searching the web for',
  delegate: 'delegating',
  plan: 'planning',
  other: 'using',
};

/** Kinds whose target is a file: shown `▸ Write src/a.ts`; the others `▸ Bash: npm test`. */
const FILE_KINDS = new Set<ToolKind>(['edit', 'read', 'list']);

function commits(kind: ToolKind, target: string | undefined): boolean {
  return kind === 'run' && target !== undefined && /\bgit\b[^|;&]*\bcommit\b/.test(target);
}

/** The command Codex shows as `bash -lc 'npm test'` (or as an argv array), as the agent meant it. */
function codexCommand(command: unknown): string | undefined {
  let cmd: string | undefined;
  if (typeof command === 'string') cmd = command;
  else if (Array.isArray(command)) cmd = command.slice(0, 64).filter((a): a is string => typeof a === 'string').join(' ');
  if (cmd === undefined) return undefined;
  const wrapped = /^(?:\/(?:usr\/)?bin\/)?(?:ba|z)?sh -l?c (['"])([\s\S]*)\1$/.exec(cmd);
  return wrapped ? wrapped[2] : cmd;
}

/** Tool output as one string, from a string or from Claude's `[{type:'text', text}]` blocks. */
function outputText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  const parts: string[] = [];
  for (const block of value.slice(0, agentStreamLimits.blocksPerEvent)) {
    const t = text(block, 'text');
    if (t !== undefined) parts.push(t);
  }
  return parts.length ? parts.join('\n') : undefined;
}

/**
 * Fed the raw output of an agent in chunks cut anywhere (lines and UTF-8 sequences included), keeps an
 * `AgentProgress` and returns the transcript lines each chunk completes. The verdict comes from the stream's
 * own result event, never from the exit code (the agents exit 0 when their tool calls were denied).
 */
export class AgentStreamReader {
  private readonly limits: AgentStreamLimits;
  private readonly now: () => number;
  private readonly workdir: string | undefined;
  private readonly fixedFormat: boolean;
  private readonly state: AgentProgress;

  /** The line being read: grown by doubling (a trickle of one-byte chunks costs no more), never past the bound. */
  private pending = Buffer.alloc(0);
  private pendingBytes = 0;
  /** Bytes of an overlong line seen so far; its end (the next newline) is awaited without keeping it. */
  private skipping: number | undefined;
  private finished = false;

  private cwd: string | undefined;
  private lastMessage: string | undefined;
  private lastAssistantId: string | undefined;
  private changedFiles = false;
  private deniedCalls = 0;
  private readonly calls = new Map<string, TrackedCall>();
  private readonly shownCalls = new Set<string>();
  /** The last error an agent reported without ending its turn: the verdict if the stream ends there. */
  private unsettledError: string | undefined;
  /** Gemini's message deltas, joined until the message ends. */
  private delta = '';

  constructor(options: AgentStreamReaderOptions = {}) {
    this.limits = { ...agentStreamLimits, ...options.limits };
    this.now = options.now ?? Date.now;
    this.workdir = options.workdir;
    const format = options.format ?? 'auto';
    this.fixedFormat = format !== 'auto';
    this.state = { format: format === 'auto' ? 'text' : format, events: 0 };
  }

  /** A copy of the progress so far: the caller may keep it, the reader keeps updating its own. */
  get progress(): AgentProgress {
    return structuredClone(this.state);
  }

  /** Reads a chunk; returns the transcript lines it completed. */
  push(chunk: Buffer | string): string[] {
    if (this.finished) return [];
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const out: string[] = [];
    let start = 0;
    while (start < bytes.length) {
      const end = bytes.indexOf(NEWLINE, start);
      const piece = bytes.subarray(start, end === -1 ? bytes.length : end);
      this.take(piece);
      if (end === -1) break;
      this.endLine(out);
      start = end + 1;
    }
    return out;
  }

  /** The stream has ended: reads what is left of the last line and, with no result seen, says so. */
  finish(): string[] {
    if (this.finished) return [];
    const out: string[] = [];
    if (this.pendingBytes > 0 || this.skipping !== undefined) this.endLine(out);
    this.flushDelta(out);
    this.finished = true;
    if (!this.state.result && this.unsettledError !== undefined) {
      this.settle({ verdict: 'error', detail: this.unsettledError }, out);
    } else if (!this.state.result) {
      this.state.result = { verdict: 'incomplete', detail: 'the agent stopped without a result', ...this.messageField() };
      if (this.deniedCalls) this.state.result.denials = this.deniedCalls;
      out.push('⚠ ended without a result');
    }
    return out;
  }

  private take(piece: Buffer): void {
    if (this.skipping !== undefined) {
      this.skipping += piece.length;
      return;
    }
    if (this.pendingBytes + piece.length > this.limits.lineBytes) {
      this.skipping = this.pendingBytes + piece.length;
      this.pending = Buffer.alloc(0);
      this.pendingBytes = 0;
      return;
    }
    const needed = this.pendingBytes + piece.length;
    if (needed > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.limits.lineBytes, Math.max(needed, this.pending.length * 2, 4096)));
      this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    // Copied, not kept: the caller may reuse its chunk's buffer.
    piece.copy(this.pending, this.pendingBytes);
    this.pendingBytes = needed;
  }

  private endLine(out: string[]): void {
    this.state.lastEventAt = this.now();
    if (this.skipping !== undefined) {
      out.push(`[a line of ${this.skipping} bytes was left out]`);
      this.skipping = undefined;
      return;
    }
    const line = this.pending.toString('utf8', 0, this.pendingBytes);
    this.pendingBytes = 0;
    // An idle reader (one per sandbox) does not hold on to the room a long line needed.
    if (this.pending.length > 64 * 1024) this.pending = Buffer.alloc(0);
    this.readLine(line.endsWith('\r') ? line.slice(0, -1) : line, out);
  }

  private readLine(line: string, out: string[]): void {
    const event = this.state.format === 'text' && this.fixedFormat ? undefined : parseEvent(line);
    // JSON from no agent we know (a wrapper's log line, before the agent's first event) is shown as it came.
    const format = event && this.state.format === 'text' ? detectFormat(event) : this.state.format;
    if (!event || format === undefined) {
      this.flushDelta(out);
      out.push(...clean(line, this.limits.messageChars).split('\n'));
      return;
    }
    this.state.events++;
    this.state.format = format;
    if (this.state.format === 'claude-stream-json') this.claude(event, out);
    else if (this.state.format === 'codex-json') this.codex(event, out);
    else if (this.state.format === 'gemini-stream-json') this.gemini(event, out);
    else if (this.state.format === 'opencode-json') this.opencode(event, out);
  }

  // Claude Code: system/init, assistant (text and tool_use blocks), user (tool_result blocks), result.

  private claude(event: Json, out: string[]): void {
    const type = text(event, 'type');
    if (type === 'system') {
      if (text(event, 'subtype') !== 'init') return;
      this.identify(event, 'session_id');
      const cwd = text(event, 'cwd');
      if (cwd !== undefined && cwd.length <= this.limits.targetChars) this.cwd = cwd;
    } else if (type === 'assistant') {
      const message = field(event, 'message');
      const id = text(message, 'id');
      // A subagent's messages (they name the Task call they serve) are not the session's turns.
      const ownTurn = typeof field(event, 'parent_tool_use_id') !== 'string';
      if (ownTurn && (id === undefined || id !== this.lastAssistantId)) {
        this.state.turns = (this.state.turns ?? 0) + 1;
        this.lastAssistantId = id === undefined ? undefined : id.slice(0, 200);
      }
      const model = text(message, 'model');
      if (model !== undefined) this.state.model = oneLine(model, this.limits.toolNameChars);
      for (const block of this.blocks(field(message, 'content'), out)) {
        const blockType = text(block, 'type');
        if (blockType === 'text') this.message(text(block, 'text'), out);
        else if (blockType === 'tool_use') this.toolCall(text(block, 'name'), field(block, 'input'), text(block, 'id'), out);
      }
    } else if (type === 'user') {
      for (const block of this.blocks(field(field(event, 'message'), 'content'), out)) {
        if (text(block, 'type') !== 'tool_result') continue;
        const failed = field(block, 'is_error') === true;
        this.toolResult(text(block, 'tool_use_id'), outputText(field(block, 'content')), failed, out);
      }
    } else if (type === 'result') {
      this.claudeResult(event, out);
    }
  }

  private claudeResult(event: Json, out: string[]): void {
    const subtype = text(event, 'subtype') ?? '';
    const finalText = text(event, 'result');
    if (finalText !== undefined && finalText.trim()) this.lastMessage = clean(finalText, this.limits.messageChars);
    const turns = count(event, 'num_turns');
    if (turns !== undefined) this.state.turns = turns;
    const cost = costOf(field(event, 'total_cost_usd'));
    if (cost !== undefined) this.state.costUsd = cost;
    const usage = field(event, 'usage');
    if (isObject(usage)) {
      const cacheRead = count(usage, 'cache_read_input_tokens');
      this.state.tokens = {
        input: (count(usage, 'input_tokens') ?? 0) + (count(usage, 'cache_creation_input_tokens') ?? 0),
        output: count(usage, 'output_tokens') ?? 0,
        ...(cacheRead !== undefined ? { cacheRead } : {}),
      };
    }
    const denials = list(event, 'permission_denials') ?? [];
    const denied = Math.max(denials.length, this.deniedCalls);
    const deniedTools = [...new Set(denials.slice(0, this.limits.blocksPerEvent).map((d) => text(d, 'tool_name')).filter((t): t is string => t !== undefined))]
      .slice(0, 5)
      .map((t) => oneLine(t, this.limits.toolNameChars));
    let result: AgentResult;
    if (subtype === 'success' && field(event, 'is_error') !== true) {
      result = denied && !this.changedFiles ? { verdict: 'denied' } : { verdict: 'success' };
    } else {
      const errors = list(event, 'errors')?.find((e): e is string => typeof e === 'string');
      const detail = CLAUDE_ERRORS[subtype] ?? (errors !== undefined ? oneLine(errors, this.limits.targetChars) : undefined) ?? (subtype && subtype !== 'success' ? oneLine(subtype, this.limits.toolNameChars) : undefined) ?? (finalText !== undefined ? oneLine(finalText, this.limits.targetChars) : 'the agent reported an error');
      result = { verdict: 'error', detail };
    }
    if (denied) result.denials = denied;
    if (denied && deniedTools.length && result.verdict !== 'error') result.detail = `denied: ${deniedTools.join(', ')}`;
    this.settle(result, out);
  }

  // Codex: thread.started, turn.started, item.started/updated/completed, turn.completed/failed, error.

  private codex(event: Json, out: string[]): void {
    const type = text(event, 'type');
    if (type === 'thread.started') {
      this.identify(event, 'thread_id');
    } else if (type === 'turn.started') {
      this.state.turns = (this.state.turns ?? 0) + 1;
    } else if (type === 'item.started' || type === 'item.updated' || type === 'item.completed') {
      this.codexItem(field(event, 'item'), type === 'item.completed', out);
    } else if (type === 'turn.completed') {
      const usage = field(event, 'usage');
      if (isObject(usage)) {
        const before = this.state.tokens;
        const cacheRead = (before?.cacheRead ?? 0) + (count(usage, 'cached_input_tokens') ?? 0);
        this.state.tokens = {
          input: (before?.input ?? 0) + (count(usage, 'input_tokens') ?? 0),
          output: (before?.output ?? 0) + (count(usage, 'output_tokens') ?? 0),
          ...(cacheRead ? { cacheRead } : {}),
        };
      }
      const result: AgentResult = { verdict: this.deniedCalls && !this.changedFiles ? 'denied' : 'success' };
      if (this.deniedCalls) result.denials = this.deniedCalls;
      this.settle(result, out);
    } else if (type === 'turn.failed') {
      this.settle({ verdict: 'error', detail: this.errorDetail(text(field(event, 'error'), 'message')) }, out);
    } else if (type === 'error') {
      // Codex reports retries (a reconnect, the provider busy) as errors too: a notice until the turn ends,
      // the verdict only when it never does.
      this.unsettledError = this.errorDetail(text(event, 'message'));
      out.push(`⚠ ${this.unsettledError}`);
    }
  }

  private codexItem(item: unknown, completed: boolean, out: string[]): void {
    const itemType = text(item, 'type') ?? text(item, 'item_type');
    const id = text(item, 'id');
    if (itemType === 'agent_message') {
      if (completed) this.message(text(item, 'text'), out);
    } else if (itemType === 'command_execution') {
      const command = codexCommand(field(item, 'command'));
      const status = text(item, 'status');
      if (!this.shown(id)) this.toolCall('Shell', { command }, id, out);
      if (!completed && status !== 'declined') return;
      const exitCode = field(item, 'exit_code');
      if (status === 'declined') this.deniedCalls++;
      const failed = status === 'failed' || status === 'declined' || (typeof exitCode === 'number' && exitCode !== 0);
      const output = text(item, 'aggregated_output');
      this.toolResult(id, output, failed, out, typeof exitCode === 'number' && exitCode !== 0 ? `exit code ${clampCode(exitCode)}` : status === 'declined' ? 'declined' : undefined);
      this.forget(id);
    } else if (itemType === 'file_change') {
      if (!completed) return;
      const changes = (list(item, 'changes') ?? []).slice(0, this.limits.blocksPerEvent);
      const paths = changes.map((c) => text(c, 'path')).filter((p): p is string => p !== undefined);
      const kinds = new Set(changes.map((c) => text(c, 'kind')));
      const tool = kinds.size === 1 && kinds.has('add') ? 'Write' : kinds.size === 1 && kinds.has('delete') ? 'Delete' : 'Edit';
      const shownPaths = paths.slice(0, 3).map((p) => this.relative(p));
      const more = (list(item, 'changes')?.length ?? 0) - shownPaths.length;
      const target = shownPaths.join(', ') + (more > 0 ? ` (+${more} more)` : '');
      this.toolCall(tool, { path: target }, undefined, out, true);
      if (text(item, 'status') === 'failed') out.push('  ✗ the change failed');
      else this.changedFiles = true;
    } else if (itemType === 'mcp_tool_call') {
      const server = text(item, 'server') ?? 'mcp';
      const tool = text(item, 'tool') ?? 'tool';
      if (!this.shown(id)) this.toolCall(`${server}.${tool}`, field(item, 'arguments'), id, out);
      if (completed) {
        const failed = text(item, 'status') === 'failed';
        this.toolResult(id, failed ? text(field(item, 'error'), 'message') : undefined, failed, out);
        this.forget(id);
      }
    } else if (itemType === 'web_search') {
      if (!this.shown(id)) this.toolCall('WebSearch', { query: text(item, 'query') }, id, out);
      if (completed) this.forget(id);
    } else if (itemType === 'error') {
      if (completed) out.push(`⚠ ${oneLine(text(item, 'message') ?? 'error', this.limits.targetChars)}`);
    }
  }

  /** Whether an item's call line was already shown (at its start); marks it shown. Ids are remembered capped. */
  private shown(id: string | undefined): boolean {
    if (id === undefined) return false;
    if (this.shownCalls.has(id)) return true;
    if (this.shownCalls.size >= this.limits.trackedCalls) this.shownCalls.delete(this.shownCalls.values().next().value as string);
    this.shownCalls.add(id);
    return false;
  }

  private forget(id: string | undefined): void {
    if (id !== undefined) this.shownCalls.delete(id);
  }

  // Gemini CLI: init, message (role, content, delta), tool_use, tool_result, error, result.

  private gemini(event: Json, out: string[]): void {
    const type = text(event, 'type');
    if (type !== 'message') this.flushDelta(out);
    if (type === 'init') {
      this.identify(event, 'session_id');
    } else if (type === 'message') {
      if (text(event, 'role') !== 'assistant') return;
      const content = text(event, 'content');
      if (content === undefined) return;
      if (field(event, 'delta') === true) {
        if (this.delta.length < this.limits.messageChars) this.delta += content.slice(0, this.limits.messageChars * 4);
      } else {
        this.flushDelta(out);
        this.message(content, out);
      }
    } else if (type === 'tool_use') {
      this.toolCall(text(event, 'tool_name') ?? text(event, 'name'), field(event, 'parameters') ?? field(event, 'args'), text(event, 'tool_id'), out);
    } else if (type === 'tool_result') {
      const failed = text(event, 'status') === 'error';
      const output = failed ? (text(field(event, 'error'), 'message') ?? text(event, 'output')) : text(event, 'output');
      this.toolResult(text(event, 'tool_id'), output, failed, out);
    } else if (type === 'error') {
      out.push(`⚠ ${oneLine(text(event, 'message') ?? 'error', this.limits.targetChars)}`);
    } else if (type === 'result') {
      const stats = field(event, 'stats');
      if (isObject(stats)) {
        const cacheRead = count(stats, 'cached');
        this.state.tokens = {
          input: count(stats, 'input_tokens') ?? count(stats, 'input') ?? 0,
          output: count(stats, 'output_tokens') ?? 0,
          ...(cacheRead !== undefined ? { cacheRead } : {}),
        };
      }
      const status = text(event, 'status');
      const error = field(event, 'error');
      if (status === 'success' || (status === undefined && error === undefined)) this.settle({ verdict: 'success' }, out);
      else this.settle({ verdict: 'error', detail: this.errorDetail(text(error, 'message') ?? status) }, out);
    }
  }

  // OpenCode: step_start, text, tool_use (the call and its outcome in one event), step_finish, error.

  private opencode(event: Json, out: string[]): void {
    const type = text(event, 'type');
    const part = field(event, 'part');
    const session = text(event, 'sessionID');
    if (session !== undefined) this.state.sessionId = oneLine(session, this.limits.toolNameChars);
    if (type === 'step_start') {
      this.state.turns = (this.state.turns ?? 0) + 1;
    } else if (type === 'text') {
      this.message(text(part, 'text'), out);
    } else if (type === 'tool_use') {
      const state = field(part, 'state');
      const id = text(part, 'callID');
      this.toolCall(text(part, 'tool'), field(state, 'input'), id, out);
      const status = text(state, 'status');
      if (status !== 'completed' && status !== 'error') return;
      const failed = status === 'error';
      const error = field(state, 'error');
      this.toolResult(id, failed ? (typeof error === 'string' ? error : text(error, 'message')) : text(state, 'output'), failed, out);
    } else if (type === 'step_finish') {
      const tokens = field(part, 'tokens');
      if (isObject(tokens)) {
        const before = this.state.tokens;
        const cacheRead = (before?.cacheRead ?? 0) + (count(field(tokens, 'cache'), 'read') ?? 0);
        this.state.tokens = {
          input: (before?.input ?? 0) + (count(tokens, 'input') ?? 0),
          output: (before?.output ?? 0) + (count(tokens, 'output') ?? 0),
          ...(field(tokens, 'cache') !== undefined ? { cacheRead } : {}),
        };
      }
      const cost = costOf(field(part, 'cost'));
      if (cost !== undefined) this.state.costUsd = Math.min((this.state.costUsd ?? 0) + cost, 1e9);
      // A step that ends for any reason but more tool calls is the run's last: 'stop' is the model done,
      // the others (length, content-filter, error) are the model cut off.
      const reason = text(part, 'reason');
      if (reason === 'stop') this.settle({ verdict: 'success' }, out);
      else if (reason !== undefined && reason !== 'tool-calls') this.settle({ verdict: 'error', detail: `the model stopped: ${oneLine(reason, this.limits.toolNameChars)}` }, out);
    } else if (type === 'error') {
      const error = field(event, 'error');
      this.settle({ verdict: 'error', detail: this.errorDetail(text(field(error, 'data'), 'message') ?? text(error, 'message') ?? text(error, 'name')) }, out);
    }
  }

  private flushDelta(out: string[]): void {
    if (!this.delta) return;
    const joined = this.delta;
    this.delta = '';
    this.message(joined, out);
  }

  // What the three agents share.

  private identify(event: Json, idKey: string): void {
    const id = text(event, idKey);
    if (id !== undefined) this.state.sessionId = oneLine(id, this.limits.toolNameChars);
    const model = text(event, 'model');
    if (model !== undefined) this.state.model = oneLine(model, this.limits.toolNameChars);
  }

  /** An event's content blocks, at most so many; the rest are noted, not read. */
  private blocks(content: unknown, out: string[]): unknown[] {
    if (!Array.isArray(content)) return [];
    if (content.length <= this.limits.blocksPerEvent) return content;
    out.push(`[${content.length - this.limits.blocksPerEvent} more content blocks were left out]`);
    return content.slice(0, this.limits.blocksPerEvent);
  }

  private message(raw: string | undefined, out: string[]): void {
    if (raw === undefined) return;
    const message = clean(raw, this.limits.messageChars).trim();
    if (!message) return;
    this.lastMessage = message;
    out.push(...message.split('\n'));
  }

  private toolCall(rawTool: string | undefined, input: unknown, id: string | undefined, out: string[], alreadyRelative = false): void {
    const tool = oneLine(rawTool ?? 'tool', this.limits.toolNameChars) || 'tool';
    const kind = toolKind(tool);
    let target: string | undefined;
    for (const key of TARGET_KEYS[kind]) {
      const value = text(input, key);
      if (value !== undefined && value.trim()) {
        target = oneLine(FILE_KINDS.has(kind) && !alreadyRelative ? this.relative(value) : value, this.limits.targetChars);
        break;
      }
    }
    const summary = target ? `${VERB[kind]} ${target}` : kind === 'other' ? `using ${tool}` : VERB[kind];
    this.state.step = { tool, ...(target ? { target } : {}), summary };
    out.push(target ? `▸ ${tool}${FILE_KINDS.has(kind) ? ' ' : ': '}${target}` : `▸ ${tool}`);
    if (id === undefined) return;
    const key = id.slice(0, 200);
    if (this.calls.size >= this.limits.trackedCalls) this.calls.delete(this.calls.keys().next().value as string);
    this.calls.set(key, { kind, commits: commits(kind, target) });
  }

  /** A tool's output folded to its first lines; a failure marked; a file change or commit remembered. */
  private toolResult(id: string | undefined, output: string | undefined, failed: boolean, out: string[], note?: string): void {
    const key = id?.slice(0, 200);
    const call = key === undefined ? undefined : this.calls.get(key);
    if (key !== undefined) this.calls.delete(key);
    if (!failed && call && (call.kind === 'edit' || call.commits)) this.changedFiles = true;
    const lines = output === undefined ? [] : foldedOutput(output, this.limits);
    const marker = failed ? '  ✗ ' : '  ';
    if (note) out.push(`${marker}${note}`);
    if (!lines.length) {
      if (failed && !note) out.push('  ✗ failed');
      return;
    }
    out.push(`${note ? '  ' : marker}${lines[0]}`, ...lines.slice(1).map((l) => `  ${l}`));
  }

  private relative(path: string): string {
    for (const base of [this.cwd, this.workdir]) {
      if (!base) continue;
      const prefix = base.endsWith('/') ? base : `${base}/`;
      if (path.startsWith(prefix) && path.length > prefix.length) return path.slice(prefix.length);
    }
    return path;
  }

  private errorDetail(message: string | undefined): string {
    return message !== undefined && message.trim() ? oneLine(message, this.limits.targetChars) : 'the agent reported an error';
  }

  private messageField(): { message?: string } {
    return this.lastMessage !== undefined ? { message: this.lastMessage } : {};
  }

  /** Records the verdict and renders the result's one line. */
  private settle(result: AgentResult, out: string[]): void {
    const before = this.state.result;
    this.state.result = { ...result, ...this.messageField() };
    if (before && before.verdict === result.verdict && before.detail === result.detail) return;
    out.push(...resultLines(this.state, this.limits.resultQuoteChars));
  }
}

const CLAUDE_ERRORS: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, {
  error_max_turns: 'stopped at the turn limit',
  error_during_execution: 'failed during execution',
  error_max_budget_usd: 'stopped at the budget limit',
  error_max_structured_output_retries: 'gave up on the structured output',
});

function costOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.min(value, 1e9) : undefined;
}

function clampCode(code: number): string {
  return Number.isInteger(code) && Math.abs(code) < 1e6 ? String(code) : '?';
}

function parseEvent(line: string): Json | undefined {
  if (!line.trimStart().startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return isObject(value) ? value : undefined;
  } catch {
    // Not JSON after all (or nested past the parser's depth): it is shown as text.
    return undefined;
  }
}

/** Which agent wrote an event, when its type tells; undefined for types any of them might write. */
function detectFormat(event: Json): AgentEventFormat | undefined {
  const type = text(event, 'type');
  if (type === undefined) return undefined;
  // OpenCode's `tool_use` and `error` share their names with Gemini's and Codex's; its events carry a part.
  if (typeof field(event, 'sessionID') === 'string' && (isObject(field(event, 'part')) || type === 'error')) return 'opencode-json';
  if (type === 'step_start' || type === 'step_finish') return 'opencode-json';
  if (type === 'system' || type === 'assistant' || type === 'user' || type === 'stream_event') return 'claude-stream-json';
  if (/^(thread|turn|item)\./.test(type)) return 'codex-json';
  if (type === 'init' || type === 'message' || type === 'tool_use' || type === 'tool_result') return 'gemini-stream-json';
  if (type === 'result') return field(event, 'subtype') !== undefined || field(event, 'num_turns') !== undefined ? 'claude-stream-json' : field(event, 'stats') !== undefined || field(event, 'status') !== undefined ? 'gemini-stream-json' : undefined;
  if (type === 'error') return field(event, 'severity') !== undefined ? 'gemini-stream-json' : 'codex-json';
  return undefined;
}

function foldedOutput(output: string, limits: AgentStreamLimits): string[] {
  const window = output.length > limits.outputLines * limits.outputLineChars * 4 ? output.slice(0, limits.outputLines * limits.outputLineChars * 4) : output;
  const shown = stripControls(window).replace(/\s+$/, '').split('\n').filter((l, i, all) => l.trim() || i < all.length - 1).slice(0, limits.outputLines).map((l) => truncate(l, limits.outputLineChars));
  if (!shown.length || (shown.length === 1 && !shown[0].trim())) return [];
  let total = 1;
  const trimmed = output.replace(/\s+$/, '');
  for (let i = trimmed.indexOf('\n'); i !== -1; i = trimmed.indexOf('\n', i + 1)) total++;
  const rest = total - shown.length;
  return rest > 0 ? [...shown, `… ${plural(rest, 'more line', 'more lines')}`] : shown;
}

/** The transcript's lines for a result: `✓ done in 3 turns, $0.0123: <last message>`, then any denials. */
function resultLines(p: AgentProgress, quoteChars: number): string[] {
  const r = p.result;
  if (!r) return [];
  const quote = r.message ? oneLine(r.message, quoteChars) : '';
  const denied = r.denials ? `⚠ ${plural(r.denials, 'tool call was', 'tool calls were')} denied${r.detail?.startsWith('denied: ') ? ` (${r.detail.slice(8)})` : ''}` : '';
  if (r.verdict === 'denied') return [denied];
  if (r.verdict === 'error') return [`✗ error: ${r.detail ?? 'the agent reported an error'}${quote ? `: ${quote}` : ''}`];
  if (r.verdict === 'incomplete') return ['⚠ ended without a result'];
  let line = '✓ done';
  if (p.turns !== undefined) line += ` in ${plural(p.turns, 'turn', 'turns')}`;
  if (p.costUsd !== undefined) line += `${p.turns !== undefined ? ',' : ' for'} ${formatCost(p.costUsd, 4)}`;
  if (quote) line += `: ${quote}`;
  return denied ? [line, denied] : [line];
}

/** Reads a whole stream at once (a finished log): its progress and its transcript. */
export function readAgentStream(stream: Buffer | string, options: AgentStreamReaderOptions = {}): { progress: AgentProgress; lines: string[] } {
  const reader = new AgentStreamReader(options);
  const lines = [...reader.push(stream), ...reader.finish()];
  return { progress: reader.progress, lines };
}

/** A tree item's description: "editing src/app.ts · turn 3 · $0.02", or "✓ done · 3 turns · $0.02". */
export function progressSummary(p: AgentProgress): string {
  const parts: string[] = [];
  const r = p.result;
  if (r) {
    if (r.verdict === 'success') parts.push('✓ done');
    else if (r.verdict === 'denied') parts.push(`⚠ ${plural(r.denials ?? 0, 'tool call', 'tool calls')} denied`);
    else if (r.verdict === 'error') parts.push(`✗ ${r.detail ?? 'error'}`);
    else parts.push('⚠ ended without a result');
    if (p.turns !== undefined) parts.push(plural(p.turns, 'turn', 'turns'));
  } else {
    parts.push(p.step?.summary ?? (p.events ? 'thinking' : 'starting'));
    if (p.turns) parts.push(`turn ${p.turns}`);
  }
  // Cents once there are any; a test run's fraction of a cent still shows as more than nothing.
  if (p.costUsd !== undefined) parts.push(formatCost(p.costUsd, p.costUsd > 0 && p.costUsd < 0.01 ? 4 : 2));
  return oneLine(parts.join(' · '), 120);
}

/**
 * Whether a running agent has been silent for `stuckAfterMs`. One with a result is never stuck; one that has
 * written nothing yet is judged from `startedAt` when the caller knows it, and is not stuck otherwise.
 */
export function isStuck(p: AgentProgress, now: number, stuckAfterMs: number, startedAt?: number): boolean {
  if (p.result) return false;
  const since = p.lastEventAt ?? startedAt;
  return since !== undefined && now - since >= stuckAfterMs;
}

/**
 * The agent's output as a readable transcript: its event stream in, one line per message, tool call and result
 * out; the reader it keeps (`reader.progress`) says where the agent is.
 */
export class AgentTranscript extends Transform {
  readonly reader: AgentStreamReader;

  constructor(options: AgentStreamReaderOptions = {}) {
    super();
    this.reader = new AgentStreamReader(options);
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    const lines = this.reader.push(chunk);
    if (lines.length > 0) this.push(`${lines.join('\n')}\n`);
    done();
  }

  override _flush(done: TransformCallback): void {
    const lines = this.reader.finish();
    if (lines.length > 0) this.push(`${lines.join('\n')}\n`);
    done();
  }
}
