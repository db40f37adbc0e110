import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { readHardLimits, sandboxUlimits } from '../../src/core/engine/ulimits';
import { buildStep, builtImagePattern, cleanUp, cli, cliOk, containersOf, docker, engineKind, git, makeRepo, REPO_ROOT, tomlWith } from './helpers';

after(cleanUp);

describe('up, the agent and git', () => {
  test('up --wait runs the role command with the task and returns its exit code; the agent commits onto sandbox/NAME', async () => {
    const repo = await makeRepo(
      tomlWith(
        'echo "task=$SANDBOX_TASK name=$SANDBOX_NAME agent=$SANDBOX_AGENT uid=$(id -u)"; git status --short; ' +
          'echo "made by the agent" > agent.txt; git add agent.txt; git commit -q -m "agent: add agent.txt"; ' +
          'echo uncommitted > loose.txt; exit 7',
      ),
    );
    const result = await cli(['up', 'one', '--agent', 'engineer', '--task', 'write a file', '--wait', '--follow'], { cwd: repo });
    assert.equal(result.code, 7, result.stderr);
    assert.match(result.stdout, /task=write a file name=one agent=engineer uid=(\d+)/);
    const uid = Number(/uid=(\d+)/.exec(result.stdout)![1]);
    assert.notEqual(uid, 0, 'the agent must not run as root');
    assert.doesNotMatch(result.stdout, /^\s*[MADR?]/m, 'git status in a fresh sandbox is clean');

    assert.equal(git(repo, 'log', '-1', '--format=%s', 'sandbox/one'), 'agent: add agent.txt');
    assert.equal(git(repo, 'show', 'sandbox/one:agent.txt'), 'made by the agent');
    assert.equal(git(repo, 'rev-parse', 'sandbox/one~1'), git(repo, 'rev-parse', 'main'));
    const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    const written = await fs.stat(path.join(info.worktree, 'loose.txt'));
    assert.equal(written.uid, uid, 'files the agent writes belong to the (non-root) agent user');
    // The host sees the agent's commit and its uncommitted file in the worktree, consistently.
    assert.equal(git(info.worktree, 'status', '--porcelain'), '?? loose.txt');
    // The user's own branch and working tree are untouched.
    assert.equal(git(repo, 'log', '-1', '--format=%s', 'main'), 'initial');
    await assert.rejects(fs.access(path.join(repo, 'agent.txt')));
  });

  test('the container gets the configured limits, network, ports, volumes, env and a non-root user', async () => {
    const repo = await makeRepo(
      `[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "nat"
cpus = 1.5
memory = "300m"
pids = 321
ports = ["3000", "18080:80"]
volumes = ["./fixtures:/fixtures:ro"]
env = { GREETING = "hello", COUNT = 3 }

[agents.engineer]
command = ["sh", "-c", "sleep 300"]
`,
      { 'fixtures/data.txt': 'fixture data\n' },
    );
    await cliOk(['up', 'limits', '--agent', 'engineer'], { cwd: repo });
    const [summary] = await containersOf(repo);
    const inspected = await docker.getContainer(summary.Id).inspect();
    assert.equal(inspected.State.Running, true);
    assert.equal(inspected.HostConfig.NanoCpus, 1.5e9);
    assert.equal(inspected.HostConfig.Memory, 300 * 1024 * 1024);
    assert.equal(inspected.HostConfig.MemorySwap, 300 * 1024 * 1024);
    assert.equal(inspected.HostConfig.PidsLimit, 321);
    assert.equal(inspected.HostConfig.NetworkMode, 'bridge');
    // Docker says ALL; Podman lists the capabilities it dropped. What counts is what the processes have: below.
    if ((await engineKind()) === 'docker') assert.deepEqual(inspected.HostConfig.CapDrop, ['ALL']);
    assert.ok(inspected.HostConfig.SecurityOpt?.includes('no-new-privileges'), JSON.stringify(inspected.HostConfig.SecurityOpt));
    assert.equal(inspected.HostConfig.Init, true);
    assert.deepEqual(inspected.HostConfig.PortBindings['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: '18080' }]);
    assert.equal(inspected.HostConfig.PortBindings['3000/tcp'][0].HostIp, '127.0.0.1');
    assert.ok(inspected.Config.Env.includes('GREETING=hello'));
    assert.ok(inspected.Config.Env.includes('COUNT=3'));
    assert.notEqual(inspected.Config.User.split(':')[0], '0');

    // The init as PID 1 and the agent: no capabilities at all, no new privileges.
    const status = await cliOk(['exec', 'limits', '--', 'sh', '-c', 'grep -E "^(CapEff|CapBnd|CapPrm|NoNewPrivs):" /proc/1/status /proc/self/status'], { cwd: repo });
    const fields = status.stdout.trim().split('\n');
    assert.equal(fields.length, 8, status.stdout);
    for (const line of fields) assert.match(line, /:(Cap(Eff|Bnd|Prm):\s+0{16}|NoNewPrivs:\s+1)$/, line);
    // Explicit ulimits at the machine's hard limits, the same on both engines.
    const expected = sandboxUlimits(readHardLimits());
    const ulimits = await cliOk(['exec', 'limits', '--', 'sh', '-c', 'ulimit -Hn; ulimit -Sn; ulimit -Hu; ulimit -Su'], { cwd: repo });
    const nofile = expected.find((u) => u.Name === 'nofile')!.Hard;
    const nproc = expected.find((u) => u.Name === 'nproc')!.Hard;
    assert.deepEqual(ulimits.stdout.trim().split('\n').map(Number), [nofile, nofile, nproc, nproc]);

    const read = await cli(['exec', 'limits', '--', 'cat', '/fixtures/data.txt'], { cwd: repo });
    assert.equal(read.stdout, 'fixture data\n');
    const write = await cli(['exec', 'limits', '--', 'sh', '-c', 'echo x > /fixtures/new.txt'], { cwd: repo });
    assert.notEqual(write.code, 0, 'a :ro volume is read-only');
    assert.match(write.stderr, /Read-only file system/);

    const [listed] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    const published = listed.ports.map((p: { containerPort: number; hostPort: number; hostIp: string }) => `${p.hostIp}:${p.hostPort}->${p.containerPort}`);
    assert.ok(published.includes('127.0.0.1:18080->80'), JSON.stringify(listed.ports));
    assert.ok(listed.ports.some((p: { containerPort: number; hostPort: number }) => p.containerPort === 3000 && p.hostPort > 0));
  });

  test('network "none" leaves the agent only a loopback interface', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'offline', '--agent', 'engineer'], { cwd: repo });
    const result = await cliOk(['exec', 'offline', '--', 'ls', '/sys/class/net'], { cwd: repo });
    assert.deepEqual(result.stdout.trim().split(/\s+/), ['lo']);
  });

  test('the agent cannot touch the host .git: hooks, config and other branches stay as they were', async () => {
    const repo = await makeRepo(
      tomlWith(
        'git config core.hooksPath /tmp/evil; git branch -f main HEAD 2>/dev/null; git branch stolen; ' +
          'echo "#!/bin/sh" > /run/agent-sandbox/host-objects/../hooks/pre-commit 2>/dev/null; ' +
          'touch /run/agent-sandbox/host-objects/planted 2>/dev/null && echo PLANTED; ' +
          'echo "gitdir: /elsewhere" > /workspace/.git 2>/dev/null && echo REWROTE; ' +
          'git commit -q --allow-empty -m "agent: empty"; ls -a /run/agent-sandbox; exit 0',
      ),
    );
    const configBefore = await fs.readFile(path.join(repo, '.git', 'config'), 'utf8');
    const mainBefore = git(repo, 'rev-parse', 'main');
    const result = await cli(['up', 'hostile', '--agent', 'engineer', '--wait', '--follow'], { cwd: repo });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /PLANTED|REWROTE/);
    assert.equal(await fs.readFile(path.join(repo, '.git', 'config'), 'utf8'), configBefore);
    assert.equal(git(repo, 'rev-parse', 'main'), mainBefore);
    assert.equal(git(repo, 'branch', '--list', 'stolen'), '');
    await assert.rejects(fs.access(path.join(repo, '.git', 'hooks', 'pre-commit')));
    assert.equal(git(repo, 'log', '-1', '--format=%s', 'sandbox/hostile'), 'agent: empty');
  });
});

describe('logs', () => {
  test('logs returns all 100,000 lines of an agent in order, from a new process after the agent ended', async () => {
    const repo = await makeRepo(tomlWith('seq 1 100000 | sed "s/^/line /"'));
    const up = await cli(['up', 'chatty', '--agent', 'engineer', '--wait'], { cwd: repo });
    assert.equal(up.code, 0, up.stderr);
    const logs = await cliOk(['logs', 'chatty'], { cwd: repo });
    const lines = logs.stdout.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 100_000);
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== `line ${i + 1}`) assert.fail(`line ${i + 1} is ${JSON.stringify(lines[i])}`);
    }
  });

  test('logs --follow streams a running agent from its first line and ends when it exits', async () => {
    const repo = await makeRepo(tomlWith('echo first; echo to-stderr >&2; sleep 2; echo last'));
    await cliOk(['up', 'follow', '--agent', 'engineer'], { cwd: repo });
    const followed = await cliOk(['logs', 'follow', '--follow'], { cwd: repo, timeoutMs: 30_000 });
    assert.equal(followed.stdout, 'first\nlast\n');
    assert.equal(followed.stderr, 'to-stderr\n');
  });

  test('an agent that crashes shows its signal exit code, and its output survives', async () => {
    const repo = await makeRepo(tomlWith('echo before the crash; kill -SEGV $$'));
    const up = await cli(['up', 'crash', '--agent', 'engineer', '--wait'], { cwd: repo });
    assert.equal(up.code, 139);
    const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    assert.equal(info.state, 'exited');
    assert.equal(info.exitCode, 139);
    assert.equal((await cliOk(['logs', 'crash'], { cwd: repo })).stdout, 'before the crash\n');
  });
});

describe('ls, exec, stop, start', () => {
  test('ls from a new process lists every sandbox with its details, as a table and as JSON', async () => {
    const repo = await makeRepo(tomlWith('sleep 300', '[agents.reviewer]\ncommand = ["sh", "-c", "exit 0"]\n'));
    await cliOk(['up', 'alpha', '--agent', 'engineer', '--task', 'A'], { cwd: repo });
    await cliOk(['up', 'beta', '--agent', 'reviewer', '--wait'], { cwd: repo });
    const list = JSON.parse((await cliOk(['ls', '--json', '--workspace', repo])).stdout);
    assert.deepEqual(
      list.map((s: { name: string; state: string; agent: string; branch: string; exitCode?: number }) => [s.name, s.state, s.agent, s.branch, s.exitCode]),
      [
        ['alpha', 'running', 'engineer', 'sandbox/alpha', undefined],
        ['beta', 'exited', 'reviewer', 'sandbox/beta', 0],
      ],
    );
    const [alpha] = list;
    assert.equal(alpha.task, 'A');
    assert.match(alpha.containerId, /^[0-9a-f]{64}$/);
    assert.match(alpha.image, await builtImagePattern());
    assert.equal(alpha.engine, await engineKind());
    assert.equal(alpha.base, git(repo, 'rev-parse', 'HEAD'));
    assert.equal((await fs.stat(alpha.worktree)).isDirectory(), true);
    const table = (await cliOk(['ls'], { cwd: repo })).stdout;
    assert.match(table, /^NAME\s+STATE\s+AGENT\s+BRANCH\s+ENGINE/);
    assert.match(table, new RegExp(`\nalpha\\s+running\\s+engineer\\s+sandbox/alpha\\s+${await engineKind()}\\s`));
    assert.match(table, /\nbeta\s+exited \(0\)\s+reviewer\s+sandbox\/beta/);
  });

  test('exec passes the exit code, stdout, stderr and stdin through, as the agent user in /workspace', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'shell', '--agent', 'engineer'], { cwd: repo });
    const result = await cli(['exec', 'shell', '--', 'sh', '-c', 'pwd; id -u; cat; echo oops >&2; exit 42'], { cwd: repo, input: 'from stdin\n' });
    assert.equal(result.code, 42);
    const [pwd, uid, echoed] = result.stdout.trim().split('\n');
    assert.equal(pwd, '/workspace');
    assert.notEqual(uid, '0');
    assert.equal(echoed, 'from stdin');
    assert.equal(result.stderr, 'oops\n');
  });

  test('stop and start change the state; exec on a stopped sandbox fails clearly', async () => {
    const repo = await makeRepo(tomlWith('sleep 300'));
    await cliOk(['up', 'cycle', '--agent', 'engineer'], { cwd: repo });
    await cliOk(['stop', 'cycle'], { cwd: repo });
    const stopped = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout)[0];
    assert.equal(stopped.state, 'exited');
    const exec = await cli(['exec', 'cycle', '--', 'true'], { cwd: repo });
    assert.equal(exec.code, 1);
    assert.match(exec.stderr, /not running/i);
    await cliOk(['start', 'cycle'], { cwd: repo });
    const started = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout)[0];
    assert.equal(started.state, 'running');
  });

  test('max_parallel_agents bounds how many sandboxes run at once', async () => {
    const repo = await makeRepo(tomlWith('sleep 300', '[orchestrator]\nmax_parallel_agents = 1\n'));
    await cliOk(['up', 'first', '--agent', 'engineer'], { cwd: repo });
    const second = await cli(['up', 'second', '--agent', 'engineer'], { cwd: repo });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /max_parallel_agents is 1/);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/second'), '');
  });

  test('a sandbox name that is taken or invalid is refused before anything is made', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    await cliOk(['up', 'taken', '--agent', 'engineer', '--wait'], { cwd: repo });
    const again = await cli(['up', 'taken', '--agent', 'engineer'], { cwd: repo });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    const invalid = await cli(['up', 'Bad Name', '--agent', 'engineer'], { cwd: repo });
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /not a valid sandbox name/);
    assert.equal((await containersOf(repo)).length, 1);
  });

  test('--base starts the sandbox from another commit', async () => {
    const repo = await makeRepo(tomlWith('cat version.txt'), { 'version.txt': 'one\n' });
    const first = git(repo, 'rev-parse', 'HEAD');
    await fs.writeFile(path.join(repo, 'version.txt'), 'two\n');
    git(repo, 'commit', '-q', '-am', 'two');
    const result = await cli(['up', 'old', '--agent', 'engineer', '--base', first, '--wait', '--follow'], { cwd: repo });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'one\n');
    assert.equal(git(repo, 'rev-parse', 'sandbox/old'), first);
  });
});

describe('rm', () => {
  test('rm removes the container, the worktree and the branch, and nothing else', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    await cliOk(['up', 'gone', '--agent', 'engineer', '--wait'], { cwd: repo });
    await cliOk(['up', 'kept', '--agent', 'engineer', '--wait'], { cwd: repo });
    await fs.writeFile(path.join(repo, 'mine.txt'), 'the user\'s own work\n');
    const [gone] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    await cliOk(['rm', 'gone'], { cwd: repo });
    const names = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout).map((s: { name: string }) => s.name);
    assert.deepEqual(names, ['kept']);
    await assert.rejects(fs.access(gone.worktree));
    assert.equal(git(repo, 'branch', '--list', 'sandbox/gone'), '');
    assert.equal(git(repo, 'branch', '--list', '--format=%(refname:short)', 'sandbox/kept'), 'sandbox/kept');
    assert.equal(await fs.readFile(path.join(repo, 'mine.txt'), 'utf8'), 'the user\'s own work\n');
    assert.equal(git(repo, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).length, 2);
    await assert.rejects(docker.getContainer(gone.containerId).inspect());
  });

  test('rm refuses to lose commits merged nowhere or uncommitted files, unless --force', async () => {
    const repo = await makeRepo(tomlWith('echo a > a.txt; git add a.txt; git commit -q -m "agent: a"; echo b > b.txt'));
    await cliOk(['up', 'work', '--agent', 'engineer', '--wait'], { cwd: repo });
    const refused = await cli(['rm', 'work'], { cwd: repo });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /would lose the agent's work: 1 commit on sandbox\/work that no other branch holds and 1 uncommitted file in its worktree \(b\.txt\)/);
    assert.match(refused.stderr, /rm --force work/);
    assert.equal((await containersOf(repo)).length, 1, 'a refused rm removes nothing');
    git(repo, 'merge', '-q', '--ff-only', 'sandbox/work');
    const stillRefused = await cli(['rm', 'work'], { cwd: repo });
    assert.match(stillRefused.stderr, /1 uncommitted file/);
    assert.doesNotMatch(stillRefused.stderr, /commit on/);
    await cliOk(['rm', '--force', 'work'], { cwd: repo });
    assert.equal((await containersOf(repo)).length, 0);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/work'), '');
    assert.equal(git(repo, 'show', 'main:a.txt'), 'a');
  });

  test('rm of an unknown sandbox says so', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    const result = await cli(['rm', 'nothing'], { cwd: repo });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /There is no sandbox named "nothing"/);
  });
});

describe('failures leave nothing half made and say what to do', () => {
  test('a container that fails to start (its host port is taken) takes its worktree and branch with it', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const repo = await makeRepo(tomlWith('sleep 300').replace('network = "none"', `network = "nat"\nports = ["${port}:80"]`));
      const result = await cli(['up', 'broken', '--agent', 'engineer'], { cwd: repo });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`Starting the sandbox "broken": .*127\\.0\\.0\\.1:${port}`));
      assert.equal((await containersOf(repo)).length, 0);
      assert.equal(git(repo, 'branch', '--list', 'sandbox/broken'), '');
      assert.equal(git(repo, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).length, 1);
      await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'state', 'broken')));
      await assert.rejects(fs.access(path.join(repo, '.git', 'agent-sandboxes', 'worktrees', 'broken')));
      assert.equal(JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout).length, 0);
    } finally {
      blocker.close();
    }
  });

  test('a role that does not exist is refused with the roles there are, also one named like an object member', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    for (const role of ['nope', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const result = await cli(['up', 'x', '--agent', role], { cwd: repo });
      assert.equal(result.code, 1, `${role}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`There is no agent role "${role}"\\.\\s+Roles in .*sandbox\\.toml: engineer\\.`), role);
      assert.doesNotMatch(result.stderr, /TypeError/);
    }
    assert.equal((await containersOf(repo)).length, 0);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/x'), '');
  });

  test('an agent command that does not exist fails, and its log says why', async () => {
    const repo = await makeRepo(tomlWith('exit 0').replace('command = ["sh", "-c", "exit 0"]', 'command = ["/no/such/agent"]'));
    const result = await cli(['up', 'missing', '--agent', 'engineer', '--wait'], { cwd: repo });
    const logs = await cli(['logs', 'missing'], { cwd: repo });
    const [info] = JSON.parse((await cliOk(['ls', '--json'], { cwd: repo })).stdout);
    assert.equal(info.state, 'exited');
    if ((await engineKind()) === 'docker') {
      // Docker's init (tini) names the command and ends with 127, as a shell would.
      assert.equal(result.code, 127);
      assert.match(logs.stdout + logs.stderr, /\/no\/such\/agent.*No such file or directory/);
    } else {
      // Podman's init (catatonit) ends with 1 and does not name the command.
      assert.equal(result.code, 1);
      assert.match(logs.stdout + logs.stderr, /catatonit.*failed to exec pid1: No such file or directory/);
    }
    assert.equal(info.exitCode, result.code);
  });

  test('an engine that is down says so and how to start one', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    const result = await cli(['up', 'x', '--agent', 'engineer'], { cwd: repo, env: { DOCKER_HOST: 'unix:///tmp/agent-sandboxes-no-such-engine.sock' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Cannot reach the container engine at unix:\/\/\/tmp\/agent-sandboxes-no-such-engine\.sock \(ENOENT\)/);
    assert.match(result.stderr, /systemctl start docker/);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/x'), '');
  });

  test('a registry that cannot be reached fails the pull with a clear message', async () => {
    const repo = await makeRepo('[sandbox.container]\nimage = "127.0.0.1:9/agent-sandboxes/none:1"\nnetwork = "none"\n');
    const result = await cli(['up', 'x'], { cwd: repo });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Could not pull the image 127\.0\.0\.1:9\/agent-sandboxes\/none:1/);
    assert.match(result.stderr, /set `dockerfile` instead of `image`/);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/x'), '');
  });

  test('a Dockerfile that fails to build shows the failing step and makes nothing', async () => {
    const repo = await makeRepo(tomlWith('exit 0').replace('.sandbox/Dockerfile', 'broken/Dockerfile'), {
      'broken/Dockerfile': 'FROM scratch\nCOPY missing-file /\n',
    });
    const result = await cli(['up', 'x', '--agent', 'engineer'], { cwd: repo });
    assert.equal(result.code, 1);
    assert.match(result.stderr, buildStep(2, 'COPY missing-file'));
    assert.match(result.stderr, /The image (localhost\/)?agent-sandbox\/project:[0-9a-f]+ failed to build: .*missing-file/);
    assert.equal((await containersOf(repo)).length, 0);
    assert.equal(git(repo, 'branch', '--list', 'sandbox/x'), '');
  });

  test('a malformed sandbox.toml names the file, line and key', async () => {
    const repo = await makeRepo(tomlWith('exit 0').replace('cpus = 1', 'cpus = "two"'));
    const result = await cli(['ls'], { cwd: repo });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /sandbox\.toml:5: sandbox\.container\.cpus: /);
  });

  test('a folder that is not a git repository is refused with the next step', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    await fs.rm(path.join(repo, '.git'), { recursive: true });
    const result = await cli(['ls'], { cwd: repo, env: { GIT_CEILING_DIRECTORIES: path.dirname(repo) } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /is not inside a git repository/);
    assert.match(result.stderr, /git init/);
  });

  test('usage errors exit 2 with the usage', async () => {
    const result = await cli(['up']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /takes one sandbox NAME/);
    assert.match(result.stderr, /Usage:/);
  });

  test('global options stand before or after the command, as with git -C and docker -H', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    const elsewhere = os.tmpdir();
    for (const args of [['--workspace', repo, 'ls'], ['-w', repo, 'ls'], [`--workspace=${repo}`, 'ls'], ['ls', '--workspace', repo], ['--workspace', repo, 'ls', '--json']]) {
      const result = await cli(args, { cwd: elsewhere });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      if (args.includes('--json')) assert.deepEqual(JSON.parse(result.stdout), []);
      else assert.match(result.stdout, /No sandboxes in this workspace/, args.join(' '));
    }
    // A command named like a global option's value is not mistaken for it.
    const valueLikeCommand = await cli(['--workspace', 'ls'], { cwd: elsewhere });
    assert.equal(valueLikeCommand.code, 2);
    const unknownBefore = await cli(['--agent', 'x', 'up', 'y'], { cwd: repo });
    assert.equal(unknownBefore.code, 2);
    assert.match(unknownBefore.stderr, /--agent/);
  });

  test('--help, help COMMAND and COMMAND --help print usage and exit 0; --version prints the version', async () => {
    const version = (JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const args of [['--help'], ['-h'], ['help']]) {
      const result = await cli(args);
      assert.equal(result.code, 0, args.join(' '));
      assert.match(result.stdout, /^Usage:$/m);
      assert.match(result.stdout, /agent-sandbox sync NAME --mode/);
    }
    for (const args of [['help', 'up'], ['up', '--help'], ['--help', 'up'], ['up', '-h']]) {
      const result = await cli(args);
      assert.equal(result.code, 0, args.join(' '));
      assert.match(result.stdout, /^Usage: agent-sandbox up NAME \[--agent ROLE\]/m, args.join(' '));
    }
    for (const args of [['--version'], ['-V'], ['ls', '--version']]) {
      const result = await cli(args);
      assert.equal(result.code, 0, args.join(' '));
      assert.equal(result.stdout, `agent-sandbox ${version}\n`);
    }
    const unknown = await cli(['help', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown command "nope"/);
    const nothing = await cli([]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stdout, /^Usage:$/m);
  });
});

describe('build', () => {
  test('build streams the output, skips an unchanged build and rebuilds a changed one', async () => {
    const repo = await makeRepo(tomlWith('exit 0'));
    // A Dockerfile no earlier run has built, so that the first build is a real one.
    await fs.appendFile(path.join(repo, '.sandbox', 'Dockerfile'), `ENV RUN_ID=${process.pid}-${Date.now()}\n`);
    const first = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    assert.match(first.stderr, buildStep(1, 'FROM scratch'));
    const tag = first.stdout.trim();
    assert.match(tag, await builtImagePattern());
    assert.ok(await docker.getImage(tag).inspect(), 'the image is there under the name build printed');
    const second = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    assert.equal(second.stdout.trim(), tag);
    assert.match(second.stderr, /build skipped/);
    await fs.appendFile(path.join(repo, '.sandbox', 'Dockerfile'), 'ENV CHANGED=1\n');
    const third = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    assert.notEqual(third.stdout.trim(), tag);
    assert.match(third.stderr, buildStep('\\d+', 'ENV CHANGED=1'));
    await fs.writeFile(path.join(repo, '.sandbox', '.dockerignore'), 'ignored.txt\n');
    const withIgnore = (await cliOk(['build', '--agent', 'engineer'], { cwd: repo })).stdout.trim();
    await fs.writeFile(path.join(repo, '.sandbox', 'ignored.txt'), 'does not count');
    const afterIgnored = await cliOk(['build', '--agent', 'engineer'], { cwd: repo });
    assert.equal(afterIgnored.stdout.trim(), withIgnore, 'a file .dockerignore excludes does not trigger a build');
    assert.match(afterIgnored.stderr, /build skipped/);
    const forced = await cliOk(['build', '--agent', 'engineer', '--force'], { cwd: repo });
    assert.match(forced.stderr, buildStep(1, 'FROM scratch'));
  });

  test('a disk limit on a storage driver that cannot enforce it warns and goes on', async () => {
    const repo = await makeRepo(tomlWith('exit 0').replace('pids = 256', 'pids = 256\ndisk = "1g"'));
    const info = await docker.info();
    const result = await cli(['up', 'disk', '--agent', 'engineer', '--wait'], { cwd: repo });
    assert.equal(result.code, 0, result.stderr);
    const [c] = await containersOf(repo);
    const inspected = await docker.getContainer(c.Id).inspect();
    if (inspected.HostConfig.StorageOpt?.size) assert.equal(inspected.HostConfig.StorageOpt.size, String(1024 ** 3));
    else assert.match(result.stderr, new RegExp(`warning: the engine cannot limit disk size here .*${info.Driver === 'overlay2' ? 'overlay' : ''}`));
  });
});

