/**
 * The egress allowlist. A sandbox with `allow` set gets no network of its own: its agent joins the network
 * namespace of a forwarder container that has only a loopback interface, so no address, port, protocol or
 * DNS server outside is reachable at all. The forwarder hands 127.0.0.1:3128 (the agent's HTTP(S)_PROXY) over
 * a unix socket, in a volume the agent never mounts, to the proxy container, which sits on NAT and lets
 * through only CONNECT and plain HTTP to the host names allowed. Both run as nobody from an image the agent
 * cannot change, in containers it cannot reach: it is root in nothing that decides what passes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import * as tar from 'tar-stream';
import { executableOnPath } from '../engine/engine';
import type { Engine, EngineInfo, OutputSink } from '../engine/engine';
import { SandboxError } from '../errors';
import { addEntry } from '../images';
import { LABEL } from '../engine/labels';
import type { Ulimit } from '../engine/ulimits';
import type { CredentialRoute } from '../../egress/proxy';
import { demultiplex } from '../engine/demux';

export const PROXY_PORT = 3128;
export const PROXY_URL = `http://127.0.0.1:${PROXY_PORT}`;
const SOCKET_DIR = '/run/egress';
const NOBODY = '65534:65534';

/** The engine objects of one sandbox's egress path, named after its agent container. */
export function egressNames(container: string): { volume: string; proxy: string; forwarder: string } {
  return { volume: `${container}-egress`, proxy: `${container}-egress-proxy`, forwarder: `${container}-egress-net` };
}

/** What the agent's container gets: the forwarder's network namespace and the proxy in its environment. */
export function agentEgressSettings(container: string): { networkMode: string; env: Record<string, string> } {
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    networkMode: `container:${egressNames(container).forwarder}`,
    env: { HTTP_PROXY: PROXY_URL, HTTPS_PROXY: PROXY_URL, http_proxy: PROXY_URL, https_proxy: PROXY_URL, ALL_PROXY: PROXY_URL, all_proxy: PROXY_URL, NO_PROXY: noProxy, no_proxy: noProxy },
  };
}

/**
 * Creates and starts the proxy and the forwarder for a sandbox about to be created; returns once the
 * forwarder listens, so the agent's first request finds it. On failure, removes what it made.
 */
export async function createEgress(
  engine: Engine,
  info: EngineInfo,
  container: string,
  allow: string[],
  labels: Record<string, string>,
  ulimits: Ulimit[],
  output: OutputSink,
  extraHosts: string[] = [],
  securityOpt: string[] = [],
  credentialRoutes: CredentialRoute[] = [],
): Promise<void> {
  const image = await ensureEgressImage(engine, output);
  const names = egressNames(container);
  const rootless = info.kind === 'podman' && info.rootless;
  const hardened = (networkMode: string): Docker.HostConfig => ({
    Binds: [`${names.volume}:${SOCKET_DIR}`],
    NetworkMode: networkMode,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges', ...securityOpt],
    ReadonlyRootfs: true,
    Memory: 128 * 1024 ** 2,
    MemorySwap: 128 * 1024 ** 2,
    PidsLimit: 64,
    NanoCpus: 0.5e9,
    Ulimits: ulimits,
  });
  const ownLabels = { ...labels, [LABEL.managed]: 'true', [LABEL.egressFor]: container };
  try {
    await engine.createVolume(
      {
        Name: names.volume,
        Labels: ownLabels,
        // tmpfs: the socket lives in memory, and the volume is nobody's from the start on both engines.
        DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'uid=65534,gid=65534,mode=0700' },
      },
      'Creating the egress volume',
    );
    const proxy = await engine.createContainer(
      {
        name: names.proxy,
        Image: image,
        User: NOBODY,
        Cmd: ['/egress/proxy.js'],
        Env: [
          `EGRESS_ALLOW=${allow.join(',')}`,
          `EGRESS_LISTEN=${SOCKET_DIR}/proxy.sock`,
          // The routes only (providers, headers, placeholders): the values come over the control socket.
          ...(credentialRoutes.length > 0 ? [`EGRESS_CREDENTIAL_ROUTES=${JSON.stringify(credentialRoutes)}`, `EGRESS_CONTROL=${CONTROL_SOCKET}`] : []),
        ],
        Labels: ownLabels,
        HostConfig: { ...hardened(rootless ? 'slirp4netns' : 'bridge'), ExtraHosts: extraHosts },
      },
      'Creating the egress proxy',
    );
    const forwarder = await engine.createContainer(
      {
        name: names.forwarder,
        Image: image,
        User: NOBODY,
        Cmd: ['/egress/forward.js'],
        Env: [`EGRESS_LISTEN=127.0.0.1:${PROXY_PORT}`, `EGRESS_FORWARD_TO=${SOCKET_DIR}/proxy.sock`],
        Labels: ownLabels,
        HostConfig: hardened('none'),
      },
      'Creating the egress forwarder',
    );
    await startEgressContainers(engine, [proxy, forwarder]);
  } catch (error) {
    await removeEgress(engine, container);
    throw error;
  }
}

/** Starts a stopped sandbox's proxy and forwarder (before its agent, which needs the forwarder's namespace). */
export async function startEgress(engine: Engine, container: string): Promise<void> {
  const names = egressNames(container);
  await startEgressContainers(engine, [engine.container(names.proxy), engine.container(names.forwarder)]);
}

async function startEgressContainers(engine: Engine, containers: Docker.Container[]): Promise<void> {
  for (const c of containers) {
    const state = await c.inspect().then((i) => i.State);
    if (state.Running) continue;
    await engine.call('Starting the egress proxy', () => c.start());
  }
  await Promise.all(containers.map((c) => waitUntilListening(engine, c)));
}

const CONTROL_SOCKET = `${SOCKET_DIR}/control.sock`;

/**
 * Hands the credentials' real values to a running proxy, into its memory: over an exec session's stdin and the
 * control socket in the egress volume, which the agent never mounts; never through a container's configuration,
 * a file or a log. Needed again after each start of the proxy.
 */
export async function deliverCredentials(engine: Engine, container: string, values: Record<string, string>): Promise<void> {
  if (Object.keys(values).length === 0) return;
  const what = 'Handing the credentials to the egress proxy';
  const proxy = engine.container(egressNames(container).proxy);
  const exec = await engine.call(what, () =>
    proxy.exec({ Cmd: ['/node', '/egress/proxy.js', 'deliver-credentials', CONTROL_SOCKET], AttachStdin: true, AttachStdout: true, AttachStderr: true, User: NOBODY }),
  );
  const stream = await engine.call(what, () => exec.start({ hijack: true, stdin: true }));
  const said: Buffer[] = [];
  const collect = new PassThrough().on('data', (chunk: Buffer) => said.push(chunk));
  demultiplex(stream, collect, collect);
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
    (stream as unknown as { end(data: string): void }).end(JSON.stringify(values));
  });
  const { ExitCode } = await engine.call(what, () => exec.inspect());
  if (ExitCode !== 0) {
    throw new SandboxError(`${what} failed (exit ${ExitCode}): ${Buffer.concat(said).toString('utf8').replace(CONTROL_BYTES, '').trim().slice(-500)}`, 'Start the sandbox again; if it fails again, remove it and make it anew.');
  }
}

/** Stops the proxy and the forwarder; after the agent, whose network is the forwarder's. */
export async function stopEgress(engine: Engine, container: string): Promise<void> {
  const names = egressNames(container);
  await Promise.all(
    [names.proxy, names.forwarder].map((name) => engine.container(name).stop({ t: 2 }).catch(() => undefined)),
  );
}

/** Removes whatever exists of a sandbox's egress path. */
export async function removeEgress(engine: Engine, container: string): Promise<void> {
  const names = egressNames(container);
  await Promise.all([names.proxy, names.forwarder].map((name) => engine.removeContainer(name, 'Removing the egress proxy', { force: true }).catch(() => undefined)));
  await engine.removeVolume(names.volume, 'Removing the egress volume').catch(() => undefined);
}

/**
 * The proxy's denials, followed: what the proxy prints is one line per refused attempt (never headers or
 * bodies), so it can go into the sandbox's output as it is.
 */
export async function egressLog(engine: Engine, container: string, options: { follow: boolean; signal?: AbortSignal }): Promise<Readable | undefined> {
  const proxy = engine.container(egressNames(container).proxy);
  const exists = await proxy.inspect().then(() => true, () => false);
  if (!exists) return undefined;
  const logs = await engine.logs(proxy.id, options);
  const denials = new PassThrough();
  // Only the denials: the start-up line is the proxy's business, not the agent's output.
  let carry = '';
  logs.stdout.on('data', (chunk: Buffer) => {
    const lines = (carry + chunk.toString('utf8')).split('\n');
    carry = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('agent-sandbox egress:')) denials.write(`${line}\n`);
  });
  logs.stdout.on('end', () => denials.end());
  logs.stderr.resume();
  return denials;
}

/** The bytes before the tab (NUL among them) that a container's raw log can hold: not text for a message. */
// eslint-disable-next-line no-control-regex -- matching control bytes is the point
const CONTROL_BYTES = /[\x00-\x08]/g;

async function waitUntilListening(engine: Engine, container: Docker.Container): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = String(await container.logs({ stdout: true, stderr: true, follow: false }).catch(() => ''));
    if (/listening/.test(text)) return;
    const state = await container.inspect().then((i) => i.State, () => undefined);
    if (!state?.Running || Date.now() > deadline) {
      throw new SandboxError(
        `The egress proxy did not start (${state?.Running ? 'no answer in 20 s' : `it exited with ${state?.ExitCode ?? 'no container'}`}): ${text.replace(CONTROL_BYTES, '').trim().slice(-500)}`,
        'See `docker logs` of the container above; the allowlist needs both the proxy and the forwarder running.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---------------------------------------------------------------------------------------------------
// The proxy's image: no registry is needed, it is assembled from this machine's Node.js and the proxy's code.

/** The Node.js binary to put in the image: a plain node, never the editor's Electron. */
export async function nodeForImage(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.AGENT_SANDBOX_NODE) return env.AGENT_SANDBOX_NODE;
  if (!process.versions.electron && process.platform === 'linux') return process.execPath;
  const onPath = executableOnPath('node', env);
  if (onPath) return onPath;
  throw new SandboxError(
    'The egress allowlist needs Node.js on this machine: its proxy image is assembled from it.',
    'Install Node.js 18 or later (so that `node` is on PATH), or set AGENT_SANDBOX_NODE to a Linux node binary.',
  );
}

/** The shared libraries a dynamic executable loads, as ldd lists them (none for a static one). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await new Promise<string>((resolve) => execFile('ldd', [binary], (error, stdout) => resolve(error ? '' : stdout)));
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const linked = /=>\s+(\/\S+)/.exec(line);
    const loader = /^\s*(\/\S+)\s+\(/.exec(line);
    if (linked) libs.add(linked[1]);
    else if (loader) libs.add(loader[1]);
  }
  return [...libs];
}

const EGRESS_DOCKERFILE = `FROM scratch
COPY rootfs/ /
USER ${NOBODY}
ENTRYPOINT ["/node"]
`;

/** Builds the proxy's image unless one built from the same node and code is there already. */
export async function ensureEgressImage(engine: Engine, output: OutputSink, scriptsDir: string = __dirname): Promise<string> {
  const node = await fs.realpath(await nodeForImage());
  const scripts = await Promise.all(
    ['egress-proxy.js', 'egress-forward.js'].map(async (name) => {
      const file = path.join(scriptsDir, name);
      return { name, content: await fs.readFile(file).catch(() => { throw new SandboxError(`${file} is missing: the egress proxy cannot be built.`, 'Build Agent Sandboxes again (npm run build).'); }) };
    }),
  );
  const stat = await fs.stat(node);
  const hash = createHash('sha256').update(EGRESS_DOCKERFILE).update(`${node}\0${stat.size}\0${stat.mtimeMs}\0`);
  for (const script of scripts) hash.update(script.content);
  const tag = await engine.localImageName(`agent-sandbox/egress-proxy:${hash.digest('hex').slice(0, 16)}`);
  if (await engine.imageId(tag)) return tag;
  output(`Building the egress proxy image ${tag} from ${node}\n`);
  const pack = tar.pack();
  const add = (header: tar.Headers, content?: Buffer) => addEntry(pack, { mtime: new Date(0), uid: 0, gid: 0, ...header }, content);
  const fill = async () => {
    await add({ name: 'Dockerfile', mode: 0o644 }, Buffer.from(EGRESS_DOCKERFILE));
    const dirs = new Set<string>(['rootfs', 'rootfs/egress', 'rootfs/etc', 'rootfs/run', 'rootfs/run/egress', 'rootfs/tmp']);
    const libs = await sharedLibraries(node);
    for (const lib of libs) for (let d = path.posix.dirname(lib); d !== '/'; d = path.posix.dirname(d)) dirs.add(`rootfs${d}`);
    for (const dir of [...dirs].sort()) await add({ name: dir, type: 'directory', mode: dir === 'rootfs/tmp' ? 0o1777 : 0o755 });
    await add({ name: 'rootfs/node', mode: 0o755 }, await fs.readFile(node));
    for (const lib of libs) await add({ name: `rootfs${lib}`, mode: 0o755 }, await fs.readFile(lib));
    for (const script of scripts) await add({ name: `rootfs/egress/${script.name.replace('egress-', '')}`, mode: 0o644 }, script.content);
    await add({ name: 'rootfs/etc/passwd', mode: 0o644 }, Buffer.from('nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n'));
    await add({ name: 'rootfs/etc/group', mode: 0o644 }, Buffer.from('nogroup:x:65534:\n'));
    pack.finalize();
  };
  fill().catch((error) => pack.destroy(error));
  await engine.build(pack, { tag, dockerfile: 'Dockerfile', labels: { [LABEL.managed]: 'true' } }, output);
  return tag;
}
