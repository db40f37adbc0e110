/** Part 3: N `up`s started at once against N in a row (10 by default: --parallel N). */
import type { Workspace } from './common';
import { STEP_TIMEOUT_MS, WORKSPACE_LABEL, assertClean, branches, check, cli, containerIds, expectRunning, fmt, note, ratio, removeSandbox, round, table, timed } from './common';

export interface ParallelResults {
  count: number;
  sequentialMs: number;
  concurrentMs: number;
  speedup: number;
}

async function expectAllRunning(ws: Workspace, names: string[], what: string): Promise<void> {
  for (const name of names) await expectRunning(ws.sandboxes.containerName(name), `${what}: ${name}`);
  const count = (await containerIds([`label=${WORKSPACE_LABEL}=${ws.root}`, 'status=running'])).length;
  check(count === names.length, `${what}: ${count} containers run, not ${names.length}`);
  const sandboxBranches = await branches(ws, 'sandbox/');
  check(sandboxBranches.length === names.length, `${what}: ${sandboxBranches.length} sandbox branches, not ${names.length}`);
}

async function removeAll(ws: Workspace, names: string[]): Promise<void> {
  for (const name of names) await removeSandbox(ws, name);
}

export async function benchParallel(ws: Workspace, count: number, rawPrefix: string): Promise<ParallelResults> {
  const sequentialNames = Array.from({ length: count }, (_, i) => `seq-${i}`);
  const concurrentNames = Array.from({ length: count }, (_, i) => `par-${i}`);

  note(`${count} ups in a row`);
  const sequential = await timed(async () => {
    for (const name of sequentialNames) await cli(ws, ['up', name, '--agent', 'bench']);
  });
  await expectAllRunning(ws, sequentialNames, `${count} ups in a row`);
  await removeAll(ws, sequentialNames);
  // The second half starts from nothing, as the first did (the runner checks again after the part).
  await assertClean(ws, rawPrefix, `${count} ups in a row`);

  note(`${count} ups at once`);
  const concurrent = await timed(async () => {
    const results = await Promise.allSettled(concurrentNames.map((name) => cli(ws, ['up', name, '--agent', 'bench'], 2 * STEP_TIMEOUT_MS)));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${concurrentNames[i]}: ${(r.reason as Error).message}`] : []));
    check(failures.length === 0, `${failures.length} of ${count} concurrent ups failed: ${failures.join(' | ')}`);
  });
  await expectAllRunning(ws, concurrentNames, `${count} ups at once`);
  await removeAll(ws, concurrentNames);

  return { count, sequentialMs: round(sequential.ms), concurrentMs: round(concurrent.ms), speedup: ratio(sequential.ms, concurrent.ms) };
}

export function reportParallel(p: ParallelResults): string {
  return table(
    [
      [`3. ${p.count} sandboxes (spawned CLI ups)`, 'wall ms', 'per sandbox'],
      [`${p.count} ups in a row`, fmt(p.sequentialMs), fmt(p.sequentialMs / p.count)],
      [`${p.count} ups at once (Promise.all)`, fmt(p.concurrentMs), fmt(p.concurrentMs / p.count)],
      ['speed-up', `${p.speedup.toFixed(2)}x`, ''],
    ],
    (i) => i > 0,
  );
}
