// Hello without a protocol field: a client that sends Hello only to carry its
// token (FlatBuffers leaves a field equal to its default, 0, out) asks for no
// protocol change. It used to be refused with Error 4 and close 1002; it must
// get what protocol 1 always sent on a new connection, and keep protocol 2 on
// a connection that already switched.

import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Encoder, ServerFrameReader, clientFrame, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, isType, waitFor, wsUrl } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

const h = new Harness();
afterEach(() => h.close());

const enc = new Encoder();

/** A raw client reading frames in whichever protocol the server switched it to. */
async function rawClient(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const reader = new ServerFrameReader();
  const frames: { protocol: number; messages: AnyMessage[] }[] = [];
  let closeCode: number | null = null;
  ws.on('message', (data: ArrayBuffer) => {
    const protocol = reader.protocol;
    const { messages, error } = reader.read(new Uint8Array(data));
    if (error) throw error;
    frames.push({ protocol, messages });
  });
  ws.on('close', (code) => (closeCode = code));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor(() => frames.length > 0, 5_000, 'the first Welcome');
  return {
    ws,
    reader,
    frames,
    get closeCode() {
      return closeCode;
    },
    get messages() {
      return frames.flatMap((f) => f.messages);
    },
    send: (...msgs: Uint8Array[]) => ws.send(clientFrame(msgs), { binary: true }),
  };
}

describe('Hello without a protocol field', () => {
  it('carrying a token, in one frame with a Subscribe: protocol 1, no error, the connection stays open', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('hello.A', { bid: 1.5 });
    const r = await rawClient(wsUrl(server));
    try {
      const jwt = await token({ subscribe: ['hello.*'] });
      // protocol 0 is FlatBuffers' default: the encoder leaves the field out.
      r.send(enc.hello(0, 'token-only', jwt), enc.subscribe(1, ['hello.A'], 0, [], []));
      await waitFor(() => r.messages.some(isType('ack')), 5_000, 'the Subscribe Ack');
      expect(r.messages.filter(isType('error'))).toEqual([]);
      const snap = r.messages.find(isType('snapshot'))!;
      expect({ topic: snap.topic, version: snap.version, bid: snap.fields.get('bid') }).toEqual({ topic: 'hello.A', version: 1, bid: 1.5 });
      server.publish('hello.A', { bid: 1.75 });
      await waitFor(() => r.messages.some(isType('delta')), 5_000, 'the delta');
      expect(r.frames.every((f) => f.protocol === 1)).toBe(true);
      expect(r.messages.filter(isType('welcome'))).toHaveLength(1);
      expect(r.closeCode).toBe(null);
    } finally {
      r.ws.close();
    }
  });

  it('without auth: the same, protocol 1 throughout', async () => {
    const server = await h.server();
    server.publish('hello.B', { bid: 2 });
    const r = await rawClient(wsUrl(server));
    try {
      r.send(enc.hello(0, '', ''));
      r.send(enc.subscribe(1, ['hello.B'], 0, [], []));
      await waitFor(() => r.messages.some(isType('ack')), 5_000, 'the Subscribe Ack');
      expect(r.messages.filter(isType('error'))).toEqual([]);
      expect(r.messages.some(isType('snapshot'))).toBe(true);
      expect(r.reader.protocol).toBe(1);
      expect(r.closeCode).toBe(null);
    } finally {
      r.ws.close();
    }
  });

  it('after Hello{2} and a subscription: the connection keeps protocol 2', async () => {
    const server = await h.server();
    server.publish('hello.C', { bid: 3 });
    const r = await rawClient(wsUrl(server));
    try {
      r.send(enc.hello(2, '', ''), enc.subscribe(1, ['hello.C'], 0, [], []));
      await waitFor(() => r.messages.some(isType('ack')), 5_000, 'the Subscribe Ack');
      r.send(enc.hello(0, '', ''));
      server.publish('hello.C', { bid: 3.5 });
      await waitFor(() => r.messages.some(isType('delta2')), 5_000, 'a Delta2');
      expect(r.messages.filter(isType('error'))).toEqual([]);
      expect(r.reader.protocol).toBe(2);
      expect(r.closeCode).toBe(null);
    } finally {
      r.ws.close();
    }
  });
});
