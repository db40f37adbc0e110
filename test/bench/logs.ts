/**
 * Part 2: the throughput of `agent-sandbox logs NAME --follow` on 200,000 lines, after the agent finished and
 * while it runs, against `docker logs -f` on the same containers.
 */
import type { Inspected, StreamCount, Workspace } from './common';
import { CLI, check, cli, countOutput, docker, fmt, inspect, median, note, ratio, ratioText, removeSandbox, round, table } from './common';

/** The agent output of part 2: LOG_LINES lines of exactly LINE_BYTES bytes, "line 000001 of ...". */
const LOG_LINES = 200_000;
const LINE_SUFFIX = ' of the agent output, abcdefghijklmnopqrstuvwxyz';
const LINE_BYTES = 'line '.length + String(LOG_LINES).length + LINE_SUFFIX.length + 1;
const LOG_BYTES = LOG_LINES * LINE_BYTES;
const LAST_LINE = `line ${String(LOG_LINES).padStart(String(LOG_LINES).length, '0')}${LINE_SUFFIX}\n`;
/** The spew agent waits this long before printing, so that a follower started right after `up` is live. */
const SPEW_DELAY_S = 1;
const LOG_REPEATS = 3;
const LIVE_REPEATS = 3;
const LOGS_TIMEOUT_MS = 120_000;

/** The agent of this part, for the workspace's sandbox.toml. */
export const LOGS_AGENTS = `[agents.spew]
command = ["sh", "-c", "sleep ${SPEW_DELAY_S}; seq -w 1 ${LOG_LINES} | sed 's/^/line /; s/$/${LINE_SUFFIX}/'"]
`;

interface Throughput {
  ms: number;
  linesPerSec: number;
  mbPerSec: number;
}

interface LiveRun {
  /** From the start of the follower to its end. */
  wallMs: number;
  /** From the first byte to the end: the rate while the agent prints. */
  streamMs: number;
  linesPerSec: number;
  mbPerSec: number;
  /** How long the agent still ran after the follower started. */
  overlapMs: number;
  /** How long after the agent's exit the follower ended. */
  lagMs: number;
}

export interface LogResults {
  lines: number;
  bytes: number;
  finished: { cli: Throughput; docker: Throughput; ratio: number; cliSamplesMs: number[]; dockerSamplesMs: number[] };
  live: { cli: LiveRun[]; docker: LiveRun[]; cliMedian: Throughput; dockerMedian: Throughput; ratio: number; cliLagMedianMs: number; dockerLagMedianMs: number };
}

function verifyLog(what: string, r: StreamCount): void {
  check(r.code === 0, `${what} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  check(r.lines === LOG_LINES, `${what} printed ${r.lines} lines, not ${LOG_LINES}`);
  check(r.bytes === LOG_BYTES, `${what} printed ${r.bytes} bytes, not ${LOG_BYTES}`);
  check(r.tail.endsWith(LAST_LINE), `${what} does not end with the agent's last line: ...${JSON.stringify(r.tail.slice(-80))}`);
}

function throughput(ms: number): Throughput {
  return { ms: round(ms), linesPerSec: Math.round(LOG_LINES / (ms / 1000)), mbPerSec: round(LOG_BYTES / 1e6 / (ms / 1000), 2) };
}

/** Docker's RFC 3339 time with nanoseconds, as milliseconds since the epoch. */
function dockerTimeMs(text: string): number {
  const ms = Date.parse(text.replace(/(\.\d{3})\d*/, '$1'));
  check(Number.isFinite(ms), `cannot read the time ${text}`);
  return ms;
}

async function waitForExit(container: string): Promise<Inspected> {
  const waited = await docker(['wait', container], LOGS_TIMEOUT_MS);
  check(waited.stdout.trim() === '0', `the spew agent in ${container} exited with ${waited.stdout.trim()}`);
  return inspect(container);
}

/** `agent-sandbox logs NAME --follow` (cli) or `docker logs -f CONTAINER`, counted. */
function follow(ws: Workspace, kind: 'cli' | 'docker', name: string): Promise<StreamCount> {
  return kind === 'cli'
    ? countOutput(process.execPath, [CLI, 'logs', name, '--follow', '--workspace', ws.root], LOGS_TIMEOUT_MS)
    : countOutput('docker', ['logs', '-f', ws.sandboxes.containerName(name)], LOGS_TIMEOUT_MS);
}

export async function benchLogs(ws: Workspace): Promise<LogResults> {
  // After the agent finished: the follower only reads.
  note('logs: the spew agent runs to its end');
  await cli(ws, ['up', 'spew', '--agent', 'spew']);
  await waitForExit(ws.sandboxes.containerName('spew'));
  const cliSamples: number[] = [];
  const dockerSamples: number[] = [];
  for (let i = 0; i < LOG_REPEATS; i++) {
    note(`logs of a finished agent: ${i + 1}/${LOG_REPEATS}`);
    const c = await follow(ws, 'cli', 'spew');
    verifyLog('agent-sandbox logs --follow', c);
    cliSamples.push(c.totalMs);
    const d = await follow(ws, 'docker', 'spew');
    verifyLog('docker logs -f', d);
    dockerSamples.push(d.totalMs);
  }
  await removeSandbox(ws, 'spew');

  // While the agent runs: the follower starts right after up returns; the agent waits SPEW_DELAY_S first.
  const live = { cli: [] as LiveRun[], docker: [] as LiveRun[] };
  for (let i = 0; i < LIVE_REPEATS; i++) {
    for (const kind of ['cli', 'docker'] as const) {
      note(`logs of a running agent (${kind === 'cli' ? 'agent-sandbox logs --follow' : 'docker logs -f'}): ${i + 1}/${LIVE_REPEATS}`);
      const name = `live-${kind}-${i}`;
      await cli(ws, ['up', name, '--agent', 'spew']);
      const r = await follow(ws, kind, name);
      verifyLog(kind === 'cli' ? 'agent-sandbox logs --follow (live)' : 'docker logs -f (live)', r);
      const finished = await waitForExit(ws.sandboxes.containerName(name));
      const finishedMs = dockerTimeMs(finished.State.FinishedAt);
      const overlapMs = finishedMs - r.startWallMs;
      check(overlapMs > 0, `the agent of ${name} had ended before its follower started: the live case measured nothing live`);
      const streamMs = r.totalMs - r.firstByteMs;
      const t = throughput(streamMs);
      live[kind].push({
        wallMs: round(r.totalMs),
        streamMs: round(streamMs),
        linesPerSec: t.linesPerSec,
        mbPerSec: t.mbPerSec,
        overlapMs: round(overlapMs),
        lagMs: round(r.startWallMs + r.totalMs - finishedMs),
      });
      await removeSandbox(ws, name);
    }
  }

  const cliFinished = throughput(median(cliSamples));
  const dockerFinished = throughput(median(dockerSamples));
  const cliLive = throughput(median(live.cli.map((r) => r.streamMs)));
  const dockerLive = throughput(median(live.docker.map((r) => r.streamMs)));
  return {
    lines: LOG_LINES,
    bytes: LOG_BYTES,
    finished: { cli: cliFinished, docker: dockerFinished, ratio: ratio(cliFinished.ms, dockerFinished.ms), cliSamplesMs: cliSamples.map((s) => round(s)), dockerSamplesMs: dockerSamples.map((s) => round(s)) },
    live: {
      ...live,
      cliMedian: cliLive,
      dockerMedian: dockerLive,
      ratio: ratio(cliLive.ms, dockerLive.ms),
      cliLagMedianMs: median(live.cli.map((r) => r.lagMs)),
      dockerLagMedianMs: median(live.docker.map((r) => r.lagMs)),
    },
  };
}

export function reportLogs(lg: LogResults): string {
  const mb = (lg.bytes / 1e6).toFixed(1);
  const row = (label: string, t: Throughput, vs: string, lag: string) => [label, fmt(t.ms), t.linesPerSec.toLocaleString('en-US'), t.mbPerSec.toFixed(2), vs, lag];
  return [
    table(
      [
        [`2. logs --follow, ${lg.lines.toLocaleString('en-US')} lines (${mb} MB)`, 'ms', 'lines/s', 'MB/s', 'vs docker', 'lag'],
        row('finished agent: agent-sandbox logs --follow', lg.finished.cli, ratioText(lg.finished.ratio), ''),
        row('finished agent: docker logs -f', lg.finished.docker, '1.00x', ''),
        row('running agent:  agent-sandbox logs --follow', lg.live.cliMedian, ratioText(lg.live.ratio), `${fmt(lg.live.cliLagMedianMs)} ms`),
        row('running agent:  docker logs -f', lg.live.dockerMedian, '1.00x', `${fmt(lg.live.dockerLagMedianMs)} ms`),
      ],
      (i) => i > 0,
    ),
    `finished: median of ${LOG_REPEATS}, from spawn to exit. running: median of ${LIVE_REPEATS}, from the first byte to exit (the agent waits ${SPEW_DELAY_S} s, then prints); lag: exit after the agent's end.`,
  ].join('\n');
}
