// permessage-deflate (the `compression` option): clients that offer it (the
// SDK over `ws`, browsers) negotiate it and stay exact, publishes they send
// compressed are acknowledged; with compression off nothing is negotiated.

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { WebSocketCtor } from '../../src/client/index.js';
import { Harness, chainProblem, record, serverState, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

/** A `ws` constructor that remembers the sockets it made (to read the negotiated extensions). */
function tracking(): { Ctor: WebSocketCtor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { Ctor: Tracked as unknown as WebSocketCtor, sockets };
}

describe.each(['shared', 'dedicated'] as const)('compression: %s', (compression) => {
  it('negotiates permessage-deflate, delivers every version exactly, and takes compressed publishes', async () => {
    const server = await h.server({ compression });
    server.publish('cz.A', { bid: 100.25, ask: 100.5, note: 'x'.repeat(200) });
    const { Ctor, sockets } = tracking();
    const client = await h.connected(server, { WebSocket: Ctor });
    const sub = client.subscribe('cz.A');
    const ups = record(sub);
    await sub.ready;
    expect(sockets[0]!.extensions).toContain('permessage-deflate');
    for (let i = 1; i <= 50; i++) server.publish('cz.A', { bid: 100.25 + i / 100, n: i });
    const acked = await client.publish('cz.A', { bid: 1.5, note: 'y'.repeat(300) });
    await waitFor(() => sub.version === acked.version, 5_000, 'every version');
    expect(chainProblem(ups, { full: true })).toBeNull();
    expect(sub.state).toEqual(serverState(server, 'cz.A').state);
  });
});

it('compression off (the default): nothing is negotiated', async () => {
  const server = await h.server();
  const { Ctor, sockets } = tracking();
  const client = await h.connected(server, { WebSocket: Ctor });
  await client.publish('cz.B', { x: 1 });
  expect(sockets[0]!.extensions).toBe('');
});
