// Regression (found by keyed-acceptance-late-joiners under load): an SDK
// client in Node whose WebSocket does not open within `fallbackTimeoutMs`
// (a proxy that never answers the upgrade) closes it; the `ws` package then
// emits 'error' on the socket, and with its handlers already removed that
// was an uncaught exception that ended the process. Now the client just
// reports the slow open and tries again.

import { createServer, type AddressInfo, type Socket } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type WebSocketCtor } from '../../src/client/index.js';
import { sleep } from './helpers.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('a WebSocket that never opens', () => {
  it('is closed at the open timeout without an uncaught error; the client keeps trying', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s)); // accepts, never answers the upgrade
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const uncaught: Error[] = [];
    const onUncaught = (e: Error) => uncaught.push(e);
    // vitest's own handler would fail the run anyway; this one says why.
    process.prependListener('uncaughtException', onUncaught);
    cleanup.push(() => process.removeListener('uncaughtException', onUncaught));
    const client = connect(`ws://127.0.0.1:${(silent.address() as AddressInfo).port}/ws`, { WebSocket: WebSocket as unknown as WebSocketCtor, fallbackTimeoutMs: 150, backoff: { initialMs: 10, maxMs: 50 } });
    cleanup.push(() => client.close());
    client.on('error', () => undefined);
    await sleep(700);
    expect(uncaught.map((e) => e.message)).toEqual([]);
    expect(sockets.length, 'it tried again after the timeout').toBeGreaterThanOrEqual(2);
  });
});
