/**
 * The benchmark (npm run bench, through scripts/bench.sh, which builds dist/cli.js and out/ first): this file
 * runs the parts in order, prints their tables and a JSON summary, and writes the summary to
 * .test-artifacts/bench.json (a partial run to bench-PART.json). The parts, one file each:
 *
 *   1. up.ts: `agent-sandbox up` with a cached image, spawned and in process, against the raw floor.
 *   2. logs.ts: `agent-sandbox logs NAME --follow` on 200,000 lines against `docker logs -f`.
 *   3. parallel.ts: 10 `up`s started at once against 10 in a row.
 *   4. sync.ts: sync back of 5,000 files an agent changed, in every mode, against the plain git commands.
 *   5. egress.ts: `up` with an egress allowlist against the same `up` on plain NAT and the raw floor on NAT.
 *   6. presets.ts: `up` of an agent preset's role with its CLI cached against the same `up` with `allow = []`
 *      and the raw floor on NAT; the first, uncached install from the npm registry once.
 *   7. attach.ts: `agent-sandbox attach` to an interactive agent in a tmux pane, until its screen shows, with a
 *      small log and a 20 MB one, against `docker exec -it` in the same kind of pane; `Sandboxes.attach` too.
 *   8. activation.ts: activation inside a real VS Code, after the others (not in the JSON summary).
 *
 * Every measured operation is checked (the container runs, every line arrived, the sync left the agent's
 * files and the same result as its floor) and a failed check throws: a benchmark that times a failure is
 * worthless. After every part the runner checks that nothing the part made is left (common.ts, assertClean),
 * so a leftover fails the part that left it. Everything the benchmark makes (temp repository, containers,
 * volumes, worktrees, branches) goes at the end, also on failure; the image stays, as a cache (see cleanUp).
 *
 *   [BENCH_ONLY=up,logs,parallel,sync,egress,presets,attach,activation] node out/test/bench/bench.js [--runs N] [--parallel N]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchActivation, reportActivation } from './activation';
import type { AttachResults } from './attach';
import { ATTACH_AGENTS, benchAttach, reportAttach } from './attach';
import type { Workspace } from './common';
import { BenchError, CLI, ROOT, STEP_TIMEOUT_MS, abortAll, assertClean, check, cleanUp, cli, docker, fmt, makeWorkspace, msBetween, note, round, timed } from './common';
import type { EgressResults } from './egress';
import { EGRESS_AGENTS, benchEgress, reportEgress } from './egress';
import type { LogResults } from './logs';
import { LOGS_AGENTS, benchLogs, reportLogs } from './logs';
import type { ParallelResults } from './parallel';
import { benchParallel, reportParallel } from './parallel';
import type { PresetResults } from './presets';
import { PRESET_AGENTS, benchPresets, reportPresets } from './presets';
import type { SyncResults } from './sync';
import { benchSync, reportSync } from './sync';
import type { UpResults } from './up';
import { benchUp, reportUp } from './up';

const ARTIFACT = path.join(ROOT, '.test-artifacts', 'bench.json');
// The presets part downloads its agent's CLI (about 250 MB) once.
const TIME_LIMIT_MS = 20 * 60_000;

/** The parts, all by default; BENCH_ONLY=sync (or up,logs,...) runs only those. */
const PARTS = ['up', 'logs', 'parallel', 'sync', 'egress', 'presets', 'attach', 'activation'] as const;
type Part = (typeof PARTS)[number];

function selectedParts(): Part[] | undefined {
  const names = (process.env.BENCH_ONLY ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (names.length === 0) return undefined;
  const unknown = names.filter((p) => !(PARTS as readonly string[]).includes(p));
  check(unknown.length === 0, `BENCH_ONLY names ${unknown.join(', ')}: the parts are ${PARTS.join(', ')}`);
  return PARTS.filter((p) => names.includes(p));
}

interface Summary {
  date: string;
  host: { cpus: number; node: string; docker: string; platform: string };
  /** The parts that ran (BENCH_ONLY), when not all of them. */
  only?: Part[];
  totalSeconds: number;
  /** How long each part took, set-up and checks included. */
  partSeconds: Partial<Record<Part, number>>;
  image: { ref: string; builtByBench: boolean; buildMs: number };
  up?: UpResults;
  logs?: LogResults;
  parallel?: ParallelResults;
  sync?: SyncResults;
  egress?: EgressResults;
  presets?: PresetResults;
  attach?: AttachResults;
}

function report(s: Summary): string {
  const runs = s.up ? `, ${s.up.runs} runs` : '';
  const only = s.only ? ` (BENCH_ONLY: ${s.only.join(',')})` : '';
  const seconds = Object.entries(s.partSeconds).map(([part, sec]) => `${part} ${sec.toFixed(0)} s`).join(', ');
  const parts = [
    s.up && reportUp(s.up),
    s.logs && reportLogs(s.logs),
    s.parallel && reportParallel(s.parallel),
    s.sync && reportSync(s.sync),
    s.egress && reportEgress(s.egress),
    s.presets && reportPresets(s.presets),
    s.attach && reportAttach(s.attach),
  ].filter((p): p is string => Boolean(p));
  return [
    `Agent Sandboxes benchmark${only}: ${s.host.cpus} CPUs, Docker ${s.host.docker}, Node ${s.host.node}${runs}, ${s.totalSeconds.toFixed(0)} s in all (${seconds})`,
    `image ${s.image.ref} (${s.image.builtByBench ? `built in ${fmt(s.image.buildMs)} ms as the warm-up` : 'already built'})`,
    '',
    ...parts.flatMap((p) => [p, '']),
  ].join('\n');
}

/** The parts that run against the engine, in one workspace, then the summary. */
async function engineParts(only: Part[] | undefined, wanted: (part: Part) => boolean, runs: number, parallel: number): Promise<void> {
  await fs.access(CLI).catch(() => {
    throw new BenchError(`${CLI} is missing: build it first (npm run build), or run npm run bench`);
  });

  const started = process.hrtime.bigint();
  const limit = setTimeout(() => abortAll(`the benchmark ran longer than ${TIME_LIMIT_MS / 60_000} minutes`), TIME_LIMIT_MS);
  const rawPrefix = `agent-sandbox-bench-raw-${process.pid}-`;
  let ws: Workspace | undefined;
  try {
    const dockerVersion = (await docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
    note('making the workspace');
    ws = await makeWorkspace([EGRESS_AGENTS, PRESET_AGENTS, LOGS_AGENTS, ATTACH_AGENTS]);

    note('building the image (warm-up)');
    const build = await timed(() => cli(ws!, ['build', '--agent', 'bench', '--json'], 5 * STEP_TIMEOUT_MS));
    const image = JSON.parse(build.value.stdout) as { ref: string; changed: boolean };
    check(typeof image.ref === 'string' && image.ref.length > 0, `agent-sandbox build printed no image: ${build.value.stdout}`);
    check((await docker(['image', 'inspect', image.ref], STEP_TIMEOUT_MS, true)).code === 0, `the image ${image.ref} is not there after the build`);

    const partSeconds: Summary['partSeconds'] = {};
    const part = async <T>(name: Part, work: () => Promise<T>): Promise<T | undefined> => {
      if (!wanted(name)) return undefined;
      const r = await timed(async () => {
        const value = await work();
        // What the part made is gone before the next part starts: a leftover fails the part that left it.
        await assertClean(ws!, rawPrefix, `the ${name} part`);
        return value;
      });
      partSeconds[name] = round(r.ms / 1000);
      return r.value;
    };
    const up = await part('up', () => benchUp(ws!, image.ref, runs, rawPrefix));
    const logs = await part('logs', () => benchLogs(ws!));
    const parallelResults = await part('parallel', () => benchParallel(ws!, parallel, rawPrefix));
    const egress = await part('egress', () => benchEgress(ws!, image.ref, Math.min(runs, 5), rawPrefix));
    const presets = await part('presets', () => benchPresets(ws!, image.ref, runs, rawPrefix));
    const attach = await part('attach', () => benchAttach(ws!, runs));
    // Last: it adds lib/ and commits to the workspace's branch, which the parts above must not see.
    const sync = await part('sync', () => benchSync(ws!));

    const summary: Summary = {
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, node: process.version, docker: dockerVersion, platform: `${os.platform()} ${os.release()}` },
      ...(only ? { only } : {}),
      totalSeconds: round(msBetween(started, process.hrtime.bigint()) / 1000),
      partSeconds,
      image: { ref: image.ref, builtByBench: image.changed, buildMs: round(build.ms) },
      up,
      logs,
      parallel: parallelResults,
      sync,
      egress,
      presets,
      attach,
    };
    // A partial run does not replace the full run's summary.
    const artifact = only ? ARTIFACT.replace(/\.json$/, `-${only.join('-')}.json`) : ARTIFACT;
    await fs.mkdir(path.dirname(artifact), { recursive: true });
    await fs.writeFile(artifact, `${JSON.stringify(summary, null, 2)}\n`);
    process.stdout.write(`\n${report(summary)}\n`);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    note(`summary written to ${path.relative(process.cwd(), artifact) || artifact}`);
  } finally {
    clearTimeout(limit);
    note('cleaning up');
    await cleanUp(ws, rawPrefix);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, parallel: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: [BENCH_ONLY=${PARTS.join(',')}] node out/test/bench/bench.js [--runs N (default 10)] [--parallel N (default 10)]\n`);
    return;
  }
  const only = selectedParts();
  const wanted = (part: Part) => !only || only.includes(part);
  const onSignal = () => abortAll('interrupted');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (PARTS.some((part) => part !== 'activation' && wanted(part))) {
      const runs = Number(values.runs ?? 10);
      const parallel = Number(values.parallel ?? 10);
      check(Number.isInteger(runs) && runs >= 1 && runs <= 100, `--runs takes a whole number from 1 to 100, not ${values.runs}`);
      check(Number.isInteger(parallel) && parallel >= 2 && parallel <= 20, `--parallel takes a whole number from 2 to 20, not ${values.parallel}`);
      await engineParts(only, wanted, runs, parallel);
    }
    // After the engine parts and their clean-up, outside their time limit and their summary.
    if (wanted('activation')) process.stdout.write(`\n${reportActivation(await benchActivation())}\n`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
  if (!(error instanceof BenchError) && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
