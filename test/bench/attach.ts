/**
 * Part 7: `agent-sandbox attach NAME` to an interactive agent (`interactive = true`, `command = ["sh"]`), spawned in
 * a tmux pane (a pseudo-terminal) as a user runs it, timed until the pane shows a line the shell printed before the
 * attach: the screen as it is now, rebuilt from the end of the agent's output. Once for an agent whose log is small
 * (a marker line only) and once for one whose log is large (LARGE_BYTES of output first, then the marker).
 *
 * The floor: `docker exec -it CONTAINER sh -c 'echo marker; exec sh'` in the same kind of pane, timed until the
 * marker shows: a spawned client reaching the container's terminal and printing, with nothing to restore (`docker
 * attach` restores no screen, so it is no floor). Beside it, `Sandboxes.attach` in process (until its output holds
 * the marker), and, for the large log, what its time is made of: `docker logs --tail 5000` (what attach reads from
 * Docker: 5000 lines, a few KB) and the rebuild of the screen from the last 2 MB of the output (screenOf), which is
 * what attach does on Podman, whose whole log it reads.
 *
 * The agents' output is made through `Sandboxes.attach` in process (keys in, output read until the marker, then
 * detach), so 20 MB need not pass through tmux. Each pane runs on a tmux server of this part's own (-L), kept by a
 * session that lives for the part; each attach ends with the detach keys and its "Detached" line. Everything goes
 * at the end (the sandboxes with `agent-sandbox rm --force`, the tmux server), and a leftover fails the part.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { screenOf } from '../../src/core/sandbox/screen';
import { SCREEN_SOURCE_BYTES } from '../../src/core/sandbox/terminal';
import type { Stats, Workspace } from './common';
import { CLI, STEP_TIMEOUT_MS, bounded, check, expectNoContainer, fmt, median, msBetween, note, ratio, ratioText, round, run, stats, statsRow, table, timed } from './common';

/** The agent of this part, for the workspace's sandbox.toml. */
export const ATTACH_AGENTS = `[agents.shell]
interactive = true
command = ["sh"]
`;

const LARGE_BYTES = 20_000_000;
const MARKER = 'marker-42';
/** What the shell is given: the marker computed, so the command line itself does not show it. */
const MARKER_COMMAND = 'echo marker-$((6*7))';
const MARKER_LINE = /^marker-42\s*$/m;
const COLUMNS = 100;
const ROWS = 30;
const POLL_MS = 10;
const SCREEN_TIMEOUT_MS = 20_000;
const TAIL_LINES = 5000;

export interface AttachResults {
  runs: number;
  largeBytes: number;
  /** What `docker logs` gives of the large agent's log (its \n become \r\n on a terminal). */
  largeLogBytes: number;
  cliSmall: Stats;
  cliLarge: Stats;
  inProcessSmall: Stats;
  inProcessLarge: Stats;
  floor: Stats;
  /** `docker logs --tail 5000` of the large agent, and the bytes it gives. */
  tailLarge: Stats;
  tailLargeBytes: number;
  /** screenOf on the last SCREEN_SOURCE_BYTES of the large agent's output. */
  screenOfLarge: Stats;
  ratioSmall: number;
  ratioLarge: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function benchAttach(ws: Workspace, runs: number): Promise<AttachResults> {
  const socket = `agent-sandbox-bench-${process.pid}`;
  const socketPath = path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${os.userInfo().uid}`, socket);
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
  const capture = async (session: string) => (await tmux('capture-pane', '-p', '-t', session)).stdout;
  const waitForPane = async (session: string, what: string, seen: RegExp): Promise<string> => {
    const deadline = Date.now() + SCREEN_TIMEOUT_MS;
    for (;;) {
      const text = await capture(session);
      if (seen.test(text)) return text;
      check(Date.now() < deadline, `${what}: not on the pane within ${SCREEN_TIMEOUT_MS / 1000} s; it shows:\n${text.trimEnd().split('\n').slice(-8).join('\n')}`);
      await sleep(POLL_MS);
    }
  };
  /** A new pane running COMMAND; from its start until the marker line shows on it. */
  const paneToMarker = async (session: string, command: string, what: string): Promise<number> => {
    const start = process.hrtime.bigint();
    await tmux('new-session', '-d', '-s', session, '-x', String(COLUMNS), '-y', String(ROWS), command);
    await waitForPane(session, what, MARKER_LINE);
    return msBetween(start, process.hrtime.bigint());
  };
  const endSession = (session: string) => tmux('kill-session', '-t', session);

  const names = { small: 'attach-small', large: 'attach-large' } as const;
  const cliRm = (name: string) => run(process.execPath, [CLI, 'rm', '--force', name, '--workspace', ws.root], { cwd: ws.root });

  /** Sandboxes.attach in process: the time until its output holds the marker line; then COMMAND typed, if any, and its marker awaited. */
  const inProcess = async (name: string, command?: string): Promise<number> => {
    const start = process.hrtime.bigint();
    const terminal = await bounded(`Sandboxes.attach(${name})`, ws.sandboxes.attach(name, { columns: COLUMNS, rows: ROWS }));
    let tail = '';
    let seenMs: number | undefined;
    let bytes = 0;
    const seen = new Promise<void>((resolve) => {
      terminal.output.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-4096);
        // The marker as the shell's output (the command line shows $((6*7)), never 42); the screen is escape sequences.
        if (seenMs === undefined && tail.includes(MARKER)) {
          seenMs = msBetween(start, process.hrtime.bigint());
          resolve();
        }
      });
    });
    try {
      if (command !== undefined) {
        await sleep(300);
        terminal.input.write(`${command}\r`);
      }
      await bounded(`the marker from Sandboxes.attach(${name})`, seen, command ? 5 * STEP_TIMEOUT_MS : SCREEN_TIMEOUT_MS);
    } finally {
      terminal.detach();
      await bounded(`the end of the attachment to ${name}`, terminal.ended);
    }
    if (command === undefined) check(bytes < SCREEN_SOURCE_BYTES, `Sandboxes.attach(${name}) passed on ${bytes} bytes: a replay, not the screen`);
    return seenMs!;
  };

  const keeper = 'keeper';
  const cliSmall: number[] = [];
  const cliLarge: number[] = [];
  const ipSmall: number[] = [];
  const ipLarge: number[] = [];
  const floor: number[] = [];
  const tail: number[] = [];
  const screen: number[] = [];
  let largeLogBytes: number;
  let tailLargeBytes = 0;
  try {
    // One server for the part, kept by a session of its own, so no pane pays for its start.
    await tmux('new-session', '-d', '-s', keeper, '-x', String(COLUMNS), '-y', String(ROWS), 'sleep 3600');
    for (const name of Object.values(names)) {
      note(`attach: up ${name}`);
      await run(process.execPath, [CLI, 'up', name, '--agent', 'shell', '--workspace', ws.root], { cwd: ws.root });
    }
    note('attach: the small agent prints the marker; the large one prints 20 MB, then the marker');
    await inProcess(names.small, MARKER_COMMAND);
    await inProcess(names.large, `yes line | head -c ${LARGE_BYTES}; ${MARKER_COMMAND}`);
    // The engine writes its log a little after the attachment passed the output on: read until the marker is in it.
    const readLog = () => run('docker', ['logs', ws.sandboxes.containerName(names.large)], { timeoutMs: 2 * STEP_TIMEOUT_MS });
    let full = await readLog();
    for (let i = 0; i < 60 && !MARKER_LINE.test(full.stdout.slice(-4096).replace(/\r/g, '')); i++) {
      note(`attach: the large agent's log has ${Buffer.byteLength(full.stdout)} bytes so far`);
      await sleep(1000);
      full = await readLog();
    }
    largeLogBytes = Buffer.byteLength(full.stdout);
    check(MARKER_LINE.test(full.stdout.slice(-4096).replace(/\r/g, '')), "the large agent's log does not end with the marker");
    // Not all of it: Docker keeps 12 to 14 MB of the 24 MB the terminal gave (a detached `docker run -t` keeps all).
    check(largeLogBytes >= LARGE_BYTES / 2, `the large agent's log is ${largeLogBytes} bytes, not ${LARGE_BYTES / 2} or more`);
    const sourceOfScreen = Buffer.from(full.stdout, 'latin1').subarray(-SCREEN_SOURCE_BYTES);

    const cliAttach = async (name: string, i: number): Promise<number> => {
      const session = `cli-${name}-${i}`;
      const command = `${shellQuote(process.execPath)} ${shellQuote(CLI)} attach ${name} --workspace ${shellQuote(ws.root)}; sleep 600`;
      const ms = await paneToMarker(session, command, `agent-sandbox attach ${name}`);
      const shown = await capture(session);
      check(!/Detached/.test(shown), `agent-sandbox attach ${name} shows an earlier detach: not a new terminal`);
      check(shown.split('\n').filter((l) => /^line\s*$/.test(l)).length < ROWS, `agent-sandbox attach ${name} shows more lines than its screen`);
      await tmux('send-keys', '-t', session, 'C-p', 'C-q');
      await waitForPane(session, `the detach from ${name}`, new RegExp(`Detached from ${name}: the agent keeps running`));
      await endSession(session);
      return ms;
    };
    const floorExec = async (i: number): Promise<number> => {
      const session = `floor-${i}`;
      const inner = `echo ${MARKER_COMMAND.slice('echo '.length)}; exec sh`;
      const command = `docker exec -it ${ws.sandboxes.containerName(names.small)} sh -c ${shellQuote(inner)}; echo floor-ended; sleep 600`;
      const ms = await paneToMarker(session, command, 'docker exec -it');
      await tmux('send-keys', '-t', session, 'exit', 'Enter');
      await waitForPane(session, 'the end of docker exec', /^floor-ended\s*$/m);
      await endSession(session);
      return ms;
    };
    const cases: Array<() => Promise<void>> = [
      async () => void cliSmall.push(await cliAttach(names.small, cliSmall.length)),
      async () => void cliLarge.push(await cliAttach(names.large, cliLarge.length)),
      async () => void floor.push(await floorExec(floor.length)),
      async () => void ipSmall.push(await inProcess(names.small)),
      async () => void ipLarge.push(await inProcess(names.large)),
      async () => {
        const r = await timed(() => run('docker', ['logs', '--tail', String(TAIL_LINES), ws.sandboxes.containerName(names.large)], { timeoutMs: 2 * STEP_TIMEOUT_MS }));
        tailLargeBytes = Buffer.byteLength(r.value.stdout);
        tail.push(r.ms);
      },
      async () => {
        const r = await timed(() => screenOf(sourceOfScreen, COLUMNS, ROWS));
        // eslint-disable-next-line no-control-regex -- the escape sequences of the serialized screen
        check(MARKER_LINE.test(r.value.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n')), 'screenOf of the large output has no marker line');
        screen.push(r.ms);
      },
    ];
    // Run 0 warms up and is not counted; the order turns every run, so no case always goes first.
    for (let i = 0; i <= runs; i++) {
      note(`attach: ${i > 0 ? `run ${i}/${runs}` : 'warm-up'}`);
      for (let k = 0; k < cases.length; k++) await cases[(k + i) % cases.length]();
      if (i === 0) for (const samples of [cliSmall, cliLarge, floor, ipSmall, ipLarge, tail, screen]) samples.length = 0;
    }
  } finally {
    for (const name of Object.values(names)) await cliRm(name).catch((e: Error) => note(`attach: rm ${name}: ${e.message}`));
    await run('tmux', ['-L', socket, 'kill-server'], { allowFail: true });
    // tmux leaves its socket's file behind when its server ends.
    await fs.rm(socketPath, { force: true });
  }
  for (const name of Object.values(names)) await expectNoContainer(ws.sandboxes.containerName(name));
  check((await run('tmux', ['-L', socket, 'list-sessions'], { allowFail: true })).code !== 0, `the tmux server ${socket} is left`);
  check(!(await fs.stat(socketPath).then(() => true, () => false)), `the tmux socket ${socketPath} is left`);

  const floorMs = median(floor);
  return {
    runs,
    largeBytes: LARGE_BYTES,
    largeLogBytes,
    cliSmall: stats(cliSmall),
    cliLarge: stats(cliLarge),
    inProcessSmall: stats(ipSmall),
    inProcessLarge: stats(ipLarge),
    floor: stats(floor),
    tailLarge: stats(tail),
    tailLargeBytes,
    screenOfLarge: stats(screen),
    ratioSmall: ratio(median(cliSmall), floorMs),
    ratioLarge: ratio(median(cliLarge), floorMs),
  };
}

export function reportAttach(a: AttachResults): string {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const vs = (s: Stats) => ratioText(ratio(s.medianMs, a.floor.medianMs));
  return [
    table(
      [
        [`7. attach to an interactive agent, until ${MARKER} shows (ms)`, 'median', 'p90', 'min', 'max', 'vs raw'],
        statsRow('agent-sandbox attach in a tmux pane, small log', a.cliSmall, vs(a.cliSmall)),
        statsRow(`agent-sandbox attach in a tmux pane, ${mb(a.largeBytes)} log`, a.cliLarge, vs(a.cliLarge)),
        statsRow('Sandboxes.attach in process, small log', a.inProcessSmall, vs(a.inProcessSmall)),
        statsRow(`Sandboxes.attach in process, ${mb(a.largeBytes)} log`, a.inProcessLarge, vs(a.inProcessLarge)),
        statsRow("raw: docker exec -it C sh -c 'echo marker; exec sh' in a pane", a.floor, '1.00x'),
        statsRow(`large: docker logs --tail ${TAIL_LINES}, ${(a.tailLargeBytes / 1024).toFixed(0)} KB (what attach reads on Docker)`, a.tailLarge, ''),
        statsRow(`large: screenOf on the last ${mb(SCREEN_SOURCE_BYTES)} (Podman's case)`, a.screenOfLarge, ''),
      ],
      (i) => i > 0,
    ),
    `medians of ${a.runs}; the pane polled every ${POLL_MS} ms; the large agent printed ${mb(a.largeBytes)} (its log ${mb(a.largeLogBytes)}), then the marker. The floor restores no screen: it prints the marker itself.`,
    `${fmt(a.cliLarge.medianMs - a.cliSmall.medianMs)} ms more for the large log than the small (CLI), in process ${fmt(round(a.inProcessLarge.medianMs - a.inProcessSmall.medianMs))} ms`,
  ].join('\n');
}
