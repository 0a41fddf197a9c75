// client.publish() refuses anything that is not a field value — a nested
// object, an array, undefined, a function, a symbol, a Date, a typed array
// other than Uint8Array… — with a TickfanError TICKFAN_ERR_BAD_FIELD naming
// the field, and sends nothing: before, such a value went out as empty bytes
// and silently replaced the field. Over WebSocket and over SSE, against a real
// server; the same client publishes normally afterwards. And a client whose
// token the real server refuses (close 4001) stops with a ClientError instead
// of reconnecting in a loop.

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TickfanServer } from '../../src/index.js';
import { ClientError, CloseCode, TickfanError, type FetchLike, type FieldValue, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { decodeMessage, splitMessages, type ClientMessage } from '../../src/protocol/index.js';
import { Harness, serverState, sleep, waitFor } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

const h = new Harness();
afterEach(() => h.close());

class Point {
  constructor(readonly x = 1) {}
}

/** Values a field cannot hold, each with what it is. */
const NOT_FIELD_VALUES: [string, unknown][] = [
  ['an empty object', {}],
  ['a nested object', { px: 1 }],
  ['an object without prototype', Object.create(null)],
  ['an empty array', []],
  ['an array', [1, 2]],
  ['undefined', undefined],
  ['a function', () => 1],
  ['a symbol', Symbol('s')],
  ['a Date', new Date(0)],
  ['a Map', new Map([['a', 1]])],
  ['a Set', new Set([1])],
  ['a RegExp', /x/],
  ['an ArrayBuffer', new ArrayBuffer(4)],
  ['a Uint16Array', new Uint16Array([1, 2])],
  ['a Float64Array', new Float64Array([1.5])],
  ['a DataView', new DataView(new ArrayBuffer(2))],
  ['a boxed number', Object(1)],
  ['a boxed string', Object('s')],
  ['a Promise', Promise.resolve(1)],
  ['an Error', new Error('x')],
  ['a class instance', new Point()],
  ['an integer past 64 bits', 2n ** 64n],
];

/** Publish messages the client put on the wire, whatever the transport. */
interface Wire {
  published: ClientMessage[];
  opts: { transport: 'ws'; WebSocket: WebSocketCtor } | { transport: 'sse'; fetch: FetchLike };
}

function wsWire(): Wire {
  const published: ClientMessage[] = [];
  // A `ws` WebSocket whose send() also decodes what it sends.
  const Ctor = function (url: string): WebSocket {
    const ws = new WebSocket(url);
    const send = ws.send.bind(ws) as (data: Uint8Array) => void;
    (ws as unknown as { send: (data: Uint8Array) => void }).send = (data) => {
      splitMessages(data, 0, (m) => {
        const msg = decodeMessage(m) as ClientMessage;
        if (msg.type === 'publish') published.push(msg);
      });
      send(data);
    };
    return ws;
  } as unknown as WebSocketCtor;
  return { published, opts: { transport: 'ws', WebSocket: Ctor } };
}

function sseWire(): Wire {
  const published: ClientMessage[] = [];
  const fetch: FetchLike = (url, init) => {
    if (init?.method === 'POST') {
      for (const c of JSON.parse(String(init.body)) as { type: string }[]) if (c.type === 'publish') published.push(c as ClientMessage);
    }
    return globalThis.fetch(url, init);
  };
  return { published, opts: { transport: 'sse', fetch } };
}

async function refusal(p: Promise<unknown>): Promise<TickfanError> {
  const outcome = await p.then(
    (v) => new Error(`accepted: ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  if (!(outcome instanceof TickfanError)) throw new Error(`expected a TickfanError, got ${String(outcome)}`);
  return outcome;
}

describe.each([
  ['WebSocket', wsWire],
  ['SSE', sseWire],
])('client.publish refuses non-field values over %s', (_name, makeWire) => {
  let server: TickfanServer;
  let client: TickfanClient;
  let wire: Wire;

  async function setUp(): Promise<void> {
    server = await h.server();
    wire = makeWire();
    client = await h.connected(server, wire.opts);
    expect(client.transport).toBe(wire.opts.transport);
  }

  it.each(NOT_FIELD_VALUES)('%s: rejects with BAD_FIELD naming the field, creates no topic, sends nothing', async (_what, value) => {
    await setUp();
    const topic = 'pv.fresh';
    const err = await refusal(client.publish(topic, { ok: 1, bid: value as FieldValue }));
    expect(err.code).toBe('TICKFAN_ERR_BAD_FIELD');
    expect(err.message).toMatch(/^field bid: /);
    expect(server.store.get(topic)).toBeUndefined();

    // The same client still publishes; only that publish went on the wire.
    const ack = await client.publish(topic, { bid: 101.25 });
    expect(ack).toMatchObject({ topic, version: 1 });
    expect(serverState(server, topic).state).toEqual({ bid: 101.25 });
    expect(wire.published).toHaveLength(1);
    expect(client.state).toBe('connected');
    expect(client.stats.reconnects).toBe(0);
  });

  it('leaves an existing topic exactly as it was, for every refused value', async () => {
    await setUp();
    const topic = 'pv.held';
    server.publish(topic, { bid: 100, raw: new Uint8Array([1, 2, 3]) });
    const before = serverState(server, topic);
    const sub = client.subscribe(topic);
    await sub.ready;
    for (const [what, value] of NOT_FIELD_VALUES) {
      const err = await refusal(client.publish(topic, { bid: 1, raw: value as FieldValue }));
      expect(err.code, what).toBe('TICKFAN_ERR_BAD_FIELD');
      expect(err.message, what).toMatch(/^field raw: /);
    }
    expect(serverState(server, topic)).toEqual(before);
    expect(wire.published).toHaveLength(0);

    const ack = await client.publish(topic, { raw: new Uint8Array([9]), bid: null });
    expect(ack.version).toBe(before.version + 1);
    expect(serverState(server, topic).state).toEqual({ raw: new Uint8Array([9]) });
    expect(wire.published).toHaveLength(1);
  });
});

describe('a token the server refuses', () => {
  it('ends the client with TICKFAN_ERR_TOKEN_REFUSED after one connection: no reconnect loop, pending publishes fail', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const forged = await token({ subscribe: ['>'], publish: ['>'] }, { secret: `${SECRET}-but-not-the-servers` });
    let sockets = 0;
    const Counting = function (url: string): WebSocket {
      sockets++;
      return new WebSocket(url);
    } as unknown as WebSocketCtor;
    const errors: Error[] = [];
    const closes: number[] = [];
    // The harness's backoff is 10–50 ms: a client that retried would make dozens of connections below.
    const client = h.client(server, { transport: 'ws', token: forged, WebSocket: Counting });
    client.on('error', (e) => errors.push(e));
    client.on('disconnect', ({ code }) => closes.push(code));
    const publish = client.publish('px.AAPL', { bid: 1 }).then(
      () => null,
      (err: unknown) => err,
    );
    await waitFor(() => client.state === 'closed', 5_000, 'the client to stop');
    await sleep(500);
    expect(sockets).toBe(1);
    expect(closes).toEqual([CloseCode.UNAUTHORIZED]);
    const refused = errors.filter((e): e is ClientError => e instanceof ClientError);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ code: 'TICKFAN_ERR_TOKEN_REFUSED', closeCode: 4001 });
    expect(refused[0]!.message).toMatch(/the server refused the token \(4001 "unauthorized"\): get a new token and call connect\(\) again/);
    expect(await publish).toBe(refused[0]);
    expect(server.store.get('px.AAPL')).toBeUndefined();
    await waitFor(() => server.stats.connections === 0, 2_000, 'the server to forget the connection');
  });
});
