/**
 * An interactive agent (a real shell on a real terminal, in a real container), driven through the CLI under a
 * pseudo-terminal that tmux gives: attach, type, read the screen, resize, detach with the keys, attach again and
 * find the same screen; the terminal's mode is restored; the transcript is text.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanUp, CLI, cli, cliOk, makeRepo, tomlWith, waitFor } from './helpers';

const SESSION = `agent-sandbox-test-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SESSION, ...args], { encoding: 'utf8' });
}

/** Ends what may not be there (a session, the server), saying nothing. */
function tmuxEnd(...args: string[]): void {
  try {
    execFileSync('tmux', ['-L', SESSION, ...args], { stdio: 'ignore' });
  } catch {
    // nothing to end
  }
}

/** The pane's screen, as text. */
function screen(): string {
  return tmux('capture-pane', '-p', '-t', SESSION);
}

describe('interactive agents, from a terminal', () => {
  let repo = '';
  let modeFile = '';

  before(async () => {
    repo = await makeRepo(
      tomlWith('sleep 300', `
[agents.shell]
interactive = true
command = ["sh"]
`),
    );
    modeFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'attach-')), 'stty');
  });

  after(async () => {
    tmuxEnd('kill-server');
    await cleanUp();
  });

  /** `agent-sandbox attach` in a new terminal of this size; after it, the terminal's mode is written down. */
  function attachIn(columns: number, rows: number, extra: string[] = []): void {
    const command = `cd ${JSON.stringify(repo)} && ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} attach shell1 ${extra.join(' ')}; stty -a > ${JSON.stringify(modeFile)}; sleep 600`;
    tmuxEnd('kill-session', '-t', SESSION);
    tmux('new-session', '-d', '-s', SESSION, '-x', String(columns), '-y', String(rows), command);
  }

  test('attach, type, resize, detach with the keys; the agent runs on; attach again shows the screen as it is now', async () => {
    await cliOk(['up', 'shell1', '--agent', 'shell'], { cwd: repo });
    attachIn(100, 20);
    await waitFor('the shell\'s prompt', async () => (/(\/workspace|~) \$/.test(screen()) ? true : undefined), 15_000);
    tmux('send-keys', '-t', SESSION, 'echo typed-$((6*7)) > /workspace/typed.txt; echo shown-$((6*7))', 'Enter');
    await waitFor('the output on the screen', async () => (/^shown-42$/m.test(screen()) ? true : undefined), 10_000);
    assert.equal((await fs.readFile(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', 'shell1', 'typed.txt'), 'utf8')).trim(), 'typed-42', 'the keys reached the agent');

    tmux('send-keys', '-t', SESSION, 'stty size', 'Enter');
    await waitFor('its size', async () => (/^20 100$/m.test(screen()) ? true : undefined), 10_000);
    tmux('resize-window', '-t', SESSION, '-x', '80', '-y', '15');
    await new Promise((resolve) => setTimeout(resolve, 500));
    tmux('send-keys', '-t', SESSION, 'stty size', 'Enter');
    await waitFor('the new size', async () => (/^15 80$/m.test(screen()) ? true : undefined), 10_000);

    tmux('send-keys', '-t', SESSION, 'C-p', 'C-q');
    await waitFor('the detach', async () => (/Detached from shell1: the agent keeps running/.test(screen()) ? true : undefined), 10_000);
    // The terminal is back in its own mode: canonical, with echo.
    const mode = await waitFor('the terminal\'s mode', () => fs.readFile(modeFile, 'utf8').catch(() => undefined), 10_000);
    assert.match(mode, /(^|\s)icanon(\s|$)/);
    assert.match(mode, /(^|\s)echo(\s|$)/);
    const [listed] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout) as Array<{ state: string; interactive?: boolean }>;
    assert.equal(listed.state, 'running', 'the agent keeps running');
    assert.equal(listed.interactive, true);

    await fs.rm(modeFile, { force: true });
    const started = Date.now();
    attachIn(100, 20);
    await waitFor('the screen as it was', async () => (/^shown-42$/m.test(screen()) ? true : undefined), 10_000);
    const attachToScreenMs = Date.now() - started;
    assert.ok(attachToScreenMs < 5000, `the screen came back in ${attachToScreenMs} ms`);
    assert.doesNotMatch(screen(), /Detached/, 'a new terminal, with the old screen in it');
    // Other detach keys, as the user chooses them.
    tmux('send-keys', '-t', SESSION, 'C-p', 'C-q');
    await waitFor('the detach', async () => (/Detached from shell1/.test(screen()) ? true : undefined), 10_000);
    await fs.rm(modeFile, { force: true });
    attachIn(100, 20, ['--detach-keys', 'ctrl-x']);
    await waitFor('the prompt', async () => (/(\/workspace|~) \$/.test(screen()) ? true : undefined), 10_000);
    tmux('send-keys', '-t', SESSION, 'C-x');
    await waitFor('the detach with ctrl-x', async () => (/Detached from shell1/.test(screen()) ? true : undefined), 10_000);

    // The transcript is text: no escape sequences, the commands and their output on lines of their own.
    const logs = (await cliOk(['logs', 'shell1'], { cwd: repo })).stdout;
    assert.match(logs, /^shown-42$/m);
    assert.ok(!logs.includes('\x1b'), 'no escape sequence in the transcript');
    assert.ok((await cliOk(['logs', 'shell1', '--raw'], { cwd: repo })).stdout.includes('\r\n'), 'the raw log is the terminal\'s');

    // The agent ending ends the attachment, which says so.
    await fs.rm(modeFile, { force: true });
    attachIn(100, 20);
    await waitFor('the prompt', async () => (/(\/workspace|~) \$/.test(screen()) ? true : undefined), 10_000);
    tmux('send-keys', '-t', SESSION, 'exit 3', 'Enter');
    await waitFor('the end', async () => (/The agent of shell1 has ended \(exit 3\)/.test(screen()) ? true : undefined), 15_000);
    const modeAfterEnd = await waitFor('the terminal\'s mode', () => fs.readFile(modeFile, 'utf8').catch(() => undefined), 10_000);
    assert.match(modeAfterEnd, /(^|\s)icanon(\s|$)/);
  });

  test('an interactive agent says it waits for the user through a file the host reads as data, never through a link or a FIFO', async () => {
    await cliOk(['up', 'asks', '--agent', 'shell'], { cwd: repo });
    const say = (script: string) => cliOk(['exec', 'asks', '--', 'sh', '-c', script], { cwd: repo });
    const waiting = async () => ((JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout) as Array<{ name: string; waiting?: boolean }>).find((s) => s.name === 'asks')?.waiting ?? false);
    assert.equal(await waiting(), false);
    await say('echo waiting > "$AGENT_SANDBOX_EVENTS/state"');
    assert.equal(await waiting(), true);
    await say('echo working > "$AGENT_SANDBOX_EVENTS/state"');
    assert.equal(await waiting(), false);
    // A link to a host file that says "waiting" is not followed; a FIFO does not hold `ls` up.
    const hostFile = path.join(path.dirname(modeFile), 'says-waiting');
    await fs.writeFile(hostFile, 'waiting\n');
    await say(`ln -sf ${hostFile} "$AGENT_SANDBOX_EVENTS/state"`);
    assert.equal(await waiting(), false, 'the host did not follow the agent\'s link');
    await say('rm -f "$AGENT_SANDBOX_EVENTS/state" && mkfifo "$AGENT_SANDBOX_EVENTS/state"');
    const started = Date.now();
    assert.equal(await waiting(), false);
    assert.ok(Date.now() - started < 10_000, 'ls was not held up by the FIFO');
    await say('rm -f "$AGENT_SANDBOX_EVENTS/state" && head -c 1000000 /dev/zero | tr "\\0" w > "$AGENT_SANDBOX_EVENTS/state"');
    assert.equal(await waiting(), false, 'a file too large to be a state is no state');
  });

  test('a sandbox whose role is not interactive has no terminal to attach to; attach outside a terminal is a usage error', async () => {
    await cliOk(['up', 'plain', '--agent', 'engineer'], { cwd: repo });
    const refused = await cli(['attach', 'plain'], { cwd: repo });
    assert.notEqual(refused.code, 0);
    // Not on a terminal (the test's pipes): said before anything else.
    assert.match(refused.stderr, /attach needs a terminal/);
    tmuxEnd('kill-session', '-t', SESSION);
    const command = `cd ${JSON.stringify(repo)} && ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} attach plain; sleep 600`;
    tmux('new-session', '-d', '-s', SESSION, '-x', '120', '-y', '20', command);
    await waitFor('the refusal', async () => (/has no terminal to attach to: its role is not interactive/.test(screen()) ? true : undefined), 10_000);
    const bad = await cli(['attach', 'plain', '--detach-keys', 'ctrl-p ctrl-q'], { cwd: repo });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--detach-keys: "ctrl-p ctrl-q" is not a key sequence/);
  });
});
