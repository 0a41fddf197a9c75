// Liveness and quiet topics: a client that lost the LAST update of a topic
// that then goes quiet learns it from the heartbeat (the versions it was sent,
// and the frame count of the next frame sent to it alone) and heals by catch-up.

import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { ServerFrameReader } from '../../src/protocol/index.js';
import { Harness, serverState, waitFor, wsUrl } from './helpers.js';

const h = new Harness();
const opened: TickfanClient[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await h.close();
});

/** A `ws` WebSocket that silently loses the frames `drop` picks, as a broken network path would. */
function lossy(drop: (frame: Uint8Array) => boolean): { Ctor: WebSocketCtor; dropped: () => number } {
  let dropped = 0;
  class Lossy extends WebSocket {}
  // `ws` defines onmessage as an accessor on its prototype: wrap it so the SDK's handler never sees a lost frame.
  const base = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage')!;
  Object.defineProperty(Lossy.prototype, 'onmessage', {
    configurable: true,
    get(this: WebSocket) {
      return base.get!.call(this);
    },
    set(this: WebSocket, fn: ((ev: WebSocket.MessageEvent) => void) | null) {
      base.set!.call(
        this,
        fn
          ? (ev: WebSocket.MessageEvent) => {
              if (drop(new Uint8Array(ev.data as ArrayBuffer))) return void dropped++;
              fn(ev);
            }
          : null,
      );
    },
  });
  return { Ctor: Lossy as unknown as WebSocketCtor, dropped: () => dropped };
}

describe('heartbeats on quiet topics', () => {
  it('a lost last update is noticed from the heartbeat and healed by one catch-up', async () => {
    const server = await h.server({ heartbeatMs: 100 });
    server.publish('hb.Q', { bid: 1, ask: 2 });
    let armed = false;
    const frames = new ServerFrameReader(); // reads every frame, to follow the switch to protocol 2
    const { Ctor, dropped } = lossy((bytes) => {
      const f = frames.read(bytes);
      if (!armed || dropped() > 0) return false; // lose that one frame only
      // The only topic: its protocol-2 delta names it by id.
      return f.messages.some((m) => (m.type === 'delta2' || m.type === 'delta') && m.version === 2);
    });
    const client = connect(wsUrl(server), { WebSocket: Ctor, reconnect: false });
    opened.push(client);
    const sub = client.subscribe('hb.Q');
    await sub.ready;
    armed = true;
    server.publish('hb.Q', { bid: 1.5 }); // version 2: lost on the way; then the topic stays quiet
    await waitFor(() => dropped() === 1, 2_000, 'the update to be lost');
    expect(sub.version).toBe(1);
    // No further publish: only the heartbeat can tell the client it is behind.
    await waitFor(() => sub.version === 2, 3_000, 'the heartbeat to reveal the gap and the catch-up to heal it');
    expect(client.stats.gaps).toBeGreaterThanOrEqual(1);
    expect(client.stats.catchUps).toBeGreaterThanOrEqual(1);
    expect(sub.state).toEqual(serverState(server, 'hb.Q').state);
    expect(client.state).toBe('connected');
  });
});
