// Keyed topics in a cluster, on a real nats-server (origin + 2 edges): keyed
// batches published on an edge are forwarded to the origin and acknowledged
// with its version; the origin sends each batch's net row change to the edges
// with the update; after a seeded random sequence, once publishing stops,
// both edges' GET /snapshot/<topic>?depth=N equal the origin's. An edge that
// subscribes while the book is being published (its updates race the image:
// heal buffer) ends exact; batches refused by the origin come back typed.

import { describe, expect, it } from 'vitest';
import { KeyedBatchError } from '../../src/index.js';
import type { ClusterServer } from '../../src/cluster/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http, sleep, waitFor } from './helpers.js';
import { randomBatch, rng } from './keyed-random.js';

const fx = clusterFixture();
let h: ClusterHarness;

const snap = async (node: ClusterServer, topic: string, depth?: number) => (await http(node.port, 'GET', `/snapshot/${topic}${depth === undefined ? '' : `?depth=${depth}`}`)).body as { version: number };

/** A client on `edge` subscribed to `topic`, so that the edge follows it. */
async function follow(edge: ClusterServer, topic: string): Promise<void> {
  h.client(() => edge).subscribe(topic);
  await waitFor(() => edge.store.get(topic) !== undefined, 5_000, `the edge to hold ${topic}`);
}

async function quietEqual(origin: ClusterServer, edges: ClusterServer[], topic: string): Promise<void> {
  const want = origin.store.get(topic)!;
  await waitFor(() => edges.every((e) => e.store.get(topic)?.version === want.version && e.store.get(topic)?.epoch === want.epoch), 10_000, `the edges to reach ${topic} v${want.version}`);
  for (const depth of [undefined, 1, 5, 10]) {
    const w = await snap(origin, topic, depth);
    expect(w.version).toBe(want.version);
    for (const e of edges) expect(await snap(e, topic, depth), `edge ${e.port} depth ${depth}`).toEqual(w);
  }
}

describe('keyed topics in a cluster', () => {
  it('a random sequence published on both edges (forwarded) and on the origin: both edges serve the origin\u2019s tables at its version', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edges = [await h.edge(), await h.edge()];
    const topic = 'kc.book';
    const r = rng(4242);
    origin.publishBatch(topic, randomBatch(r).input);
    for (const e of edges) await follow(e, topic);
    let version = 1;
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const { json, input } = randomBatch(r);
      const on = i % 3;
      if (on < 2) {
        const res = await http(edges[on]!.port, 'POST', `/publish/${topic}`, json);
        if (res.status === 200) expect(res.body).toEqual({ topic, epoch: origin.store.get(topic)!.epoch, version: ++version });
        else {
          refused++;
          expect(res.status, JSON.stringify(res.body)).toBe(409);
          expect(res.body).toMatchObject({ error: { name: 'TICKFAN_ERR_ROW_GUARD', table: expect.any(String), key: expect.anything(), reason: expect.any(String) } });
        }
      } else {
        try {
          expect(origin.publishBatch(topic, input).version).toBe(++version);
        } catch (err) {
          refused++;
          expect(err).toBeInstanceOf(KeyedBatchError);
        }
      }
      expect(origin.store.get(topic)!.version).toBe(version);
    }
    expect(refused).toBeGreaterThan(0);
    expect(origin.cluster.stats.forwardedIn).toBeGreaterThan(0);
    await quietEqual(origin, edges, topic);
  }, 60_000);

  it('an edge that subscribes while the book is being published (updates racing its image) ends exact', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const early = await h.edge();
    const topic = 'kc.race';
    const r = rng(99);
    origin.publishBatch(topic, randomBatch(r).input);
    await follow(early, topic);
    const late = await h.edge();
    let publishing = true;
    const feed = (async () => {
      while (publishing) {
        for (let i = 0; i < 5; i++) {
          try {
            origin.publishBatch(topic, randomBatch(r).input);
          } catch {
            // a guard refused it: nothing changed
          }
        }
        await sleep(Math.random() * 2);
      }
    })();
    await sleep(20);
    h.client(() => late).subscribe(topic);
    await waitFor(() => late.store.get(topic) !== undefined, 5_000, 'the late edge to hold the topic');
    await sleep(100);
    publishing = false;
    await feed;
    await quietEqual(origin, [early, late], topic);
    console.log(`keyed subscribe-while-publishing: held while healing ${late.cluster.stats.heldWhileHealing}, dropped ${late.cluster.stats.droppedWhileHealing}, heals ${JSON.stringify(late.cluster.stats.heals)}`);
  }, 30_000);

  it('batches refused by the origin come back typed through an edge (ROW_GUARD, BAD_KEY, TOO_MANY_ROWS: table and row named); nothing changes', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edge = await h.edge();
    const topic = 'kc.refuse';
    const first = { tables: { bids: { declare: { key: 'int', order: { key: 'desc' } }, upsert: { '1': { qty: 1 } } }, orders: { declare: { key: 'string', order: { key: 'asc' }, maxRows: 2 }, upsert: { a: { qty: 1 } } } } };
    expect((await http(edge.port, 'POST', `/publish/${topic}`, first)).body).toMatchObject({ version: 1 });
    // The origin declared maxRows: 2 as given (forwarded declarations keep it).
    expect(origin.store.get(topic)!.tables!.table('orders')!.spec.maxRows).toBe(2);
    const cases: [unknown, number, Record<string, unknown>][] = [
      [{ tables: { bids: { declare: { key: 'int', order: { key: 'desc' } }, ifNew: [1], upsert: { '1': { qty: 2 } } } } }, 409, { name: 'TICKFAN_ERR_ROW_GUARD', reason: 'ifNew', table: 'bids', key: 1 }],
      [{ tables: { orders: { declare: { key: 'string', order: { key: 'asc' }, maxRows: 2 }, upsert: { '': { qty: 2 } } } } }, 400, { name: 'TICKFAN_ERR_BAD_KEY', reason: 'badKey', table: 'orders' }],
      [{ tables: { orders: { declare: { key: 'string', order: { key: 'asc' }, maxRows: 2 }, upsert: { b: { qty: 2 }, c: { qty: 3 } } } } }, 400, { name: 'TICKFAN_ERR_TOO_MANY_ROWS', reason: 'tooManyRows', table: 'orders' }],
    ];
    for (const [body, status, error] of cases) {
      const res = await http(edge.port, 'POST', `/publish/${topic}`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body).toMatchObject({ error });
    }
    expect(origin.store.get(topic)!.version).toBe(1);
    expect(origin.cluster.stats.forwardedIn).toBe(1);
  }, 30_000);
});
