// Keyed publish through SSE and STOMP commands on a cluster edge that follows
// nothing (so it does not know the topic's tables or their key types), on a
// real nats-server: as POST /publish does, a batch without declarations goes
// as given to the origin, which reads it with its own tables — acked with the
// origin's version, or refused with the origin's typed error (the same code
// and row as the origin's own answer), nothing changed. Before, the edge
// refused it itself: "undeclared" until the command declared its tables.

import type { IFrame } from '@stomp/stompjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http, waitFor } from './helpers.js';
import { RawSse, stompClient, type Cleanup } from './json-clients.js';

const fx = clusterFixture();
let h: ClusterHarness;
const cleanup: Cleanup = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const BIDS = { key: 'int', order: { key: 'desc' } };
const ORDERS = { key: 'string', order: { key: 'asc' } };

const rowsOf = (node: ClusterServer, topic: string, table: string) => [...(node.store.get(topic)?.tables?.table(table)?.rows() ?? [])].map((r) => [r.key, Object.fromEntries(r.fields)]);

/** The origin holds `topic` with tables bids (int keys) and orders (string keys), at version 1. */
async function seeded(origin: ClusterServer, topic: string): Promise<number> {
  const first = await http(origin.port, 'POST', `/publish/${topic}`, { tables: { bids: { declare: BIDS, upsert: { '6500040': { qty: 1 } } }, orders: { declare: ORDERS, upsert: { a: { px: 1 } } } } });
  expect(first.body).toMatchObject({ version: 1 });
  return origin.store.get(topic)!.epoch;
}

/** Bodies the origin refuses, with the error name it gives (after the accepted ones below). */
const REFUSED: [Record<string, unknown>, string, RegExp][] = [
  [{ tables: { bids: { ifNew: [6500050], upsert: { '6500050': { qty: 4 } } } } }, 'TICKFAN_ERR_ROW_GUARD', /6500050/],
  [{ tables: { bids: { upsert: { abc: { qty: 1 } } } } }, 'TICKFAN_ERR_BAD_KEY', /bids/],
  [{ tables: { asks: { upsert: { '6500100': { qty: 1 } } } } }, 'TICKFAN_ERR_BAD_REQUEST', /asks/],
];

describe('keyed publish through SSE and STOMP on an edge that does not follow the topic', () => {
  it('SSE: read with the origin\u2019s tables — acked with its version, refused with its typed errors, nothing changed', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edge = await h.edge();
    const topic = 'kc.sse';
    const epoch = await seeded(origin, topic);
    const s = await RawSse.open(edge.port, cleanup);
    await waitFor(() => s.session !== '', 5_000, 'the session event');
    const send = async (id: number, body: Record<string, unknown>) => {
      const res = await http(edge.port, 'POST', `/sse/${s.session}`, [{ type: 'publish', id, topic, ...body }]);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      await waitFor(() => s.answer(id) !== undefined, 5_000, `the answer to command ${id}`);
      return s.answer(id)!;
    };
    // Accepted: an int key, a string key with a {"$bigint"} value, summary fields beside rows.
    expect(await send(1, { tables: { bids: { upsert: { '6500050': { qty: 3 } } } } })).toMatchObject({ type: 'ack', topic, epoch, version: 2 });
    expect(await send(2, { fields: { last: 65000.5 }, tables: { orders: { upsert: { o1: { px: { $bigint: '5' } } } }, bids: { delete: [6500040] } } })).toMatchObject({ type: 'ack', version: 3 });
    expect(rowsOf(origin, topic, 'bids')).toEqual([[6500050, { qty: 3 }]]);
    expect(rowsOf(origin, topic, 'orders')).toEqual([['a', { px: 1 }], ['o1', { px: 5n }]]);
    expect(Object.fromEntries(origin.store.get(topic)!.state)).toEqual({ last: 65000.5 });

    // Refused on the stream with the origin's error for the same body; the version does not move.
    let id = 10;
    for (const [body, name, row] of REFUSED) {
      const onOrigin = await http(origin.port, 'POST', `/publish/${topic}`, body);
      expect(onOrigin.body).toMatchObject({ error: { name } });
      const e = await send(++id, body);
      expect(e, JSON.stringify(body)).toMatchObject({ type: 'error', id, topic, name, code: (onOrigin.body as { error: { code: number } }).error.code });
      expect(e.message).toMatch(row);
    }
    expect(origin.store.get(topic)!.version).toBe(3);
    expect(edge.store.get(topic), 'the edge still follows nothing').toBeUndefined();
    // A command that declares its tables still works.
    expect(await send(20, { tables: { bids: { declare: BIDS, upsert: { '6500060': { qty: 6 } } } } })).toMatchObject({ type: 'ack', version: 4 });
    expect(s.messages.filter((m) => m.type === 'error' && m.id < 10)).toEqual([]);
  }, 30_000);

  it('STOMP: SEND with a receipt is read by the origin; a refused batch is an ERROR with the origin\u2019s reason and row', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edge = await h.edge();
    const topic = 'kc.stomp';
    await seeded(origin, topic);
    const pub = await stompClient(edge.port, cleanup);
    const receipt = new Promise<IFrame>((resolve) => pub.client.watchForReceipt('r1', resolve));
    pub.client.publish({ destination: `/topic/${topic}`, headers: { receipt: 'r1', 'content-type': 'application/json' }, body: JSON.stringify({ fields: { last: 7 }, tables: { bids: { upsert: { '6500050': { qty: 3 } } }, orders: { delete: ['a'] } } }) });
    await receipt;
    expect(origin.store.get(topic)!.version).toBe(2);
    expect(rowsOf(origin, topic, 'bids')).toEqual([[6500050, { qty: 3 }], [6500040, { qty: 1 }]]);
    expect(rowsOf(origin, topic, 'orders')).toEqual([]);
    expect(pub.errors).toEqual([]);

    // A guard that fails at the origin: ERROR naming the row (STOMP closes the connection after an ERROR).
    pub.client.publish({ destination: `/topic/${topic}`, headers: { receipt: 'r2' }, body: JSON.stringify(REFUSED[0]![0]) });
    await waitFor(() => pub.errors.length > 0, 5_000, 'the ERROR');
    expect(pub.errors[0]!.headers['receipt-id']).toBe('r2');
    expect(pub.errors[0]!.headers.message).toMatch(/ROW_GUARD|ifNew|exists/i);
    expect(pub.errors[0]!.body).toMatch(/6500050/);
    expect(origin.store.get(topic)!.version).toBe(2);
    expect(edge.store.get(topic)).toBeUndefined();
  }, 30_000);
});
