import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { Engine } from '../../src/core/engine/engine';
import { LABEL } from '../../src/core/engine/labels';
import type { Sandboxes } from '../../src/core/sandboxes';
import { SandboxWatcher } from '../../src/core/watcher';
import type { SandboxChange } from '../../src/core/watcher';

/** A workspace whose engine hands out one event stream, and that records the egress paths it settles. */
function fakeWorkspace() {
  const stream = new PassThrough();
  const asked: string[][] = [];
  const settled: string[] = [];
  const engine = {
    endpoint: 'unix:///fake.sock',
    containerEvents: async (labels: string[]) => {
      asked.push(labels);
      return stream;
    },
    translate: (_what: string, error: unknown) => error as Error,
  };
  const sandboxes = {
    engine: engine as unknown as Engine,
    repo: { root: '/work/repo' },
    settleEgress: async (name: string) => {
      settled.push(name);
      if (name === 'broken') throw new Error('the engine said no');
    },
  } as unknown as Sandboxes;
  const event = (action: string, name?: string) =>
    stream.write(`${JSON.stringify({ Type: 'container', Action: action, Actor: { ID: 'c1', Attributes: name ? { [LABEL.name]: name } : {} } })}\n`);
  return { sandboxes, asked, settled, event, stream };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SandboxWatcher', () => {
  test("follows only this workspace's sandboxes, passes each event on, and settles the egress path of an agent that died", async () => {
    const { sandboxes, asked, settled, event } = fakeWorkspace();
    const changes: SandboxChange[] = [];
    const connections: boolean[] = [];
    const egressErrors: string[] = [];
    const watcher = new SandboxWatcher(sandboxes, {
      change: (change) => changes.push(change),
      connection: (connected) => connections.push(connected),
      egressError: (name, error) => egressErrors.push(`${name}: ${error.message}`),
    });
    await tick();
    assert.deepEqual(asked, [[`${LABEL.workspace}=/work/repo`]]);
    assert.deepEqual(connections, [true]);
    event('start', 'one');
    event('exec_start: sh -c true', 'one');
    event('die', 'one');
    event('died', 'broken');
    await tick();
    assert.deepEqual(
      changes.map((c) => [c.name, c.action]),
      [['one', 'start'], ['one', 'exec_start'], ['one', 'die'], ['broken', 'die']],
    );
    await watcher.close();
    assert.deepEqual(settled, ['one', 'broken']);
    assert.deepEqual(egressErrors, ['broken: the engine said no']);
  });

  test('says nothing once disposed', async () => {
    const { sandboxes, event } = fakeWorkspace();
    const changes: SandboxChange[] = [];
    const watcher = new SandboxWatcher(sandboxes, { change: (change) => changes.push(change) });
    await tick();
    watcher.dispose();
    event('start', 'one');
    await tick();
    assert.deepEqual(changes, []);
  });
});
