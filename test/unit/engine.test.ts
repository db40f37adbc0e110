import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentRole } from '../../src/core/config/model';
import { allowedEngineHostsFromEnv, chooseEndpoint, effectiveSelection, Engine, engineHostAllowed, normalizeEvent, PODMAN_ROOTFUL_SOCKET, podmanRootlessSocket } from '../../src/core/engine/engine';
import { EngineUnavailableError, SandboxError } from '../../src/core/errors';
import type { EngineEvent, EngineInfo } from '../../src/core/engine/engine';
import { containerOptions, LOG_MAX_BYTES } from '../../src/core/sandbox/container';
import { networkName } from '../../src/core/sandbox/records';
import type { SandboxRecord } from '../../src/core/sandbox/records';
import { MAX_NOFILE, readHardLimits, sandboxUlimits } from '../../src/core/engine/ulimits';
import type { WorktreePaths } from '../../src/core/git/worktrees';

const DOCKER = '/var/run/docker.sock';
const ROOTFUL = '/run/podman/podman.sock';
const ROOTLESS = '/run/user/1000/podman/podman.sock';

/** chooseEndpoint with these sockets present, as user 1000 with XDG_RUNTIME_DIR set, unless told otherwise. */
function choose(selection: Parameters<typeof chooseEndpoint>[0], sockets: string[], env: NodeJS.ProcessEnv = {}, uid = 1000) {
  return chooseEndpoint(selection, { XDG_RUNTIME_DIR: `/run/user/${uid}`, ...env }, (s) => sockets.includes(s), uid);
}

describe('chooseEndpoint', () => {
  test('auto: DOCKER_HOST first, whatever sockets exist', () => {
    const choice = choose({ engine: 'auto' }, [DOCKER, ROOTFUL], { DOCKER_HOST: 'unix:///elsewhere.sock' });
    assert.deepEqual(choice, { endpoint: 'unix:///elsewhere.sock', candidates: ['unix:///elsewhere.sock'], tried: ['DOCKER_HOST=unix:///elsewhere.sock'] });
  });

  test('auto: the sockets that exist, in order: Docker, rootful Podman, rootless Podman', () => {
    assert.deepEqual(choose({ engine: 'auto' }, [ROOTLESS, ROOTFUL, DOCKER]).candidates, [`unix://${DOCKER}`, `unix://${ROOTFUL}`, `unix://${ROOTLESS}`]);
    assert.equal(choose({ engine: 'auto' }, [ROOTLESS, ROOTFUL]).endpoint, `unix://${ROOTFUL}`);
    assert.equal(choose({ engine: 'auto' }, [ROOTLESS]).endpoint, `unix://${ROOTLESS}`);
    assert.equal(choose({ engine: 'auto' }, [ROOTLESS]).expect, undefined);
  });

  test('auto with no socket at all: Docker\'s, and every place looked at', () => {
    const choice = choose({ engine: 'auto' }, []);
    assert.equal(choice.endpoint, `unix://${DOCKER}`);
    assert.deepEqual(choice.candidates, []);
    assert.deepEqual(choice.tried, [`unix://${DOCKER}`, `unix://${ROOTFUL}`, `unix://${ROOTLESS}`]);
  });

  test('the rootless socket without XDG_RUNTIME_DIR is under /run/user/UID', () => {
    assert.equal(podmanRootlessSocket({}, 1234), '/run/user/1234/podman/podman.sock');
    assert.equal(podmanRootlessSocket({ XDG_RUNTIME_DIR: '/tmp/xdg' }, 1234), '/tmp/xdg/podman/podman.sock');
  });

  test('docker: DOCKER_HOST, else Docker\'s socket; it must be Docker', () => {
    assert.deepEqual(choose({ engine: 'docker' }, [ROOTFUL]), { endpoint: `unix://${DOCKER}`, expect: 'docker', candidates: [`unix://${DOCKER}`], tried: [`unix://${DOCKER}`] });
    assert.equal(choose({ engine: 'docker' }, [], { DOCKER_HOST: 'tcp://h:2375' }).endpoint, 'tcp://h:2375');
  });

  test('podman: Podman\'s sockets only, ignoring DOCKER_HOST and Docker\'s socket; it must be Podman', () => {
    const both = choose({ engine: 'podman' }, [DOCKER, ROOTFUL, ROOTLESS], { DOCKER_HOST: `unix://${DOCKER}` });
    assert.deepEqual([both.endpoint, both.expect], [`unix://${ROOTLESS}`, 'podman']);
    assert.equal(choose({ engine: 'podman' }, [ROOTFUL]).endpoint, `unix://${ROOTFUL}`);
  });

  test('podman: root tries the rootful socket first, a user its own rootless one', () => {
    const rootSockets = ['/run/podman/podman.sock', '/run/user/0/podman/podman.sock'];
    assert.deepEqual(choose({ engine: 'podman' }, rootSockets, {}, 0).candidates, rootSockets.map((s) => `unix://${s}`));
    assert.deepEqual(choose({ engine: 'podman' }, [ROOTFUL, ROOTLESS], {}, 1000).candidates, [`unix://${ROOTLESS}`, `unix://${ROOTFUL}`]);
  });

  test('podman with no socket: the rootful one for root, the rootless one for a user', () => {
    assert.equal(choose({ engine: 'podman' }, [], {}, 0).endpoint, `unix://${ROOTFUL}`);
    assert.equal(choose({ engine: 'podman' }, [], {}, 1000).endpoint, `unix://${ROOTLESS}`);
  });

  test('an explicit host wins over everything, and keeps the kind asked for', () => {
    const choice = choose({ engine: 'podman', host: 'unix:///srv/p.sock' }, [DOCKER, ROOTFUL], { DOCKER_HOST: 'tcp://x:1' });
    assert.deepEqual(choice, { endpoint: 'unix:///srv/p.sock', expect: 'podman', candidates: ['unix:///srv/p.sock'], tried: ['unix:///srv/p.sock'] });
    assert.equal(choose({ engine: 'auto', host: 'tcp://y:2' }, []).expect, undefined);
  });
});

describe('effectiveSelection', () => {
  const toml = { engine: 'podman' as const, host: 'unix:///run/podman/podman.sock' };
  test('settings left at auto and empty: sandbox.toml\'s', () => {
    assert.deepEqual(effectiveSelection(toml, { engine: 'auto', host: '' }), toml);
    assert.deepEqual(effectiveSelection(toml, undefined), toml);
    assert.deepEqual(effectiveSelection(toml, { host: '   ' }), toml);
  });

  test('a setting that names an engine or a host replaces both of sandbox.toml\'s', () => {
    assert.deepEqual(effectiveSelection(toml, { engine: 'docker' }), { engine: 'docker' });
    assert.deepEqual(effectiveSelection(toml, { engine: 'auto', host: 'tcp://h:2375' }), { engine: 'auto', host: 'tcp://h:2375' });
    assert.deepEqual(effectiveSelection({ engine: 'auto' }, { engine: 'podman', host: ' unix:///p.sock ' }), { engine: 'podman', host: 'unix:///p.sock' });
  });
});

describe('normalizeEvent', () => {
  const event = (Action: string): EngineEvent => ({ Type: 'container', Action, Actor: { ID: 'c1', Attributes: { 'dev.agent-sandboxes.name': 'one' } } });

  test('Podman\'s remove is Docker\'s destroy, died is die; labels stay', () => {
    assert.equal(normalizeEvent(event('remove')).Action, 'destroy');
    assert.equal(normalizeEvent(event('died')).Action, 'die');
    assert.deepEqual(normalizeEvent(event('remove')).Actor, event('remove').Actor);
  });

  test('Docker\'s own words, exec events and Podman\'s extra ones pass as they are', () => {
    for (const action of ['create', 'start', 'die', 'destroy', 'stop', 'kill', 'init', 'cleanup', 'exec_start: sh -c true', 'health_status: healthy']) {
      assert.equal(normalizeEvent(event(action)).Action, action);
    }
  });
});

describe('ulimits', () => {
  const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             96364                96364                processes
Max open files            1024                 20000                files
Max locked memory         8388608              8388608              bytes
`;
  const noSysctl = () => undefined;

  test('reads the hard limits of open files and processes from /proc/self/limits', () => {
    assert.deepEqual(readHardLimits(LIMITS, noSysctl), { nofile: 20000, nproc: 96364 });
    assert.deepEqual(readHardLimits(LIMITS, (name) => (name === 'kernel/pid_max' ? 32768 : 1048576)), { nofile: 20000, nproc: 96364, nrOpen: 1048576, pidMax: 32768 });
    assert.deepEqual(readHardLimits(LIMITS.replace('96364                processes', 'unlimited            processes'), noSysctl), { nofile: 20000, nproc: undefined });
    assert.equal(readHardLimits('nothing here\n', noSysctl), undefined);
  });

  test('soft = hard = the machine\'s hard limit, capped by nr_open, pid_max and 1048576 files', () => {
    assert.deepEqual(sandboxUlimits({ nofile: 20000, nproc: 96364, pidMax: 32768, nrOpen: 1048576 }), [
      { Name: 'nofile', Soft: 20000, Hard: 20000 },
      { Name: 'nproc', Soft: 32768, Hard: 32768 },
    ]);
    assert.deepEqual(sandboxUlimits({ nofile: 4_000_000, nproc: undefined, nrOpen: 2_000_000 }), [
      { Name: 'nofile', Soft: MAX_NOFILE, Hard: MAX_NOFILE },
      { Name: 'nproc', Soft: 4 * 1024 * 1024, Hard: 4 * 1024 * 1024 },
    ]);
  });

  test('where the limits cannot be read (not Linux), none are set', () => {
    assert.deepEqual(sandboxUlimits(undefined), []);
  });

  test('this machine\'s are at or under what this process may have', () => {
    const here = readHardLimits();
    if (!here) return;
    for (const limit of sandboxUlimits(here)) {
      const hard = limit.Name === 'nofile' ? here.nofile : here.nproc;
      if (hard !== undefined) assert.ok(limit.Hard <= hard, `${limit.Name} ${limit.Hard} > ${hard}`);
      assert.equal(limit.Soft, limit.Hard);
    }
  });
});

describe('containerOptions on each engine', () => {
  const record: SandboxRecord = { name: 'one', agent: 'engineer', branch: 'sandbox/one', base: 'abc', task: 't', image: 'img', container: 'c-one', createdAt: '' };
  const role: AgentRole = {
    name: 'engineer',
    command: ['sh'],
    container: { network: 'nat', cpus: 1, memoryBytes: 2 ** 30, pids: 64, ports: [], volumes: [{ hostPath: '/data', containerPath: '/data', readOnly: true }], env: {}, secrets: [] },
  };
  const paths = { worktree: '/r/.git/agent-sandboxes/worktrees/one', gitFile: '/r/.git/agent-sandboxes/state/one/git-file', privateGitDir: '/r/.git/agent-sandboxes/state/one/git' } as WorktreePaths;
  const repo = { root: '/r', commonDir: '/r/.git' };
  const user = { uid: 1000, gid: 1001, chownNeeded: true };
  const ulimits = [{ Name: 'nofile', Soft: 20000, Hard: 20000 }];
  const engine = (kind: 'docker' | 'podman', extra: Partial<EngineInfo> = {}): EngineInfo => ({ kind, version: '1', apiVersion: '1.41', rootless: false, selinux: false, ...extra });
  const options = (info: EngineInfo) => containerOptions(record, role, paths, repo, user, info, ulimits).HostConfig!;

  test('Docker: uid/gid on the tmpfs home, bridge, init, ulimits, no user namespace, no relabelling', () => {
    const host = options(engine('docker'));
    assert.deepEqual(host.Tmpfs, { '/home/agent': 'rw,exec,uid=1000,gid=1001,mode=0700' });
    assert.equal(host.NetworkMode, 'bridge');
    assert.equal(host.Init, true);
    assert.deepEqual(host.Ulimits, ulimits);
    assert.equal(host.UsernsMode, undefined);
    assert.deepEqual(host.Binds, [
      `${paths.worktree}:/workspace:rw`,
      `${paths.gitFile}:/workspace/.git:ro`,
      `${paths.privateGitDir}:/run/agent-sandbox/git:rw`,
      `${path.join('/r/.git', 'objects')}:/run/agent-sandbox/host-objects:ro`,
      '/data:/data:ro',
    ]);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
  });

  test('rootful Podman: U (the container user) on the tmpfs home instead of uid/gid; bridge; the same limits', () => {
    const host = options(engine('podman'));
    assert.deepEqual(host.Tmpfs, { '/home/agent': 'rw,exec,U,mode=0700' });
    assert.equal(host.NetworkMode, 'bridge');
    assert.equal(host.UsernsMode, undefined);
    assert.deepEqual(host.Ulimits, ulimits);
    assert.equal(host.Init, true);
    assert.deepEqual(host, { ...options(engine('docker')), Tmpfs: host.Tmpfs, LogConfig: host.LogConfig });
  });

  test('the agent\'s output kept on disk is capped: Docker rotates three json-file logs, Podman takes one max-size', () => {
    assert.deepEqual(options(engine('docker')).LogConfig, { Type: 'json-file', Config: { 'max-size': String(LOG_MAX_BYTES / 3), 'max-file': '3' } });
    assert.deepEqual(options(engine('podman')).LogConfig, { Type: 'json-file', Config: { 'max-size': String(LOG_MAX_BYTES) } });
    assert.equal(LOG_MAX_BYTES, 192 * 1024 ** 2);
  });

  test('rootless Podman: keep-id, so the agent\'s files are the host user\'s; NAT is slirp4netns', () => {
    const host = options(engine('podman', { rootless: true }));
    assert.equal(host.UsernsMode, 'keep-id');
    assert.equal(host.NetworkMode, 'slirp4netns');
    const none = containerOptions(record, { ...role, container: { ...role.container, network: 'none' } }, paths, repo, user, engine('podman', { rootless: true }), ulimits).HostConfig!;
    assert.equal(none.NetworkMode, 'none');
  });

  test('SELinux: the mounts Agent Sandboxes makes are relabelled (z), the user\'s volumes are not', () => {
    for (const info of [engine('docker', { selinux: true }), engine('podman', { selinux: true })]) {
      const binds = options(info).Binds!;
      assert.deepEqual(binds.slice(0, 4).map((b) => b.split(':').slice(2).join(':')), ['rw,z', 'ro,z', 'rw,z', 'ro,z']);
      assert.equal(binds[4], '/data:/data:ro');
    }
  });

  test('the network reads back as sandbox.toml names it', () => {
    assert.equal(networkName('bridge'), 'nat');
    assert.equal(networkName('default'), 'nat');
    assert.equal(networkName('slirp4netns'), 'nat');
    assert.equal(networkName('slirp4netns:port_handler=rootlesskit'), 'nat');
    assert.equal(networkName('none'), 'none');
    assert.equal(networkName('host'), 'host');
    assert.equal(networkName(undefined), undefined);
  });
});

describe('what an engine error says', () => {
  const refused = Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' });
  const withPath = <T>(podman: boolean, run: () => T): T => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-path-'));
    if (podman) {
      writeFileSync(path.join(dir, 'podman'), '#!/bin/sh\n');
      chmodSync(path.join(dir, 'podman'), 0o755);
    }
    const saved = process.env.PATH;
    process.env.PATH = dir;
    try {
      return run();
    } finally {
      process.env.PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const unreachable = (engine: Engine, podman: boolean) => withPath(podman, () => engine.translate('x', refused)) as EngineUnavailableError;

  test('an unreachable DOCKER_HOST, no Podman: how to start either, as before', () => {
    const error = unreachable(new Engine({ host: 'unix:///tmp/none.sock', tried: ['DOCKER_HOST=unix:///tmp/none.sock'] }), false);
    assert.ok(error instanceof EngineUnavailableError);
    assert.equal(error.message, 'Cannot reach the container engine at unix:///tmp/none.sock (ENOENT).');
    assert.equal(error.hint, 'Start one: Docker with `sudo systemctl start docker` (or `sudo dockerd &`), Podman with `systemctl --user start podman.socket`; or set DOCKER_HOST to an engine that runs.');
    assert.equal(error.podmanSocket, undefined);
  });

  test('auto found nothing and Podman is installed: its service is not running, how to start it, and where we looked', () => {
    const tried = ['unix:///var/run/docker.sock', `unix://${PODMAN_ROOTFUL_SOCKET}`];
    const error = unreachable(new Engine({ host: 'unix:///var/run/docker.sock', tried }), true);
    const socket = process.getuid?.() === 0 ? PODMAN_ROOTFUL_SOCKET : podmanRootlessSocket()!;
    assert.equal(error.podmanSocket, socket);
    assert.match(error.hint!, /^Podman is installed but its API service is not running: start it with `(sudo systemctl|systemctl --user) start podman\.socket` \(or without systemd: `podman system service --time=0 unix:\/\/\S+ &`\)\.\n/);
    assert.match(error.hint!, /\nOr start Docker with `sudo systemctl start docker`/);
    assert.match(error.hint!, /\nLooked for an engine at unix:\/\/\/var\/run\/docker\.sock, unix:\/\/\/run\/podman\/podman\.sock\.$/);
  });

  test('engine = "podman" at a socket of its own: only the command that serves that socket, never Docker', () => {
    const error = unreachable(new Engine({ host: 'unix:///srv/p.sock', expect: 'podman' }), true);
    assert.equal(error.podmanSocket, '/srv/p.sock');
    assert.equal(error.hint!.split('\n')[0], 'Podman is installed but its API service is not running: start it with `podman system service --time=0 unix:///srv/p.sock &`.');
    assert.doesNotMatch(error.hint!, /docker/i);
  });

  test('engine = "podman" without Podman: install it', () => {
    const error = unreachable(new Engine({ host: `unix://${PODMAN_ROOTFUL_SOCKET}`, expect: 'podman' }), false);
    assert.equal(error.podmanSocket, undefined);
    assert.match(error.hint!, /^Podman is not installed: `sudo apt-get install podman catatonit`/);
  });

  test('engine = "docker": Docker only, even with Podman installed', () => {
    const error = unreachable(new Engine({ host: 'unix:///var/run/docker.sock', expect: 'docker' }), true);
    assert.equal(error.podmanSocket, undefined);
    assert.match(error.hint!, /^Start Docker with `sudo systemctl start docker`/);
    assert.doesNotMatch(error.hint!, /podman/i);
  });

  test('Podman without catatonit: install it', () => {
    const engineError = Object.assign(new Error('(HTTP code 500) server error - container create: container-init binary not found on the host: stat /usr/libexec/podman/catatonit: no such file or directory'), {
      json: { message: 'container create: container-init binary not found on the host: stat /usr/libexec/podman/catatonit: no such file or directory' },
    });
    const error = new Engine({ host: 'unix:///x.sock' }).translate('Creating the container for "a"', engineError) as SandboxError;
    assert.ok(error instanceof SandboxError);
    assert.match(error.message, /^Creating the container for "a": Podman cannot run an init process as PID 1 in the sandbox: its init, catatonit, is missing \(container create: container-init binary not found/);
    assert.match(error.hint!, /apt-get install catatonit/);
  });

  test('ulimits beyond the engine\'s own: says which limits and why', () => {
    const engineError = { json: { message: 'runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted' } };
    const error = new Engine({ host: 'unix:///x.sock' }).translate('Starting the sandbox "a"', engineError) as SandboxError;
    assert.match(error.message, /^Starting the sandbox "a": the engine cannot give the sandbox its ulimits \(runc/);
    assert.match(error.hint!, /at least as high as `ulimit -Hn` and `ulimit -Hu`/);
  });
});

describe('reads that trip over a container exiting (Podman before 4.4)', () => {
  const engine = new Engine({ host: 'unix:///x.sock' });
  const exitedMidRead = { json: { message: 'read /proc/30209/cgroup: no such process' } };

  test('are tried again, and answer once the race has passed', async () => {
    let calls = 0;
    const answer = await engine.read('Listing containers', async () => {
      calls++;
      if (calls < 3) throw exitedMidRead;
      return ['a'];
    });
    assert.deepEqual(answer, ['a']);
    assert.equal(calls, 3);
  });

  test('give up after the attempts allowed, saying what failed', async () => {
    let calls = 0;
    await assert.rejects(
      engine.read('Listing containers', async () => {
        calls++;
        throw exitedMidRead;
      }, 2),
      (error: Error) => error instanceof SandboxError && /^Listing containers: read \/proc\/30209\/cgroup: no such process$/.test(error.message),
    );
    assert.equal(calls, 2);
  });

  test('any other failure is not tried again', async () => {
    let calls = 0;
    await assert.rejects(
      engine.read('Listing containers', async () => {
        calls++;
        throw { json: { message: 'no such container' } };
      }),
      /Listing containers: no such container/,
    );
    assert.equal(calls, 1);
  });
});

describe('engine_host needs the user\'s consent unless it is one of this machine\'s own engines', () => {
  const env = { XDG_RUNTIME_DIR: '/run/user/1000' };

  test('DOCKER_HOST, Docker\'s and Podman\'s usual sockets pass without asking, written either way', () => {
    for (const host of ['unix:///var/run/docker.sock', 'unix:///run/docker.sock', 'unix:///run/podman/podman.sock', 'unix:///run/user/1000/podman/podman.sock', 'unix:///run//docker.sock']) {
      assert.equal(engineHostAllowed(host, [], env, 1000), true, host);
    }
    assert.equal(engineHostAllowed('tcp://10.0.0.5:2375', [], { ...env, DOCKER_HOST: 'tcp://10.0.0.5:2375' }, 1000), true);
  });

  test('any other address, tcp or unix, needs to be listed by the user', () => {
    for (const host of ['tcp://attacker.example:2375', 'https://10.0.0.5:2376', 'unix:///tmp/forwarded.sock', 'unix:///run/user/1001/podman/podman.sock']) {
      assert.equal(engineHostAllowed(host, [], env, 1000), false, host);
    }
    assert.equal(engineHostAllowed('tcp://build.example:2375', ['tcp://build.example:2375/'], env, 1000), true);
    assert.equal(engineHostAllowed('unix:///tmp/forwarded.sock', ['unix:///tmp/forwarded.sock'], env, 1000), true);
  });

  test('AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS lists addresses separated by commas', () => {
    assert.deepEqual(allowedEngineHostsFromEnv({ AGENT_SANDBOX_ALLOWED_ENGINE_HOSTS: ' tcp://a:1, unix:///x.sock,' }), ['tcp://a:1', 'unix:///x.sock']);
    assert.deepEqual(allowedEngineHostsFromEnv({}), []);
  });
});
