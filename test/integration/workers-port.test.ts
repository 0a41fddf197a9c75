// Fan-out workers on port 0: the pool picks a free port, then its first
// worker binds it. Another process can take that port in between (parallel
// test runs did); the pool then picks another instead of failing to start.

import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { Authenticator } from '../../src/server/auth.js';
import { resolveOptions } from '../../src/server/options.js';
import type { TickfanServer } from '../../src/index.js';
import { startWorkerPool } from '../../src/workers/pool.js';
import { freePort } from './helpers.js';

const held: Server[] = [];
const servers: TickfanServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(held.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A port some other process holds (listening) right now. */
async function takenPort(): Promise<number> {
  const s = createServer();
  held.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

describe('worker pool on port 0', () => {
  it('picks another port when the one it picked was taken before its first worker could bind it', async () => {
    const taken = [await takenPort(), await takenPort()];
    const picks: number[] = [];
    const pick = async () => {
      const p = picks.length < taken.length ? taken[picks.length]! : await freePort();
      picks.push(p);
      return p;
    };
    const opts = resolveOptions({ port: 0, host: '127.0.0.1', workers: 2, log: () => {} });
    const server = await startWorkerPool(opts, await Authenticator.create(opts.auth), pick);
    servers.push(server);
    expect(picks).toHaveLength(3);
    expect(server.port).toBe(picks[2]);
    // Both workers serve on it.
    server.publish('px.A', { bid: 1 });
    const client = connect(`ws://127.0.0.1:${server.port}/ws`, { transport: 'ws' });
    try {
      const sub = client.subscribe('px.A');
      await sub.ready;
      expect(sub.version).toBe(1);
    } finally {
      client.close();
    }
  });

  it('a named port that is taken still fails, saying so', async () => {
    const port = await takenPort();
    const opts = resolveOptions({ port, host: '127.0.0.1', workers: 2, log: () => {} });
    await expect(startWorkerPool(opts, await Authenticator.create(opts.auth))).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
  });
});
