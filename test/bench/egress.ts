/**
 * Part 5: `up` of a sandbox with an egress allowlist (its proxy and forwarder containers, their volume, the
 * wait until the forwarder listens) against `up` of the same sandbox on plain NAT, and the raw floor on NAT.
 */
import * as path from 'node:path';
import type { Stats, Workspace } from './common';
import { STEP_TIMEOUT_MS, check, cli, expectRunning, median, note, ratio, ratioText, removeRawFloor, startRawFloor, stats, statsRow, table, timed } from './common';

/** The agents of this part, for the workspace's sandbox.toml. */
export const EGRESS_AGENTS = `[agents.nat]
network = "nat"
command = ["sh", "-c", "sleep 600"]

[agents.egress]
network = "nat"
allow = ["registry.npmjs.org"]
command = ["sh", "-c", "sleep 600"]
`;

export interface EgressResults {
  runs: number;
  allowlist: Stats;
  nat: Stats;
  raw: Stats;
  ratioToNat: number;
  ratioToRaw: number;
}

export async function benchEgress(ws: Workspace, image: string, runs: number, rawPrefix: string): Promise<EgressResults> {
  const allowlist: number[] = [];
  const nat: number[] = [];
  const raw: number[] = [];
  // Iteration 0 warms up (and builds the proxy's image) and is not counted.
  for (let i = 0; i <= runs; i++) {
    note(`egress: ${i > 0 ? `run ${i}/${runs}` : 'warm-up'}`);
    const allowed = await timed(() => cli(ws, ['up', `e${i}`, '--agent', 'egress'], 5 * STEP_TIMEOUT_MS));
    const agent = await expectRunning(ws.sandboxes.containerName(`e${i}`), `agent-sandbox up e${i}`);
    const forwarder = await expectRunning(`${ws.sandboxes.containerName(`e${i}`)}-egress-net`, `the forwarder of e${i}`);
    // The engine records the namespace's owner by id.
    check(agent.HostConfig.NetworkMode === `container:${forwarder.Id}`, `e${i} is not in its forwarder's network: ${agent.HostConfig.NetworkMode}`);
    await expectRunning(`${ws.sandboxes.containerName(`e${i}`)}-egress-proxy`, `the proxy of e${i}`);
    await cli(ws, ['rm', '--force', `e${i}`]);
    const plain = await timed(() => cli(ws, ['up', `n${i}`, '--agent', 'nat']));
    await expectRunning(ws.sandboxes.containerName(`n${i}`), `agent-sandbox up n${i}`);
    await cli(ws, ['rm', '--force', `n${i}`]);
    const floor = { worktree: path.join(ws.tmp, 'raw-egress', `raw-${i}`), branch: `raw-nat/${i}`, container: `${rawPrefix}nat-${i}` };
    const rawUp = await timed(() =>
      startRawFloor(ws, floor, ['--init', '--memory', '256m', '--cpus', '1', '--pids-limit', '256', '--network', 'bridge', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '1000:1000', '--volume', `${floor.worktree}:/workspace:rw`, image, 'sh', '-c', 'sleep 600']),
    );
    await expectRunning(floor.container, 'docker run');
    // All of the floor, not only its container: its worktree and branch would be left to the parts after this one.
    await removeRawFloor(ws, floor);
    if (i > 0) {
      allowlist.push(allowed.ms);
      nat.push(plain.ms);
      raw.push(rawUp.ms);
    }
  }
  return { runs, allowlist: stats(allowlist), nat: stats(nat), raw: stats(raw), ratioToNat: ratio(median(allowlist), median(nat)), ratioToRaw: ratio(median(allowlist), median(raw)) };
}

export function reportEgress(e: EgressResults): string {
  return table(
    [
      ['5. up with an egress allowlist (ms)', 'median', 'p90', 'min', 'max', 'vs raw'],
      statsRow('agent-sandbox up, allow = [...]', e.allowlist, ratioText(e.ratioToRaw)),
      statsRow('agent-sandbox up, the same on plain NAT', e.nat, ratioText(ratio(e.nat.medianMs, e.raw.medianMs))),
      statsRow('raw: git worktree add + docker run -d (NAT)', e.raw, '1.00x'),
    ],
    (i) => i > 0,
  ) + `\nthe allowlist costs ${ratioText(e.ratioToNat)} the same up on plain NAT (two more containers, a volume, the wait until the forwarder listens)`;
}
