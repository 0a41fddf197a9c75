// An SDK client on a FakeWs (fake-ws.ts), for the SDK's keyed-view unit
// tests: connected and accepted, closed by the test file's afterEach through
// the list it is pushed to; `inject` hands it one decoded server message, as
// if it had just been read from a frame.

import { connect, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import type { AnyMessage } from '../../src/protocol/index.js';
import { FakeWs } from './fake-ws.js';

/** A client whose fake socket has opened and whose Hello was answered. */
export function acceptedClient(clients: TickfanClient[]): TickfanClient {
  const c = connect('ws://fake/ws', { WebSocket: FakeWs as unknown as WebSocketCtor, backoff: { initialMs: 1, maxMs: 1 } });
  clients.push(c);
  FakeWs.last().accept();
  return c;
}

/** One server message, applied as the client applies what it reads. */
export function inject(c: TickfanClient, m: AnyMessage): void {
  (c as unknown as { onMessage(m: AnyMessage): void }).onMessage(m);
}
