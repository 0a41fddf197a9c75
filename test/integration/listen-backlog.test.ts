// listenBacklog: uSockets listens with a fixed backlog of 512, so tickfan opens
// ⌈listenBacklog / 512⌉ SO_REUSEPORT listen sockets on its port and a connect
// storm overflows 4,096 queued connections (by default) instead of 512. Counted
// from the kernel's own table (/proc/net/tcp): the sockets are there, every one
// serves clients, and close() leaves none behind.

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../src/index.js';
import { Harness, QUIET, freePort, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

/** Listen sockets on 127.0.0.1:port, from the kernel's table (state 0A = LISTEN). */
function listening(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === local && f[3] === '0A';
    }).length;
}

describe('listenBacklog', () => {
  it('by default: 8 listen sockets (4,096 queued connections) on the port, and none after close()', async () => {
    const server = await startServer(QUIET());
    const port = server.port;
    try {
      expect(listening(port)).toBe(8);
    } finally {
      await server.close();
    }
    expect(listening(port)).toBe(0);
  });

  it('rounds up to whole sockets of 512; 512 keeps one', async () => {
    const one = await h.server({ listenBacklog: 512 });
    const three = await h.server({ listenBacklog: 1025 });
    expect(listening(one.port)).toBe(1);
    expect(listening(three.port)).toBe(3);
  });

  it('every socket serves: 60 clients from different source ports all get through', async () => {
    const server = await h.server({ listenBacklog: 2048 });
    server.publish('lb.A', { bid: 1 });
    const clients = await Promise.all(Array.from({ length: 60 }, () => h.connected(server)));
    const subs = clients.map((c) => c.subscribe('lb.A'));
    await waitFor(() => subs.every((s) => s.state.bid === 1), 5_000, 'every client to hold lb.A');
    server.publish('lb.A', { bid: 2 });
    await waitFor(() => subs.every((s) => s.state.bid === 2), 5_000, 'every client to see the update');
  });

  it('a named port held by another program: a clear error and no listen socket left behind', async () => {
    const port = await freePort();
    const other: Server = createServer();
    await new Promise<void>((r) => other.listen(port, '127.0.0.1', () => r()));
    try {
      await expect(startServer({ ...QUIET(), port })).rejects.toMatchObject({ code: 'TICKFAN_ERR_INTERNAL', message: expect.stringContaining(`cannot listen on 127.0.0.1:${port}`) });
      expect(listening(port)).toBe(1); // the other program's
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('is checked: below 512 or above 16,384 is refused with the option named', async () => {
    await expect(startServer({ ...QUIET(), listenBacklog: 100 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION', option: 'listenBacklog' });
    await expect(startServer({ ...QUIET(), listenBacklog: 20_000 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION', option: 'listenBacklog' });
  });
});
