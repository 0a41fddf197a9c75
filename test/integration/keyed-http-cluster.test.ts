// Keyed publish over HTTP on a cluster edge that follows nothing (so it does
// not know the topic's tables or their key types), on a real nats-server: a
// body without declarations is read by the origin with its own tables and
// answered as on the origin itself — the origin's version, or the same typed
// refusal (ROW_GUARD 409, BAD_KEY, undeclared table, table and row named),
// nothing changed; declaring the tables in the body still works.

import { describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http } from './helpers.js';

const fx = clusterFixture();
let h: ClusterHarness;

const TOPIC = 'kh.book';
const BIDS = { key: 'int', order: { key: 'desc' } };
const ORDERS = { key: 'string', order: { key: 'asc' } };

const rowsOf = (node: ClusterServer, table: string) => [...(node.store.get(TOPIC)?.tables?.table(table)?.rows() ?? [])].map((r) => [r.key, Object.fromEntries(r.fields)]);

describe('keyed publish over HTTP on an edge that does not follow the topic', () => {
  it('is read with the origin\u2019s tables: accepted with the origin\u2019s version, refused with the origin\u2019s typed errors, nothing changed', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edge = await h.edge();
    const first = await http(origin.port, 'POST', `/publish/${TOPIC}`, { tables: { bids: { declare: BIDS, upsert: { '6500040': { qty: 1 } } }, orders: { declare: ORDERS, upsert: { a: { px: 1 } } } } });
    expect(first.body).toMatchObject({ version: 1 });
    const epoch = origin.store.get(TOPIC)!.epoch;

    // Accepted: object form, ops form with a string key and a {"$bigint"} value, summary fields beside rows.
    const accepted: unknown[] = [
      { tables: { bids: { upsert: { '6500050': { qty: 3 } } } } },
      { tables: { orders: { ops: [{ op: 'upsert', key: 'o1', fields: { px: { $bigint: '5' } } }] } } },
      { fields: { last: 65000.5 }, tables: { bids: { delete: [6500040], ifExists: ['6500040'] }, orders: { replace: { a: { px: 2 } } } } },
    ];
    let version = 1;
    for (const body of accepted) {
      const res = await http(edge.port, 'POST', `/publish/${TOPIC}`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toEqual({ topic: TOPIC, epoch, version: ++version });
    }
    expect(rowsOf(origin, 'bids')).toEqual([[6500050, { qty: 3 }]]);
    expect(rowsOf(origin, 'orders')).toEqual([['a', { px: 2 }], ['o1', { px: 5n }]]);
    expect(Object.fromEntries(origin.store.get(TOPIC)!.state)).toEqual({ last: 65000.5 });
    expect(edge.store.get(TOPIC), 'the edge still follows nothing').toBeUndefined();

    // Refused: the edge answers exactly what the origin answers for the same body; the version does not move.
    const refused: [unknown, number, Record<string, unknown>][] = [
      [{ tables: { bids: { ifNew: [6500050], upsert: { '6500050': { qty: 4 } } } } }, 409, { name: 'TICKFAN_ERR_ROW_GUARD', reason: 'ifNew', table: 'bids', key: 6500050 }],
      [{ tables: { bids: { upsert: { abc: { qty: 1 } } } } }, 400, { name: 'TICKFAN_ERR_BAD_KEY', reason: 'badKey', table: 'bids' }],
      [{ tables: { bids: { ops: [{ op: 'delete', key: 'o1' }] } } }, 400, { name: 'TICKFAN_ERR_BAD_KEY', reason: 'badKey', table: 'bids' }],
      [{ tables: { orders: { upsert: { o2: { px: { $bigint: 'x' } } } } } }, 400, { name: 'TICKFAN_ERR_BAD_FIELD', table: 'orders', key: 'o2' }],
      [{ tables: { asks: { upsert: { '6500100': { qty: 1 } } } } }, 400, { name: 'TICKFAN_ERR_BAD_REQUEST', reason: 'undeclared', table: 'asks' }],
      [{ tables: { bids: { upsert: { '1': { qty: 1 } } }, asks: { upsert: { '2': { qty: 1 } } } } }, 400, { reason: 'undeclared', table: 'asks' }],
    ];
    for (const [body, status, error] of refused) {
      const [onEdge, onOrigin] = [await http(edge.port, 'POST', `/publish/${TOPIC}`, body), await http(origin.port, 'POST', `/publish/${TOPIC}`, body)];
      expect(onEdge.status, JSON.stringify(onEdge.body)).toBe(status);
      expect(onEdge.body).toMatchObject({ error });
      expect(onEdge.body, 'the same answer as on the origin').toEqual(onOrigin.body);
      expect(onEdge.status).toBe(onOrigin.status);
    }
    expect(origin.store.get(TOPIC)!.version).toBe(version);

    // A topic the origin does not hold: undeclared, and not created.
    const none = await http(edge.port, 'POST', '/publish/kh.none', { tables: { bids: { upsert: { '1': { qty: 1 } } } } });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ error: { reason: 'undeclared', table: 'bids' } });
    expect(origin.store.get('kh.none')).toBeUndefined();

    // Declaring in the body stays an option (the same spec again is a no-op).
    const declared = await http(edge.port, 'POST', `/publish/${TOPIC}`, { tables: { bids: { declare: BIDS, upsert: { '6500060': { qty: 6 } } } } });
    expect(declared.body).toEqual({ topic: TOPIC, epoch, version: ++version });
    expect(edge.store.get(TOPIC)).toBeUndefined();
    expect(edge.cluster.stats.forwardedOut).toBeGreaterThanOrEqual(accepted.length + refused.length);
  }, 30_000);
});
