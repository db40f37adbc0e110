import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'smol-toml';
import { loadConfig, parseConfig } from '../../src/core/config/config';
import { formatKeyPath, locateKey } from '../../src/core/config/keyLines';
import { CONFIG_FILE_NAME, DEFAULT_AGENT, formatWarning, MAX_CONFIG_BYTES } from '../../src/core/config/model';
import type { ContainerSettings, SandboxConfig } from '../../src/core/config/model';
import { ConfigError } from '../../src/core/errors';
import { formatSize, parseSize } from '../../src/core/config/sizes';

const ROOT = path.resolve('/ws');
const FILE = path.join(ROOT, 'sandbox.toml');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function load(text: string): SandboxConfig {
  return parseConfig(text, FILE, ROOT);
}

function defaultsWith(overrides: Partial<ContainerSettings>): ContainerSettings {
  return {
    network: 'nat',
    cpus: 2,
    memoryBytes: 4 * GiB,
    pids: 1024,
    ports: [],
    volumes: [],
    env: {},
    secrets: [],
    ...overrides,
  };
}

interface ExpectedError {
  line: number | undefined;
  key: string | undefined;
  detail?: string | RegExp;
  file?: string;
}

function expectError(text: string, expected: ExpectedError, file = FILE): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, file, ROOT);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  const shownFile = expected.file ?? 'sandbox.toml';
  assert.equal(caught.file, shownFile);
  assert.equal(caught.line, expected.line);
  assert.equal(caught.key, expected.key);
  if (typeof expected.detail === 'string') assert.equal(caught.detail, expected.detail);
  else if (expected.detail) assert.match(caught.detail, expected.detail);
  const prefix = `${shownFile}${expected.line ? `:${expected.line}` : ''}: ${expected.key ? `${expected.key}: ` : ''}`;
  assert.equal(caught.message, prefix + caught.detail);
  return caught;
}

const LAYOUT_1 = `[sandbox]
default_agent = "engineer"

[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
cpus = 2.5
memory = "4g"
pids = 512
disk = "10g"
ports = ["3000", "8080:80", "0.0.0.0:5353:53/udp"]
volumes = ["./fixtures:/fixtures:ro", "/var/cache/npm:/cache"]
env = { NODE_ENV = "development", DEBUG = true, PORT = 3000 }

[agents.engineer]
command = ["sh", "-c", "my-agent --task \\"$SANDBOX_TASK\\""]
cpus = 4
env = { NODE_ENV = "test", EXTRA = "1" }
ports = ["9229"]
volumes = ["data:/data"]

[agents.reviewer]
command = "review --strict"
image = "node:20-bookworm"
memory = "512m"
pids = 64
disk = "1GiB"
network = "host"

[agents.builder]
dockerfile = "docker/build.Dockerfile"
context = "."

[orchestrator]
max_parallel_agents = 3
`;

describe('parseConfig, layout 1', () => {
  const config = load(LAYOUT_1);
  const defaultPorts = [
    { containerPort: 3000, hostIp: '127.0.0.1', protocol: 'tcp' as const },
    { containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1', protocol: 'tcp' as const },
    { containerPort: 53, hostPort: 5353, hostIp: '0.0.0.0', protocol: 'udp' as const },
  ];
  const defaultVolumes = [
    { hostPath: path.join(ROOT, 'fixtures'), containerPath: '/fixtures', readOnly: true },
    { hostPath: path.resolve('/var/cache/npm'), containerPath: '/cache', readOnly: false },
  ];

  test('reads every field of [sandbox.container] into the defaults', () => {
    assert.deepEqual(config.defaults, {
      dockerfile: path.join(ROOT, '.sandbox/Dockerfile'),
      context: path.join(ROOT, '.sandbox'),
      network: 'none',
      cpus: 2.5,
      memoryBytes: 4 * GiB,
      pids: 512,
      diskBytes: 10 * GiB,
      ports: defaultPorts,
      volumes: defaultVolumes,
      env: { NODE_ENV: 'development', DEBUG: 'true', PORT: '3000' },
      secrets: [],
    });
  });

  test('keeps the file, the default agent, the parallelism and no warnings', () => {
    assert.equal(config.file, FILE);
    assert.equal(config.defaultAgent, 'engineer');
    assert.equal(config.maxParallelAgents, 3);
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(Object.keys(config.agents), ['engineer', 'reviewer', 'builder']);
  });

  test('merges the defaults into a role: fields override, env merges, ports and volumes append', () => {
    assert.deepEqual(config.agents.engineer, {
      name: 'engineer',
      command: ['sh', '-c', 'my-agent --task "$SANDBOX_TASK"'],
      container: {
        dockerfile: path.join(ROOT, '.sandbox/Dockerfile'),
        context: path.join(ROOT, '.sandbox'),
        network: 'none',
        cpus: 4,
        memoryBytes: 4 * GiB,
        pids: 512,
        diskBytes: 10 * GiB,
        ports: [...defaultPorts, { containerPort: 9229, hostIp: '127.0.0.1', protocol: 'tcp' }],
        volumes: [...defaultVolumes, { hostPath: path.join(ROOT, 'data'), containerPath: '/data', readOnly: false }],
        env: { NODE_ENV: 'test', DEBUG: 'true', PORT: '3000', EXTRA: '1' },
        secrets: [],
      },
    });
  });

  test('a role image clears the inherited dockerfile; a string command runs through sh -c', () => {
    assert.deepEqual(config.agents.reviewer, {
      name: 'reviewer',
      command: ['sh', '-c', 'review --strict'],
      container: {
        image: 'node:20-bookworm',
        network: 'host',
        cpus: 2.5,
        memoryBytes: 512 * MiB,
        pids: 64,
        diskBytes: GiB,
        ports: defaultPorts,
        volumes: defaultVolumes,
        env: { NODE_ENV: 'development', DEBUG: 'true', PORT: '3000' },
        secrets: [],
      },
    });
  });

  test('a role dockerfile resolves with its own context; no command means the image CMD', () => {
    const builder = config.agents.builder;
    assert.equal(builder.command, undefined);
    assert.equal('command' in builder, false);
    assert.equal(builder.container.dockerfile, path.join(ROOT, 'docker/build.Dockerfile'));
    assert.equal(builder.container.context, ROOT);
    assert.equal(builder.container.image, undefined);
  });

  test('a role dockerfile clears an inherited image, and its context defaults to its own folder', () => {
    const cfg = load(`[sandbox.container]
image = "node:20"
context = "ignored"
[agents.a]
dockerfile = "/abs/Dockerfile"
`);
    assert.equal(cfg.defaults.image, 'node:20');
    assert.equal(cfg.defaults.context, undefined);
    assert.equal(cfg.agents.a.container.image, undefined);
    assert.equal(cfg.agents.a.container.dockerfile, path.resolve('/abs/Dockerfile'));
    assert.equal(cfg.agents.a.container.context, path.resolve('/abs'));
  });

  test('an explicit context resolves against the workspace root', () => {
    const cfg = load('[sandbox.container]\ndockerfile = "a/b/Dockerfile"\ncontext = "a"\n');
    assert.equal(cfg.defaults.context, path.join(ROOT, 'a'));
    assert.equal(cfg.defaults.dockerfile, path.join(ROOT, 'a/b/Dockerfile'));
  });

  test('network aliases: bridge and slirp4netns mean nat', () => {
    for (const [written, mode] of [
      ['bridge', 'nat'],
      ['slirp4netns', 'nat'],
      ['nat', 'nat'],
      ['none', 'none'],
      ['host', 'host'],
    ]) {
      assert.equal(load(`[sandbox.container]\nnetwork = "${written}"\n`).defaults.network, mode, written);
    }
  });

  test('memory and disk sizes in every accepted form', () => {
    const cases: Array<[string, number]> = [
      ['"512m"', 512 * MiB],
      ['"4g"', 4 * GiB],
      ['"1.5g"', 1.5 * GiB],
      ['"4GiB"', 4 * GiB],
      ['"4GB"', 4 * GiB],
      ['"2t"', 2 * 1024 * GiB],
      ['"8M"', 8 * MiB],
      ['"10000k"', 10000 * 1024],
      ['8388608', 8 * MiB],
    ];
    for (const [written, bytes] of cases) {
      assert.equal(load(`[sandbox.container]\nmemory = ${written}\n`).defaults.memoryBytes, bytes, written);
    }
    assert.equal(load('[sandbox.container]\ndisk = "100k"\n').defaults.diskBytes, 100 * 1024);
  });

  test('ports: random host port, explicit IPs, IPv6, udp', () => {
    const cfg = load(
      '[sandbox.container]\nports = ["3000/udp", "127.0.0.1::4000", "[::1]:8443:443/tcp", "65535:1", 5000]\n',
    );
    assert.deepEqual(cfg.defaults.ports, [
      { containerPort: 3000, hostIp: '127.0.0.1', protocol: 'udp' },
      { containerPort: 4000, hostIp: '127.0.0.1', protocol: 'tcp' },
      { containerPort: 443, hostPort: 8443, hostIp: '::1', protocol: 'tcp' },
      { containerPort: 1, hostPort: 65535, hostIp: '127.0.0.1', protocol: 'tcp' },
      { containerPort: 5000, hostIp: '127.0.0.1', protocol: 'tcp' },
    ]);
  });

  test('volumes: home folder, explicit rw, trailing slash', () => {
    const cfg = load('[sandbox.container]\nvolumes = ["~/.npm:/root/.npm:rw", "../shared:/shared/:ro", "~:/home-dir"]\n');
    assert.deepEqual(cfg.defaults.volumes, [
      { hostPath: path.join(homedir(), '.npm'), containerPath: '/root/.npm', readOnly: false },
      { hostPath: path.resolve(ROOT, '../shared'), containerPath: '/shared', readOnly: true },
      { hostPath: homedir(), containerPath: '/home-dir', readOnly: false },
    ]);
  });

  test('dotted keys and inline tables load like table headers', () => {
    const cfg = load('sandbox.container.cpus = 3\nagents = { a = { command = ["x"], env.K = "v" } }\n');
    assert.equal(cfg.defaults.cpus, 3);
    assert.deepEqual(cfg.agents.a.command, ['x']);
    assert.deepEqual(cfg.agents.a.container.env, { K: 'v' });
  });
});

const LAYOUT_2 = `[orchestrator]
max_parallel_agents = 6

[orchestrator.container_sandbox]
enabled = true
container_image = "node:20-bookworm"
network_mode = "slirp4netns"
memory_limit = "2g"
cpu_limit = 1.5

[orchestrator.container_sandbox.agent_images]
engineer = "agentloop/engineer:latest"
qa = "agentloop/qa:1.2"
`;

// AgentLoop's documentation writes its limits as strings: `cpu_limit = "2"` and `memory_limit = "4g"` (as
// quoted in issue 11; a user who copied them got "cpu_limit: expected a number greater than 0, got \"1\"").
const AGENTLOOP_DOCUMENTED = `[orchestrator]
max_parallel_agents = 4

[orchestrator.container_sandbox]
enabled = true
container_image = "node:20-bookworm"
network_mode = "slirp4netns"
memory_limit = "4g"
cpu_limit = "2"
`;

describe("AgentLoop's documented limits, as strings", () => {
  test('cpu_limit = "2" and memory_limit = "4g" load as 2 cores and 4 GiB', () => {
    const config = load(AGENTLOOP_DOCUMENTED);
    assert.deepEqual(config.defaults, defaultsWith({ image: 'node:20-bookworm', network: 'nat', memoryBytes: 4 * GiB, cpus: 2 }));
    assert.deepEqual(config.warnings, []);
  });

  test('the value from the failing report, cpu_limit = "1", loads too; so do fractions and cpus as a string', () => {
    assert.equal(load(AGENTLOOP_DOCUMENTED.replace('cpu_limit = "2"', 'cpu_limit = "1"')).defaults.cpus, 1);
    assert.equal(load(AGENTLOOP_DOCUMENTED.replace('cpu_limit = "2"', 'cpu_limit = "1.5"')).defaults.cpus, 1.5);
    assert.equal(load('[sandbox.container]\ncpus = "0.5"\n').defaults.cpus, 0.5);
    assert.equal(load('[agents.a]\ncpus = " 3 "\n').agents.a.container.cpus, 3);
  });
});

describe('parseConfig, layout 2 (AgentLoop)', () => {
  const config = load(LAYOUT_2);
  const base = defaultsWith({ network: 'nat', memoryBytes: 2 * GiB, cpus: 1.5 });

  test('container_sandbox gives the defaults; slirp4netns means nat', () => {
    assert.deepEqual(config.defaults, { ...base, image: 'node:20-bookworm' });
    assert.equal(config.maxParallelAgents, 6);
    assert.deepEqual(config.warnings, []);
  });

  test('each agent image becomes a role with that image', () => {
    assert.deepEqual(config.agents, {
      engineer: { name: 'engineer', container: { ...base, image: 'agentloop/engineer:latest' } },
      qa: { name: 'qa', container: { ...base, image: 'agentloop/qa:1.2' } },
    });
    assert.equal(config.defaultAgent, 'engineer');
  });

  test('network_mode accepts none, host, bridge and nat', () => {
    const mode = (written: string): string =>
      load(`[orchestrator.container_sandbox]\nnetwork_mode = "${written}"\n`).defaults.network;
    assert.equal(mode('none'), 'none');
    assert.equal(mode('host'), 'host');
    assert.equal(mode('bridge'), 'nat');
    assert.equal(mode('nat'), 'nat');
  });

  test('enabled = false warns and still loads the settings', () => {
    const cfg = load('[orchestrator.container_sandbox]\nenabled = false\ncontainer_image = "alpine:3"\n');
    assert.equal(cfg.defaults.image, 'alpine:3');
    assert.equal(cfg.warnings.length, 1);
    const [warning] = cfg.warnings;
    assert.deepEqual(
      { file: warning.file, line: warning.line, key: warning.key },
      { file: 'sandbox.toml', line: 2, key: 'orchestrator.container_sandbox.enabled' },
    );
    assert.match(warning.message, /always runs agents in containers/);
  });
});

describe('parseConfig, both layouts in one file', () => {
  const config = load(`[orchestrator]
max_parallel_agents = 2
[orchestrator.container_sandbox]
container_image = "node:20-bookworm"
network_mode = "none"
memory_limit = "2g"
cpu_limit = 1
[orchestrator.container_sandbox.agent_images]
engineer = "agentloop/engineer:latest"
reviewer = "agentloop/reviewer:latest"

[sandbox.container]
cpus = 3
env = { A = "1" }

[agents.engineer]
command = ["run-engineer"]
memory = "1g"

[agents.planner]
dockerfile = "planner/Dockerfile"

[agents.reviewer]
dockerfile = "review/Dockerfile"
`);

  test('our keys win over AgentLoop values key by key', () => {
    assert.deepEqual(
      config.defaults,
      defaultsWith({ image: 'node:20-bookworm', network: 'none', memoryBytes: 2 * GiB, cpus: 3, env: { A: '1' } }),
    );
    assert.equal(config.maxParallelAgents, 2);
  });

  test('roles from both layouts merge field by field, in file order', () => {
    assert.deepEqual(Object.keys(config.agents), ['engineer', 'reviewer', 'planner']);
    assert.deepEqual(config.agents.engineer, {
      name: 'engineer',
      command: ['run-engineer'],
      container: defaultsWith({
        image: 'agentloop/engineer:latest',
        network: 'none',
        memoryBytes: GiB,
        cpus: 3,
        env: { A: '1' },
      }),
    });
    assert.deepEqual(
      config.agents.reviewer.container,
      defaultsWith({
        dockerfile: path.join(ROOT, 'review/Dockerfile'),
        context: path.join(ROOT, 'review'),
        network: 'none',
        memoryBytes: 2 * GiB,
        cpus: 3,
        env: { A: '1' },
      }),
    );
    assert.equal(config.agents.planner.container.dockerfile, path.join(ROOT, 'planner/Dockerfile'));
    assert.equal(config.agents.planner.container.image, undefined);
    assert.equal(config.defaultAgent, 'engineer');
  });

  test('our image beats AgentLoop container_image', () => {
    const cfg = load('[orchestrator.container_sandbox]\ncontainer_image = "a:1"\n[sandbox.container]\nimage = "b:2"\n');
    assert.equal(cfg.defaults.image, 'b:2');
  });

  test('our dockerfile clears AgentLoop container_image', () => {
    const cfg = load('[orchestrator.container_sandbox]\ncontainer_image = "a:1"\n[sandbox.container]\ndockerfile = "D"\n');
    assert.equal(cfg.defaults.image, undefined);
    assert.equal(cfg.defaults.dockerfile, path.join(ROOT, 'D'));
  });
});

describe('defaults', () => {
  test('an empty file gives the defaults and one role named default', () => {
    const config = load('');
    assert.deepEqual(config, {
      file: FILE,
      defaults: defaultsWith({}),
      agents: { default: { name: DEFAULT_AGENT, container: defaultsWith({}) } },
      defaultAgent: 'default',
      maxParallelAgents: 4,
      engine: 'auto',
      warnings: [],
    });
  });

  test('a file with comments only and a byte order mark is empty', () => {
    const config = load('\uFEFF# nothing here\n\n');
    assert.deepEqual(Object.keys(config.agents), ['default']);
    assert.deepEqual(config.defaults, defaultsWith({}));
  });

  test('the implicit default role gets a copy of the defaults', () => {
    const config = load('[sandbox.container]\nports = ["1"]\n');
    assert.deepEqual(config.agents.default.container, config.defaults);
    assert.notEqual(config.agents.default.container.ports, config.defaults.ports);
  });

  test('constants', () => {
    assert.equal(CONFIG_FILE_NAME, 'sandbox.toml');
    assert.equal(DEFAULT_AGENT, 'default');
  });
});

describe('engine and engine_host', () => {
  test('without them: auto, and no host', () => {
    const config = load('[sandbox]\ndefault_agent = "default"\n');
    assert.equal(config.engine, 'auto');
    assert.equal('engineHost' in config, false);
  });

  test('engine takes auto, docker and podman, in any case', () => {
    const engine = (written: string) => load(`[sandbox]\nengine = "${written}"\n`).engine;
    assert.equal(engine('auto'), 'auto');
    assert.equal(engine('docker'), 'docker');
    assert.equal(engine('podman'), 'podman');
    assert.equal(engine('Podman'), 'podman');
  });

  test('engine_host takes a unix socket, tcp, http and https addresses, as written', () => {
    const host = (written: string) => load(`[sandbox]\nengine_host = "${written}"\n`).engineHost;
    assert.equal(host('unix:///run/podman/podman.sock'), 'unix:///run/podman/podman.sock');
    assert.equal(host('unix:///run/user/1000/podman/podman.sock'), 'unix:///run/user/1000/podman/podman.sock');
    assert.equal(host('tcp://127.0.0.1:2375'), 'tcp://127.0.0.1:2375');
    assert.equal(host('tcp://engine.internal'), 'tcp://engine.internal');
    assert.equal(host('https://engine.internal:2376/'), 'https://engine.internal:2376/');
  });

  test('both, with the rest of [sandbox], as a table, dotted keys or an inline table', () => {
    const table = load('[sandbox]\ndefault_agent = "a"\nengine = "podman"\nengine_host = "unix:///run/podman/podman.sock"\n[agents.a]\n');
    assert.deepEqual([table.engine, table.engineHost, table.defaultAgent, table.warnings], ['podman', 'unix:///run/podman/podman.sock', 'a', []]);
    const dotted = load('sandbox.engine = "docker"\nsandbox.engine_host = "tcp://h:1"\n');
    assert.deepEqual([dotted.engine, dotted.engineHost], ['docker', 'tcp://h:1']);
    const inline = load('sandbox = { engine = "podman", container = { cpus = 1 } }\n');
    assert.deepEqual([inline.engine, inline.defaults.cpus], ['podman', 1]);
  });

  test('a misspelt key is a warning with a suggestion; in a role or [sandbox.container] it is unknown', () => {
    const config = load('[sandbox]\nengin = "podman"\nengine_hots = "unix:///x.sock"\n[sandbox.container]\nengine = "podman"\n[agents.a]\nengine = "docker"\n');
    assert.equal(config.engine, 'auto');
    assert.deepEqual(
      config.warnings.map((w) => formatWarning(w)),
      [
        'sandbox.toml:2: sandbox.engin: unknown key, ignored (did you mean `engine`?)',
        'sandbox.toml:3: sandbox.engine_hots: unknown key, ignored (did you mean `engine_host`?)',
        'sandbox.toml:5: sandbox.container.engine: unknown key, ignored',
        'sandbox.toml:7: agents.a.engine: unknown key, ignored',
      ],
    );
  });

  test('AgentLoop\'s layout has no engine key: one in [orchestrator.container_sandbox] is unknown, and slirp4netns is NAT', () => {
    const config = load('[orchestrator.container_sandbox]\nnetwork_mode = "slirp4netns"\nengine = "podman"\n');
    assert.equal(config.engine, 'auto');
    assert.equal(config.defaults.network, 'nat');
    assert.deepEqual(config.warnings.map((w) => [w.line, w.key]), [[3, 'orchestrator.container_sandbox.engine']]);
  });

  test('our [sandbox] engine applies with AgentLoop\'s layout in the same file', () => {
    const config = load('[orchestrator.container_sandbox]\ncontainer_image = "a:1"\nnetwork_mode = "slirp4netns"\n[sandbox]\nengine = "podman"\n');
    assert.deepEqual([config.engine, config.defaults.image, config.defaults.network], ['podman', 'a:1', 'nat']);
  });
});

describe('loadConfig', () => {
  test('a missing file gives the defaults with file undefined', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-config-'));
    try {
      const config = await loadConfig(dir);
      assert.equal(config.file, undefined);
      assert.equal('file' in config, false);
      assert.deepEqual(config.defaults, defaultsWith({}));
      assert.deepEqual(Object.keys(config.agents), ['default']);
      assert.equal(config.defaultAgent, 'default');
      assert.equal(config.maxParallelAgents, 4);
      assert.deepEqual(config.warnings, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reads <root>/sandbox.toml and resolves paths against the root', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-config-'));
    try {
      await writeFile(path.join(dir, 'sandbox.toml'), '[sandbox.container]\ndockerfile = "x/Dockerfile"\ncpu = 1\n');
      const config = await loadConfig(dir);
      assert.equal(config.file, path.join(dir, 'sandbox.toml'));
      assert.equal(config.defaults.dockerfile, path.join(dir, 'x/Dockerfile'));
      assert.equal(config.defaults.context, path.join(dir, 'x'));
      assert.equal(formatWarning(config.warnings[0]), 'sandbox.toml:3: sandbox.container.cpu: unknown key, ignored (did you mean `cpus`?)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reads another file when named, shown relative to the root in errors', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-config-'));
    try {
      await mkdir(path.join(dir, 'conf'));
      await writeFile(path.join(dir, 'conf', 'alt.toml'), '[agents.a]\n\npids = 0\n');
      await assert.rejects(loadConfig(dir, 'conf/alt.toml'), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.file, path.join('conf', 'alt.toml'));
        assert.equal(error.line, 3);
        assert.equal(error.key, 'agents.a.pids');
        return true;
      });
      const missing = await loadConfig(dir, 'conf/none.toml');
      assert.equal(missing.file, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a hostile sandbox.toml is read boundedly: a FIFO, a link to /dev/zero, a folder or a file over 1 MiB is refused, without hanging', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-config-'));
    const refused = async (what: string, detail: RegExp) => {
      await assert.rejects(loadConfig(dir), (error: unknown) => {
        assert.ok(error instanceof ConfigError, `${what}: ${String(error)}`);
        assert.equal(error.file, 'sandbox.toml');
        assert.match(error.detail, detail, what);
        assert.match(error.hint ?? '', /at most 1/);
        return true;
      });
      await rm(path.join(dir, 'sandbox.toml'), { recursive: true, force: true });
    };
    try {
      execFileSync('mkfifo', [path.join(dir, 'sandbox.toml')]);
      await refused('a FIFO', /not a regular file/);
      await symlink('/dev/zero', path.join(dir, 'sandbox.toml'));
      await refused('/dev/zero', /not a regular file/);
      await mkdir(path.join(dir, 'sandbox.toml'));
      await refused('a folder', /not a regular file/);
      await writeFile(path.join(dir, 'sandbox.toml'), `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
      await refused('2 MiB', /more than the 1/);
      await writeFile(path.join(dir, 'sandbox.toml'), `# ${'x'.repeat(MAX_CONFIG_BYTES - 100)}\n[agents.a]\n`);
      assert.deepEqual(Object.keys((await loadConfig(dir)).agents), ['a'], 'just under the bound is read');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('default role selection', () => {
  test('with no default_agent, a role named default wins even if not first', () => {
    const config = load('[agents.first]\ncommand = "a"\n[agents.default]\ncommand = "b"\n');
    assert.equal(config.defaultAgent, 'default');
  });

  test('with no default_agent and no role named default, the first role in file order', () => {
    assert.equal(load('[agents.zeta]\n[agents.alpha]\n').defaultAgent, 'zeta');
    const mixed = load(
      '[orchestrator.container_sandbox.agent_images]\nmaker = "m:1"\n[agents.alpha]\ncpus = 1\n',
    );
    assert.deepEqual(Object.keys(mixed.agents), ['maker', 'alpha']);
    assert.equal(mixed.defaultAgent, 'maker');
    const oursFirst = load('[agents.alpha]\ncpus = 1\n[orchestrator.container_sandbox.agent_images]\nmaker = "m:1"\n');
    assert.equal(oursFirst.defaultAgent, 'alpha');
  });

  test('default_agent names the role, from either layout', () => {
    assert.equal(load('[sandbox]\ndefault_agent = "b"\n[agents.a]\n[agents.b]\n').defaultAgent, 'b');
    assert.equal(
      load('[sandbox]\ndefault_agent = "qa"\n[orchestrator.container_sandbox.agent_images]\nqa = "q:1"\ndev = "d:1"\n')
        .defaultAgent,
      'qa',
    );
  });

  test('default_agent = "default" is fine when no role is defined', () => {
    assert.equal(load('[sandbox]\ndefault_agent = "default"\n').defaultAgent, 'default');
  });

  test('default_agent naming no role is an error on that key', () => {
    expectError('[agents.a]\n[agents.b]\n[sandbox]\n\ndefault_agent = "c"\n', {
      line: 5,
      key: 'sandbox.default_agent',
      detail: 'no role named "c"; defined roles: a, b',
    });
  });
});

describe('validation errors', () => {
  const cases: Array<{ name: string; text: string; line: number; key: string; detail?: string | RegExp }> = [
    {
      name: 'cpus as a word',
      text: '[sandbox.container]\ncpus = "two"\n',
      line: 2,
      key: 'sandbox.container.cpus',
      detail: 'expected a number greater than 0, got "two"',
    },
    { name: 'cpus zero', text: '[sandbox.container]\n\ncpus = 0\n', line: 3, key: 'sandbox.container.cpus', detail: 'expected a number greater than 0, got 0' },
    { name: 'cpus negative in a role', text: '[agents.a]\ncpus = -1.5\n', line: 2, key: 'agents.a.cpus', detail: 'expected a number greater than 0, got -1.5' },
    { name: 'cpus inf', text: '[sandbox.container]\ncpus = inf\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number greater than 0, got inf' },
    {
      name: 'cpu_limit as a word in a string',
      text: '[orchestrator.container_sandbox]\ncpu_limit = "two"\n',
      line: 2,
      key: 'orchestrator.container_sandbox.cpu_limit',
      detail: 'expected a number greater than 0, got "two"',
    },
    { name: 'cpus with a unit', text: '[sandbox.container]\ncpus = "2 cores"\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number greater than 0, got "2 cores"' },
    { name: 'cpus as a signed string', text: '[sandbox.container]\ncpus = "-1"\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number greater than 0, got "-1"' },
    { name: 'cpus as an empty string', text: '[sandbox.container]\ncpus = ""\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number greater than 0, got ""' },
    // 1e300 cores reached the engine as NanoCpus = Infinity, which JSON sends as null: no CPU limit at all.
    { name: 'cpus beyond any machine', text: '[sandbox.container]\ncpus = 1e300\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number of cores from 0.01 to 1024, got 1e+300' },
    { name: 'cpus as a string beyond any machine', text: '[agents.a]\ncpus = "100000"\n', line: 2, key: 'agents.a.cpus', detail: 'expected a number of cores from 0.01 to 1024, got "100000"' },
    { name: 'cpus below Docker\'s minimum', text: '[sandbox.container]\ncpus = 0.001\n', line: 2, key: 'sandbox.container.cpus', detail: 'expected a number of cores from 0.01 to 1024, got 0.001' },
    {
      name: 'memory unreadable',
      text: '[sandbox.container]\nmemory = "lots"\n',
      line: 2,
      key: 'sandbox.container.memory',
      detail: 'expected a size such as "4g", "512m" or a number of bytes, got "lots"',
    },
    {
      name: 'memory below the Docker minimum',
      text: '[sandbox.container]\nmemory = "5m"\n',
      line: 2,
      key: 'sandbox.container.memory',
      detail: 'must be at least 6 MiB (Docker\'s minimum), got "5m"',
    },
    { name: 'memory zero bytes', text: '[agents.x]\nmemory = 0\n', line: 2, key: 'agents.x.memory', detail: /expected a size/ },
    { name: 'memory fractional bytes', text: '[agents.x]\nmemory = 7000000.5\n', line: 2, key: 'agents.x.memory', detail: /got 7000000\.5$/ },
    { name: 'memory unit without number', text: '[agents.x]\nmemory = "g"\n', line: 2, key: 'agents.x.memory' },
    { name: 'memory unknown unit', text: '[agents.x]\nmemory = "4p"\n', line: 2, key: 'agents.x.memory' },
    { name: 'memory "ib" without unit', text: '[agents.x]\nmemory = "40000000ib"\n', line: 2, key: 'agents.x.memory' },
    {
      name: 'memory_limit unreadable',
      text: '[orchestrator.container_sandbox]\nmemory_limit = "4 gigs"\n',
      line: 2,
      key: 'orchestrator.container_sandbox.memory_limit',
    },
    {
      name: 'disk unreadable',
      text: '[sandbox.container]\ndisk = "10x"\n',
      line: 2,
      key: 'sandbox.container.disk',
      detail: 'expected a size such as "10g" or a number of bytes, got "10x"',
    },
    { name: 'disk negative', text: '[sandbox.container]\ndisk = -5\n', line: 2, key: 'sandbox.container.disk' },
    { name: 'pids fraction', text: '[sandbox.container]\npids = 1.5\n', line: 2, key: 'sandbox.container.pids', detail: 'expected an integer greater than 0, got 1.5' },
    { name: 'pids zero', text: '[agents.a]\npids = 0\n', line: 2, key: 'agents.a.pids', detail: 'expected an integer greater than 0, got 0' },
    { name: 'pids string', text: '[agents.a]\npids = "512"\n', line: 2, key: 'agents.a.pids', detail: 'expected an integer greater than 0, got "512"' },
    {
      name: 'network unknown',
      text: '[sandbox.container]\nnetwork = "bridged"\n',
      line: 2,
      key: 'sandbox.container.network',
      detail: 'expected "none", "nat" or "host", got "bridged"',
    },
    {
      name: 'network_mode not a string',
      text: '[orchestrator.container_sandbox]\nnetwork_mode = false\n',
      line: 2,
      key: 'orchestrator.container_sandbox.network_mode',
      detail: 'expected "none", "nat" or "host", got false',
    },
    {
      name: 'ports not an array',
      text: '[sandbox.container]\nports = "3000"\n',
      line: 2,
      key: 'sandbox.container.ports',
      detail: 'expected an array such as ["3000", "8080:80"], got "3000"',
    },
    { name: 'port out of range', text: '[sandbox.container]\nports = ["70000"]\n', line: 2, key: 'sandbox.container.ports', detail: /^invalid port mapping "70000": / },
    { name: 'host port out of range', text: '[agents.a]\nports = ["0:80"]\n', line: 2, key: 'agents.a.ports', detail: /^invalid port mapping "0:80"/ },
    { name: 'port not a number', text: '[sandbox.container]\nports = [\n  "3000",\n  "http",\n]\n', line: 2, key: 'sandbox.container.ports', detail: /"http"/ },
    { name: 'port protocol', text: '[sandbox.container]\nports = ["53/sctp"]\n', line: 2, key: 'sandbox.container.ports', detail: /"53\/sctp"/ },
    { name: 'port bad IP', text: '[sandbox.container]\nports = ["localhost:80:80"]\n', line: 2, key: 'sandbox.container.ports' },
    { name: 'port too many parts', text: '[sandbox.container]\nports = ["1:2:3:4"]\n', line: 2, key: 'sandbox.container.ports' },
    { name: 'port range', text: '[sandbox.container]\nports = ["8000-8010"]\n', line: 2, key: 'sandbox.container.ports' },
    { name: 'port number zero', text: '[sandbox.container]\nports = [0]\n', line: 2, key: 'sandbox.container.ports', detail: /^invalid port mapping 0:/ },
    { name: 'port empty host without IP', text: '[sandbox.container]\nports = [":80"]\n', line: 2, key: 'sandbox.container.ports' },
    {
      name: 'volumes not an array',
      text: '[sandbox.container]\nvolumes = "./a:/a"\n',
      line: 2,
      key: 'sandbox.container.volumes',
      detail: 'expected an array such as ["./fixtures:/fixtures:ro"], got "./a:/a"',
    },
    { name: 'volume without container path', text: '[sandbox.container]\nvolumes = ["./a"]\n', line: 2, key: 'sandbox.container.volumes', detail: /^invalid volume "\.\/a": expected "host:container"/ },
    {
      name: 'volume relative container path',
      text: '[sandbox.container]\nvolumes = ["./a:data"]\n',
      line: 2,
      key: 'sandbox.container.volumes',
      detail: 'invalid volume "./a:data": the container path must be absolute, got "data"',
    },
    {
      name: 'volume on /workspace',
      text: '[agents.a]\nvolumes = ["./a:/workspace"]\n',
      line: 2,
      key: 'agents.a.volumes',
      detail: 'invalid volume "./a:/workspace": the container path must not be /workspace or inside it: the worktree is mounted there',
    },
    { name: 'volume under /workspace', text: '[agents.a]\nvolumes = ["./a:/workspace/../workspace/sub"]\n', line: 2, key: 'agents.a.volumes', detail: /must not be \/workspace/ },
    { name: 'volume mode', text: '[sandbox.container]\nvolumes = ["./a:/a:rx"]\n', line: 2, key: 'sandbox.container.volumes', detail: 'invalid volume "./a:/a:rx": the mode must be "ro" or "rw", got "rx"' },
    { name: 'volume empty host', text: '[sandbox.container]\nvolumes = [":/a"]\n', line: 2, key: 'sandbox.container.volumes', detail: /the host path is empty/ },
    { name: 'volume not a string', text: '[sandbox.container]\nvolumes = [1]\n', line: 2, key: 'sandbox.container.volumes', detail: /got 1$/ },
    {
      name: 'env value table',
      text: '[sandbox.container]\nenv = { A = "1", B = { C = 1 } }\n',
      line: 2,
      key: 'sandbox.container.env.B',
      detail: 'expected a string, number or boolean, got a table',
    },
    {
      name: 'env value array in a sub-table',
      text: '[agents.a.env]\nOK = 1\nLIST = [1, 2]\n',
      line: 3,
      key: 'agents.a.env.LIST',
      detail: 'expected a string, number or boolean, got an array',
    },
    { name: 'env value date', text: '[sandbox.container.env]\nWHEN = 1979-05-27\n', line: 2, key: 'sandbox.container.env.WHEN', detail: /got a date$/ },
    { name: 'env bad name', text: '[sandbox.container]\nenv = { "1BAD" = "x" }\n', line: 2, key: 'sandbox.container.env.1BAD', detail: /not a valid environment variable name/ },
    { name: 'env bad name with a dot', text: '[sandbox.container]\nenv = { "A.B" = "x" }\n', line: 2, key: 'sandbox.container.env."A.B"' },
    { name: 'env bad name with a dash', text: '[sandbox.container.env]\nMY-VAR = "x"\n', line: 2, key: 'sandbox.container.env.MY-VAR' },
    { name: 'env not a table', text: '[sandbox.container]\nenv = ["A=1"]\n', line: 2, key: 'sandbox.container.env', detail: /^expected a table such as/ },
    { name: 'command empty array', text: '[agents.a]\ncommand = []\n', line: 2, key: 'agents.a.command', detail: 'expected a non-empty array of strings or a non-empty string, got an array' },
    { name: 'command empty string', text: '[agents.a]\ncommand = ""\n', line: 2, key: 'agents.a.command', detail: 'expected a non-empty array of strings or a non-empty string, got ""' },
    { name: 'command with a number', text: '[agents.a]\ncommand = ["x", 1]\n', line: 2, key: 'agents.a.command' },
    { name: 'command as a number', text: '[agents.a]\ncommand = 5\n', line: 2, key: 'agents.a.command', detail: /got 5$/ },
    {
      name: 'image and dockerfile in [sandbox.container]',
      text: '# header below\n[sandbox.container]\nimage = "a"\ndockerfile = "b"\n',
      line: 2,
      key: 'sandbox.container',
      detail: 'set either image or dockerfile, not both',
    },
    {
      name: 'image and dockerfile in a role',
      text: '[agents.one]\n[agents.two]\nimage = "a"\ndockerfile = "b"\n',
      line: 2,
      key: 'agents.two',
      detail: 'set either image or dockerfile, not both',
    },
    { name: 'image not a string', text: '[sandbox.container]\nimage = 3\n', line: 2, key: 'sandbox.container.image', detail: 'expected an image reference such as "node:20-bookworm", got 3' },
    { name: 'image with spaces', text: '[agents.a]\nimage = "node 20"\n', line: 2, key: 'agents.a.image' },
    { name: 'dockerfile empty', text: '[sandbox.container]\ndockerfile = ""\n', line: 2, key: 'sandbox.container.dockerfile', detail: 'expected a path to a Dockerfile, got ""' },
    { name: 'context not a string', text: '[sandbox.container]\ncontext = []\n', line: 2, key: 'sandbox.container.context', detail: 'expected a folder path, got an array' },
    { name: 'agents not a table', text: '\nagents = 3\n', line: 2, key: 'agents', detail: 'expected a table, got 3' },
    { name: 'agents as an array of tables', text: '[[agents]]\nname = "x"\n', line: 1, key: 'agents', detail: 'expected a table, got an array' },
    {
      name: 'a role that is not a table',
      text: '[agents]\nengineer = "x"\n',
      line: 2,
      key: 'agents.engineer',
      detail: 'expected a table ([agents.engineer]) describing a role, got "x"',
    },
    { name: 'sandbox not a table', text: 'sandbox = 1\n', line: 1, key: 'sandbox', detail: 'expected a table, got 1' },
    { name: 'sandbox.container not a table', text: '[sandbox]\ncontainer = "node"\n', line: 2, key: 'sandbox.container', detail: 'expected a table, got "node"' },
    { name: 'orchestrator not a table', text: 'orchestrator = [1]\n', line: 1, key: 'orchestrator', detail: 'expected a table, got an array' },
    { name: 'container_sandbox not a table', text: '[orchestrator]\ncontainer_sandbox = true\n', line: 2, key: 'orchestrator.container_sandbox' },
    { name: 'agent_images not a table', text: '[orchestrator.container_sandbox]\nagent_images = ["a"]\n', line: 2, key: 'orchestrator.container_sandbox.agent_images' },
    {
      name: 'agent image not a string',
      text: '[orchestrator.container_sandbox.agent_images]\nok = "a:1"\nbad = 3\n',
      line: 3,
      key: 'orchestrator.container_sandbox.agent_images.bad',
      detail: 'expected an image reference such as "node:20-bookworm", got 3',
    },
    {
      name: 'container_image not a string',
      text: '[orchestrator.container_sandbox]\ncontainer_image = { name = "x" }\n',
      line: 2,
      key: 'orchestrator.container_sandbox.container_image',
      detail: 'expected an image reference such as "node:20-bookworm", got a table',
    },
    { name: 'enabled not a boolean', text: '[orchestrator.container_sandbox]\nenabled = "yes"\n', line: 2, key: 'orchestrator.container_sandbox.enabled', detail: 'expected true or false, got "yes"' },
    { name: 'max_parallel_agents zero', text: '[orchestrator]\nmax_parallel_agents = 0\n', line: 2, key: 'orchestrator.max_parallel_agents', detail: 'expected an integer of at least 1, got 0' },
    { name: 'max_parallel_agents fraction', text: '[orchestrator]\nmax_parallel_agents = 2.5\n', line: 2, key: 'orchestrator.max_parallel_agents', detail: 'expected an integer of at least 1, got 2.5' },
    { name: 'default_agent not a string', text: '[sandbox]\ndefault_agent = 1\n', line: 2, key: 'sandbox.default_agent', detail: 'expected the name of a role, got 1' },
    { name: 'engine not a string', text: '[sandbox]\n\nengine = 1\n', line: 3, key: 'sandbox.engine', detail: 'expected "auto", "docker" or "podman", got 1' },
    { name: 'engine as an array', text: '[sandbox]\nengine = ["podman"]\n', line: 2, key: 'sandbox.engine', detail: 'expected "auto", "docker" or "podman", got an array' },
    { name: 'engine unknown', text: '[sandbox]\nengine = "containerd"\n', line: 2, key: 'sandbox.engine', detail: 'expected "auto", "docker" or "podman", got "containerd"' },
    { name: 'engine empty', text: '[sandbox]\nengine = ""\n', line: 2, key: 'sandbox.engine', detail: 'expected "auto", "docker" or "podman", got ""' },
    { name: 'engine as a dotted key', text: '# c\nsandbox.engine = "rkt"\n', line: 2, key: 'sandbox.engine' },
    {
      name: 'engine_host not a string',
      text: '[sandbox]\nengine = "podman"\nengine_host = true\n',
      line: 3,
      key: 'sandbox.engine_host',
      detail: 'expected an engine address such as "unix:///run/podman/podman.sock" or "tcp://127.0.0.1:2375", got true',
    },
    {
      name: 'engine_host a bare path',
      text: '[sandbox]\nengine_host = "/run/podman/podman.sock"\n',
      line: 2,
      key: 'sandbox.engine_host',
      detail: 'expected an engine address such as "unix:///run/podman/podman.sock" or "tcp://127.0.0.1:2375", got "/run/podman/podman.sock"',
    },
    {
      name: 'engine_host a relative socket',
      text: '[sandbox]\nengine_host = "unix://podman.sock"\n',
      line: 2,
      key: 'sandbox.engine_host',
      detail: 'the socket path must be absolute (unix:///path/to.sock), got "unix://podman.sock"',
    },
    { name: 'engine_host without a scheme', text: '[sandbox]\nengine_host = "localhost:2375"\n', line: 2, key: 'sandbox.engine_host', detail: /^expected an engine address/ },
    { name: 'engine_host over ssh', text: '[sandbox]\nengine_host = "ssh://me@host"\n', line: 2, key: 'sandbox.engine_host', detail: /got "ssh:\/\/me@host"$/ },
    { name: 'engine_host with a path', text: '[sandbox]\nengine_host = "tcp://host:2375/v1.41"\n', line: 2, key: 'sandbox.engine_host', detail: /^expected an engine address/ },
    { name: 'engine_host tcp without a host', text: '[sandbox]\nengine_host = "tcp://"\n', line: 2, key: 'sandbox.engine_host', detail: /^expected an engine address/ },
    { name: 'empty role name', text: '[agents.""]\ncpus = 1\n', line: 1, key: 'agents.""', detail: 'a role needs a non-empty name' },
    { name: 'a quoted role key', text: '[agents."my.role"]\ncpus = "x"\n', line: 2, key: 'agents."my.role".cpus' },
    { name: 'a dotted key at the top', text: '# c\nsandbox.container.cpus = "x"\n', line: 2, key: 'sandbox.container.cpus' },
    { name: 'a dotted key in a role', text: '[agents]\nbuilder.pids = -1\n', line: 2, key: 'agents.builder.pids' },
    {
      name: 'a key after a multi-line string',
      text: '[agents.a]\ncommand = """\nrun = "x"\n[agents.b]\n"""\npids = "many"\n',
      line: 6,
      key: 'agents.a.pids',
    },
    {
      name: 'an inline table key',
      text: '[agents]\nworker = { command = "go", memory = "1k" }\n',
      line: 2,
      key: 'agents.worker.memory',
      detail: 'must be at least 6 MiB (Docker\'s minimum), got "1k"',
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      expectError(c.text, { line: c.line, key: c.key, detail: c.detail });
    });
  }

  test('the first error wins; warnings before it do not stop it', () => {
    expectError('[sandbox.container]\ncpu = 1\ncpus = 0\nmemory = "x"\n', { line: 3, key: 'sandbox.container.cpus' });
  });

  test('the file is shown relative to the workspace root, or as given when outside it', () => {
    expectError('[agents.a]\npids = 0\n', { line: 2, key: 'agents.a.pids', file: path.join('conf', 'x.toml') }, 'conf/x.toml');
    const outside = path.resolve('/elsewhere/sandbox.toml');
    expectError('[agents.a]\npids = 0\n', { line: 2, key: 'agents.a.pids', file: outside }, outside);
    expectError('[agents.a]\npids = 0\n', { line: 2, key: 'agents.a.pids', file: '../other.toml' }, '../other.toml');
  });

  test('a TOML syntax error gives its line, no key and the first line of its message', () => {
    const error = expectError('[sandbox.container]\ncpus = 2\nmemory = \n', { line: 3, key: undefined });
    assert.equal(error.detail.includes('\n'), false);
    assert.match(error.detail, /invalid/i);
    assert.equal(error.message, `sandbox.toml:3: ${error.detail}`);
  });

  test('a duplicate key is a syntax error on its line', () => {
    const error = expectError('[agents.a]\ncpus = 1\n\ncpus = 2\n', { line: 4, key: undefined });
    assert.equal(error.detail.includes('\n'), false);
  });

  test('an unclosed table header is a syntax error', () => {
    expectError('[sandbox.container]\ncpus = 1\n[agents.a\n', { line: 3, key: undefined });
  });
});

describe('warnings', () => {
  const config = load(`title = "mine"
[sandbox]
defualt_agent = "x"
[sandbox.container]
cpu = 2
Memory = "1g"
completely_unrelated = 1
[agents.engineer]
imag = "node:20"
comand = ["x"]
[agents.reviewer]
command = "r"
[orchestrator]
max_parallel = 3
[orchestrator.container_sandbox]
container_images = "x"
[tools]
x = 1
`);

  test('unknown keys are warnings with file, line, full key and a suggestion within distance 2', () => {
    assert.deepEqual(config.warnings, [
      { file: 'sandbox.toml', line: 1, key: 'title', message: 'unknown key, ignored' },
      { file: 'sandbox.toml', line: 3, key: 'sandbox.defualt_agent', message: 'unknown key, ignored (did you mean `default_agent`?)' },
      { file: 'sandbox.toml', line: 5, key: 'sandbox.container.cpu', message: 'unknown key, ignored (did you mean `cpus`?)' },
      { file: 'sandbox.toml', line: 6, key: 'sandbox.container.Memory', message: 'unknown key, ignored (did you mean `memory`?)' },
      { file: 'sandbox.toml', line: 7, key: 'sandbox.container.completely_unrelated', message: 'unknown key, ignored' },
      { file: 'sandbox.toml', line: 9, key: 'agents.engineer.imag', message: 'unknown key, ignored (did you mean `image`?)' },
      { file: 'sandbox.toml', line: 10, key: 'agents.engineer.comand', message: 'unknown key, ignored (did you mean `command`?)' },
      { file: 'sandbox.toml', line: 14, key: 'orchestrator.max_parallel', message: 'unknown key, ignored' },
      {
        file: 'sandbox.toml',
        line: 16,
        key: 'orchestrator.container_sandbox.container_images',
        message: 'unknown key, ignored (did you mean `container_image`?)',
      },
      { file: 'sandbox.toml', line: 17, key: 'tools', message: 'unknown key, ignored' },
    ]);
  });

  test('loading goes on: unknown keys are ignored and the rest applies', () => {
    assert.deepEqual(config.defaults, defaultsWith({}));
    assert.deepEqual(Object.keys(config.agents), ['engineer', 'reviewer']);
    assert.equal(config.agents.engineer.command, undefined);
    assert.deepEqual(config.agents.reviewer.command, ['sh', '-c', 'r']);
    assert.equal(config.defaultAgent, 'engineer');
    assert.equal(config.maxParallelAgents, 4);
  });

  test('formatWarning', () => {
    assert.equal(
      formatWarning(config.warnings[2]),
      'sandbox.toml:5: sandbox.container.cpu: unknown key, ignored (did you mean `cpus`?)',
    );
    assert.equal(formatWarning({ file: 'a.toml', key: 'x', message: 'm' }), 'a.toml: x: m');
  });

  test('unknown keys in inline tables and quoted keys get their lines', () => {
    const cfg = load('[agents]\n"my role" = { command = "x", cpuz = 1 }\n');
    assert.deepEqual(cfg.warnings, [
      { file: 'sandbox.toml', line: 2, key: 'agents."my role".cpuz', message: 'unknown key, ignored (did you mean `cpus`?)' },
    ]);
    assert.deepEqual(cfg.agents['my role'].command, ['sh', '-c', 'x']);
  });
});

describe('locateKey', () => {
  const tricky = `# [not.a.table] x = 1
title = "a # b = [c] \\" d"
path = 'C:\\temp\\[x] # = '
multi = """
[fake]
fake_key = 1 \\""" still "" in """
lit = '''
[also.fake]
x = 1'''
quote_end = """ends with "quote"""""
[ "quoted.table" . 'lit key' ]   # a header
inner = 1
a.b."c.d" = 2
env = { A = "x", "B.C" = '{', D = { E = 1 } }
arr = [
  "]", # ] comment
  { k = 1 },
]
after = true
[[list]]
item = 1
[[list]]
item = 2
`;

  test('the tricky text is valid TOML', () => {
    const doc = parse(tricky);
    assert.equal(doc.title, 'a # b = [c] " d');
    assert.equal(doc.multi, '[fake]\nfake_key = 1 """ still "" in ');
  });

  test('keys outside and after strings that hold #, =, brackets and quotes', () => {
    assert.equal(locateKey(tricky, 'title'), 2);
    assert.equal(locateKey(tricky, 'path'), 3);
    assert.equal(locateKey(tricky, 'multi'), 4);
    assert.equal(locateKey(tricky, 'lit'), 7);
    assert.equal(locateKey(tricky, 'quote_end'), 10);
  });

  test('nothing inside comments or multi-line strings is taken for a key', () => {
    assert.equal(locateKey(tricky, 'not'), undefined);
    assert.equal(locateKey(tricky, 'x'), undefined);
    assert.equal(locateKey(tricky, 'fake'), undefined);
    assert.equal(locateKey(tricky, 'fake_key'), undefined);
    assert.equal(locateKey(tricky, 'also.fake'), undefined);
  });

  test('quoted table headers with spaces, and keys under them', () => {
    assert.equal(locateKey(tricky, '"quoted.table"'), 11);
    assert.equal(locateKey(tricky, ['quoted.table', 'lit key']), 11);
    assert.equal(locateKey(tricky, `"quoted.table".'lit key'.inner`), 12);
    assert.equal(locateKey(tricky, 'quoted.table'), undefined);
  });

  test('dotted keys, and the tables they create', () => {
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".a.b."c.d"'), 13);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".a'), 13);
  });

  test('keys inside inline tables, nested too', () => {
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".env'), 14);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".env.A'), 14);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".env."B.C"'), 14);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".env.D.E'), 14);
  });

  test('multi-line arrays with brackets in strings and comments', () => {
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".arr'), 15);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".arr.k'), undefined);
    assert.equal(locateKey(tricky, '"quoted.table"."lit key".after'), 19);
  });

  test('arrays of tables give their first header', () => {
    assert.equal(locateKey(tricky, 'list'), 20);
    assert.equal(locateKey(tricky, 'list.item'), 21);
  });

  test('CRLF line ends, escapes in quoted keys, and a parent table from a later header', () => {
    const text = '[a.b]\r\n"q\\u0041" = 1\r\n[c]\r\n"\\"x\\"".y = 2\r\n';
    assert.equal(locateKey(text, 'a'), 1);
    assert.equal(locateKey(text, ['a', 'b', 'qA']), 2);
    assert.equal(locateKey(text, ['c', '"x"', 'y']), 4);
  });

  test('never throws on broken input', () => {
    for (const text of ['[', '"', 'a = """', "a = '''", 'a = [', 'a = {', 'a = { b', '= 1', '[a.', 'x = {{{']) {
      assert.doesNotThrow(() => locateKey(text, 'a'));
    }
    assert.equal(locateKey('x = [\n', 'x'), 1);
  });

  test('formatKeyPath quotes only what needs quoting', () => {
    assert.equal(formatKeyPath(['agents', 'my.role', 'cpus']), 'agents."my.role".cpus');
    assert.equal(formatKeyPath(['env', 'A_1', 'with space']), 'env.A_1."with space"');
  });
});

describe('sizes', () => {
  test('parseSize accepts numbers of bytes and binary units', () => {
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('1b'), 1);
    assert.equal(parseSize('100k'), 102400);
    assert.equal(parseSize('100KB'), 102400);
    assert.equal(parseSize('512Mi'), undefined);
    assert.equal(parseSize('512MiB'), 512 * MiB);
    assert.equal(parseSize(' 1.5g '), 1.5 * GiB);
    assert.equal(parseSize('2T'), 2 * 1024 * GiB);
  });

  test('parseSize rejects everything else', () => {
    for (const value of [0, -1, 1.5, '0', '-1g', '1.5', 'g', '4p', '4ib', '', '4 g b', true, [], {}, Number.NaN]) {
      assert.equal(parseSize(value), undefined, JSON.stringify(value));
    }
  });

  test('formatSize', () => {
    assert.equal(formatSize(6 * MiB), '6 MiB');
    assert.equal(formatSize(1.5 * GiB), '1.5 GiB');
    assert.equal(formatSize(100), '100 B');
  });
});

describe('allow and secrets', () => {
  test('allow sets the egress allowlist; a role replaces the default list, secrets add up', () => {
    const config = load(`[sandbox.container]
allow = ["API.Anthropic.com.", "*.npmjs.org"]
secrets = ["ANTHROPIC_API_KEY"]

[agents.narrow]
allow = []
secrets = ["NPM_TOKEN", "ANTHROPIC_API_KEY"]

[agents.wide]
`);
    assert.deepEqual(config.defaults.allow, ['api.anthropic.com', '*.npmjs.org']);
    assert.deepEqual(config.agents.narrow.container.allow, []);
    assert.deepEqual(config.agents.narrow.container.secrets, ['ANTHROPIC_API_KEY', 'NPM_TOKEN']);
    assert.deepEqual(config.agents.wide.container.allow, ['api.anthropic.com', '*.npmjs.org']);
    assert.deepEqual(config.agents.wide.container.secrets, ['ANTHROPIC_API_KEY']);
  });

  test('without allow the network mode alone decides', () => {
    assert.equal(load('[sandbox.container]\nnetwork = "nat"\n').defaults.allow, undefined);
  });

  test('addresses, ports, paths and inner wildcards are refused with the file, line and key', () => {
    const cases: Array<[string, RegExp]> = [
      ['"10.0.0.1"', /"10\.0\.0\.1" cannot be allowed: it is an IP address/],
      ['"2130706433"', /IP address/],
      ['"[::1]"', /IP address/],
      ['"0x7f000001"', /IP address/],
      ['"api.example.com:443"', /no scheme, port or path/],
      ['"https://api.example.com"', /no scheme, port or path/],
      ['"a.*.example.com"', /wildcard may only stand first/],
      ['"*"', /it is empty|wildcard/],
      ['""', /it is empty/],
    ];
    for (const [value, detail] of cases) {
      expectError(`[sandbox.container]\nnetwork = "nat"\nallow = [${value}]\n`, { line: 3, key: 'sandbox.container.allow', detail });
    }
    expectError('[sandbox.container]\nallow = "example.com"\n', { line: 2, key: 'sandbox.container.allow', detail: /expected an array of host names/ });
  });

  test('an allowlist needs NAT and no published ports', () => {
    expectError('[sandbox.container]\nnetwork = "none"\nallow = ["example.com"]\n', {
      line: 3,
      key: 'sandbox.container.allow',
      detail: /needs network = "nat".*but network is "none"/,
    });
    expectError('[sandbox.container]\nallow = ["example.com"]\n\n[agents.web]\nnetwork = "host"\n', {
      line: 4,
      key: 'agents.web',
      detail: /but network is "host"/,
    });
    expectError('[sandbox.container]\nallow = ["example.com"]\nports = ["3000"]\n', { line: 3, key: 'sandbox.container.ports', detail: /egress proxy/ });
  });

  test('secrets name variables, never values, and never also sit in env', () => {
    expectError('[sandbox.container]\nsecrets = ["ANTHROPIC_API_KEY=sk-123"]\n', { line: 2, key: 'sandbox.container.secrets', detail: /"ANTHROPIC_API_KEY=\.\.\.": name the variable only/ });
    const error = expectError('[sandbox.container]\nsecrets = ["ANTHROPIC_API_KEY=sk-123"]\n', { line: 2, key: 'sandbox.container.secrets' });
    assert.doesNotMatch(error.message, /sk-123/);
    expectError('[sandbox.container]\nsecrets = ["1BAD"]\n', { line: 2, key: 'sandbox.container.secrets', detail: /environment variable names/ });
    expectError('[sandbox.container]\nsecrets = ["TOKEN"]\nenv = { TOKEN = "x" }\n', { line: 3, key: 'sandbox.container.env', detail: /TOKEN is listed in secrets/ });
  });
});

describe('agent presets in sandbox.toml', () => {
  test('a preset role gets its environment under its own, an allowlist, and its choices', () => {
    const config = load('[agents.claude]\npreset = "claude-code"\nversion = "2.1.197"\nmodel = "claude-sonnet-4-5"\nenv = { DISABLE_AUTOUPDATER = "0", MINE = "1" }\nallow = ["registry.npmjs.org"]\n');
    const role = config.agents.claude;
    assert.equal(role.agent?.preset, 'claude-code');
    assert.equal(role.agent?.version, '2.1.197');
    assert.equal(role.agent?.model, 'claude-sonnet-4-5');
    assert.equal(role.container.env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, '1');
    assert.equal(role.container.env.DISABLE_AUTOUPDATER, '0', "the role's own env wins key by key");
    assert.equal(role.container.env.MINE, '1');
    assert.deepEqual(role.container.allow, ['registry.npmjs.org']);
    assert.deepEqual(load('[agents.codex]\npreset = "codex"\n').agents.codex.container.allow, [], 'a preset always has the allowlist');
  });

  test('bad input names the file, line and key: an unknown preset, a bad version, a credential the preset does not take, the key handed in', () => {
    expectError('[agents.a]\npreset = "claude"\n', { line: 2, key: 'agents.a.preset', detail: /expected one of "claude-code", "codex", "gemini", "aider", "opencode", got "claude"/ });
    expectError('[agents.a]\npreset = "codex"\nversion = "1.0; rm -rf /"\n', { line: 3, key: 'agents.a.version', detail: /expected a version/ });
    expectError('[agents.a]\npreset = "codex"\ncredential = "ANTHROPIC_API_KEY"\n', { line: 3, key: 'agents.a.credential', detail: /takes "OPENAI_API_KEY"/ });
    expectError('[agents.a]\npreset = "claude-code"\nsecrets = ["ANTHROPIC_API_KEY"]\n', { line: 3, key: 'agents.a.secrets', detail: /keeps it outside the sandbox/ });
    expectError('[agents.a]\npreset = "claude-code"\nenv = { ANTHROPIC_API_KEY = "sk" }\n', { line: 3, key: 'agents.a.env', detail: /never in this file/ });
    expectError('[agents.a]\npreset = "claude-code"\nnetwork = "none"\n', { line: 2, key: 'agents.a.preset', detail: /needs network = "nat"/ });
    expectError('[agents.a]\nversion = "1.0.0"\n', { line: 2, key: 'agents.a.version', detail: /belongs to an agent preset/ });
    expectError('[agents.a]\npreset = "aider"\nversion = "1.0.0"\n', { line: 3, key: 'agents.a.version', detail: /comes with the role's image/ });
  });
});
