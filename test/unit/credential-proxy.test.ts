import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createEgressProxy } from '../../src/egress/proxy';
import type { EgressProxy } from '../../src/egress/proxy';

const LOCAL = '127.0.0.1';
const PLACEHOLDER = 'agent-sandbox-placeholder-0123456789abcdef';
const REAL_KEY = 'sk-real-key-that-only-the-host-knows';
const BUNDLE = path.resolve(__dirname, '../../../dist/egress-proxy.js');

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function listen(server: net.Server, where: number | string = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'string') server.listen(where, () => resolve(0));
    else server.listen(where, LOCAL, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** A request as the agent sends it: to the proxy itself, or absolute-form through it. */
function request(port: number, target: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: LOCAL, port, path: target, method: options.method ?? 'POST', headers: options.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk) => parts.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the egress proxy\'s credential routes', () => {
  const seen: Seen[] = [];
  const provider = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (chunk) => parts.push(chunk));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(parts).toString() });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: message_stop\ndata: {}\n\n');
    });
  });
  const logs: string[] = [];
  let providerPort = 0;
  let proxyPort = 0;
  let proxy: EgressProxy;

  before(async () => {
    providerPort = await listen(provider);
    proxy = createEgressProxy({
      allow: ['elsewhere.test'],
      ports: [providerPort],
      log: (line) => logs.push(line),
      lookup: async () => [{ address: LOCAL, family: 4 }],
      refuseAddress: () => undefined,
      credentialWaitMs: 300,
      credentials: [
        { id: 'anthropic', upstream: `http://provider.test:${providerPort}/gateway`, header: 'x-api-key', placeholder: PLACEHOLDER },
        { id: 'openai', upstream: `http://provider.test:${providerPort}`, header: 'authorization', scheme: 'Bearer', placeholder: `${PLACEHOLDER}-openai` },
      ],
    });
    proxyPort = await listen(proxy);
  });
  after(() => {
    proxy.close();
    provider.close();
  });

  test('a route waits for its value, then gives up saying it was never delivered', async () => {
    const answer = await request(proxyPort, '/credential/openai/v1/responses', { headers: { authorization: `Bearer ${PLACEHOLDER}-openai` } });
    assert.equal(answer.status, 503);
    assert.match(answer.body, /credential for openai has not been delivered/);
    assert.equal(seen.length, 0, 'nothing reached the provider');
  });

  test('the provider gets the real key in its header, never the placeholder, on the path under its own', async () => {
    const pending = request(proxyPort, '/credential/anthropic/v1/messages?beta=true', {
      headers: { 'x-api-key': PLACEHOLDER, authorization: `Bearer ${PLACEHOLDER}`, cookie: 'a=b', 'anthropic-version': '2023-06-01' },
      body: '{"stream":true}',
    });
    // Delivered while the request waits.
    setTimeout(() => assert.deepEqual(proxy.deliverCredentials({ anthropic: REAL_KEY, unknown: 'x', openai: 'bad\nvalue' }), ['anthropic']), 50);
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.match(answer.body, /message_stop/);
    const last = seen.at(-1)!;
    assert.equal(last.url, '/gateway/v1/messages?beta=true');
    assert.equal(last.headers['x-api-key'], REAL_KEY);
    assert.equal(last.headers.authorization, undefined, "the agent's own credential headers are dropped");
    assert.equal(last.headers.cookie, undefined);
    assert.equal(last.headers['anthropic-version'], '2023-06-01');
    assert.equal(last.headers.host, `provider.test:${providerPort}`);
    assert.equal(last.body, '{"stream":true}');
    assert.ok(!JSON.stringify(last).includes(PLACEHOLDER));
  });

  test('a Bearer route sets Authorization', async () => {
    proxy.deliverCredentials({ openai: 'sk-openai-real' });
    const answer = await request(proxyPort, '/credential/openai/v1/responses', { headers: { authorization: `Bearer ${PLACEHOLDER}-openai` } });
    assert.equal(answer.status, 200);
    assert.equal(seen.at(-1)!.headers.authorization, 'Bearer sk-openai-real');
    assert.equal(seen.at(-1)!.url, '/v1/responses');
  });

  test('the placeholder sent anywhere else is refused and logged, by plain HTTP and by CONNECT', async () => {
    const before = seen.length;
    const plain = await request(proxyPort, `http://elsewhere.test:${providerPort}/steal`, { method: 'GET', headers: { 'x-api-key': PLACEHOLDER } });
    assert.equal(plain.status, 403);
    const inUrl = await request(proxyPort, `http://elsewhere.test:${providerPort}/?key=${PLACEHOLDER}`, { method: 'GET' });
    assert.equal(inUrl.status, 403);
    const connect = await new Promise<string>((resolve) => {
      const socket = net.connect(proxyPort, LOCAL, () => socket.write(`CONNECT elsewhere.test:${providerPort} HTTP/1.1\r\nHost: elsewhere.test\r\nProxy-Authorization: Basic ${PLACEHOLDER}\r\n\r\n`));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
    });
    assert.match(connect, /^HTTP\/1\.1 403 /);
    assert.equal(seen.length, before, 'nothing reached the other host');
    assert.equal(logs.filter((line) => /denied elsewhere\.test:\d+ \(the request carries the sandbox's placeholder credential/.test(line)).length, 3, logs.join('\n'));
    // The same host without the placeholder passes: it is the placeholder that was refused, not the host.
    assert.equal((await request(proxyPort, `http://elsewhere.test:${providerPort}/fine`, { method: 'GET' })).status, 200);
  });

  test('an unknown route is refused', async () => {
    const answer = await request(proxyPort, '/credential/nowhere/v1/x');
    assert.equal(answer.status, 404);
  });

  test('the bundled proxy takes the values over its control socket, from the deliver-credentials command\'s stdin', { skip: !existsSync(BUNDLE) && 'dist/egress-proxy.js is not built' }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'credential-proxy-'));
    const control = path.join(dir, 'control.sock');
    const listenPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, LOCAL, () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const routes = [{ id: 'anthropic', upstream: `http://${LOCAL}:${providerPort}`, header: 'x-api-key', placeholder: PLACEHOLDER }];
    const child = spawn(process.execPath, [BUNDLE], {
      env: { EGRESS_ALLOW: '', EGRESS_LISTEN: `${LOCAL}:${listenPort}`, EGRESS_CREDENTIAL_ROUTES: JSON.stringify(routes), EGRESS_CONTROL: control },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
        child.once('exit', (code) => reject(new Error(`the proxy exited with ${code}`)));
      });
      const deliver = spawn(process.execPath, [BUNDLE, 'deliver-credentials', control], { stdio: ['pipe', 'pipe', 'pipe'] });
      let said = '';
      deliver.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
      deliver.stdin.end(JSON.stringify({ anthropic: 'sk-delivered' }));
      assert.equal(await new Promise((resolve) => deliver.on('exit', resolve)), 0);
      assert.match(said, /ok: 1 credential set \(anthropic\)/);
      // The loopback upstream is refused in the bundle (its default refusal): the refusal names the address,
      // which proves the value was there, for the route went on to connect.
      const answer = await request(listenPort, '/credential/anthropic/v1/messages', { headers: { 'x-api-key': PLACEHOLDER } });
      assert.equal(answer.status, 403);
      assert.match(answer.body, /127\.0\.0\.1 is a loopback address/);
    } finally {
      child.kill();
    }
  });
});
