/**
 * Real agent CLIs (Claude Code and Codex, pinned by their presets, installed from the npm registry by the
 * product itself), in real containers, against a model server this test starts on the engine's network and
 * reaches only through the real allowlist and the real credential route. What is asserted is what the user
 * gets: the agent's commit on sandbox/NAME, the progress and verdict from its event stream, a readable
 * transcript, the real key at the model server and nowhere inside the sandbox.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanUp, cli, cliOk, containersOf, docker, git, makeRepo, REPO_ROOT, waitFor } from './helpers';

const ANTHROPIC_KEY = `sk-ant-api03-real-${Date.now()}-only-the-host-knows-it`;
const OPENAI_KEY = `sk-proj-real-${Date.now()}-only-the-host-knows-it`;
const GEMINI_KEY = `AIza-real-${Date.now()}-only-the-host-knows-it`;
const MODEL_HOST = 'model.test';
const TASK = 'Create AGENT_WAS_HERE.md and commit it.';
// Real agents in real containers: the one test file that installs their CLIs (about 800 MB, once per machine).

const TOML = `[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "nat"
memory = "2g"
cpus = 2
pids = 512

[agents.claude]
preset = "claude-code"

[agents.codex]
preset = "codex"
# A model Codex knows offers its apply_patch and shell tools to a provider of one's own.
model = "gpt-5.5"

# A JavaScript CLI: run by the image's own node.
[agents.gemini]
preset = "gemini"

# The preset's environment, route and mounts, with a command that waits: for looking inside.
[agents.probe]
preset = "claude-code"
command = ["sh", "-c", "sleep 600"]
`;

/** Files and the shared libraries they load (ldd), copied into the image's root at the same paths. */
async function addToRootfs(rootfs: string, files: Array<[string, string]>): Promise<void> {
  const all = new Map<string, string>(files);
  for (const [from] of files) {
    const out = execFileSync('ldd', [from], { encoding: 'utf8' }).toString();
    for (const line of out.split('\n')) {
      const lib = /=>\s+(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
      if (lib) all.set(lib, lib);
    }
  }
  for (const [from, to] of all) {
    await fs.mkdir(path.dirname(path.join(rootfs, to)), { recursive: true });
    await fs.copyFile(from, path.join(rootfs, to));
    await fs.chmod(path.join(rootfs, to), 0o755);
  }
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

interface Seen {
  method: string;
  url: string;
  api: string;
  headers: Record<string, string | undefined>;
}

describe('agent presets, with the real CLIs', () => {
  let repo = '';
  let modelIp = '';
  let env: NodeJS.ProcessEnv = {};
  let removeModel: () => Promise<void> = async () => undefined;
  const seen = async (): Promise<Seen[]> => JSON.parse(await get(`http://${modelIp}:8080/__requests`)) as Seen[];

  before(async () => {
    repo = await makeRepo(TOML, { 'README.md': '# a project\n' });
    // The toolchain image a user would have: bash and glibc (for Claude Code and the agents' shell tools), git,
    // and a node that the test's model server runs on.
    const node = (await fs.stat('/usr/bin/node').then(() => '/usr/bin/node', () => undefined)) ?? process.execPath;
    const bash = execFileSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
    const rootfs = path.join(repo, '.sandbox', 'rootfs');
    const libs = ['libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1'].map((name) => execFileSync('sh', ['-c', `ldconfig -p | awk '/${name.replace(/\./g, '\\.')} .*x86-64/{print $NF; exit}'`], { encoding: 'utf8' }).trim()).filter(Boolean);
    await addToRootfs(rootfs, [[bash, '/bin/bash'], [node, '/usr/bin/node'], ...libs.map((lib): [string, string] => [lib, lib])]);
    await fs.copyFile(path.join(REPO_ROOT, 'out', 'test', 'support', 'model-server.js'), path.join(rootfs, 'model-server.js'));
    const image = (await cliOk(['build', '--agent', 'claude'], { cwd: repo, timeoutMs: 300_000 })).stdout.trim();
    const model = await docker.createContainer({
      Image: image,
      User: '65534:65534',
      Cmd: ['node', '/model-server.js'],
      Env: ['MODEL_SERVER_LISTEN=0.0.0.0:8080'],
      Labels: { 'dev.agent-sandboxes.test-host': 'model' },
      // Podman's rootful default raises nofile past what this machine lets a container set.
      HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }, { Name: 'nproc', Soft: 1024, Hard: 1024 }] },
    });
    removeModel = () => model.remove({ force: true }).then(() => undefined, () => undefined);
    await model.start();
    modelIp = Object.values((await model.inspect()).NetworkSettings.Networks)[0]?.IPAddress ?? '';
    assert.ok(modelIp, 'the model server has an address');
    await waitFor('the model server', () => get(`http://${modelIp}:8080/__requests`).then(() => true, () => undefined), 30_000);
    env = {
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      OPENAI_API_KEY: OPENAI_KEY,
      GEMINI_API_KEY: GEMINI_KEY,
      AGENT_SANDBOX_SECRETS_FROM_ENV: 'ANTHROPIC_API_KEY,OPENAI_API_KEY,GEMINI_API_KEY',
      AGENT_SANDBOX_PROVIDER_ENDPOINTS: `anthropic=http://${MODEL_HOST}:8080,openai=http://${MODEL_HOST}:8080,google=http://${MODEL_HOST}:8080`,
      AGENT_SANDBOX_EGRESS_HOSTS: `${MODEL_HOST}=${modelIp}`,
    };
  });

  after(async () => {
    await removeModel();
    await cleanUp();
  });

  for (const [role, preset, api, key, header] of [
    ['claude', 'claude-code', 'anthropic', ANTHROPIC_KEY, 'x-api-key'],
    ['codex', 'codex', 'openai', OPENAI_KEY, 'authorization'],
    ['gemini', 'gemini', 'gemini', GEMINI_KEY, 'x-goog-api-key'],
  ] as const) {
    test(`${role}: one pick runs the real CLI on the task; its commit, progress, transcript and key are as the user expects`, async () => {
      const up = await cliOk(['up', role, '--agent', role, '--task', TASK, '--wait'], { cwd: repo, env, timeoutMs: 600_000 });
      // The exit code is not the verdict; it is printed, not asserted.
      const log = git(repo, 'log', '--format=%s', `sandbox/${role}`);
      if (!/agent: add AGENT_WAS_HERE\.md/.test(log)) {
        const logs = await cli(['logs', role, '--raw'], { cwd: repo, env });
        assert.fail(`no commit of the agent's on sandbox/${role}:\n${log}\n${up.stderr}\n--- its output:\n${logs.stdout}\n${logs.stderr}`);
      }
      assert.equal(git(repo, 'show', `sandbox/${role}:AGENT_WAS_HERE.md`).trim().length > 0, true);

      const [listed] = (JSON.parse((await cliOk(['ls', '--json'], { cwd: repo, env })).stdout) as Array<{ name: string; preset?: { preset: string; credential: string; placeholder: string }; progress?: { result?: { verdict: string }; turns?: number; events: number } }>).filter((s) => s.name === role);
      assert.equal(listed.preset?.preset, preset);
      assert.equal(listed.progress?.result?.verdict, 'success', JSON.stringify(listed.progress));
      assert.ok((listed.progress?.events ?? 0) > 2);

      const readable = (await cliOk(['logs', role], { cwd: repo, env })).stdout;
      assert.match(readable, /AGENT_WAS_HERE\.md/);
      assert.match(readable, /✓/, readable);
      assert.doesNotMatch(readable, /^\{"type"/m, 'no raw JSON in the readable transcript');
      const raw = (await cliOk(['logs', role, '--raw'], { cwd: repo, env })).stdout;
      assert.match(raw, /^\{"type"/m, 'the raw stream keeps the JSON');

      const requests = (await seen()).filter((r) => r.method === 'POST' && r.api === api);
      assert.ok(requests.length >= 2, `the agent asked the model server: ${JSON.stringify(requests)}`);
      for (const r of requests) {
        assert.equal(r.headers[header], header === 'authorization' ? `Bearer ${key}` : key, 'the real key reached the model server');
        assert.ok(!JSON.stringify(r).includes(listed.preset!.placeholder), 'the placeholder never reached it');
      }
      const [container] = (await containersOf(repo)).filter((c) => c.Labels['dev.agent-sandboxes.name'] === role);
      const inspected = JSON.stringify(await docker.getContainer(container.Id).inspect());
      assert.ok(!inspected.includes(key), "the real key is not in the container's configuration");
      assert.ok(inspected.includes(listed.preset!.placeholder), 'the placeholder is');
    });
  }

  test('inside a preset sandbox the key is nowhere: environment, files, /proc; the placeholder goes nowhere but the route', async () => {
    await cliOk(['up', 'probe', '--agent', 'probe'], { cwd: repo, env, timeoutMs: 300_000 });
    const run = async (script: string) => (await cli(['exec', 'probe', '--', 'sh', '-c', script], { cwd: repo, env })).stdout;
    const environment = await run('env');
    assert.match(environment, /^ANTHROPIC_API_KEY=sk-ant-api03-agent-sandbox-placeholder-[0-9a-f]{24}$/m);
    assert.match(environment, /^ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:3128\/credential\/anthropic$/m);
    const secretPart = ANTHROPIC_KEY.slice('sk-ant-api03-'.length);
    const found = await run(`for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -l -F '${secretPart}' "$f" 2>/dev/null; done; grep -r -l -F '${secretPart}' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; echo scanned`);
    assert.equal(found.trim(), 'scanned', `the key was found in: ${found}`);
    // The route works from inside, and the model server sees the real key, not the placeholder.
    const before = (await seen()).length;
    // busybox wget sends a POST through a proxy as a GET: straight to the route, as the agents do (NO_PROXY).
    const answer = await run(`http_proxy= wget -O - --header "x-api-key: $ANTHROPIC_API_KEY" --header 'content-type: application/json' --post-data '{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}' http://127.0.0.1:3128/credential/anthropic/v1/messages 2>&1; echo " rc=$?"`);
    assert.match(answer, /rc=0/, answer);
    const last = (await seen()).slice(before).find((r) => r.method === 'POST');
    assert.equal(last?.headers['x-api-key'], ANTHROPIC_KEY);
    // The placeholder sent to any other host is refused by the proxy, and the refusal is in the sandbox's log.
    const elsewhere = await run(`printf 'GET http://${MODEL_HOST}:8080/__requests HTTP/1.1\\r\\nHost: ${MODEL_HOST}\\r\\nx-api-key: %s\\r\\nConnection: close\\r\\n\\r\\n' "$ANTHROPIC_API_KEY" | timeout 5 nc 127.0.0.1 3128`);
    assert.match(elsewhere, /^HTTP\/1\.1 403 /, elsewhere);
    await waitFor('the refusal in the log', async () => ((await cli(['logs', 'probe'], { cwd: repo, env })).stderr.includes('placeholder credential') ? true : undefined), 15_000);
    // Stopped and started: the proxy starts without the value, and gets it again.
    await cliOk(['stop', 'probe'], { cwd: repo, env });
    await cliOk(['start', 'probe'], { cwd: repo, env });
    const again = await run(`http_proxy= wget -q -O - --header 'content-type: application/json' --post-data '{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}' http://127.0.0.1:3128/credential/anthropic/v1/messages >/dev/null; echo "rc=$?"`);
    assert.match(again, /rc=0/);
  });

  test('bad input stops before anything is made: a missing credential names it and how to set it; an image the agent cannot run on; a version that does not exist', async () => {
    const missing = await cli(['up', 'nokey', '--agent', 'claude', '--task', TASK], { cwd: repo, env: { ...env, ANTHROPIC_API_KEY: '' } });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Claude Code needs one of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_AUTH_TOKEN, and none is set/);
    assert.match(missing.stderr, /AGENT_SANDBOX_SECRETS_FROM_ENV|Set Agent Secret|ANTHROPIC_API_KEY=/);
    assert.equal((await containersOf(repo)).filter((c) => c.Labels['dev.agent-sandboxes.name'] === 'nokey').length, 0);
    assert.doesNotMatch(git(repo, 'branch', '--list'), /sandbox\/nokey/);

    // An image with no C library at all (a static busybox alone): Claude Code's executable cannot run on it.
    const bare = path.join(repo, '.bare');
    await fs.mkdir(path.join(bare, 'rootfs', 'bin'), { recursive: true });
    await fs.copyFile('/bin/busybox', path.join(bare, 'rootfs', 'bin', 'busybox'));
    await fs.chmod(path.join(bare, 'rootfs', 'bin', 'busybox'), 0o755);
    await fs.writeFile(path.join(bare, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/busybox", "sh"]\n');
    await fs.appendFile(path.join(repo, 'sandbox.toml'), '\n[agents.bare]\npreset = "claude-code"\ndockerfile = ".bare/Dockerfile"\n');
    const libc = await cli(['up', 'bare', '--agent', 'bare', '--task', TASK], { cwd: repo, env, timeoutMs: 300_000 });
    assert.notEqual(libc.code, 0);
    assert.match(libc.stderr, /Claude Code cannot run on the image (localhost\/)?agent-sandbox\/project:\S+: it has neither glibc's nor musl's loader/, libc.stderr);
    assert.equal((await containersOf(repo)).filter((c) => c.Labels['dev.agent-sandboxes.name'] === 'bare').length, 0);
    assert.doesNotMatch(git(repo, 'branch', '--list'), /sandbox\/bare/);

    await fs.appendFile(path.join(repo, 'sandbox.toml'), '\n[agents.nosuch]\npreset = "codex"\nversion = "0.0.1-does-not-exist"\n');
    // The repository's own .npmrc is not the user's: a registry it names is never asked (the answers below are the
    // real registry's: run in the workspace, `npm view` would have asked 127.0.0.1:9 and failed to connect).
    await fs.writeFile(path.join(repo, '.npmrc'), 'registry=http://127.0.0.1:9/\n');
    await fs.appendFile(path.join(repo, 'sandbox.toml'), '\n[agents.tagged]\npreset = "codex"\nversion = "no-such-tag"\n');
    const tag = await cli(['up', 'tagged', '--agent', 'tagged', '--task', TASK], { cwd: repo, env, timeoutMs: 300_000 });
    assert.match(tag.stderr, /The npm registry has no version of @openai\/codex tagged "no-such-tag"/, tag.stderr);
    const version = await cli(['up', 'nosuch', '--agent', 'nosuch', '--task', TASK], { cwd: repo, env, timeoutMs: 300_000 });
    assert.notEqual(version.code, 0);
    assert.match(version.stderr, /There is no @openai\/codex@0\.0\.1-does-not-exist-linux-x64 on the npm registry/, version.stderr);
    assert.equal((await containersOf(repo)).filter((c) => c.Labels['dev.agent-sandboxes.name'] === 'nosuch').length, 0);
    assert.doesNotMatch(git(repo, 'branch', '--list'), /sandbox\/nosuch/);
  });
});
