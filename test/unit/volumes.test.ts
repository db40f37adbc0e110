import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { VolumeMount } from '../../src/core/config/model';
import { ConfigError, SandboxError } from '../../src/core/errors';
import { errorForTerminal } from '../../src/cli/errors';
import { presentError } from '../../src/ui/errors';
import {
  ALLOWED_VOLUME_PATHS_ENV,
  ALLOWED_VOLUME_PATHS_SETTING,
  allowedVolumePathsFromEnv,
  checkBuildSources,
  checkVolumes,
  defaultEngineSockets,
  hostToolFolders,
} from '../../src/core/isolation/volumes';
import type { VolumePolicy } from '../../src/core/isolation/volumes';

/*
 * Layout, all in one temporary folder (T):
 *   T/home/user                      the fake home directory
 *   T/home/user/projects/ws          the workspace, with ws/.git/hooks, ws/fixtures, ws/link -> T/outside
 *   T/outside, T/a/b, T/a/bc         folders outside the workspace
 *   T/run/engine.sock                a real unix socket, named as the engine's
 *   T/run/other/other.sock           a real unix socket no list names
 */
let T: string;
let home: string;
let ws: string;
let gitDir: string;
let runDir: string;
let engineSocket: string;
let otherSocket: string;
const servers: Server[] = [];

function listen(socketPath: string): Promise<void> {
  const server = createServer();
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
}

before(async () => {
  T = await realpath(await mkdtemp(path.join(os.tmpdir(), 'volumes-test-')));
  home = path.join(T, 'home', 'user');
  ws = path.join(home, 'projects', 'ws');
  gitDir = path.join(ws, '.git');
  runDir = path.join(T, 'run');
  engineSocket = path.join(runDir, 'engine.sock');
  otherSocket = path.join(runDir, 'other', 'other.sock');
  for (const dir of [path.join(gitDir, 'hooks'), path.join(ws, 'fixtures'), path.join(T, 'outside'), path.join(T, 'a', 'b'), path.join(T, 'a', 'bc'), path.join(runDir, 'other')]) {
    await mkdir(dir, { recursive: true });
  }
  await writeFile(path.join(ws, 'fixtures', 'data.json'), '{}');
  await symlink(path.join(T, 'outside'), path.join(ws, 'link'));
  await symlink('/etc', path.join(ws, 'etc-link'));
  await listen(engineSocket);
  await listen(otherSocket);
});

after(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await rm(T, { recursive: true, force: true });
});

function policy(overrides: Partial<VolumePolicy> = {}): VolumePolicy {
  return { workspaceRoot: ws, gitCommonDir: gitDir, allowedOutside: [], home, engineSockets: [engineSocket], ...overrides };
}

function volume(hostPath: string, readOnly = false, containerPath = '/mnt/v'): VolumeMount {
  return { hostPath, containerPath, readOnly };
}

async function accepts(volumes: VolumeMount[], overrides: Partial<VolumePolicy> = {}): Promise<void> {
  const before = structuredClone(volumes);
  await checkVolumes(volumes, policy(overrides));
  assert.deepEqual(volumes, before, 'the check must not change the volumes');
}

/** The refusal, checked to be a SandboxError that names the volume as host:container and says each of `says`. */
async function refuses(mount: VolumeMount, says: (string | RegExp)[], overrides: Partial<VolumePolicy> = {}): Promise<SandboxError> {
  const before = structuredClone(mount);
  let caught: unknown;
  try {
    await checkVolumes([mount], policy(overrides));
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SandboxError, `expected a SandboxError for ${mount.hostPath}, got ${String(caught)}`);
  assert.ok(caught.message.includes(`${mount.hostPath}:${mount.containerPath}`), `the message names the volume: ${caught.message}`);
  for (const expected of says) {
    if (typeof expected === 'string') assert.ok(caught.message.includes(expected), `expected ${JSON.stringify(expected)} in: ${caught.message}`);
    else assert.match(caught.message, expected);
  }
  assert.ok(caught.hint, 'a refusal says what to do');
  assert.deepEqual(mount, before, 'the check must not change the volume');
  return caught;
}

describe('checkVolumes: inside the workspace', () => {
  test('a folder in the workspace passes, read-only and read-write', async () => {
    await accepts([volume(path.join(ws, 'fixtures'), true), volume(path.join(ws, 'fixtures'), false, '/fixtures')]);
  });

  test('a file in the workspace passes', async () => {
    await accepts([volume(path.join(ws, 'fixtures', 'data.json'))]);
  });

  test('a volume under the home directory that is inside the workspace passes (the home is not the workspace)', async () => {
    assert.ok(ws.startsWith(home + path.sep));
    await accepts([volume(path.join(ws, 'fixtures'))]);
  });

  test('no volumes: nothing to check', async () => {
    await accepts([]);
  });
});

describe('checkVolumes: the host path must exist', () => {
  test('a missing path', async () => {
    const missing = path.join(ws, 'nope');
    const error = await refuses(volume(missing), [`${missing} does not exist`]);
    assert.match(error.hint ?? '', /sandbox\.toml/);
    assert.match(error.hint ?? '', /relative to the workspace root/);
  });

  test('a symbolic link to nothing says which link', async () => {
    const dangling = path.join(ws, 'dangling');
    await symlink(path.join(T, 'gone'), dangling);
    try {
      await refuses(volume(dangling), ['does not exist', `${dangling} is a symbolic link to ${path.join(T, 'gone')}`]);
    } finally {
      await rm(dangling);
    }
  });
});

describe('checkVolumes: outside the workspace', () => {
  test('.. escaping the workspace is judged by where it leads', async () => {
    const escaping = `${ws}/../../../../outside`;
    await refuses(volume(escaping, true), ['is outside the workspace', `resolves to ${path.join(T, 'outside')}`]);
  });

  test('.. after a link goes up from where the link leads, not from the link', async () => {
    // Read as text, ws/link/.. is ws; the kernel follows link to T/outside first, and .. of that is T.
    const upFromLink = `${path.join(ws, 'link')}/..`;
    await refuses(volume(upFromLink, true), [`contains the home directory ${home}`, `resolves to ${T}`]);
  });

  test('a symbolic link inside the workspace pointing outside: the message says what it resolves to', async () => {
    const link = path.join(ws, 'link');
    await refuses(volume(link, true), [`${link} resolves to ${path.join(T, 'outside')}`, 'is outside the workspace']);
    await refuses(volume(path.join(ws, 'etc-link')), [`${path.join(ws, 'etc-link')} resolves to /etc`, 'is outside the workspace']);
  });

  test('a path below a link names the link it went through', async () => {
    await mkdir(path.join(T, 'outside', 'deeper'), { recursive: true });
    const below = path.join(ws, 'link', 'deeper');
    await refuses(volume(below, true), [`resolves to ${path.join(T, 'outside', 'deeper')}`, `through the symbolic link ${path.join(ws, 'link')} -> ${path.join(T, 'outside')}`]);
  });

  test('an outside folder is refused; the hint names the setting and the environment variable', async () => {
    const outside = path.join(T, 'outside');
    const error = await refuses(volume(outside, true), [outside, 'is outside the workspace']);
    // The editor names the setting, the terminal the variable.
    assert.ok(presentError(error).text.includes(ALLOWED_VOLUME_PATHS_SETTING), presentError(error).text);
    assert.ok(presentError(error).text.includes('agentSandboxes.allowedVolumePaths'), presentError(error).text);
    assert.ok(errorForTerminal(error).includes(`AGENT_SANDBOX_ALLOWED_VOLUME_PATHS=${outside}`), errorForTerminal(error));
    assert.equal(ALLOWED_VOLUME_PATHS_ENV, 'AGENT_SANDBOX_ALLOWED_VOLUME_PATHS');
  });

  test('an outside folder is accepted when it, or a folder above it, is allowed', async () => {
    const outside = path.join(T, 'outside');
    await accepts([volume(outside, true), volume(outside, false)], { allowedOutside: [outside] });
    await accepts([volume(path.join(T, 'a', 'b'))], { allowedOutside: [path.join(T, 'a')] });
  });

  test('the link into an allowed folder is accepted: allowed folders are compared by real path', async () => {
    await accepts([volume(path.join(ws, 'link'))], { allowedOutside: [path.join(T, 'outside')] });
    const viaLink = path.join(T, 'to-outside');
    await symlink(path.join(T, 'outside'), viaLink);
    try {
      await accepts([volume(path.join(T, 'outside'))], { allowedOutside: [viaLink] });
    } finally {
      await rm(viaLink);
    }
  });

  test('allowing /a/b does not allow its sibling /a/bc', async () => {
    const allowed = path.join(T, 'a', 'b');
    await accepts([volume(allowed)], { allowedOutside: [allowed] });
    await refuses(volume(path.join(T, 'a', 'bc')), [path.join(T, 'a', 'bc'), 'is outside the workspace'], { allowedOutside: [allowed] });
    // Nor a folder above it.
    await refuses(volume(path.join(T, 'a')), ['is outside the workspace'], { allowedOutside: [allowed] });
  });

  test('the first bad volume is the one reported, in order', async () => {
    const good = volume(path.join(ws, 'fixtures'));
    const first = volume(path.join(T, 'a', 'b'), true, '/first');
    const second = volume(path.join(ws, 'nope'), true, '/second');
    await assert.rejects(checkVolumes([good, first, second], policy()), (error: Error) => error.message.includes(`${first.hostPath}:/first`));
  });
});

describe('checkVolumes: never, even when allowed', () => {
  test('/', async () => {
    await refuses(volume('/', true), ['is the root of the host file system'], { allowedOutside: ['/'] });
  });

  test('the home directory, and its parent', async () => {
    await refuses(volume(home, true), [`${home}:/mnt/v`, 'is the home directory', 'credentials'], { allowedOutside: [home] });
    const parent = path.dirname(home);
    await refuses(volume(parent, true), [`contains the home directory ${home}`], { allowedOutside: [T] });
    await refuses(volume(T, true), [`contains the home directory ${home}`], { allowedOutside: [T] });
  });

  test('the home directory through a link', async () => {
    const homeLink = path.join(ws, 'home-link');
    await symlink(home, homeLink);
    try {
      await refuses(volume(homeLink, true), ['is the home directory', `${homeLink} resolves to ${home}`]);
    } finally {
      await rm(homeLink);
    }
  });

  test('the engine socket itself, and the folder that holds it', async () => {
    await refuses(volume(engineSocket), [`${engineSocket}:/mnt/v`, 'is the container engine socket', 'the engine socket gives whoever holds it the host'], {
      allowedOutside: [T],
    });
    await refuses(volume(runDir, true), [`contains the container engine socket ${engineSocket}`, 'the engine socket gives whoever holds it the host'], {
      allowedOutside: [T],
    });
  });

  test('an engine socket that does not exist yet still protects the folders that would hold it', async () => {
    const later = path.join(T, 'a', 'b', 'later', 'engine.sock');
    await refuses(volume(path.join(T, 'a', 'b'), true), [`contains the container engine socket ${later}`], {
      allowedOutside: [T],
      engineSockets: [later],
    });
  });

  test('any unix socket, even one no list names', async () => {
    await refuses(volume(otherSocket, true), [`${otherSocket}:/mnt/v`, 'is a unix socket', 'engine socket gives whoever holds it the host'], {
      allowedOutside: [T],
    });
  });

  test('a link in the workspace to the engine socket', async () => {
    const sockLink = path.join(ws, 'sock-link');
    await symlink(engineSocket, sockLink);
    try {
      await refuses(volume(sockLink, true), ['is the container engine socket', `${sockLink} resolves to ${engineSocket}`]);
    } finally {
      await rm(sockLink);
    }
  });
});

describe('checkVolumes: the repository\'s git directory', () => {
  test('read-write: the git dir, a folder inside it, and the workspace root that holds it are refused', async () => {
    await refuses(volume(gitDir), [`${gitDir}:/mnt/v`, "is the repository's git directory", 'mounted read-write', 'hooks and config']);
    const hooks = path.join(gitDir, 'hooks');
    await refuses(volume(hooks), [`${hooks}:/mnt/v`, "is inside the repository's git directory", 'mounted read-write']);
    const error = await refuses(volume(ws), [`${ws}:/mnt/v`, `contains the repository's git directory ${gitDir}`, 'mounted read-write']);
    assert.match(error.hint ?? '', /read-only/);
  });

  test('read-only: the git dir, its hooks and the workspace root are fine', async () => {
    await accepts([volume(gitDir, true), volume(path.join(gitDir, 'hooks'), true), volume(ws, true)]);
  });

  test('a linked worktree: the common git dir elsewhere, and the workspace\'s own .git file', async () => {
    const common = path.join(T, 'a', 'bc', 'repo.git');
    const linked = path.join(T, 'outside', 'linked');
    await mkdir(path.join(common, 'hooks'), { recursive: true });
    await mkdir(linked, { recursive: true });
    await writeFile(path.join(linked, '.git'), `gitdir: ${common}/worktrees/linked\n`);
    const overrides = { workspaceRoot: linked, gitCommonDir: common, allowedOutside: [path.join(T, 'a')] };
    await refuses(volume(path.join(common, 'hooks')), ["is inside the repository's git directory"], overrides);
    await refuses(volume(path.join(linked, '.git')), ["is the repository's git directory", 'mounted read-write'], overrides);
    await refuses(volume(linked), ["contains the repository's git directory"], overrides);
    await accepts([volume(path.join(common, 'hooks'), true), volume(linked, true)], overrides);
  });

  test('a relative gitCommonDir is taken against the workspace root', async () => {
    await refuses(volume(path.join(gitDir, 'hooks')), ["is inside the repository's git directory"], { gitCommonDir: '.git' });
  });
});

describe('allowedVolumePathsFromEnv', () => {
  test('unset or empty: none', () => {
    assert.deepEqual(allowedVolumePathsFromEnv({}), []);
    assert.deepEqual(allowedVolumePathsFromEnv({ AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: '' }), []);
  });

  test('separated by path.delimiter, empty entries ignored, relative ones against the current directory', () => {
    const value = ['/data/a', '', 'rel/b', ' ', '/data/c'].join(path.delimiter);
    assert.deepEqual(allowedVolumePathsFromEnv({ AGENT_SANDBOX_ALLOWED_VOLUME_PATHS: value }), [
      '/data/a',
      path.resolve(process.cwd(), 'rel/b'),
      '/data/c',
    ]);
  });
});

describe('defaultEngineSockets', () => {
  test("Docker's, Podman's and DOCKER_HOST's unix socket", () => {
    const sockets = defaultEngineSockets({ XDG_RUNTIME_DIR: '/run/user/1000', DOCKER_HOST: 'unix:///srv/engine.sock' }, '/home/u');
    for (const expected of ['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock', '/run/user/1000/podman/podman.sock', '/srv/engine.sock']) {
      assert.ok(sockets.includes(expected), `${expected} in ${sockets.join(', ')}`);
    }
  });

  test('a tcp DOCKER_HOST adds no socket', () => {
    const sockets = defaultEngineSockets({ XDG_RUNTIME_DIR: '/run/user/1000', DOCKER_HOST: 'tcp://127.0.0.1:2375' }, '/home/u');
    assert.ok(!sockets.some((socket) => socket.includes('127.0.0.1')));
  });
});

describe('checkBuildSources: a Dockerfile and its context obey the rules of volumes', () => {
  const origin = (key: string) => ({ file: 'sandbox.toml', line: 3, key: `sandbox.container.${key}` });

  async function buildRefused(settings: { dockerfile: string; context?: string }, says: RegExp[], overrides: Partial<VolumePolicy> = {}): Promise<SandboxError> {
    let caught: unknown;
    try {
      await checkBuildSources(settings, policy(overrides), { dockerfile: origin('dockerfile'), ...(settings.context ? { context: origin('context') } : {}) });
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
    for (const expected of says) assert.match(`${errorForTerminal(caught)}\n${presentError(caught).text}`, expected);
    assert.ok(caught.hint, 'a refusal says what to do');
    return caught;
  }

  before(async () => {
    await mkdir(path.join(ws, 'image'), { recursive: true });
    await writeFile(path.join(ws, 'image', 'Dockerfile'), 'FROM scratch\n');
    await mkdir(path.join(home, '.ssh'), { recursive: true });
    await writeFile(path.join(home, '.ssh', 'id_ed25519'), 'PRIVATE KEY\n');
    await symlink(path.join(home, '.ssh', 'id_ed25519'), path.join(ws, 'image', 'key-link'));
    await symlink(home, path.join(ws, 'home-link'));
  });

  test('inside the workspace: passes, and gives the real paths the build must use', async () => {
    const sources = await checkBuildSources({ dockerfile: path.join(ws, 'image', 'Dockerfile') }, policy());
    assert.deepEqual(sources, { dockerfile: path.join(ws, 'image', 'Dockerfile'), context: path.join(ws, 'image') });
    const viaDots = await checkBuildSources({ dockerfile: path.join(ws, 'image', '..', 'image', 'Dockerfile'), context: path.join(ws, 'fixtures', '..') }, policy());
    assert.deepEqual(viaDots, { dockerfile: path.join(ws, 'image', 'Dockerfile'), context: ws });
    assert.equal(await checkBuildSources({}, policy()), undefined, 'an image to pull: nothing to check');
  });

  test('context = "~": the home directory is refused, with the file, line and key', async () => {
    const error = await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: home }, [/^sandbox\.toml:3: sandbox\.container\.context: The build context .* is the home directory/, /COPY \.ssh/]);
    assert.equal(error instanceof ConfigError && error.key, 'sandbox.container.context');
  });

  test('context = "/", a folder holding the home, or a link to the home: refused', async () => {
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: '/' }, [/is the root of the host file system/]);
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: path.join(T, 'home') }, [/contains the home directory/]);
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: path.join(ws, 'home-link') }, [/home-link resolves to .*: your keys|is the home directory/]);
  });

  test('a context or Dockerfile outside the workspace is refused unless the user allowed its folder', async () => {
    await writeFile(path.join(T, 'outside', 'Dockerfile'), 'FROM scratch\n');
    await buildRefused({ dockerfile: path.join(T, 'outside', 'Dockerfile') }, [/sandbox\.container\.dockerfile: The Dockerfile .* is outside the workspace/, /allowedVolumePaths|AGENT_SANDBOX_ALLOWED_VOLUME_PATHS/]);
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: path.join(ws, 'link') }, [/The build context .*link is outside the workspace .*link resolves to .*outside\)/]);
    const allowed = await checkBuildSources({ dockerfile: path.join(T, 'outside', 'Dockerfile') }, policy({ allowedOutside: [path.join(T, 'outside')] }));
    assert.deepEqual(allowed, { dockerfile: path.join(T, 'outside', 'Dockerfile'), context: path.join(T, 'outside') });
  });

  test('a Dockerfile that is a link to a key outside is refused by where it leads; one that is no file is refused', async () => {
    await buildRefused({ dockerfile: path.join(ws, 'image', 'key-link'), context: path.join(ws, 'image') }, [/The Dockerfile .*key-link is outside the workspace .*key-link resolves to .*\.ssh\/id_ed25519\)/]);
    await buildRefused({ dockerfile: path.join(ws, 'fixtures'), context: path.join(ws, 'image') }, [/is not a file/]);
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: path.join(ws, 'image', 'Dockerfile') }, [/is not a folder/]);
  });

  test('the engine socket, or a folder holding it, is never a context, even when allowed', async () => {
    await buildRefused({ dockerfile: path.join(ws, 'image', 'Dockerfile'), context: runDir }, [/contains the container engine socket/], { allowedOutside: [T] });
  });
});

describe('checkVolumes: folders host tools act on are never mounted read-write', () => {
  before(async () => {
    for (const dir of ['.vscode', '.husky/_', 'tools/hooks', 'src']) await mkdir(path.join(ws, dir), { recursive: true });
  });

  test('.vscode, .husky (and inside it), and core.hooksPath\'s folder are refused read-write, through links too', async () => {
    await refuses(volume(path.join(ws, '.vscode')), ['mounted read-write', 'tasks']);
    await refuses(volume(path.join(ws, '.husky', '_')), [/is inside .*\.husky, mounted read-write/]);
    const tools = policy({ hostToolFolders: hostToolFolders(ws, 'tools/hooks') });
    await refuses(volume(path.join(ws, 'tools')), [/contains .*tools\/hooks, mounted read-write/], tools);
    await symlink(path.join(ws, '.vscode'), path.join(ws, 'editor-link'));
    await refuses(volume(path.join(ws, 'editor-link')), [/resolves to .*\.vscode/]);
  });

  test('read-only they pass, and so does any other folder of the workspace read-write', async () => {
    await accepts([volume(path.join(ws, '.vscode'), true), volume(path.join(ws, '.husky'), true, '/husky')]);
    await accepts([volume(path.join(ws, 'src'))], { hostToolFolders: hostToolFolders(ws, 'tools/hooks') });
  });
});
