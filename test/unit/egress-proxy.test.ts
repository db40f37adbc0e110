import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isIpLiteral } from '../../src/core/isolation/hosts';
import { createEgressProxy, defaultRefusal } from '../../src/egress/proxy';

// Everything here listens on 127.0.0.1 only (and connects there, or to 127.0.0.3 to be refused): test names resolve there through the proxy's lookup.
const LOCAL = '127.0.0.1';
/** A loopback address nothing listens on: connections to it are refused at once. */
const DEAD = '127.0.0.3';
const NOT_IP = 'IP addresses are not allowed, only host names';
const SECRET = 'SECRETVALUE';
const WAIT_MS = 5000;
const BUNDLE = path.resolve(__dirname, '../../../dist/egress-proxy.js');

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOCAL, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Reads from the socket until `done` says the text so far is complete; fails after a few seconds rather than hang. */
function readUntil(socket: net.Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (done(text)) finish(() => resolve(text));
    };
    const onEnd = () => finish(() => reject(new Error(`connection closed after ${JSON.stringify(text)}`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`still waiting after ${JSON.stringify(text)}`))), WAIT_MS);
    const finish = (then: () => void) => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('error', onEnd);
      then();
    };
    socket.on('data', onData).on('end', onEnd).on('error', onEnd);
  });
}

/** Sends bytes on a new connection to the proxy and reads until the proxy closes it (within a few seconds). */
function exchange(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, LOCAL, () => socket.write(data));
    const parts: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`not closed by the proxy, after ${Buffer.concat(parts)}`)), WAIT_MS);
    socket.on('data', (chunk) => parts.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts).toString('latin1'));
    });
  });
}

function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1]);
}

/** CONNECT through the proxy, with `early` sent in the same write as the head; the socket once answered. */
async function tunnel(port: number, target: string, early = ''): Promise<{ socket: net.Socket; text: string }> {
  const socket = net.connect(port, LOCAL);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${early}`);
  const text = await readUntil(socket, (t) => t.includes('\r\n\r\n') && t.length >= t.indexOf('\r\n\r\n') + 4 + early.length);
  return { socket, text };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An absolute-form request through the proxy, as an HTTP client configured with a proxy sends it. */
function viaProxy(port: number, url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: LOCAL, port, path: url, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (chunk) => parts.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(parts).toString() }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

describe('egress proxy', () => {
  const echo = net.createServer((socket) => socket.on('error', () => {}).pipe(socket));
  const seen: Seen[] = [];
  const upstream = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (chunk) => parts.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(201, { 'x-upstream': 'yes', connection: 'x-upstream-hop', 'x-upstream-hop': 'dropped', 'keep-alive': 'timeout=5' });
      res.write(`${req.method} ${req.url} `);
      res.end(req.method === 'POST' ? `${body.length} bytes, sha ${body.subarray(0, 8).toString('hex')}` : 'hello');
    });
  });
  const logs: string[] = [];
  const lookups: string[] = [];
  const clients = new Set<net.Socket>();
  let echoPort = 0;
  let httpPort = 0;
  let closedPort = 0;
  let proxyPort = 0;
  let proxy: http.Server;

  before(async () => {
    echoPort = await listen(echo);
    httpPort = await listen(upstream);
    const gone = net.createServer();
    closedPort = await listen(gone);
    await close(gone);
    proxy = createEgressProxy({
      allow: ['allowed.test', '*.allowed.test', 'unresolvable.test', 'empty.test', 'loopback.test', 'slow.test', '*.npmjs.org', 'second.test', 'mixed.test', 'nowhere.test'],
      ports: [echoPort, httpPort, closedPort, 443],
      log: (line) => logs.push(line),
      lookup: async (host) => {
        lookups.push(host);
        if (host === 'loopback.test') return [{ address: '127.0.0.2', family: 4 }];
        if (host === 'empty.test') return [];
        // DEAD: an address nothing listens on, as an IPv6 address is where the proxy's network has none.
        if (host === 'second.test') return [{ address: DEAD, family: 4 }, { address: LOCAL, family: 4 }];
        if (host === 'mixed.test') return [{ address: LOCAL, family: 4 }, { address: '127.0.0.2', family: 4 }];
        if (host === 'nowhere.test') return [{ address: DEAD, family: 4 }, { address: DEAD, family: 4 }];
        if (host === 'slow.test') return new Promise((resolve) => setTimeout(() => resolve([{ address: LOCAL, family: 4 }]), 100));
        if (host === 'allowed.test' || host.endsWith('.allowed.test') || host.endsWith('.npmjs.org')) return [{ address: LOCAL, family: 4 }];
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      },
      // The upstreams listen on 127.0.0.1, which the default refuses; every other address is refused as by default.
      refuseAddress: (address) => (address === LOCAL || address === DEAD ? undefined : defaultRefusal(address)),
    });
    proxy.on('connection', (socket: net.Socket) => clients.add(socket.on('close', () => clients.delete(socket))));
    proxyPort = await listen(proxy);
  });

  after(async () => {
    for (const socket of clients) socket.destroy();
    upstream.closeAllConnections();
    await Promise.all([close(proxy), close(echo), close(upstream)]);
  });

  /** Runs `send` and checks it got `status` and logged exactly `line` (or nothing, for undefined). */
  async function expectAnswer(send: () => Promise<string | Answer>, status: number, line: string | undefined) {
    const before = logs.length;
    const answer = await send();
    assert.equal(typeof answer === 'string' ? statusOf(answer) : answer.status, status, JSON.stringify(answer));
    assert.deepEqual(logs.slice(before), line === undefined ? [] : [line]);
    if (line) assert.ok((typeof answer === 'string' ? answer : answer.body).includes(line), 'the client is told why');
  }
  const denied = (host: string, port: number | string, reason: string) => `agent-sandbox egress: denied ${host}:${port} (${reason})`;

  test('CONNECT to an allowed name tunnels bytes both ways', async () => {
    const { socket, text } = await tunnel(proxyPort, `allowed.test:${echoPort}`);
    assert.equal(text, 'HTTP/1.1 200 Connection Established\r\n\r\n');
    socket.write('ping');
    assert.equal(await readUntil(socket, (t) => t.length >= 4), 'ping');
    // A megabyte of binary data comes back intact, backpressure and all.
    const data = randomBytes(1 << 20);
    socket.write(data);
    assert.ok(Buffer.from(await readUntil(socket, (t) => t.length >= data.length), 'latin1').equals(data));
    socket.end();
    await new Promise((resolve) => socket.on('close', resolve));
    assert.deepEqual(logs, [], 'allowed connections are not logged');
  });

  test('CONNECT with bytes sent right behind the head passes them on first', async () => {
    const { socket, text } = await tunnel(proxyPort, `allowed.test:${echoPort}`, 'early bytes;');
    assert.equal(text, 'HTTP/1.1 200 Connection Established\r\n\r\nearly bytes;');
    socket.write('late');
    assert.equal(await readUntil(socket, (t) => t.length >= 4), 'late');
    socket.destroy();
  });

  test('wildcards match subdomains at any depth, names case-insensitively and with a trailing dot', async () => {
    for (const name of ['api.allowed.test', 'a.b.allowed.test', 'API.Allowed.TEST', 'allowed.test.', 'registry.npmjs.org']) {
      const { socket, text } = await tunnel(proxyPort, `${name}:${echoPort}`);
      assert.match(text, /^HTTP\/1\.1 200 /, name);
      socket.destroy();
    }
    assert.deepEqual(lookups.slice(-5), ['api.allowed.test', 'a.b.allowed.test', 'api.allowed.test', 'allowed.test', 'registry.npmjs.org']);
  });

  test('plain HTTP reaches the upstream with its path and Host, without hop-by-hop headers, and streams back', async () => {
    const answer = await viaProxy(proxyPort, `http://allowed.test:${httpPort}/some/path?q=1&r=2`, {
      headers: {
        host: `allowed.test:${httpPort}`,
        authorization: 'Bearer end-to-end',
        'x-end-to-end': 'kept',
        'proxy-authorization': 'Basic cHJveHk=',
        'proxy-connection': 'keep-alive',
        connection: 'close, x-hop',
        'x-hop': 'dropped',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        upgrade: 'websocket',
      },
    });
    assert.equal(answer.status, 201);
    assert.equal(answer.body, 'GET /some/path?q=1&r=2 hello');
    assert.equal(answer.headers['x-upstream'], 'yes');
    assert.equal(answer.headers['x-upstream-hop'], undefined, 'headers the upstream listed in Connection stay behind');
    const request = seen.at(-1)!;
    assert.equal(request.url, '/some/path?q=1&r=2');
    assert.equal(request.headers.host, `allowed.test:${httpPort}`);
    assert.equal(request.headers.authorization, 'Bearer end-to-end');
    assert.equal(request.headers['x-end-to-end'], 'kept');
    for (const name of ['proxy-authorization', 'proxy-connection', 'x-hop', 'keep-alive', 'te', 'upgrade']) {
      assert.equal(request.headers[name], undefined, name);
    }
  });

  test('plain HTTP: the URL\'s host is the Host sent, a request body is streamed, and a kept-alive client is served again', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const body = randomBytes(300_000);
      const url = `http://api.allowed.test:${httpPort}/upload`;
      const answer = await viaProxy(proxyPort, url, { method: 'POST', body, agent, headers: { host: 'elsewhere.test' } });
      assert.equal(answer.body, `POST /upload ${body.length} bytes, sha ${body.subarray(0, 8).toString('hex')}`);
      assert.ok(seen.at(-1)!.body.equals(body));
      assert.equal(seen.at(-1)!.headers.host, `api.allowed.test:${httpPort}`);
      const again = await viaProxy(proxyPort, `http://allowed.test:${httpPort}`, { agent });
      assert.equal(again.body, 'GET / hello', 'an empty path is /');
    } finally {
      agent.destroy();
    }
  });

  test('denies a name not on the allowlist, and the bare domain of a wildcard', async () => {
    await expectAnswer(() => exchange(proxyPort, `CONNECT example.test:${echoPort} HTTP/1.1\r\n\r\n`), 403, denied('example.test', echoPort, 'not on the allowlist'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT npmjs.org:443 HTTP/1.1\r\n\r\n'), 403, denied('npmjs.org', 443, 'not on the allowlist'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT evilallowed.test:443 HTTP/1.1\r\n\r\n'), 403, denied('evilallowed.test', 443, 'not on the allowlist'));
    await expectAnswer(() => viaProxy(proxyPort, `http://Example.test:${httpPort}/x`), 403, denied('Example.test', httpPort, 'not on the allowlist'));
    await expectAnswer(() => viaProxy(proxyPort, 'http://npmjs.org/'), 403, denied('npmjs.org', 80, 'not on the allowlist'));
  });

  test('denies an IP address in every form, and never looks it up', async () => {
    const before = lookups.length;
    const forms = ['127.0.0.1', '127.0.0.1.', '[::1]', '::1', '[::ffff:127.0.0.1]', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '0x7f.1', '10.0.0.1', '8.8.8.8'];
    for (const host of forms) {
      await expectAnswer(() => exchange(proxyPort, `CONNECT ${host}:${echoPort} HTTP/1.1\r\n\r\n`), 403, denied(host, echoPort, NOT_IP));
      await expectAnswer(() => exchange(proxyPort, `GET http://${host}:${httpPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`), 403, denied(host, httpPort, NOT_IP));
    }
    await expectAnswer(() => viaProxy(proxyPort, 'http://2130706433/'), 403, denied('2130706433', 80, NOT_IP));
    assert.equal(lookups.length, before);
  });

  test('denies an allowed name on a port not allowed', async () => {
    await expectAnswer(() => exchange(proxyPort, 'CONNECT allowed.test:22 HTTP/1.1\r\n\r\n'), 403, denied('allowed.test', 22, 'port 22 is not allowed'));
    await expectAnswer(() => viaProxy(proxyPort, 'http://allowed.test:8080/'), 403, denied('allowed.test', 8080, 'port 8080 is not allowed'));
  });

  test('denies a name that resolves to an address refuseAddress refuses', async () => {
    const reason = '127.0.0.2 is a loopback address';
    await expectAnswer(() => exchange(proxyPort, `CONNECT loopback.test:${echoPort} HTTP/1.1\r\n\r\n`), 403, denied('loopback.test', echoPort, reason));
    await expectAnswer(() => viaProxy(proxyPort, `http://loopback.test:${httpPort}/`), 403, denied('loopback.test', httpPort, reason));
  });

  test('tries each address the name resolves to, in order, until one connects', async () => {
    const { socket, text } = await tunnel(proxyPort, `second.test:${echoPort}`);
    assert.equal(text, 'HTTP/1.1 200 Connection Established\r\n\r\n');
    socket.write('ping');
    assert.equal(await readUntil(socket, (t) => t.length >= 4), 'ping');
    socket.destroy();
    const answer = await exchange(proxyPort, `CONNECT nowhere.test:${echoPort} HTTP/1.1\r\n\r\n`);
    assert.equal(statusOf(answer), 502, answer);
    assert.match(answer, new RegExp(`could not connect to nowhere.test port ${echoPort} \\(${DEAD.replace(/\./g, '\\.')}: .*ECONNREFUSED.*; ${DEAD.replace(/\./g, '\\.')}: `));
  });

  test('denies a name when any of its addresses is refused, even if another is fine', async () => {
    await expectAnswer(() => exchange(proxyPort, `CONNECT mixed.test:${echoPort} HTTP/1.1\r\n\r\n`), 403, denied('mixed.test', echoPort, '127.0.0.2 is a loopback address'));
  });

  test('answers 400 to a request for the proxy itself and to a CONNECT without a port or host name', async () => {
    const reason = 'a request to the proxy itself: ask for http://host/path';
    await expectAnswer(() => exchange(proxyPort, 'GET /path HTTP/1.1\r\nHost: allowed.test\r\n\r\n'), 400, denied('-', '-', reason));
    await expectAnswer(() => exchange(proxyPort, 'GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n'), 400, denied('-', '-', 'not an http:// URL'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT allowed.test HTTP/1.1\r\n\r\n'), 400, denied('allowed.test', '-', 'no valid port'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT allowed.test:https HTTP/1.1\r\n\r\n'), 400, denied('allowed.test', 'https', 'no valid port'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT a..allowed.test:443 HTTP/1.1\r\n\r\n'), 400, denied('a..allowed.test', 443, 'not a host name'));
  });

  test('a name that does not resolve, or an upstream that refuses the connection, is a 502 and no denial', async () => {
    await expectAnswer(() => exchange(proxyPort, `CONNECT unresolvable.test:${echoPort} HTTP/1.1\r\n\r\n`), 502, undefined);
    await expectAnswer(() => exchange(proxyPort, `CONNECT empty.test:${echoPort} HTTP/1.1\r\n\r\n`), 502, undefined);
    await expectAnswer(() => viaProxy(proxyPort, `http://unresolvable.test:${httpPort}/`), 502, undefined);
    await expectAnswer(() => exchange(proxyPort, `CONNECT allowed.test:${closedPort} HTTP/1.1\r\n\r\n`), 502, undefined);
    await expectAnswer(() => viaProxy(proxyPort, `http://allowed.test:${closedPort}/`), 502, undefined);
  });

  test('a client that shuts its side right after its request still gets the answer, through a tunnel and plain HTTP', async () => {
    const whole = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(proxyPort, LOCAL, () => socket.end(request));
        const parts: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => parts.push(chunk));
        socket.on('error', reject);
        socket.on('close', () => resolve(Buffer.concat(parts).toString()));
      });
    const tunnelled = await whole(`CONNECT allowed.test:${echoPort} HTTP/1.1\r\n\r\nping`);
    assert.match(tunnelled, /^HTTP\/1\.1 200 [^]*\r\n\r\nping$/);
    const plain = await whole(`GET http://allowed.test:${httpPort}/half HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
    assert.match(plain, /^HTTP\/1\.1 201 [^]*GET \/half[^]*hello/);
  });

  test('garbage and clients hanging up mid-way do not stop it serving the next client', async () => {
    await expectAnswer(() => exchange(proxyPort, Buffer.from([0, 1, 2, 0xff, 13, 10, 13, 10])), 400, denied('-', '-', 'malformed request'));
    await expectAnswer(() => exchange(proxyPort, 'CONNECT\r\n\r\n'), 400, denied('-', '-', 'malformed request'));
    await expectAnswer(() => exchange(proxyPort, `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nBad Header\r\n\r\n`), 400, denied('-', '-', 'malformed request'));
    const hangUps = [
      'CONNECT allowed.te', // in the middle of the head
      `CONNECT allowed.test:${echoPort} HTTP/1.1\r\n\r\n`, // before the answer
      `CONNECT unresolvable.test:${echoPort} HTTP/1.1\r\n\r\n`,
      `CONNECT slow.test:${echoPort} HTTP/1.1\r\n\r\n`, // while the name is looked up
      `GET http://slow.test:${httpPort}/ HTTP/1.1\r\nHost: slow.test\r\n\r\n`,
      `POST http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 100000\r\n\r\npartial body`,
    ];
    for (const bytes of hangUps) {
      const socket = net.connect(proxyPort, LOCAL, () => socket.write(bytes, () => setTimeout(() => socket.resetAndDestroy(), 20)));
      socket.on('error', () => {});
      await new Promise((resolve) => socket.on('close', resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 150)); // slow.test's lookups are over
    const { socket } = await tunnel(proxyPort, `allowed.test:${echoPort}`);
    socket.write('still here');
    assert.equal(await readUntil(socket, (t) => t.length >= 10), 'still here');
    socket.destroy();
    assert.equal((await viaProxy(proxyPort, `http://allowed.test:${httpPort}/after`)).body, 'GET /after hello');
  });

  test('no log line holds a header, a password or a path the client sent', async () => {
    const headers = `Authorization: Bearer sk-${SECRET}\r\nProxy-Authorization: Basic ${SECRET}\r\nCookie: s=${SECRET}\r\n`;
    await exchange(proxyPort, `CONNECT example.test:443 HTTP/1.1\r\n${headers}\r\n`);
    await exchange(proxyPort, `CONNECT user:${SECRET}@example.test:443 HTTP/1.1\r\n${headers}\r\n`);
    await exchange(proxyPort, `GET http://user:${SECRET}@example.test/?key=${SECRET} HTTP/1.1\r\nHost: example.test\r\n${headers}\r\n`);
    await exchange(proxyPort, `GET /${SECRET} HTTP/1.1\r\nHost: ${SECRET}\r\n${headers}\r\n`);
    await viaProxy(proxyPort, `http://allowed.test:${httpPort}/?key=${SECRET}`, { headers: { authorization: `Bearer ${SECRET}` } });
    assert.ok(logs.length > 0);
    assert.deepEqual(logs.filter((line) => line.includes(SECRET)), []);
    assert.deepEqual(logs.filter((line) => !/^agent-sandbox egress: denied \S+:\S+ \(.+\)$/.test(line)), [], 'every line has the one form');
  });
});

describe('connect timeout', () => {
  test('an upstream that never answers the connection is a 502 after connectTimeoutMs', { timeout: 20_000 }, async () => {
    // A listener in another process whose event loop is blocked accepts nothing: once its backlog is full,
    // the kernel leaves further connections unanswered, as a dead host would.
    const deaf = spawn(process.execPath, ['-e', `const s = require('node:net').createServer().listen({ port: 0, host: '${LOCAL}', backlog: 1 }, () => {
      console.log(s.address().port); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000); })`]);
    const fillers: net.Socket[] = [];
    try {
      const port = Number(await new Promise<string>((resolve) => deaf.stdout.once('data', (chunk) => resolve(String(chunk)))));
      for (let i = 0; i < 4; i++) fillers.push(net.connect(port, LOCAL).on('error', () => {}));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const timed = createEgressProxy({ allow: ['deaf.test'], ports: [port], lookup: async () => [{ address: LOCAL, family: 4 }], refuseAddress: () => undefined, log: () => {}, connectTimeoutMs: 300 });
      const proxyPort = await listen(timed);
      try {
        const started = Date.now();
        const answer = await exchange(proxyPort, `CONNECT deaf.test:${port} HTTP/1.1\r\n\r\n`);
        assert.equal(statusOf(answer), 502, answer);
        assert.match(answer, /no answer in 300 ms/);
        assert.ok(Date.now() - started < 2000);
      } finally {
        await close(timed);
      }
    } finally {
      for (const socket of fillers) socket.destroy();
      deaf.kill('SIGKILL');
    }
  });
});

describe('allowlist patterns', () => {
  test('invalid patterns throw, naming the pattern', () => {
    const invalid = ['', ' ', '*', '*.', '.example.com', 'example..com', 'a/b', 'example.com/path', 'http://example.com', 'example.com:443', 'a b', '*example.com', 'a*.example.com', 'a.*.example.com', '*.*.example.com', '**.example.com', '127.0.0.1', '[::1]', '::1', '2130706433', '*.127.0.0.1', '10.0.0.1'];
    for (const pattern of invalid) {
      assert.throws(() => createEgressProxy({ allow: ['fine.test', pattern] }), (error: Error) => error.message.includes(`"${pattern}"`), JSON.stringify(pattern));
    }
  });

  test('host names and leading wildcards are accepted; ports must be ports', () => {
    createEgressProxy({ allow: ['api.anthropic.com', 'API.Example.COM.', '*.npmjs.org', 'localhost', 'under_score.example', 'x1.example'] });
    createEgressProxy({ allow: [] });
    for (const port of [0, 65536, 1.5, NaN]) assert.throws(() => createEgressProxy({ allow: [], ports: [port] }), /invalid egress port/);
  });
});

describe('isIpLiteral', () => {
  test('every form a resolver reads as an address', () => {
    for (const host of ['127.0.0.1', '127.0.0.1.', '[::1]', '::1', '[fe80::1%25eth0]', '::ffff:127.0.0.1', '2130706433', '0x7f000001', '0X7F000001', '0177.0.0.1', '127.1', '127.0.1', '0x7f.1', '1.2.3.4.5', 'example.123']) {
      assert.equal(isIpLiteral(host), true, host);
    }
  });

  test('host names are not', () => {
    for (const host of ['allowed.test', 'api.anthropic.com', '1password.com', '123.example.com', 'x.0x1g', 'localhost', 'a1.b2', 'example.com.']) {
      assert.equal(isIpLiteral(host), false, host);
    }
  });
});

describe('defaultRefusal', () => {
  test('refuses loopback, unspecified, link-local (cloud metadata) and multicast, also IPv4-mapped', () => {
    const refused: [string, string][] = [
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['::1', 'loopback'],
      ['0:0:0:0:0:0:0:1', 'loopback'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['169.254.169.254', 'link-local'],
      ['fe80::1', 'link-local'],
      ['febf:ffff::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['ff02::1', 'multicast'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::ffff:169.254.169.254', 'link-local'],
      ['0:0:0:0:0:ffff:a9fe:a9fe', 'link-local'],
      ['::ffff:0.0.0.0', 'unspecified'],
      ['64:ff9b::169.254.169.254', 'link-local'],
      ['255.255.255.255', 'broadcast'],
    ];
    for (const [address, kind] of refused) {
      const reason = defaultRefusal(address);
      assert.ok(reason?.startsWith(`${address} is `) && reason.includes(kind), `${address}: ${reason}`);
    }
    assert.equal(defaultRefusal('127.0.0.1'), '127.0.0.1 is a loopback address');
  });

  test('allows public and private addresses', () => {
    for (const address of ['8.8.8.8', '10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '169.253.255.255', '223.255.255.255', '2606:4700::1111', 'fc00::1', 'fd12:3456::1', 'fec0::1', '::ffff:10.0.0.1', '::ffff:8.8.8.8', '2001:db8::1']) {
      assert.equal(defaultRefusal(address), undefined, address);
    }
  });

  test('refuses what is not an address at all', () => {
    assert.ok(defaultRefusal('example.com'));
  });
});

describe('the built bundle', () => {
  test('dist/egress-proxy.js refuses an IP address, logs it on stdout, and exits 0 on SIGTERM', { timeout: 10_000 }, async () => {
    if (!existsSync(BUNDLE)) throw new Error('no dist/egress-proxy.js: run `npm run build` first');
    const child = spawn(process.execPath, [BUNDLE], {
      env: { ...process.env, EGRESS_ALLOW: 'allowed.test, *.npmjs.org', EGRESS_LISTEN: `${LOCAL}:0`, EGRESS_PORTS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const waitFor = (pattern: RegExp) =>
        new Promise<RegExpMatchArray>((resolve, reject) => {
          const check = () => {
            const match = pattern.exec(stdout);
            if (!match) return;
            child.stdout.off('data', check);
            resolve(match);
          };
          child.stdout.on('data', check);
          exited.then((code) => reject(new Error(`exited ${code} before printing ${pattern}: ${stdout}`)));
          check();
        });
      const port = Number((await waitFor(/egress proxy listening on 127\.0\.0\.1:(\d+)\n/))[1]);
      const answer = await exchange(port, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n');
      assert.equal(statusOf(answer), 403);
      await waitFor(/agent-sandbox egress: denied 127\.0\.0\.1:443 \(IP addresses are not allowed, only host names\)\n/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('dist/egress-proxy.js exits 1 on an invalid pattern, naming it', { timeout: 10_000 }, async () => {
    if (!existsSync(BUNDLE)) throw new Error('no dist/egress-proxy.js: run `npm run build` first');
    const child = spawn(process.execPath, [BUNDLE], { env: { ...process.env, EGRESS_ALLOW: 'allowed.test,10.0.0.1', EGRESS_LISTEN: `${LOCAL}:0` } });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /invalid egress allowlist pattern "10\.0\.0\.1"/);
  });
});

describe('egress proxy limits: a half-sent head, an idle connection and too many connections are closed', () => {
  const echo = net.createServer((socket) => socket.on('error', () => {}).pipe(socket));
  const servers: http.Server[] = [];
  const sockets = new Set<net.Socket>();
  let echoPort = 0;

  before(async () => {
    echoPort = await listen(echo);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all([close(echo), ...servers.map(close)]);
  });

  async function proxyWith(limits: { headersTimeoutMs?: number; idleTimeoutMs?: number; maxConnections?: number }): Promise<number> {
    const proxy = createEgressProxy({
      allow: ['allowed.test'],
      ports: [echoPort],
      log: () => {},
      lookup: async () => [{ address: LOCAL, family: 4 }],
      refuseAddress: () => undefined,
      ...limits,
    });
    servers.push(proxy);
    return listen(proxy);
  }

  function connect(port: number): net.Socket {
    const socket = net.connect(port, LOCAL);
    sockets.add(socket);
    socket.on('error', () => {});
    return socket;
  }

  /** Milliseconds until the proxy closes the socket; rejects if it is still open after `withinMs`. */
  function closedWithin(socket: net.Socket, withinMs: number): Promise<number> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after ${withinMs} ms`)), withinMs);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
  }

  test('a head sent in part and never finished is closed after the header timeout', async () => {
    const port = await proxyWith({ headersTimeoutMs: 300 });
    const halves = [0, 1, 2].map(() => connect(port));
    for (const socket of halves) socket.write('GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.te');
    const connectHalf = connect(port);
    connectHalf.write(`CONNECT allowed.test:${echoPort} HTTP/1.1\r\n`);
    const times = await Promise.all([...halves, connectHalf].map((socket) => closedWithin(socket, 3000)));
    for (const ms of times) assert.ok(ms >= 250, `closed after ${ms} ms, before its time`);
  });

  test('a tunnel quiet in both directions is closed after the idle timeout; a busy one stays open', async () => {
    const port = await proxyWith({ idleTimeoutMs: 400 });
    const { socket: quiet, text } = await tunnel(port, `allowed.test:${echoPort}`);
    assert.match(text, /^HTTP\/1\.1 200 /);
    sockets.add(quiet);
    const { socket: busy } = await tunnel(port, `allowed.test:${echoPort}`);
    sockets.add(busy);
    let busyClosed = false;
    busy.on('close', () => (busyClosed = true));
    const ping = setInterval(() => busy.write('.'), 100);
    try {
      const ms = await closedWithin(quiet, 3000);
      assert.ok(ms >= 350, `closed after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(busyClosed, false, 'a tunnel that carries bytes is not idle');
    } finally {
      clearInterval(ping);
      busy.destroy();
    }
  });

  test('a plain connection that says nothing is closed after the idle timeout', async () => {
    const port = await proxyWith({ idleTimeoutMs: 400, headersTimeoutMs: 60_000 });
    const silent = connect(port);
    await new Promise((resolve) => silent.on('connect', resolve));
    const ms = await closedWithin(silent, 3000);
    assert.ok(ms >= 350, `closed after ${ms} ms`);
  });

  test('one connection more than the cap is answered 503 and closed; once one closes, the next gets through', async () => {
    const port = await proxyWith({ maxConnections: 3 });
    const held = [];
    for (let i = 0; i < 3; i++) {
      const { socket, text } = await tunnel(port, `allowed.test:${echoPort}`);
      sockets.add(socket);
      assert.match(text, /^HTTP\/1\.1 200 /);
      held.push(socket);
    }
    const refused = await exchange(port, `CONNECT allowed.test:${echoPort} HTTP/1.1\r\n\r\n`);
    assert.equal(statusOf(refused), 503, refused);
    assert.match(refused, /too many connections \(3 open\)/);
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 100));
    const { socket, text } = await tunnel(port, `allowed.test:${echoPort}`);
    sockets.add(socket);
    assert.match(text, /^HTTP\/1\.1 200 /);
    socket.write('ping');
    assert.equal(await readUntil(socket, (t) => t.length >= 4), 'ping');
  });
});
