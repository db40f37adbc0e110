import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanUp, cli, cliOk, containersOf, docker, ENGINE_HOST, git, makeRepo, sh, tomlWith } from './helpers';

after(cleanUp);

/** Nothing of a refused sandbox is left: no container, no worktree, no branch, no state. */
async function assertNothingMade(repo: string, name: string): Promise<void> {
  assert.deepEqual(await containersOf(repo), []);
  assert.equal(git(repo, 'branch', '--list', `sandbox/${name}`), '');
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', name)));
  await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'state', name)));
}

describe('volumes are checked before anything is made', () => {
  test('refused: outside the workspace, through a symlink, /, the home folder, the engine socket, .git read-write', async () => {
    const socket = ENGINE_HOST.startsWith('unix://') ? ENGINE_HOST.slice('unix://'.length) : '/var/run/docker.sock';
    const cases: Array<[string, RegExp]> = [
      ['../outside:/data', /outside the workspace/],
      ['./link:/data', /resolves to/],
      ['/:/host', /Volume \/:\/host/],
      ['~:/home-of-user', /home/],
      [`${socket}:/var/run/docker.sock`, /socket/],
      ['./.git:/repo-git', /\.git/],
      ['.:/src', /\.git/],
    ];
    for (const [volume, reason] of cases) {
      const repo = await makeRepo(tomlWith('sleep 300', `volumes = ["${volume}"]\n`));
      const outside = path.join(path.dirname(repo), 'outside');
      await fs.mkdir(outside);
      await fs.symlink(outside, path.join(repo, 'link'));
      const result = await cli(['up', 'vol', '--agent', 'engineer'], { cwd: repo });
      assert.notEqual(result.code, 0, `${volume} must be refused`);
      assert.match(result.stderr, reason, volume);
      await assertNothingMade(repo, 'vol');
    }
  });

  test('a folder outside the workspace is mounted once the user allows it (never by sandbox.toml); :ro holds', async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-allowed-'));
    // Readable by the agent's user (mkdtemp makes it the host user's alone).
    await fs.chmod(outside, 0o755);
    await fs.writeFile(path.join(outside, 'data.txt'), 'shared data\n');
    const repo = await makeRepo(tomlWith('sleep 300', `volumes = ["${outside}:/shared:ro"]\n`));
    assert.notEqual((await cli(['up', 'shared', '--agent', 'engineer'], { cwd: repo })).code, 0);
    await cliOk(['up', 'shared', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: outside } });
    assert.equal((await cliOk(['exec', 'shared', '--', 'cat', '/shared/data.txt'], { cwd: repo })).stdout, 'shared data\n');
    const write = await cli(['exec', 'shared', '--', 'sh', '-c', 'echo x > /shared/new.txt'], { cwd: repo });
    assert.notEqual(write.code, 0);
    await assert.rejects(fs.access(path.join(outside, 'new.txt')));
    await fs.rm(outside, { recursive: true, force: true });
  });
});

describe('secrets', () => {
  test('reach the agent from the host environment, never the container config, labels, files or shown logs', async () => {
    const secret = `sk-test-${randomBytes(12).toString('hex')}`;
    const repo = await makeRepo(
      tomlWith('echo "run: token=$AGENT_TOKEN"; env | grep -c "^AGENT_TOKEN=" ; sleep 300', 'secrets = ["AGENT_TOKEN"]\n'),
    );
    const missing = await cli(['up', 'sec', '--agent', 'engineer'], { cwd: repo, env: { AGENT_TOKEN: '' } });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /needs the secret AGENT_TOKEN, and it is not set/);
    await assertNothingMade(repo, 'sec');

    const env = { AGENT_TOKEN: secret };
    await cliOk(['up', 'sec', '--agent', 'engineer'], { cwd: repo, env });
    // The agent has it, in its environment.
    const seen = await cliOk(['exec', 'sec', '--', 'sh', '-c', `. /run/agent-sandbox/secrets/env; printf %s "$AGENT_TOKEN"`], { cwd: repo });
    assert.equal(seen.stdout, secret);
    // Not in what the engine keeps of the container.
    const [summary] = await containersOf(repo);
    const inspected = JSON.stringify(await docker.getContainer(summary.Id).inspect());
    assert.ok(!inspected.includes(secret), 'the container configuration holds the secret');
    // Not in any file of the repository, its worktrees and state.
    assert.equal((await sh(`grep -rl -- '${secret}' '${repo}' || true`)).trim(), '');
    // The agent printed it: the logs shown mask it.
    const logs = await waitForLogs(repo, 'sec', env, /run: token=/);
    assert.match(logs, /run: token=\*\*\*/);
    assert.ok(!logs.includes(secret));

    // Again after a stop and a start: secrets live in memory, so each start hands them over anew.
    await cliOk(['stop', 'sec'], { cwd: repo });
    await cliOk(['start', 'sec'], { cwd: repo, env });
    const again = await cliOk(['exec', 'sec', '--', 'sh', '-c', `. /run/agent-sandbox/secrets/env; printf %s "$AGENT_TOKEN"`], { cwd: repo });
    assert.equal(again.stdout, secret);
    const relogs = await waitForLogs(repo, 'sec', env, /run: token=[\s\S]*run: token=/);
    assert.equal(relogs.match(/run: token=\*\*\*/g)?.length, 2, relogs);
  });
});

describe('the engine socket', () => {
  test('is never inside, unless the user sets the loudly named opt-in', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'nosock', '--agent', 'engineer'], { cwd: repo });
    const without = await cli(['exec', 'nosock', '--', 'sh', '-c', 'find / -xdev -type s 2>/dev/null; test -e /var/run/docker.sock && echo FOUND'], { cwd: repo });
    assert.equal(without.stdout.trim(), '');

    const up = await cliOk(['up', 'sock', '--agent', 'engineer'], { cwd: repo, env: { AGENT_SANDBOX_DANGEROUSLY_EXPOSE_ENGINE_SOCKET: '1' } });
    assert.match(up.stderr + up.stdout, /WARNING: this sandbox gets the engine's socket/);
    const withSocket = await cli(['exec', 'sock', '--', 'sh', '-c', 'test -S /var/run/docker.sock && echo SOCKET; echo "$DOCKER_HOST"'], { cwd: repo });
    assert.equal(withSocket.stdout, 'SOCKET\nunix:///var/run/docker.sock\n');
  });
});

async function waitForLogs(repo: string, name: string, env: NodeJS.ProcessEnv, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const logs = await cliOk(['logs', name], { cwd: repo, env });
    if (pattern.test(logs.stdout) || Date.now() > deadline) return logs.stdout + logs.stderr;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('the egress allowlist', () => {
  test('the agent reaches exactly the hosts allowed, only through the proxy, and every denial is logged', async () => {
    const repo = await makeRepo(
      tomlWith('sleep 300', 'allow = ["allowed.test", "*.wild.test"]\n').replace('network = "none"', 'network = "nat"'),
    );
    // The test hosts: two web servers this test starts on the engine's own network, answering on 80, 443 and 8080.
    const image = await testImage(repo);
    const hosts = await Promise.all(['allowed', 'denied'].map((name) => startTestHost(image, name)));
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
        assert.doesNotMatch(text, /HELLO-/, `${what} got through:\n${text}`);
      };
      await refused('a name not on the list', connect('denied.test:443'));
      await refused('a name not on the list, plain HTTP', viaProxy('GET http://denied.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n'));
      await refused('the bare domain of a wildcard', connect('wild.test:443'));
      await refused('an allowed host by IP', connect(`${allowedIp}:443`));
      await refused('an allowed host on another port', connect('allowed.test:8080'));
      await refused('an allowed host directly, past the proxy', run(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${allowedIp} 80; echo "[ran]"`));
      await refused('the host machine directly', run(`for ip in ${hostServer.addresses.join(' ')}; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc $ip ${hostServer.port}; done; echo "[ran]"`));
      // No interface but loopback, no DNS server to tunnel through.
      assert.equal((await run('ls /sys/class/net')).trim(), 'lo');
      assert.match(await run('nslookup allowed.test 2>&1; echo "[ran]"'), /\[ran\]/);
      assert.doesNotMatch(await run('nslookup allowed.test 2>&1'), new RegExp(allowedIp.replace(/\./g, '\\.')));
      // The proxy is out of the agent's reach: another container, whose processes it cannot see.
      assert.doesNotMatch(await run('ps -o comm'), /node/);

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
  });
});

/** The image the test repository's sandboxes are built from (built on first use). */
async function testImage(repo: string): Promise<string> {
  return (await cliOk(['build', '--agent', 'engineer'], { cwd: repo })).stdout.trim();
}

/** A web server in a container of its own, answering HELLO-<name> on ports 80, 443 and 8080. */
async function startTestHost(image: string, name: string): Promise<{ ip: string; remove: () => Promise<void> }> {
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
