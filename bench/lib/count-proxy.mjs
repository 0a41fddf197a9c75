// A loopback TCP proxy that counts the bytes the server sends to the client
// (WebSocket frame headers and payloads, as the client receives them) — the
// wire scenario's meter for clients it does not write itself (the SDK).

import { createServer, connect } from 'node:net';

export class CountingProxy {
  /** Bytes server → client since the last reset(). */
  down = 0;
  /** Bytes client → server since the last reset(). */
  up = 0;

  static async start(targetPort, host = '127.0.0.1') {
    const p = new CountingProxy();
    p.pairs = new Set();
    p.server = createServer((client) => {
      const upstream = connect({ port: targetPort, host, noDelay: true });
      client.setNoDelay(true);
      const pair = [client, upstream];
      p.pairs.add(pair);
      const drop = () => {
        p.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.on('data', (b) => {
        p.down += b.length;
        if (!client.write(b)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      client.on('data', (b) => {
        p.up += b.length;
        if (!upstream.write(b)) client.pause();
      });
      upstream.on('drain', () => client.resume());
    });
    await new Promise((resolve) => p.server.listen(0, host, resolve));
    p.port = p.server.address().port;
    return p;
  }

  reset() {
    this.down = 0;
    this.up = 0;
  }

  async close() {
    for (const [a, b] of this.pairs) a.destroy(), b.destroy();
    this.pairs.clear();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}
