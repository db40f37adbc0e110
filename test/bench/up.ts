/**
 * Part 1: `agent-sandbox up` with a cached image, spawned as a user would run it and called in process
 * through Sandboxes.up, against the raw floor: `git worktree add` + `docker run -d` with the same image,
 * mounts, limits and command.
 */
import * as path from 'node:path';
import { Sandboxes } from '../../src/core/sandboxes';
import type { Inspected, Stats, Workspace } from './common';
import {
  bounded,
  check,
  cli,
  expectNoContainer,
  expectRunning,
  note,
  ratio,
  ratioText,
  removeRawFloor,
  removeSandbox,
  startRawFloor,
  stats,
  statsRow,
  table,
  timed,
} from './common';

/** What `up` should cost at most, as a multiple of the raw floor. */
const AIM_RATIO = 1.2;

export interface UpResults {
  runs: number;
  cli: Stats;
  inProcess: Stats;
  raw: Stats;
  ratioCli: number;
  ratioInProcess: number;
  aim: number;
  cliWithinAim: boolean;
  inProcessWithinAim: boolean;
  /** The up-to-date check of the image that every up does (hashing the build context), in process. */
  imageCheck: Stats;
}

/** The floor must be the same container as the core makes, or the ratio says nothing. */
function assertSameContainer(core: Inspected, raw: Inspected): void {
  const pick = (c: Inspected) => ({
    image: c.Image,
    user: c.Config.User,
    cmd: (c.Config.Cmd ?? []).join(' '),
    workdir: c.Config.WorkingDir,
    memory: c.HostConfig.Memory,
    memorySwap: c.HostConfig.MemorySwap,
    nanoCpus: c.HostConfig.NanoCpus,
    pids: c.HostConfig.PidsLimit,
    network: c.HostConfig.NetworkMode,
    capDrop: [...(c.HostConfig.CapDrop ?? [])].sort().join(','),
    securityOpt: [...(c.HostConfig.SecurityOpt ?? [])].sort().join(','),
    binds: (c.HostConfig.Binds ?? []).map((b) => b.split(':').slice(1).join(':')).sort().join(' '),
    tmpfs: Object.keys(c.HostConfig.Tmpfs ?? {}).sort().join(','),
    init: Boolean(c.HostConfig.Init),
  });
  const a = pick(core);
  const b = pick(raw);
  const differences = (Object.keys(a) as Array<keyof typeof a>).filter((k) => a[k] !== b[k]).map((k) => `${k}: up ${JSON.stringify(a[k])} vs raw ${JSON.stringify(b[k])}`);
  check(differences.length === 0, `the raw floor's container differs from up's: ${differences.join('; ')}`);
}

export async function benchUp(ws: Workspace, image: string, runs: number, rawPrefix: string): Promise<UpResults> {
  const cliSamples: number[] = [];
  const inProcessSamples: number[] = [];
  const rawSamples: number[] = [];
  let compared = false;
  // Iteration 0 warms up each of the three (page cache, JIT, the engine's caches) and is not counted.
  for (let i = 0; i <= runs; i++) {
    const counted = i > 0;
    note(`up vs raw: ${counted ? `run ${i}/${runs}` : 'warm-up'}`);

    // agent-sandbox up, spawned as a user would.
    const cliName = `b${i}`;
    const cliUp = await timed(() => cli(ws, ['up', cliName, '--agent', 'bench']));
    const coreContainer = await expectRunning(ws.sandboxes.containerName(cliName), `agent-sandbox up ${cliName}`);

    // The raw floor: the same worktree, container, mounts and limits, by hand.
    const floor = { worktree: path.join(ws.tmp, 'raw', `raw-${i}`), branch: `raw/${i}`, container: `${rawPrefix}${i}` };
    const rawAdmin = path.join(ws.sandboxes.repo.commonDir, 'worktrees', `raw-${i}`);
    // The agent's user as the core chose it (1000:1000 when the host side is root and owns the repository).
    const user = coreContainer.Config.User;
    const [uid, gid] = user.split(':');
    // An init process as PID 1 if the core asks for one: the floor starts the same processes.
    const init = coreContainer.HostConfig.Init ? ['--init'] : [];
    const rawUp = await timed(() =>
      startRawFloor(ws, floor, [
        ...init,
        '--memory', '256m', '--memory-swap', '256m', '--cpus', '1', '--pids-limit', '256', '--network', 'none',
        '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', user,
        '--workdir', '/workspace', '--env', 'HOME=/home/agent',
        // The core's four mounts: the worktree, its .git file, a git dir and the repository's objects.
        '--volume', `${floor.worktree}:/workspace:rw`,
        '--volume', `${path.join(floor.worktree, '.git')}:/workspace/.git:ro`,
        '--volume', `${rawAdmin}:/run/agent-sandbox/git:rw`,
        '--volume', `${ws.objects}:/run/agent-sandbox/host-objects:ro`,
        '--tmpfs', `/home/agent:rw,exec,uid=${uid},gid=${gid},mode=0700`,
        image, 'sh', '-c', 'sleep 600',
      ]),
    );
    const rawInfo = await expectRunning(floor.container, 'docker run');
    if (!compared) {
      assertSameContainer(coreContainer, rawInfo);
      compared = true;
    }

    // Sandboxes.up in this process (open included: it is what a caller does first).
    const inProcessName = `p${i}`;
    const inProcessUp = await timed(() =>
      bounded(`Sandboxes.up(${inProcessName})`, (async () => (await Sandboxes.open(ws.root)).up({ name: inProcessName, agent: 'bench' }))()),
    );
    check(inProcessUp.value.state === 'running', `Sandboxes.up(${inProcessName}) returned state ${inProcessUp.value.state}`);
    await expectRunning(ws.sandboxes.containerName(inProcessName), `Sandboxes.up(${inProcessName})`);

    if (counted) {
      cliSamples.push(cliUp.ms);
      rawSamples.push(rawUp.ms);
      inProcessSamples.push(inProcessUp.ms);
    }

    // Clean up, outside the timed regions.
    await cli(ws, ['rm', '--force', cliName]);
    await expectNoContainer(ws.sandboxes.containerName(cliName));
    await removeSandbox(ws, inProcessName);
    await expectNoContainer(ws.sandboxes.containerName(inProcessName));
    await removeRawFloor(ws, floor);
  }

  // What every up pays before it touches git or the engine: hashing the build context to know the image is current.
  const imageChecks: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await timed(() => bounded('Sandboxes.build', ws.sandboxes.build('bench', () => undefined)));
    check(!r.value.changed && r.value.ref === image, `the image check rebuilt or changed the image (${r.value.ref})`);
    imageChecks.push(r.ms);
  }

  const cliStats = stats(cliSamples);
  const inProcessStats = stats(inProcessSamples);
  const rawStats = stats(rawSamples);
  const ratioCli = ratio(cliStats.medianMs, rawStats.medianMs);
  const ratioInProcess = ratio(inProcessStats.medianMs, rawStats.medianMs);
  return {
    runs,
    cli: cliStats,
    inProcess: inProcessStats,
    raw: rawStats,
    ratioCli,
    ratioInProcess,
    aim: AIM_RATIO,
    cliWithinAim: ratioCli <= AIM_RATIO,
    inProcessWithinAim: ratioInProcess <= AIM_RATIO,
    imageCheck: stats(imageChecks),
  };
}

export function reportUp(up: UpResults): string {
  const aim = (ok: boolean) => (ok ? 'met' : 'NOT met');
  return [
    table(
      [
        ['1. up, cached image (ms)', 'median', 'p90', 'min', 'max', 'vs raw'],
        statsRow('agent-sandbox up (spawned CLI)', up.cli, ratioText(up.ratioCli)),
        statsRow('Sandboxes.open + up (in process)', up.inProcess, ratioText(up.ratioInProcess)),
        statsRow('raw: git worktree add + docker run -d', up.raw, '1.00x'),
        statsRow('  (inside up: image up-to-date check)', up.imageCheck, ''),
      ],
      (i) => i > 0,
    ),
    `aim: up within ${AIM_RATIO}x of the raw floor (median): CLI ${ratioText(up.ratioCli)} ${aim(up.cliWithinAim)}, in process ${ratioText(up.ratioInProcess)} ${aim(up.inProcessWithinAim)}`,
  ].join('\n');
}
