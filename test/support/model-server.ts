/**
 * A small imitation of the providers' streaming APIs, for driving the real agent CLIs offline:
 * the Anthropic Messages API (`POST /v1/messages`: Claude Code, OpenCode), the OpenAI Responses API
 * (`POST /v1/responses`: the Codex CLI) and the Gemini API (`POST /v1beta/models/M:streamGenerateContent`:
 * Gemini CLI). Any path prefix before `/v1/` (or `/v1beta/`) is ignored, so a base URL such as
 * `http://host:port/credential/anthropic` works too. test/support/agent-cli.md tells how each CLI was driven.
 *
 * It plays one scripted conversation, decided from each request's own history (stateless: it counts the tool
 * results already in the request): 1st turn a tool call that writes a file, 2nd turn a shell tool call that
 * commits it, 3rd turn a final text message. It records every request (method, url, a few headers, the model
 * and the body's size, never the body) and serves them at `GET /__requests`.
 *
 * Only `node:` built-ins: the compiled file runs on a bare Node, also inside a container with just a node
 * binary. Run as a main module it listens on MODEL_SERVER_LISTEN (default 0.0.0.0:8080).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ModelServerOptions {
  /** Host to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 0: any free port). */
  port?: number;
  /** The file the agent writes (relative to its working directory). */
  fileName?: string;
  /** What the agent writes into it. */
  fileContent?: string;
  /** The commit message of the agent's commit. */
  commitMessage?: string;
  /** The final assistant message (Claude: when a tool result was an error, a "Not done: ..." message instead). */
  finalText?: string;
  /**
   * A fault to play instead of the conversation: `http500` answers every model request with HTTP 500,
   * `error-event` starts a stream and ends it with the provider's error event.
   */
  fail?: 'http500' | 'error-event';
  /** Largest request body read, in bytes (default 8 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Print one line per request (default true). */
  log?: boolean | ((line: string) => void);
}

export interface RecordedRequest {
  time: string;
  method: string;
  url: string;
  /** Which API the request was routed to. */
  api: 'anthropic' | 'openai' | 'gemini' | 'other';
  headers: { 'x-api-key'?: string; 'x-goog-api-key'?: string; authorization?: string; host?: string; 'user-agent'?: string };
  model?: string;
  stream?: boolean;
  bodyBytes: number;
  /** The scripted turn answered (0-based), when one was. */
  turn?: number;
  /** Tool names the request offered (names only). */
  tools?: string[];
  status: number;
}

export interface ModelServer {
  url: string;
  port: number;
  requests(): RecordedRequest[];
  close(): Promise<void>;
}

interface Script {
  fileName: string;
  fileContent: string;
  commitMessage: string;
  finalText: string;
}

const DEFAULTS: Script = {
  fileName: 'AGENT_WAS_HERE.md',
  fileContent: '# The agent was here\n\nWritten by a scripted model.\n',
  commitMessage: 'agent: add AGENT_WAS_HERE.md',
  finalText: 'Done: committed AGENT_WAS_HERE.md.',
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A shell word in single quotes. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function commitCommand(s: Script): string {
  return `git add -A && git commit -q -m ${JSON.stringify(s.commitMessage)}`;
}

function writeCommand(s: Script): string {
  return `printf '%s' ${shq(s.fileContent)} > ${shq(s.fileName)}`;
}

let idCounter = 0;
function newId(prefix: string): string {
  idCounter += 1;
  return `${prefix}${Date.now().toString(36)}${idCounter.toString(36).padStart(4, '0')}`;
}

// ---------------------------------------------------------------- Anthropic Messages API

function systemText(body: Json): string {
  const sys = body.system;
  if (typeof sys === 'string') return sys;
  if (Array.isArray(sys)) return sys.map((b) => (isObject(b) && typeof b.text === 'string' ? b.text : '')).join('\n');
  return '';
}

/** How many tool results the request holds, and whether any was an error (a denied or failed tool call). */
function anthropicToolResults(body: Json): { count: number; errors: number } {
  let count = 0;
  let errors = 0;
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    if (!isObject(m) || m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (!isObject(b) || b.type !== 'tool_result') continue;
      count += 1;
      if (b.is_error === true) errors += 1;
    }
  }
  return { count, errors };
}

function toolNames(body: Json): string[] {
  const names: string[] = [];
  for (const t of Array.isArray(body.tools) ? body.tools : []) {
    if (!isObject(t)) continue;
    if (typeof t.name === 'string') names.push(t.name);
    else if (typeof t.type === 'string') names.push(t.type);
  }
  return names;
}

type AnthropicBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Json };

/** The tool named `name` (any case) that the request offers, and the names of its input's properties. */
function anthropicTool(body: Json, name: string): { name: string; props: string[] } | undefined {
  for (const t of Array.isArray(body.tools) ? body.tools : []) {
    if (!isObject(t) || typeof t.name !== 'string' || t.name.toLowerCase() !== name.toLowerCase()) continue;
    const schema = isObject(t.input_schema) ? t.input_schema : {};
    return { name: t.name, props: isObject(schema.properties) ? Object.keys(schema.properties) : [] };
  }
  return undefined;
}

function anthropicTurn(body: Json, s: Script): { turn?: number; blocks: AnthropicBlock[]; stop: string } {
  // A request that offers no tools (a title or summary request) gets a short text, outside the script.
  if (toolNames(body).length === 0) return { blocks: [{ type: 'text', text: 'Agent task' }], stop: 'end_turn' };
  const { count: turn, errors } = anthropicToolResults(body);
  // Claude Code names them Write{file_path, content} and Bash{command, description}; other agents on the same
  // API (OpenCode: write{filePath, content}, bash{command, description}) differ in case: follow the schema.
  const write = anthropicTool(body, 'Write');
  const bash = anthropicTool(body, 'Bash');
  if (turn === 0 && write) {
    const dir = /(?:Primary working directory|Working directory): (\S+)/.exec(systemText(body))?.[1];
    const filePath = dir ? `${dir.replace(/\/+$/, '')}/${s.fileName}` : s.fileName;
    const pathKey = write.props.find((p) => /^file_?path$/i.test(p)) ?? 'file_path';
    return {
      turn,
      blocks: [
        { type: 'text', text: `I will write ${s.fileName}.` },
        { type: 'tool_use', id: newId('toolu_'), name: write.name, input: { [pathKey]: filePath, content: s.fileContent } },
      ],
      stop: 'tool_use',
    };
  }
  if (turn <= 1 && bash) {
    const command = turn === 0 ? `${writeCommand(s)} && ${commitCommand(s)}` : commitCommand(s);
    return {
      turn,
      blocks: [
        { type: 'text', text: 'Now I will commit it.' },
        { type: 'tool_use', id: newId('toolu_'), name: bash.name, input: { command, description: 'Commit the new file' } },
      ],
      stop: 'tool_use',
    };
  }
  const text = errors > 0 ? `Not done: ${errors} tool call(s) were refused or failed.` : s.finalText;
  return { turn, blocks: [{ type: 'text', text }], stop: 'end_turn' };
}

function anthropicUsage(outputTokens: number): Json {
  return { input_tokens: 100, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

function sse(res: http.ServerResponse, event: string, data: Json): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function startSse(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

function anthropicStream(res: http.ServerResponse, model: string, blocks: AnthropicBlock[], stop: string, fail?: string): void {
  startSse(res);
  const id = newId('msg_');
  sse(res, 'message_start', {
    type: 'message_start',
    message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(1) },
  });
  sse(res, 'ping', { type: 'ping' });
  if (fail === 'error-event') {
    sse(res, 'error', { type: 'error', error: { type: 'api_error', message: 'scripted model server error' } });
    res.end();
    return;
  }
  blocks.forEach((block, index) => {
    if (block.type === 'text') {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } });
    } else {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
      const json = JSON.stringify(block.input);
      // The input arrives in pieces, as the real API sends it.
      const cut = Math.floor(json.length / 2);
      for (const part of [json.slice(0, cut), json.slice(cut)]) {
        sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: part } });
      }
    }
    sse(res, 'content_block_stop', { type: 'content_block_stop', index });
  });
  sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 20 } });
  sse(res, 'message_stop', { type: 'message_stop' });
  res.end();
}

// ---------------------------------------------------------------- OpenAI Responses API

function countOpenAiToolResults(body: Json): number {
  let n = 0;
  for (const item of Array.isArray(body.input) ? body.input : []) {
    if (isObject(item) && typeof item.type === 'string' && /_call_output$/.test(item.type)) n += 1;
  }
  return n;
}

interface OpenAiTool {
  name: string;
  /** `function` (JSON arguments) or `custom` (freeform input). */
  kind: string;
}

function openAiTools(body: Json): OpenAiTool[] {
  const out: OpenAiTool[] = [];
  for (const t of Array.isArray(body.tools) ? body.tools : []) {
    if (!isObject(t) || typeof t.type !== 'string') continue;
    const name = typeof t.name === 'string' ? t.name : isObject(t.function) && typeof t.function.name === 'string' ? t.function.name : t.type;
    out.push({ name, kind: t.type });
  }
  return out;
}

/** A function_call or custom_tool_call item that runs `command` with whichever shell tool the request offers. */
function openAiShellCall(tools: OpenAiTool[], command: string, callId: string): Json | undefined {
  const find = (name: string) => tools.find((t) => t.name === name);
  const fn = (name: string, args: Json): Json => ({ type: 'function_call', name, arguments: JSON.stringify(args), call_id: callId });
  if (find('shell_command')) return fn('shell_command', { command });
  if (find('exec_command')) return fn('exec_command', { cmd: command });
  if (find('shell')) return fn('shell', { command: ['bash', '-lc', command] });
  if (find('local_shell')) {
    return { type: 'local_shell_call', call_id: callId, status: 'completed', action: { type: 'exec', command: ['bash', '-lc', command] } };
  }
  return undefined;
}

function applyPatchText(s: Script): string {
  const lines = s.fileContent.replace(/\n$/, '').split('\n').map((l) => `+${l}`);
  return ['*** Begin Patch', `*** Add File: ${s.fileName}`, ...lines, '*** End Patch', ''].join('\n');
}

function openAiTurn(body: Json, s: Script): { turn?: number; item: Json } {
  const tools = openAiTools(body);
  const message = (text: string): Json => ({
    type: 'message',
    role: 'assistant',
    id: newId('msg_'),
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [] }],
  });
  if (tools.length === 0) return { item: message('Agent task') };
  const turn = countOpenAiToolResults(body);
  const callId = newId('call_');
  if (turn === 0) {
    const patch = tools.find((t) => t.name === 'apply_patch');
    if (patch?.kind === 'custom') {
      return { turn, item: { type: 'custom_tool_call', id: newId('ctc_'), status: 'completed', name: 'apply_patch', input: applyPatchText(s), call_id: callId } };
    }
    if (patch) {
      return { turn, item: { type: 'function_call', id: newId('fc_'), name: 'apply_patch', arguments: JSON.stringify({ input: applyPatchText(s) }), call_id: callId } };
    }
    const call = openAiShellCall(tools, `${writeCommand(s)} && ${commitCommand(s)}`, callId);
    if (call) return { turn, item: call };
  }
  if (turn === 1) {
    const call = openAiShellCall(tools, commitCommand(s), callId);
    if (call) return { turn, item: call };
  }
  return { turn, item: message(s.finalText) };
}

function openAiStream(res: http.ServerResponse, model: string, item: Json, fail?: string): void {
  startSse(res);
  const id = newId('resp_');
  const base = { id, object: 'response', created_at: Math.floor(Date.now() / 1000), model };
  sse(res, 'response.created', { type: 'response.created', response: { ...base, status: 'in_progress', output: [] } });
  if (fail === 'error-event') {
    sse(res, 'response.failed', {
      type: 'response.failed',
      response: { ...base, status: 'failed', error: { code: 'server_error', message: 'scripted model server error' } },
    });
    res.end();
    return;
  }
  sse(res, 'response.output_item.added', { type: 'response.output_item.added', output_index: 0, item });
  if (item.type === 'message') {
    const content = Array.isArray(item.content) && isObject(item.content[0]) ? item.content[0] : {};
    sse(res, 'response.output_text.delta', { type: 'response.output_text.delta', item_id: item.id, output_index: 0, content_index: 0, delta: content.text });
  }
  sse(res, 'response.output_item.done', { type: 'response.output_item.done', output_index: 0, item });
  sse(res, 'response.completed', {
    type: 'response.completed',
    response: {
      ...base,
      status: 'completed',
      output: [item],
      usage: {
        input_tokens: 100,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 20,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 120,
      },
    },
  });
  res.end();
}

// ---------------------------------------------------------------- Gemini API (generateContent)

function geminiToolNames(body: Json): string[] {
  const names: string[] = [];
  for (const t of Array.isArray(body.tools) ? body.tools : []) {
    if (!isObject(t) || !Array.isArray(t.functionDeclarations)) continue;
    for (const f of t.functionDeclarations) if (isObject(f) && typeof f.name === 'string') names.push(f.name);
  }
  return names;
}

/** Gemini CLI's tools: write_file{file_path, content} and run_shell_command{command, description}. */
function geminiTurn(body: Json, s: Script): { turn?: number; parts: Json[] } {
  const tools = geminiToolNames(body);
  if (tools.length === 0) {
    // Gemini CLI's model router asks, without tools, for JSON naming "flash" or "pro".
    const config = isObject(body.generationConfig) ? body.generationConfig : {};
    const wantsJson = typeof config.responseMimeType === 'string' && config.responseMimeType.includes('json');
    return { parts: [{ text: wantsJson ? JSON.stringify({ reasoning: 'A scripted task.', model_choice: 'flash' }) : 'Agent task' }] };
  }
  let turn = 0;
  for (const c of Array.isArray(body.contents) ? body.contents : []) {
    if (!isObject(c) || !Array.isArray(c.parts)) continue;
    for (const p of c.parts) if (isObject(p) && isObject(p.functionResponse)) turn += 1;
  }
  const shell = tools.includes('run_shell_command');
  if (turn === 0 && tools.includes('write_file')) {
    return { turn, parts: [{ text: `I will write ${s.fileName}.` }, { functionCall: { name: 'write_file', args: { file_path: s.fileName, content: s.fileContent } } }] };
  }
  if (turn <= 1 && shell) {
    const command = turn === 0 ? `${writeCommand(s)} && ${commitCommand(s)}` : commitCommand(s);
    return { turn, parts: [{ functionCall: { name: 'run_shell_command', args: { command, description: 'Commit the new file' } } }] };
  }
  return { turn, parts: [{ text: s.finalText }] };
}

// ---------------------------------------------------------------- the server

function sendJson(res: http.ServerResponse, status: number, data: unknown): void {
  const text = JSON.stringify(data);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function startModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const script: Script = {
    fileName: options.fileName ?? DEFAULTS.fileName,
    fileContent: options.fileContent ?? DEFAULTS.fileContent,
    commitMessage: options.commitMessage ?? DEFAULTS.commitMessage,
    finalText: options.finalText ?? DEFAULTS.finalText,
  };
  const maxBody = options.maxBodyBytes ?? 8 * 1024 * 1024;
  const log = options.log === false ? undefined : typeof options.log === 'function' ? options.log : (line: string) => console.log(line);
  const recorded: RecordedRequest[] = [];

  const server = http.createServer((req, res) => {
    const rec: RecordedRequest = {
      time: new Date().toISOString(),
      method: req.method ?? '',
      url: req.url ?? '',
      api: 'other',
      headers: {
        'x-api-key': header(req, 'x-api-key'),
        'x-goog-api-key': header(req, 'x-goog-api-key'),
        authorization: header(req, 'authorization'),
        host: header(req, 'host'),
        'user-agent': header(req, 'user-agent'),
      },
      bodyBytes: 0,
      status: 0,
    };
    const chunks: Buffer[] = [];
    let tooLarge = false;
    const finish = (status: number) => {
      rec.status = status;
      recorded.push(rec);
      log?.(
        `model-server ${rec.method} ${rec.url} -> ${status} api=${rec.api} model=${rec.model ?? '-'} turn=${rec.turn ?? '-'} bytes=${rec.bodyBytes}` +
          ` key=${rec.headers['x-api-key'] ? 'x-api-key' : rec.headers['x-goog-api-key'] ? 'x-goog-api-key' : rec.headers.authorization ? 'authorization' : 'none'}`,
      );
    };
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    req.on('data', (chunk: Buffer) => {
      rec.bodyBytes += chunk.length;
      if (rec.bodyBytes > maxBody) {
        if (!tooLarge) {
          tooLarge = true;
          res.setHeader('connection', 'close');
          sendJson(res, 413, { error: { type: 'request_too_large', message: `body over ${maxBody} bytes` } });
          finish(413);
          req.destroy();
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return;
      try {
        handle(req, res, rec, Buffer.concat(chunks), finish);
      } catch (err) {
        if (!res.headersSent) sendJson(res, 500, { error: { type: 'api_error', message: String(err) } });
        else res.end();
        finish(500);
      }
    });
  });

  function handle(req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest, raw: Buffer, finish: (status: number) => void): void {
    const pathname = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && pathname.endsWith('/__requests')) {
      // Not recorded itself: the list is of the agent's requests.
      sendJson(res, 200, recorded);
      return;
    }
    // Anything before /v1/ is a prefix (a base URL with a path): route on the rest.
    const at = pathname.search(/\/v1(?:beta|alpha)?\//);
    const route = at >= 0 ? pathname.slice(at) : pathname;
    if (req.method === 'HEAD' || (req.method === 'GET' && (route === '/' || route === '/v1/models'))) {
      if (route === '/v1/models') sendJson(res, 200, { object: 'list', data: [] });
      else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.method === 'HEAD' ? undefined : 'model server\n');
      }
      finish(200);
      return;
    }
    const gemini = /^\/v1(?:beta|alpha)?\/models\/([^/:]+):(streamGenerateContent|generateContent|countTokens)$/.exec(route);
    const api = route.startsWith('/v1/messages') ? 'anthropic' : route === '/v1/responses' ? 'openai' : gemini ? 'gemini' : 'other';
    rec.api = api;
    if (req.method !== 'POST' || api === 'other') {
      sendJson(res, 404, { error: { type: 'not_found_error', message: `no route for ${req.method} ${route}` } });
      finish(404);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    if (!isObject(body)) {
      sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'body is not a JSON object' } });
      finish(400);
      return;
    }
    const model = gemini ? gemini[1] : typeof body.model === 'string' ? body.model : 'unknown-model';
    rec.model = model;
    rec.stream = body.stream === true;
    if (options.fail === 'http500') {
      sendJson(res, 500, { type: 'error', error: { type: 'api_error', message: 'scripted model server error' } });
      finish(500);
      return;
    }
    if (api === 'anthropic') {
      if (route === '/v1/messages/count_tokens') {
        sendJson(res, 200, { input_tokens: Math.ceil(raw.length / 4) });
        finish(200);
        return;
      }
      if (route !== '/v1/messages') {
        sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route for ${route}` } });
        finish(404);
        return;
      }
      rec.tools = toolNames(body);
      const { turn, blocks, stop } = anthropicTurn(body, script);
      rec.turn = turn;
      if (rec.stream) anthropicStream(res, model, blocks, stop, options.fail);
      else {
        sendJson(res, 200, { id: newId('msg_'), type: 'message', role: 'assistant', model, content: blocks, stop_reason: stop, stop_sequence: null, usage: anthropicUsage(20) });
      }
      finish(200);
      return;
    }
    if (gemini) {
      rec.stream = gemini[2] === 'streamGenerateContent';
      if (gemini[2] === 'countTokens') {
        sendJson(res, 200, { totalTokens: Math.ceil(raw.length / 4) });
        finish(200);
        return;
      }
      rec.tools = geminiToolNames(body);
      const { turn, parts } = geminiTurn(body, script);
      rec.turn = turn;
      const chunk = {
        candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
        usageMetadata: { promptTokenCount: 100, candidatesTokenCount: 20, totalTokenCount: 120 },
        modelVersion: model,
      };
      if (rec.stream) {
        startSse(res);
        res.end(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
      } else sendJson(res, 200, chunk);
      finish(200);
      return;
    }
    rec.tools = openAiTools(body).map((t) => `${t.name}:${t.kind}`);
    const { turn, item } = openAiTurn(body, script);
    rec.turn = turn;
    if (body.stream === false) {
      sendJson(res, 200, { id: newId('resp_'), object: 'response', status: 'completed', model, output: [item] });
    } else openAiStream(res, model, item, options.fail);
    finish(200);
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const host = options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1';
      const shown = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${port}`,
        port,
        requests: () => recorded.slice(),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** Options from the environment, for the main module. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ModelServerOptions {
  const listen = env.MODEL_SERVER_LISTEN || '0.0.0.0:8080';
  const colon = listen.lastIndexOf(':');
  const host = (colon >= 0 ? listen.slice(0, colon) : listen).replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';
  const port = colon >= 0 ? Number(listen.slice(colon + 1)) : 8080;
  const fail = env.MODEL_SERVER_FAIL === 'http500' || env.MODEL_SERVER_FAIL === 'error-event' ? env.MODEL_SERVER_FAIL : undefined;
  return {
    host,
    port,
    fileName: env.MODEL_SERVER_FILE || undefined,
    fileContent: env.MODEL_SERVER_CONTENT || undefined,
    commitMessage: env.MODEL_SERVER_COMMIT_MESSAGE || undefined,
    finalText: env.MODEL_SERVER_FINAL_TEXT || undefined,
    fail,
  };
}

if (require.main === module) {
  const opts = optionsFromEnv();
  startModelServer(opts).then(
    (s) => {
      console.log(`model server listening on ${opts.host}:${s.port}`);
      const stop = () => void s.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
    (err: unknown) => {
      console.error(`model server: ${String(err)}`);
      process.exit(1);
    },
  );
}
