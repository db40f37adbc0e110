/**
 * The egress proxy: a sandbox's only way out when its container sits on an internal network. It runs in a
 * container of its own and passes CONNECT tunnels and absolute-form plain HTTP requests to the host names on
 * an allowlist, on the allowed ports, and nothing else. Only node: built-ins, so that its bundle
 * (dist/egress-proxy.js) runs on a bare Node image:
 *   EGRESS_ALLOW='api.anthropic.com,*.npmjs.org' EGRESS_PORTS=443,80 EGRESS_LISTEN=0.0.0.0:3128|/unix.sock node egress-proxy.js
 */
import * as dns from 'node:dns';
import { rmSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { finished, pipeline } from 'node:stream';
import * as tls from 'node:tls';
import { hostPatternProblem, isHostName, isIpLiteral, normalizeHost } from '../core/isolation/hosts';

export interface EgressProxyOptions {
  /** Host names (`api.anthropic.com`: that name only) and `*.` wildcards (`*.npmjs.org`: its subdomains, not itself). */
  allow: string[];
  /** The destination ports allowed; 443 and 80 unless given. */
  ports?: number[];
  /** Resolves an allowed name; dns.promises.lookup(host, { all: true }) unless given. */
  lookup?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** Why the proxy may not connect to a resolved address, or undefined if it may; defaultRefusal unless given. */
  refuseAddress?: (address: string) => string | undefined;
  /** Takes one line per refusal; stdout unless given. */
  log?: (line: string) => void;
  connectTimeoutMs?: number;
  /** A client must send a request's whole head within this; 15 s unless given. */
  headersTimeoutMs?: number;
  /** A connection (a tunnel, a request waiting for its answer) with no byte either way for this long is closed; 15 min unless given. */
  idleTimeoutMs?: number;
  /** Connections open at once; one more is answered 503 and closed. 256 unless given. */
  maxConnections?: number;
  /** The credential routes: `/credential/<id>/...` on the proxy itself, forwarded to the provider with the real key. */
  credentials?: CredentialRoute[];
  /** How long a request on a credential route waits for its value to be delivered; 20 s unless given. */
  credentialWaitMs?: number;
}

/**
 * A provider the agent reaches through the proxy with a key it never holds: the agent's base URL is
 * `http://127.0.0.1:3128/credential/<id>` (its own loopback, where the forwarder answers), it sends a placeholder,
 * and the proxy forwards the request to `upstream` with `header` set to the real value, which only the host
 * delivers (see deliverCredentials), into this process's memory.
 */
export interface CredentialRoute {
  id: string;
  /** `https://api.anthropic.com`, or the user's own endpoint (a gateway, a test's model server over http). */
  upstream: string;
  header: string;
  scheme?: string;
  /** What the agent holds instead of the key: refused, and logged, on a request to anywhere else. */
  placeholder: string;
}

/** The path prefix of the credential routes on the proxy. */
export const CREDENTIAL_PATH = '/credential/';
/** Headers that carry a credential: never passed on from the agent to a provider, whose real header is set instead. */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key', 'cookie'];

type Failure = { status: number; reason: string };

const NOT_IP = 'IP addresses are not allowed, only host names';
// Meaningful between one client and the next hop only, so never passed on, in either direction.
const HOP_BY_HOP = ['connection', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'keep-alive', 'te', 'trailer', 'upgrade'];

/** Why the proxy must not connect to this address (loopback, unspecified, link-local, multicast), or undefined. */
export function defaultRefusal(address: string): string | undefined {
  const kind = net.isIPv4(address) ? ipv4Kind(address.split('.').map(Number)) : ipv6Kind(address);
  return kind && `${address} is ${kind}`;
}

function ipv4Kind([a, b, c, d]: number[]): string | undefined {
  if (a === 127) return 'a loopback address';
  if (a === 0) return 'an unspecified address';
  // 169.254.169.254 is the cloud providers' metadata service, which hands out credentials.
  if (a === 169 && b === 254) return 'a link-local address';
  if (a >= 224 && a < 240) return 'a multicast address';
  if (a === 255 && b === 255 && c === 255 && d === 255) return 'the broadcast address';
  return undefined;
}

function ipv6Kind(address: string): string | undefined {
  const w = ipv6Words(address);
  if (!w) return 'not an IP address';
  const zeros = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return 'an unspecified address';
  if (zeros(0, 7) && w[7] === 1) return 'a loopback address';
  if ((w[0] & 0xffc0) === 0xfe80) return 'a link-local address';
  if (w[0] >> 8 === 0xff) return 'a multicast address';
  // ::ffff:a.b.c.d reaches a.b.c.d itself, and 64:ff9b::a.b.c.d reaches it through a NAT64 gateway.
  if ((zeros(0, 5) && w[5] === 0xffff) || (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6))) {
    return ipv4Kind([w[6] >> 8, w[6] & 0xff, w[7] >> 8, w[7] & 0xff]);
  }
  return undefined;
}

/** The eight 16-bit words of an IPv6 address, or undefined for anything else. */
function ipv6Words(address: string): number[] | undefined {
  if (!net.isIPv6(address)) return undefined;
  let text = address.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  return [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back].map((x) => parseInt(x, 16));
}

/** Host and port of `host`, `host:port` or `[v6]:port`; a `user:password@` before it is dropped, never logged. */
function splitAuthority(authority: string): { host: string; port: string | undefined } {
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const bracketed = /^(\[[^\]]*\])(?::(.*))?$/.exec(hostPort);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] };
  const colon = hostPort.lastIndexOf(':');
  return colon < 0 ? { host: hostPort, port: undefined } : { host: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
}

/** What the client wrote, made safe for a log line: printable, one word, not too long. */
function shown(text: string | undefined): string {
  return (text ?? '').replace(/[^\x21-\x7e]/g, '?').slice(0, 300) || '-';
}

/** A TCP connection to exactly this address, or the reason there is none. */
function dial(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, timeout: timeoutMs });
    socket.once('timeout', () => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    socket.once('error', reject);
    socket.once('connect', () => {
      // A tunnel may stay quiet for long: from here on only the client or the server ends it.
      socket.setTimeout(0).removeAllListeners('timeout').off('error', reject);
      resolve(socket);
    });
  });
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const listed = String(headers.connection ?? '').toLowerCase().split(',').map((name) => name.trim());
  const kept: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.includes(name) && !listed.includes(name)) kept[name] = value;
  }
  return kept;
}

/** An answer on a raw socket: a CONNECT's, or one to bytes that were not HTTP. */
function replyRaw(socket: net.Socket, status: number, text: string): void {
  // Read and drop what the client still sends (a TLS hello behind its CONNECT), so that closing does not
  // reset the connection before the client has read the answer; a client that never hangs up is cut off.
  socket.resume();
  socket.setTimeout(5000, () => socket.destroy());
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function replyHttp(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.destroy();
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

/** The proxy's server, and the door through which the host hands it the credentials' values. */
export type EgressProxy = http.Server & { deliverCredentials(values: Record<string, unknown>): string[] };

export function createEgressProxy(options: EgressProxyOptions): EgressProxy {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const pattern of options.allow) {
    const problem = hostPatternProblem(pattern);
    if (problem) throw new Error(`invalid egress allowlist pattern "${pattern}": ${problem}`);
    const wildcard = pattern.startsWith('*.');
    const name = normalizeHost(wildcard ? pattern.slice(2) : pattern);
    if (wildcard) suffixes.push(`.${name}`);
    else exact.add(name);
  }
  const ports = new Set(options.ports ?? [443, 80]);
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid egress port ${port}`);
  }
  const lookup = options.lookup ?? ((host: string) => dns.promises.lookup(host, { all: true }));
  const refuseAddress = options.refuseAddress ?? defaultRefusal;
  const log = options.log ?? ((line: string) => console.log(line));
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const headersTimeoutMs = options.headersTimeoutMs ?? 15_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 15 * 60_000;
  const maxConnections = options.maxConnections ?? 256;

  /** The client's answer for a failure; refusals (4xx, not the 502s of an allowed target) are logged. */
  function failure(host: string | undefined, port: string | undefined, { status, reason }: Failure): string {
    if (status >= 500) return `agent-sandbox egress: ${reason}`;
    const line = `agent-sandbox egress: denied ${shown(host)}:${shown(port)} (${reason})`;
    log(line);
    return line;
  }

  /** A connection to the target the client asked for, if the allowlist has it, or why not. */
  async function open(host: string, portText: string | undefined): Promise<net.Socket | Failure> {
    if (isIpLiteral(host)) return { status: 403, reason: NOT_IP };
    const name = normalizeHost(host);
    if (!isHostName(name)) return { status: 400, reason: 'not a host name' };
    if (!portText || !/^\d{1,5}$/.test(portText)) return { status: 400, reason: 'no valid port' };
    if (!(exact.has(name) || suffixes.some((suffix) => name.endsWith(suffix)))) return { status: 403, reason: 'not on the allowlist' };
    const port = Number(portText);
    if (!ports.has(port)) return { status: 403, reason: `port ${port} is not allowed` };
    return openChecked(name, portText);
  }

  /** A connection to a host by name, to addresses that are not loopback, link-local or multicast; or why not. */
  async function openChecked(name: string, portText: string): Promise<net.Socket | Failure> {
    const port = Number(portText);
    let addresses: string[];
    try {
      addresses = (await lookup(name)).map((a) => a.address);
    } catch (error) {
      return { status: 502, reason: `could not resolve ${name}: ${(error as Error).message}` };
    }
    if (addresses.length === 0 || !addresses.every((a) => net.isIP(a))) return { status: 502, reason: `could not resolve ${name} to an address` };
    // One refused address refuses the name: a name that also points inside is not one to trust.
    for (const address of addresses) {
      const refused = refuseAddress(address);
      if (refused) return { status: 403, reason: refused };
    }
    // The addresses just checked, never the name again: a second resolution could answer differently. Each in
    // turn, as a browser would: the first may be IPv6 where this network has none.
    const failures: string[] = [];
    for (const address of addresses) {
      try {
        return await dial(address, port, connectTimeoutMs);
      } catch (error) {
        failures.push(`${address}: ${(error as Error).message}`);
      }
    }
    return { status: 502, reason: `could not connect to ${name} port ${port} (${failures.join('; ')})` };
  }

  // No limit on a whole request (uploads through the proxy may take long), but on its head: a client that
  // sends half a head and waits holds a connection for nothing. Node checks the head's deadline every
  // connectionsCheckingInterval.
  const server = http.createServer({
    requestTimeout: 0,
    headersTimeout: headersTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
  });
  // A client that shuts its side after the request (nc, some scripts) still gets the answer.
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // Quiet for too long, in either direction: closed (Node destroys the socket on its timeout).
  server.timeout = idleTimeoutMs;

  // At most maxConnections at once, tunnels included: one more is told why and closed before it is read.
  const connections = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    if (connections.size >= maxConnections) {
      socket.on('error', () => socket.destroy());
      const body = `agent-sandbox egress: too many connections (${maxConnections} open); close some and try again\n`;
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    client.on('error', () => client.destroy());
    // The HTTP server's idle timeout no longer watches a socket handed over for a tunnel: this one does.
    client.setTimeout(idleTimeoutMs, () => client.destroy());
    const { host, port } = splitAuthority(req.url ?? '');
    if (carriesPlaceholder(req)) {
      return replyRaw(client, 403, failure(host, port, { status: 403, reason: 'the request carries the sandbox\'s placeholder credential, which goes to its provider\'s route only' }));
    }
    open(host, port)
      .then((upstream) => {
        if (!(upstream instanceof net.Socket)) return replyRaw(client, upstream.status, failure(host, port, upstream));
        upstream.setTimeout(idleTimeoutMs, () => upstream.destroy());
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head); // what the client sent right behind its CONNECT
        // pipe, not pipeline: pipeline destroys the other direction when one side ends, and a client that
        // half-closes after its request would lose the answer. Either side failing or closing ends both.
        client.pipe(upstream);
        upstream.pipe(client);
        const close = () => {
          client.destroy();
          upstream.destroy();
        };
        // finished() also answers for a side that is already gone (a client reset while the name resolved).
        finished(client, close);
        finished(upstream, close);
      })
      .catch(() => client.destroy());
  });

  const routes = new Map<string, { route: CredentialRoute; upstream: URL; value?: string; waiting: Array<() => void> }>();
  for (const route of options.credentials ?? []) {
    const upstream = new URL(route.upstream);
    if (!/^https?:$/.test(upstream.protocol) || upstream.username || upstream.password) throw new Error(`invalid credential upstream "${route.upstream}"`);
    if (!/^[a-z0-9-]+$/.test(route.id) || route.placeholder.length < 16) throw new Error(`invalid credential route "${route.id}"`);
    routes.set(route.id, { route, upstream, waiting: [] });
  }
  const placeholders = [...routes.values()].map((r) => r.route.placeholder);
  const credentialWaitMs = options.credentialWaitMs ?? 20_000;
  /** Whether a request (its target and headers) carries a placeholder: bound for anywhere but its route, it is refused. */
  const carriesPlaceholder = (req: http.IncomingMessage) =>
    placeholders.length > 0 && [req.url ?? '', ...req.rawHeaders].some((text) => placeholders.some((p) => text.includes(p)));

  /** Sets the real values, delivered by the host; requests waiting for them go on. */
  function deliver(values: Record<string, unknown>): string[] {
    const set: string[] = [];
    for (const [id, value] of Object.entries(values)) {
      const entry = routes.get(id);
      if (!entry || typeof value !== 'string' || value === '' || /[\r\n]/.test(value)) continue;
      entry.value = value;
      for (const resume of entry.waiting.splice(0)) resume();
      set.push(id);
    }
    return set;
  }

  function valueOf(entry: { value?: string; waiting: Array<() => void> }): Promise<string | undefined> {
    if (entry.value !== undefined) return Promise.resolve(entry.value);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(entry.value), credentialWaitMs);
      entry.waiting.push(() => {
        clearTimeout(timer);
        resolve(entry.value);
      });
    });
  }

  /** A request on a credential route: to its provider, with the real key in place of whatever the agent sent. */
  async function forwardWithCredential(req: http.IncomingMessage, res: http.ServerResponse, url: string): Promise<void> {
    const rest = url.slice(CREDENTIAL_PATH.length);
    const slash = rest.search(/[/?]|$/);
    const entry = routes.get(rest.slice(0, slash));
    if (!entry) return replyHttp(res, 404, failure(undefined, undefined, { status: 404, reason: `no credential route ${shown(rest.slice(0, slash))}` }));
    const { route, upstream } = entry;
    const value = await valueOf(entry);
    if (value === undefined) return replyHttp(res, 503, `agent-sandbox egress: the credential for ${route.id} has not been delivered`);
    const tail = rest.slice(slash);
    const targetPath = `${upstream.pathname.replace(/\/$/, '')}${tail.startsWith('/') || tail === '' ? tail : `/${tail}`}` || '/';
    const secure = upstream.protocol === 'https:';
    const port = upstream.port || (secure ? '443' : '80');
    const host = upstream.hostname.replace(/^\[(.*)\]$/, '$1');
    // The provider's name, resolved and checked as any other (no loopback, no link-local), but not against the
    // allowlist: the route exists because the preset or the user's own settings name this provider.
    const socket = await openChecked(host, port);
    if (!(socket instanceof net.Socket)) return replyHttp(res, socket.status, failure(host, port, socket));
    if (!res.socket || res.socket.destroyed) return void socket.destroy();
    const connection = secure ? tls.connect({ socket, servername: isIpLiteral(host) ? undefined : host, ALPNProtocols: ['http/1.1'] }) : socket;
    connection.setTimeout(idleTimeoutMs, () => connection.destroy());
    const headers = withoutHopByHop(req.headers);
    for (const name of CREDENTIAL_HEADERS) delete headers[name];
    headers[route.header] = route.scheme ? `${route.scheme} ${value}` : value;
    headers.host = upstream.port ? `${upstream.hostname}:${upstream.port}` : upstream.hostname;
    const outgoing = http.request({ createConnection: () => connection, method: req.method, path: targetPath, headers, setHost: false });
    outgoing.on('response', (response) => {
      try {
        res.writeHead(response.statusCode ?? 502, response.statusMessage, withoutHopByHop(response.headers));
        pipeline(response, res, () => {});
      } catch {
        response.destroy();
        res.destroy();
      }
    });
    outgoing.on('error', (error) => replyHttp(res, 502, `agent-sandbox egress: ${host} hung up: ${error.message}`));
    res.on('close', () => outgoing.destroy());
    req.on('error', () => outgoing.destroy());
    req.pipe(outgoing);
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url?.startsWith(CREDENTIAL_PATH) && routes.size > 0) {
      forwardWithCredential(req, res, req.url).catch(() => res.destroy());
      return;
    }
    const target = /^http:\/\/([^/?#]*)([^#]*)/i.exec(req.url ?? '');
    // A client that sends even its loopback requests through the proxy asks for the route in absolute form.
    if (target && routes.size > 0 && target[2].startsWith(CREDENTIAL_PATH) && /^(127\.0\.0\.1|localhost)(:\d+)?$/i.test(target[1])) {
      forwardWithCredential(req, res, target[2]).catch(() => res.destroy());
      return;
    }
    if (target && carriesPlaceholder(req)) {
      const { host, port = '80' } = splitAuthority(target[1]);
      return replyHttp(res, 403, failure(host, port, { status: 403, reason: 'the request carries the sandbox\'s placeholder credential, which goes to its provider\'s route only' }));
    }
    if (!target) {
      const reason = req.url?.startsWith('/') ? 'a request to the proxy itself: ask for http://host/path' : 'not an http:// URL';
      return replyHttp(res, 400, failure(undefined, undefined, { status: 400, reason }));
    }
    const { host, port = '' } = splitAuthority(target[1]);
    const path = target[2].startsWith('/') ? target[2] : `/${target[2]}`;
    open(host, port || '80')
      .then((upstream) => {
        if (!(upstream instanceof net.Socket)) return replyHttp(res, upstream.status, failure(host, port || '80', upstream));
        if (!res.socket || res.socket.destroyed) return void upstream.destroy();
        upstream.setTimeout(idleTimeoutMs, () => upstream.destroy());
        const headers = withoutHopByHop(req.headers);
        // The target's host wins over a Host header that differs (RFC 9112, 3.2.2); userinfo is never sent.
        headers.host = port ? `${host}:${port}` : host;
        const outgoing = http.request({ createConnection: () => upstream, method: req.method, path, headers, setHost: false });
        outgoing.on('response', (response) => {
          try {
            res.writeHead(response.statusCode ?? 502, response.statusMessage, withoutHopByHop(response.headers));
            pipeline(response, res, () => {});
          } catch {
            response.destroy(); // a head Node will not write again: the answer cannot be passed on
            res.destroy();
          }
        });
        outgoing.on('error', (error) => replyHttp(res, 502, `agent-sandbox egress: ${host} hung up: ${error.message}`));
        res.on('close', () => outgoing.destroy());
        req.on('error', () => outgoing.destroy());
        req.pipe(outgoing);
      })
      .catch(() => res.destroy());
  });

  // Bytes that are not HTTP: a 400 where an answer can still be given, else just the hang-up.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!error.code?.startsWith('HPE_') || !socket.writable) return void socket.destroy();
    replyRaw(socket, 400, failure(undefined, undefined, { status: 400, reason: 'malformed request' }));
  });

  return Object.assign(server, { deliverCredentials: deliver });
}

/** The control socket's side: the host runs this in the proxy's container, the values on its stdin. */
async function sendCredentials(controlPath: string): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_CONTROL_BYTES) throw new Error('the credentials are too long');
    chunks.push(chunk as Buffer);
  }
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(controlPath, () => socket.end(Buffer.concat(chunks)));
    let text = '';
    socket.on('data', (data) => (text += data.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  if (!answer.startsWith('ok')) throw new Error(answer.trim() || 'no answer from the proxy');
  console.log(answer.trim());
}

const MAX_CONTROL_BYTES = 64 * 1024;

/** Listens for the host's delivery of the credentials' values, on a socket in a volume the agent never mounts. */
function listenForCredentials(server: EgressProxy, controlPath: string): void {
  rmSync(controlPath, { force: true });
  const control = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CONTROL_BYTES) socket.destroy();
      else chunks.push(chunk);
    });
    socket.on('end', () => {
      try {
        const values = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new Error('expected an object');
        const set = server.deliverCredentials(values as Record<string, unknown>);
        socket.end(`ok: ${set.length} credential${set.length === 1 ? '' : 's'} set (${set.join(', ') || 'none'})\n`);
      } catch (error) {
        socket.end(`error: ${(error as Error).message}\n`);
      }
    });
  });
  control.listen(controlPath);
}

function main(): void {
  const list = (value: string | undefined) => (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
  const number = (text: string | undefined, what: string) => {
    if (!text || !/^\d+$/.test(text)) throw new Error(`${what}: "${text ?? ''}" is not a port number`);
    return Number(text);
  };
  const ports = list(process.env.EGRESS_PORTS || '443,80').map((port) => number(port, 'EGRESS_PORTS'));
  const where = process.env.EGRESS_LISTEN || '0.0.0.0:3128';
  const credentials = JSON.parse(process.env.EGRESS_CREDENTIAL_ROUTES || '[]') as CredentialRoute[];
  const server = createEgressProxy({ allow: list(process.env.EGRESS_ALLOW), ports, credentials });
  if (credentials.length > 0) listenForCredentials(server, process.env.EGRESS_CONTROL || '/run/egress/control.sock');
  server.on('error', (error) => {
    console.error(`agent-sandbox egress: ${error.message}`);
    process.exit(1);
  });
  if (where.startsWith('/')) {
    // A unix socket, which the sandbox's forwarder connects to; one left by an earlier run would block the path.
    rmSync(where, { force: true });
    server.listen(where, () => console.log(`egress proxy listening on ${where}`));
    return;
  }
  const listen = splitAuthority(where);
  server.listen(number(listen.port, 'EGRESS_LISTEN'), listen.host.replace(/^\[(.*)\]$/, '$1'), () => {
    const { address, port } = server.address() as net.AddressInfo;
    console.log(`egress proxy listening on ${address.includes(':') ? `[${address}]` : address}:${port}`);
  });
  // Open tunnels are not waited for: the container is being stopped, and its connections go with it.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}

if (require.main === module && process.argv[2] === 'deliver-credentials') {
  sendCredentials(process.argv[3] || '/run/egress/control.sock').catch((error: Error) => {
    console.error(`agent-sandbox egress: ${error.message}`);
    process.exit(1);
  });
} else if (require.main === module) {
  try {
    main();
  } catch (error) {
    console.error(`agent-sandbox egress: ${(error as Error).message}`);
    process.exit(1);
  }
}
