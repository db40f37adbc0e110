import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AgentStreamReader, agentStreamLimits, isStuck, progressSummary, readAgentStream, stripControls } from '../../src/core/agents/progress';
import type { AgentProgress, AgentStreamReaderOptions } from '../../src/core/agents/progress';

// Recorded from the real CLIs against a scripted model (Claude Code 2.1, Codex 0.171): resolved from the
// repository, since the compiled test runs from out/test/unit.
const FIXTURES = path.resolve(__dirname, '../../../test/unit/fixtures/agent-streams');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name));

/** Feeds a stream one byte at a time, the harshest chunking there is. */
function byteByByte(stream: Buffer, options: AgentStreamReaderOptions = {}) {
  const reader = new AgentStreamReader(options);
  const lines: string[] = [];
  for (let i = 0; i < stream.length; i++) lines.push(...reader.push(stream.subarray(i, i + 1)));
  lines.push(...reader.finish());
  return { progress: reader.progress, lines };
}

const jsonl = (...events: unknown[]) => events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n') + '\n';

// Everything a terminal or an output channel could act on: ESC, the other C0 controls but \t and \n, DEL, C1.
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

describe('AgentStreamReader on recorded Claude Code streams', () => {
  test('a run that wrote and committed: steps, turns, cost, tokens, success and its transcript', () => {
    const { progress, lines } = readAgentStream(fixture('claude-code.jsonl'), { now: () => 1000 });
    assert.deepEqual(lines, [
      'I will write AGENT_WAS_HERE.md.',
      '▸ Write AGENT_WAS_HERE.md',
      '  File created successfully at: /tmp/h-model-run/claude/repo/AGENT_WAS_HERE.md (file state is current in your context — no need to Read it back)',
      'Now I will commit it.',
      '▸ Bash: git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"',
      '  (Bash completed with no output)',
      'Done: committed AGENT_WAS_HERE.md.',
      '✓ done in 3 turns, $0.0030: Done: committed AGENT_WAS_HERE.md.',
    ]);
    assert.equal(progress.format, 'claude-stream-json');
    assert.equal(progress.turns, 3);
    assert.equal(progress.costUsd, 0.003);
    assert.deepEqual(progress.tokens, { input: 300, output: 60, cacheRead: 0 });
    assert.deepEqual(progress.result, { verdict: 'success', message: 'Done: committed AGENT_WAS_HERE.md.' });
    assert.equal(progress.sessionId, '25558cd6-7dd5-4a30-bbeb-dec25195de82');
    assert.equal(progress.model, 'claude-opus-4-8');
    assert.equal(progress.events, 9);
    assert.equal(progress.lastEventAt, 1000);
    assert.equal(progressSummary(progress), '✓ done · 3 turns · $0.0030');
  });

  test('the steps follow the tool calls, paths relative to the session\'s working directory', () => {
    const reader = new AgentStreamReader();
    const steps: (string | undefined)[] = [];
    for (const line of fixture('claude-code.jsonl').toString().split('\n')) {
      reader.push(`${line}\n`);
      const step = reader.progress.step?.summary;
      if (step !== steps[steps.length - 1]) steps.push(step);
    }
    assert.deepEqual(steps, ['editing AGENT_WAS_HERE.md', 'running git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"']);
    assert.deepEqual(reader.progress.step, { tool: 'Bash', target: 'git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"', summary: 'running git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"' });
  });

  test('a run whose every tool call was refused is denied though Claude calls it a success and exits 0', () => {
    const { progress, lines } = readAgentStream(fixture('claude-code-denied.jsonl'));
    assert.equal(progress.result?.verdict, 'denied');
    assert.equal(progress.result?.denials, 2);
    assert.equal(progress.result?.detail, 'denied: Write, Bash');
    assert.equal(progress.result?.message, 'Not done: 2 tool call(s) were refused or failed.');
    assert.equal(lines[lines.length - 1], '⚠ 2 tool calls were denied (Write, Bash)');
    assert.equal(lines[2], '  ✗ Claude requested permissions to write to /tmp/h-model-run/claude-denied/repo/AGENT_WAS_HERE.md, but you haven\'t granted it yet.');
    assert.equal(progressSummary(progress), '⚠ 2 tool calls denied · 3 turns · $0.0030');
  });

  test('byte by byte, the recorded streams read exactly as in one piece', () => {
    for (const name of ['claude-code.jsonl', 'claude-code-denied.jsonl', 'codex.jsonl', 'codex-error.jsonl', 'opencode.jsonl']) {
      const whole = readAgentStream(fixture(name), { now: () => 7 });
      assert.deepEqual(byteByByte(fixture(name), { now: () => 7 }), whole, name);
    }
  });
});

describe('AgentStreamReader on recorded Codex streams', () => {
  test('a run that wrote and committed: file change and command as one line each, success on turn.completed', () => {
    const { progress, lines } = readAgentStream(fixture('codex.jsonl'), { workdir: '/tmp/h-model-run/codex/repo' });
    assert.deepEqual(lines, [
      '▸ Write AGENT_WAS_HERE.md',
      '▸ Shell: git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"',
      'Done: committed AGENT_WAS_HERE.md.',
      '✓ done in 1 turn: Done: committed AGENT_WAS_HERE.md.',
    ]);
    assert.equal(progress.format, 'codex-json');
    assert.equal(progress.sessionId, '01a24d55-6cea-71f2-ac90-6c2e9381c401');
    assert.deepEqual(progress.tokens, { input: 300, output: 60 });
    assert.deepEqual(progress.result, { verdict: 'success', message: 'Done: committed AGENT_WAS_HERE.md.' });
    assert.equal(progress.costUsd, undefined);
  });

  test('a failed turn is an error; the error event before it is a notice', () => {
    const { progress, lines } = readAgentStream(fixture('codex-error.jsonl'));
    assert.deepEqual(lines, [
      '⚠ We’re currently experiencing high demand, which may cause temporary errors.',
      '✗ error: We’re currently experiencing high demand, which may cause temporary errors.',
    ]);
    assert.deepEqual(progress.result, { verdict: 'error', detail: 'We’re currently experiencing high demand, which may cause temporary errors.' });
    assert.equal(progress.turns, 1);
  });

  test('an error Codex recovers from is no verdict; one it ends on is', () => {
    const retried = readAgentStream(jsonl({ type: 'turn.started' }, { type: 'error', message: 'Reconnecting... 1/5' }, { type: 'turn.completed', usage: {} }));
    assert.deepEqual(retried.lines, ['⚠ Reconnecting... 1/5', '✓ done in 1 turn']);
    assert.equal(retried.progress.result?.verdict, 'success');
    const ended = readAgentStream(jsonl({ type: 'turn.started' }, { type: 'error', message: 'stream disconnected' }));
    assert.deepEqual(ended.lines, ['⚠ stream disconnected', '✗ error: stream disconnected']);
    assert.deepEqual(ended.progress.result, { verdict: 'error', detail: 'stream disconnected' });
  });

  test('a failing command shows its exit code and folded output; a declined one counts as denied', () => {
    const output = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n');
    const { progress, lines } = readAgentStream(jsonl(
      { type: 'turn.started' },
      { type: 'item.started', item: { id: 'item_0', type: 'command_execution', command: ['bash', '-lc', 'npm test'], status: 'in_progress' } },
      { type: 'item.completed', item: { id: 'item_0', type: 'command_execution', command: ['bash', '-lc', 'npm test'], aggregated_output: output, exit_code: 1, status: 'failed' } },
      { type: 'item.completed', item: { id: 'item_1', type: 'command_execution', command: 'rm -rf /', status: 'declined' } },
      { type: 'turn.completed', usage: { input_tokens: 5, output_tokens: 2 } },
    ));
    assert.deepEqual(lines, [
      '▸ Shell: bash -lc npm test',
      '  ✗ exit code 1',
      '  line 1',
      '  line 2',
      '  line 3',
      '  … 7 more lines',
      '▸ Shell: rm -rf /',
      '  ✗ declined',
      '⚠ 1 tool call was denied',
    ]);
    assert.deepEqual(progress.result, { verdict: 'denied', denials: 1 });
  });
});

describe('AgentStreamReader on a recorded OpenCode stream', () => {
  test('told from Gemini by its parts: steps as turns, summed cost and tokens, success on the step that stops', () => {
    const { progress, lines } = readAgentStream(fixture('opencode.jsonl'), { workdir: '/tmp/h-model-run/oc/repo' });
    assert.deepEqual(lines, [
      'I will write AGENT_WAS_HERE.md.',
      '▸ write AGENT_WAS_HERE.md',
      '  Wrote file successfully.',
      'Now I will commit it.',
      '▸ bash: git add -A && git commit -q -m "agent: add AGENT_WAS_HERE.md"',
      '  (no output)',
      'Done: committed AGENT_WAS_HERE.md.',
      '✓ done in 3 turns, $0.0018: Done: committed AGENT_WAS_HERE.md.',
    ]);
    assert.equal(progress.format, 'opencode-json');
    assert.equal(progress.turns, 3);
    assert.ok(Math.abs((progress.costUsd ?? 0) - 0.0018) < 1e-12);
    assert.deepEqual(progress.tokens, { input: 300, output: 60, cacheRead: 0 });
    assert.deepEqual(progress.result, { verdict: 'success', message: 'Done: committed AGENT_WAS_HERE.md.' });
    assert.equal(progress.sessionId, 'ses_db2a79996ffezks4LY4rpv2DbY');
  });

  test('an error event and a step cut off are errors', () => {
    assert.deepEqual(readAgentStream(jsonl({ type: 'error', sessionID: 's', error: { name: 'APIError', data: { message: 'rate limited' } } })).progress.result, { verdict: 'error', detail: 'rate limited' });
    assert.deepEqual(readAgentStream(jsonl({ type: 'step_finish', sessionID: 's', part: { reason: 'length' } })).lines, ['✗ error: the model stopped: length']);
  });
});

describe('AgentStreamReader on Gemini CLI streams', () => {
  test('tool use, folded results, joined message deltas, and the result\'s stats', () => {
    const { progress, lines } = readAgentStream(jsonl(
      { type: 'init', timestamp: 't', session_id: 'g-1', model: 'gemini-2.5-pro' },
      { type: 'message', role: 'user', content: 'add a file' },
      { type: 'tool_use', tool_name: 'write_file', tool_id: 'w1', parameters: { file_path: '/repo/src/app.ts', content: 'x' } },
      { type: 'tool_result', tool_id: 'w1', status: 'success', output: '' },
      { type: 'tool_use', tool_name: 'run_shell_command', tool_id: 's1', parameters: { command: 'npm test' } },
      { type: 'tool_result', tool_id: 's1', status: 'error', error: { type: 'x', message: 'exit 1' } },
      { type: 'message', role: 'assistant', content: 'All ', delta: true },
      { type: 'message', role: 'assistant', content: 'done.', delta: true },
      { type: 'result', status: 'success', stats: { total_tokens: 30, input_tokens: 20, output_tokens: 10, cached: 4, tool_calls: 2 } },
    ), { workdir: '/repo' });
    assert.deepEqual(lines, ['▸ write_file src/app.ts', '▸ run_shell_command: npm test', '  ✗ exit 1', 'All done.', '✓ done: All done.']);
    assert.equal(progress.format, 'gemini-stream-json');
    assert.equal(progress.model, 'gemini-2.5-pro');
    assert.equal(progress.sessionId, 'g-1');
    assert.deepEqual(progress.tokens, { input: 20, output: 10, cacheRead: 4 });
    assert.deepEqual(progress.result, { verdict: 'success', message: 'All done.' });
    assert.deepEqual(progress.step, { tool: 'run_shell_command', target: 'npm test', summary: 'running npm test' });
  });

  test('an error result, and the step for reading and searching', () => {
    const reader = new AgentStreamReader({ format: 'gemini-stream-json' });
    reader.push(jsonl({ type: 'tool_use', tool_name: 'read_file', tool_id: 'r', parameters: { absolute_path: 'README.md' } }));
    assert.equal(reader.progress.step?.summary, 'reading README.md');
    reader.push(jsonl({ type: 'tool_use', tool_name: 'search_file_content', tool_id: 'g', parameters: { pattern: 'foo' } }));
    assert.equal(reader.progress.step?.summary, 'searching for foo');
    assert.deepEqual(reader.push(jsonl({ type: 'result', status: 'error', error: { type: 'FatalTurnLimitedError', message: 'turn limit reached' } })), ['✗ error: turn limit reached']);
    assert.equal(reader.progress.result?.verdict, 'error');
  });
});

describe('verdicts', () => {
  test('Claude\'s error subtypes are errors whatever the exit code', () => {
    const { progress, lines } = readAgentStream(jsonl({ type: 'result', subtype: 'error_max_turns', is_error: true, num_turns: 10, total_cost_usd: 0.5 }));
    assert.deepEqual(progress.result, { verdict: 'error', detail: 'stopped at the turn limit' });
    assert.deepEqual(lines, ['✗ error: stopped at the turn limit']);
    assert.equal(progressSummary(progress), '✗ stopped at the turn limit · 10 turns · $0.50');
  });

  test('a subagent\'s messages are not the session\'s turns', () => {
    const { progress } = readAgentStream(jsonl(
      { type: 'assistant', message: { id: 'm1', content: [{ type: 'tool_use', id: 't', name: 'Task', input: { description: 'look around' } }] }, parent_tool_use_id: null },
      { type: 'assistant', message: { id: 's1', content: [{ type: 'tool_use', id: 'u', name: 'Grep', input: { pattern: 'foo', path: '/r' } }] }, parent_tool_use_id: 't' },
      { type: 'assistant', message: { id: 's2', content: [{ type: 'text', text: 'found' }] }, parent_tool_use_id: 't' },
    ));
    assert.equal(progress.turns, 1);
    assert.deepEqual(progress.step, { tool: 'Grep', target: 'foo', summary: 'searching for foo' });
  });

  test('a success flagged is_error (an API error) is an error with its text', () => {
    const { progress } = readAgentStream(jsonl({ type: 'result', subtype: 'success', is_error: true, result: 'API Error: 401' }));
    assert.equal(progress.result?.verdict, 'error');
    assert.equal(progress.result?.detail, 'API Error: 401');
  });

  test('denials beside a file that was written are a success that still reports them', () => {
    const { progress, lines } = readAgentStream(jsonl(
      { type: 'assistant', message: { id: 'm1', content: [{ type: 'tool_use', id: 't1', name: 'Write', input: { file_path: 'a.ts' } }, { type: 'tool_use', id: 't2', name: 'Bash', input: { command: 'curl x' } }] } },
      { type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }, { type: 'tool_result', tool_use_id: 't2', content: 'denied', is_error: true }] } },
      { type: 'result', subtype: 'success', is_error: false, num_turns: 1, result: 'half done', permission_denials: [{ tool_name: 'Bash' }] },
    ));
    assert.equal(progress.result?.verdict, 'success');
    assert.equal(progress.result?.denials, 1);
    assert.deepEqual(lines.slice(-2), ['✓ done in 1 turn: half done', '⚠ 1 tool call was denied (Bash)']);
  });

  test('a stream that ends without a result is incomplete, with the last message and the unfinished line read', () => {
    const reader = new AgentStreamReader({ now: () => 50 });
    assert.deepEqual(reader.push('{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"working on it"}]}}\n{"type":"assistant","message":{"id":"n","content":[{"type":"tool_use","id":"t","name":"Edit","input":{"file_path":"x.ts"}}]}}'), ['working on it']);
    assert.deepEqual(reader.finish(), ['▸ Edit x.ts', '⚠ ended without a result']);
    assert.deepEqual(reader.progress.result, { verdict: 'incomplete', detail: 'the agent stopped without a result', message: 'working on it' });
    assert.equal(reader.progress.turns, 2);
    assert.deepEqual(reader.finish(), [], 'finish twice says it once');
    assert.deepEqual(reader.push('more\n'), [], 'nothing is read after the end');
  });
});

describe('hostile streams', () => {
  test('a line over the bound is left out, noted once, without being buffered whole', () => {
    const limits = { lineBytes: 1000 };
    const reader = new AgentStreamReader({ limits });
    const out: string[] = [];
    const head = '{"type":"assistant","message":{"content":[{"type":"text","text":"';
    out.push(...reader.push(head));
    for (let i = 0; i < 100; i++) out.push(...reader.push('x'.repeat(100)));
    assert.ok((reader as unknown as { pendingBytes: number }).pendingBytes <= limits.lineBytes);
    out.push(...reader.push('"}]}}\nafter\n'));
    assert.deepEqual(out, [`[a line of ${head.length + 100 * 100 + 5} bytes was left out]`, 'after']);
    assert.equal(reader.progress.events, 0);
  });

  test('a line trickled in one-byte chunks is kept in one bounded buffer and read whole', () => {
    const limits = { lineBytes: 64 * 1024 };
    const reader = new AgentStreamReader({ limits });
    const line = Buffer.from(jsonl({ type: 'item.completed', item: { type: 'agent_message', text: 'z'.repeat(60_000) } }));
    const out: string[] = [];
    for (let i = 0; i < line.length; i++) {
      out.push(...reader.push(line.subarray(i, i + 1)));
      assert.ok((reader as unknown as { pending: Buffer }).pending.length <= limits.lineBytes);
    }
    assert.equal(out.length, 1);
    assert.equal(out[0].length, agentStreamLimits.messageChars);
  });

  test('the default bound is 1 MiB: a line just under it is read, one over it is not', () => {
    const under = jsonl({ type: 'assistant', message: { content: [{ type: 'text', text: 'a'.repeat(agentStreamLimits.lineBytes - 100) }] } });
    const { lines, progress } = readAgentStream(under);
    assert.equal(progress.events, 1);
    assert.equal(lines[0].length, agentStreamLimits.messageChars, 'the message itself is truncated');
    assert.ok(lines[0].endsWith('…'));
    const over = `${'b'.repeat(agentStreamLimits.lineBytes + 1)}\nok\n`;
    assert.deepEqual(readAgentStream(over).lines.slice(0, 2), [`[a line of ${agentStreamLimits.lineBytes + 1} bytes was left out]`, 'ok']);
  });

  test('terminal control sequences and control characters never reach the transcript or the progress', () => {
    const evil = 'ok\x1b]52;c;ZWNobyBldmls\x07\x1b[2J\x1b[31mred\x1b[0m\x9b2J\x9d0;title\x9c\x07\x08\x00\u202eevil\r\nnext\x1bPdcs\x1b\\\x1b';
    const { progress, lines } = readAgentStream(jsonl(
      { type: 'system', subtype: 'init', session_id: evil, model: evil, cwd: '/r' },
      { type: 'assistant', message: { id: 'm', content: [{ type: 'text', text: evil }, { type: 'tool_use', id: 't', name: `Bash${evil}`, input: { command: evil } }] } },
      { type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: evil }], is_error: true }] } },
      { type: 'result', subtype: evil, is_error: true, result: evil, errors: [evil] },
      `plain ${evil}`,
    ));
    for (const line of lines) assert.doesNotMatch(line, ANY_CONTROL, JSON.stringify(line));
    assert.doesNotMatch(JSON.stringify(progress).replace(/\\n/g, ''), /\\u00|\\u001b|\\u009|\\b|\\r|\\f/);
    assert.doesNotMatch(progressSummary(progress), ANY_CONTROL);
    assert.ok(lines.includes('okredevil'), JSON.stringify(lines));
    assert.equal(stripControls('a\x1b[2Jb\x1b]52;c;Zm9v\x07c\td\ne'), 'abc\td\ne');
  });

  test('malformed JSON, wrong types and non-object events pass or are ignored, never throw', () => {
    const stream = [
      '{"type":"assistant"', '{', 'null', '42', '"str"', '[1,2]', '{"type":42}', '{"type":["assistant"]}',
      '{"type":"assistant","message":[]}', '{"type":"assistant","message":{"content":{"0":{"type":"text","text":"x"}}}}',
      '{"type":"assistant","message":{"content":[null,7,"s",{"type":"tool_use","name":7,"input":"x"},{"type":"tool_use","name":"Write","input":{"file_path":42}}]}}',
      '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":{},"content":{"a":1}}]}}',
      '{"type":"result","subtype":1,"num_turns":"3","total_cost_usd":-1,"usage":[1],"permission_denials":{"length":9}}',
      '['.repeat(100_000),
    ].join('\n');
    const { progress, lines } = readAgentStream(stream);
    assert.deepEqual(lines.slice(0, 6), ['{"type":"assistant"', '{', 'null', '42', '"str"', '[1,2]']);
    assert.ok(lines.includes('▸ tool'));
    assert.ok(lines.includes('▸ Write'));
    assert.equal(progress.result?.verdict, 'error');
    assert.equal(progress.costUsd, undefined);
    assert.equal(progress.tokens, undefined);
    assert.equal(progress.result?.denials, undefined);
  });

  test('__proto__ and constructor keys are data, never the prototype', () => {
    const stream = [
      '{"type":"system","subtype":"init","__proto__":{"session_id":"polluted","polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      '{"type":"assistant","message":{"__proto__":{"content":[{"type":"text","text":"from proto"}]}}}',
      '{"type":"result","subtype":"constructor","is_error":true}',
      '{"type":"result","subtype":"__proto__","is_error":true,"__proto__":{"num_turns":99}}',
    ].join('\n');
    const { progress, lines } = readAgentStream(stream);
    assert.equal(progress.sessionId, undefined);
    assert.ok(!lines.includes('from proto'));
    assert.equal(progress.turns, 1, 'one assistant event, no num_turns of its own');
    assert.equal(progress.result?.detail, '__proto__');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  });

  test('what is tracked by the stream\'s ids stays bounded, and blocks per event are capped', () => {
    const reader = new AgentStreamReader();
    for (let i = 0; i < 5000; i++) {
      reader.push(jsonl({ type: 'assistant', message: { id: `m${i}`, content: [{ type: 'tool_use', id: `t${i}`, name: 'Read', input: { file_path: `f${i}` } }] } }));
      reader.push(jsonl({ type: 'item.started', item: { id: `i${i}`, type: 'command_execution', command: 'x' } }));
    }
    const internals = reader as unknown as { calls: Map<string, unknown>; shownCalls: Set<string> };
    assert.ok(internals.calls.size <= agentStreamLimits.trackedCalls);
    assert.ok(internals.shownCalls.size <= agentStreamLimits.trackedCalls);
    const blocks = Array.from({ length: 1000 }, (_, i) => ({ type: 'tool_use', id: `b${i}`, name: 'Read', input: { file_path: `f${i}` } }));
    const { lines } = readAgentStream(jsonl({ type: 'assistant', message: { id: 'm', content: blocks } }));
    assert.equal(lines.filter((l) => l.startsWith('▸ ')).length, agentStreamLimits.blocksPerEvent);
    assert.equal(lines[0], `[${1000 - agentStreamLimits.blocksPerEvent} more content blocks were left out]`);
  });

  test('UTF-8 split across chunks and CRLF line ends read whole', () => {
    const bytes = Buffer.from('{"type":"thread.started","thread_id":"é"}\r\n{"type":"item.completed","item":{"type":"agent_message","text":"héllo 🌍"}}\r\nstderr ✓\r\n');
    const { progress, lines } = byteByByte(bytes);
    assert.equal(progress.sessionId, 'é');
    assert.deepEqual(lines, ['héllo 🌍', 'stderr ✓', '⚠ ended without a result']);
  });

  test('JSON from no known agent before the first event is shown as text; after it, unknown events are skipped', () => {
    const { progress, lines } = readAgentStream(jsonl({ level: 'info', msg: 'wrapper' }, { type: 'turn.started' }, { type: 'something.new', x: 1 }, 'to stderr'));
    assert.deepEqual(lines, ['{"level":"info","msg":"wrapper"}', 'to stderr', '⚠ ended without a result']);
    assert.equal(progress.format, 'codex-json');
    assert.equal(progress.events, 2);
  });

  test('the text format never parses JSON; tool targets and messages are truncated', () => {
    assert.deepEqual(readAgentStream('{"type":"result","subtype":"success"}\n', { format: 'text' }).lines, ['{"type":"result","subtype":"success"}', '⚠ ended without a result']);
    const { progress, lines } = readAgentStream(jsonl({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: { command: `echo ${'y'.repeat(5000)}\nrm -rf /` } }] } }));
    assert.equal(progress.step?.target?.length, agentStreamLimits.targetChars);
    assert.deepEqual(lines.slice(1), ['⚠ ended without a result'], 'a tool call is one line, its newlines folded');
    assert.ok(lines[0].startsWith('▸ Bash: echo yyy'));
  });
});

describe('progressSummary and isStuck', () => {
  const running: AgentProgress = { format: 'claude-stream-json', events: 5, turns: 3, costUsd: 0.0234, step: { tool: 'Edit', target: 'src/app.ts', summary: 'editing src/app.ts' }, lastEventAt: 1000 };

  test('a running agent shows its step, turn and cost; one not yet heard from is starting', () => {
    assert.equal(progressSummary(running), 'editing src/app.ts · turn 3 · $0.02');
    assert.equal(progressSummary({ format: 'text', events: 0 }), 'starting');
    assert.equal(progressSummary({ format: 'codex-json', events: 2 }), 'thinking');
    assert.equal(progressSummary({ format: 'codex-json', events: 2, result: { verdict: 'incomplete' } }), '⚠ ended without a result');
  });

  test('stuck after the given silence, never with a result, and from the start when nothing came', () => {
    assert.equal(isStuck(running, 1000 + 59_999, 60_000), false);
    assert.equal(isStuck(running, 1000 + 60_000, 60_000), true);
    assert.equal(isStuck({ ...running, result: { verdict: 'success' } }, 1e9, 60_000), false);
    assert.equal(isStuck({ format: 'text', events: 0 }, 1e9, 60_000), false);
    assert.equal(isStuck({ format: 'text', events: 0 }, 70_000, 60_000, 5_000), true);
  });

  test('lastEventAt follows the injected clock on every line', () => {
    let clock = 10;
    const reader = new AgentStreamReader({ now: () => clock });
    reader.push('{"type":"turn.st');
    assert.equal(reader.progress.lastEventAt, undefined, 'a partial line is not yet an event');
    clock = 20;
    reader.push('arted"}\n');
    assert.equal(reader.progress.lastEventAt, 20);
    clock = 30;
    reader.push('plain stderr\n');
    assert.equal(reader.progress.lastEventAt, 30);
  });
});
