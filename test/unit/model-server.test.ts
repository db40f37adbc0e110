import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startModelServer } from '../support/model-server';
import type { ModelServer } from '../support/model-server';

const FIXTURES = path.resolve(__dirname, '../../../test/unit/fixtures/agent-streams');

/** The data objects of an SSE body, in order. */
function events(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n\n')
    .map((chunk) => chunk.split('\n').find((l) => l.startsWith('data: ')))
    .filter((l): l is string => l !== undefined)
    .map((l) => JSON.parse(l.slice('data: '.length)) as Record<string, unknown>);
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

describe('model server', () => {
  let server: ModelServer;
  before(async () => {
    server = await startModelServer({ log: false });
  });
  after(() => server.close());

  test('Anthropic: a Write with the working directory, then a Bash commit, then the final text', async () => {
    const base = { model: 'claude-test', stream: true, tools: [{ name: 'Write' }, { name: 'Bash' }], system: [{ type: 'text', text: 'Primary working directory: /work/repo' }] };
    const first = events((await post(`${server.url}/v1/messages?beta=true`, { ...base, messages: [{ role: 'user', content: 'go' }] }, { 'x-api-key': 'k1' })).text);
    assert.deepEqual(
      first.map((e) => e.type),
      ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    const json = first
      .filter((e) => (e.delta as { type?: string } | undefined)?.type === 'input_json_delta')
      .map((e) => (e.delta as { partial_json: string }).partial_json)
      .join('');
    assert.equal((JSON.parse(json) as { file_path: string }).file_path, '/work/repo/AGENT_WAS_HERE.md');

    const toolResult = (id: string) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'ok' }] });
    const second = events((await post(`${server.url}/prefix/anthropic/v1/messages`, { ...base, messages: [{ role: 'user', content: 'go' }, toolResult('a')] })).text);
    const start = second.find((e) => (e.content_block as { type?: string } | undefined)?.type === 'tool_use');
    assert.equal((start?.content_block as { name: string }).name, 'Bash');

    const third = await post(`${server.url}/v1/messages`, { ...base, stream: false, messages: [{ role: 'user', content: 'go' }, toolResult('a'), toolResult('b')] });
    assert.deepEqual((JSON.parse(third.text) as { content: unknown }).content, [{ type: 'text', text: 'Done: committed AGENT_WAS_HERE.md.' }]);
  });

  test('OpenAI Responses: apply_patch as a custom tool call, then exec_command, ending in response.completed', async () => {
    const tools = [{ type: 'function', name: 'exec_command' }, { type: 'custom', name: 'apply_patch' }];
    const first = events((await post(`${server.url}/credential/openai/v1/responses`, { model: 'gpt-5.5', tools, input: [] }, { authorization: 'Bearer k2' })).text);
    assert.equal(first.at(-1)?.type, 'response.completed');
    const item = first.find((e) => e.type === 'response.output_item.done')?.item as { type: string; name: string; input: string };
    assert.equal(item.type, 'custom_tool_call');
    assert.match(item.input, /^\*\*\* Begin Patch\n\*\*\* Add File: AGENT_WAS_HERE\.md\n/);

    const second = events((await post(`${server.url}/v1/responses`, { model: 'gpt-5.5', tools, input: [{ type: 'custom_tool_call_output', call_id: 'c', output: 'ok' }] })).text);
    const call = second.find((e) => e.type === 'response.output_item.done')?.item as { name: string; arguments: string };
    assert.equal(call.name, 'exec_command');
    assert.match((JSON.parse(call.arguments) as { cmd: string }).cmd, /^git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"$/);
  });

  test('Gemini: write_file, then run_shell_command, then text; the router gets JSON', async () => {
    const tools = [{ functionDeclarations: [{ name: 'write_file' }, { name: 'run_shell_command' }] }];
    const url = `${server.url}/credential/gemini/v1beta/models/gemini-test:streamGenerateContent?alt=sse`;
    const first = events((await post(url, { contents: [{ role: 'user', parts: [{ text: 'go' }] }], tools }, { 'x-goog-api-key': 'k3' })).text);
    const parts = (first[0].candidates as Array<{ content: { parts: Array<{ functionCall?: { name: string } }> } }>)[0].content.parts;
    assert.equal(parts.find((p) => p.functionCall)?.functionCall?.name, 'write_file');
    const router = await post(`${server.url}/v1beta/models/lite:generateContent`, { contents: [], generationConfig: { responseMimeType: 'application/json' } });
    const text = (JSON.parse(router.text) as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> }).candidates[0].content.parts[0].text;
    assert.equal((JSON.parse(text) as { model_choice: string }).model_choice, 'flash');
  });

  test('bad requests get an answer, and requests are recorded without bodies', async () => {
    assert.equal((await post(`${server.url}/v1/messages`, '{not json')).status, 400);
    assert.equal((await post(`${server.url}/v1/elsewhere`, {})).status, 404);
    assert.equal((await fetch(`${server.url}/`, { method: 'HEAD' })).status, 200);
    const small = await startModelServer({ log: false, maxBodyBytes: 1024 });
    try {
      assert.equal((await post(`${small.url}/v1/responses`, 'x'.repeat(4096))).status, 413);
    } finally {
      await small.close();
    }
    const recorded = (await (await fetch(`${server.url}/__requests`)).json()) as Array<{ headers: Record<string, string>; bodyBytes: number; body?: unknown }>;
    assert.ok(recorded.some((r) => r.headers['x-api-key'] === 'k1'));
    assert.ok(recorded.some((r) => r.headers.authorization === 'Bearer k2'));
    assert.ok(recorded.every((r) => r.body === undefined && typeof r.bodyBytes === 'number'));
  });

  test('the fixtures are the CLIs\' JSON lines', () => {
    for (const name of ['claude-code.jsonl', 'claude-code-denied.jsonl', 'codex.jsonl', 'codex-error.jsonl', 'opencode.jsonl', 'gemini-cli.jsonl']) {
      const lines = readFileSync(path.join(FIXTURES, name), 'utf8').trim().split('\n');
      assert.ok(lines.length >= 3, name);
      for (const line of lines) assert.equal(typeof (JSON.parse(line) as { type: unknown }).type, 'string');
    }
  });
});
