/**
 * The egress forwarder: runs in the network namespace the agent shares, which has nothing but a loopback
 * interface, and hands every connection to 127.0.0.1:3128 on to the egress proxy's unix socket, in a volume
 * the agent never sees. It is the agent's only way out; what may pass is the proxy's decision, not this one's.
 *   EGRESS_LISTEN=127.0.0.1:3128 EGRESS_FORWARD_TO=/run/egress/proxy.sock node forward.js
 */
import * as net from 'node:net';

export function createForwarder(socketPath: string): net.Server {
  // Half-open both ways: a client that sends its request and shuts its side (nc, curl's upload) still gets the answer.
  return net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
    client.pipe(upstream);
    upstream.pipe(client);
    // One side failing or closing ends both.
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
}

if (require.main === module) {
  const [host, port] = (process.env.EGRESS_LISTEN ?? '127.0.0.1:3128').split(/:(?=\d+$)/);
  const target = process.env.EGRESS_FORWARD_TO ?? '/run/egress/proxy.sock';
  const server = createForwarder(target);
  server.listen(Number(port), host, () => console.log(`egress forwarder listening on ${host}:${port}, forwarding to ${target}`));
  // Open tunnels would keep close() waiting; the sandbox is stopping, so they end with it.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}
