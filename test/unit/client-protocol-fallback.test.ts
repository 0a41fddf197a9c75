// The SDK asks for protocol 2 in Hello; a server from before protocol 2 (its
// Welcome has no max_protocol) refuses that and closes, and the SDK's next
// connection asks for protocol 1 instead of failing the same way for ever.

import { Builder } from 'flatbuffers';
import { afterEach, expect, it } from 'vitest';
import { connect, type TickfanClient, type WebSocketCtor, type WebSocketLike } from '../../src/client/index.js';
import * as fb from '../../src/protocol/generated/tickfan.js';
import { CloseCode, Encoder, ErrorCode, FrameWriter, decodeMessage, splitMessages, type ClientMessage } from '../../src/protocol/index.js';

/** A Welcome as servers before protocol 2 wrote it: no max_protocol. */
function oldWelcome(): Uint8Array {
  const b = new Builder(256);
  const server = b.createString('old');
  const tiers = fb.Welcome.createRateTiersVector(b, [50, 10]);
  fb.Welcome.startWelcome(b);
  fb.Welcome.addProtocol(b, 1);
  fb.Welcome.addServer(b, server);
  fb.Welcome.addHeartbeatMs(b, 60_000);
  fb.Welcome.addMaxFrame(b, 1 << 20);
  fb.Welcome.addRateTiers(b, tiers);
  const w = fb.Welcome.endWelcome(b);
  b.finishSizePrefixed(fb.Message.createMessage(b, fb.Body.Welcome, w));
  return b.asUint8Array().slice();
}

const writer = new FrameWriter();
const enc = new Encoder();

class OldServerWs implements WebSocketLike {
  static all: OldServerWs[] = [];
  binaryType = '';
  readyState = 0;
  readonly hellos: number[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private seq = 0;

  constructor(readonly url: string) {
    OldServerWs.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.deliver(oldWelcome());
    }, 1);
  }

  send(data: Uint8Array | ArrayBuffer): void {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    splitMessages(bytes, 0, (raw) => {
      const m = decodeMessage(raw) as ClientMessage;
      if (m.type !== 'hello') return;
      this.hellos.push(m.protocol);
      if (m.protocol !== 1) {
        // What a protocol-1 server answers to anything else.
        this.deliver(enc.error(ErrorCode.PROTOCOL_VERSION, 0, '', `this server speaks protocol 1; the client sent ${m.protocol}`));
        setTimeout(() => this.drop(CloseCode.PROTOCOL_ERROR), 1);
      }
    });
  }

  close(): void {
    this.readyState = 3;
  }

  drop(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: 'unsupported protocol version' });
  }

  deliver(...messages: Uint8Array[]): void {
    this.onmessage?.({ data: writer.write(++this.seq, messages).slice() });
  }
}

const clients: TickfanClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  OldServerWs.all = [];
});

it('asks for protocol 1 on the next connection when the server speaks no more', async () => {
  const errors: Error[] = [];
  const c = connect('ws://old/ws', { WebSocket: OldServerWs as unknown as WebSocketCtor, backoff: { initialMs: 1, maxMs: 1 } });
  clients.push(c);
  c.on('error', (e) => errors.push(e));
  const deadline = Date.now() + 2_000;
  while (OldServerWs.all.length < 2 || OldServerWs.all[1]!.hellos.length === 0) {
    if (Date.now() > deadline) throw new Error('no second connection with a Hello');
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(OldServerWs.all[0]!.hellos).toEqual([2]);
  expect(OldServerWs.all[1]!.hellos).toEqual([1]);
  // The refusal was reported once, not in a loop.
  await new Promise((r) => setTimeout(r, 30));
  expect(OldServerWs.all).toHaveLength(2);
  expect(errors.filter((e) => /protocol/.test(e.message))).toHaveLength(1);
  expect(c.state).toBe('connected');
});
