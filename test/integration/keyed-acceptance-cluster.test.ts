// Issue 19, "Catch-up" across nodes: a client holding a depth-10 view of a
// keyed book, cut from edge A while the origin keeps publishing, resumes on
// edge B and is exact (real nats-server, origin + 3 edges). B already
// follows the book with the same view (another subscriber): the resume from
// 3 versions back is answered with a merged view delta (after 30 versions of
// churn near the top, a depth-10 view's snapshot is the smaller answer and B
// rightly sends it). C does not follow the book yet: the resume is
// answered with a snapshot. Both are quiet cases: nothing is published after
// the cut, so the resumed view must equal the origin's GET /snapshot?depth=10
// at the same version with no later update to help. The view is also compared
// with the origin's top 10 after every update the client was delivered.

import { describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import type { Subscription } from '../../src/client/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http, sleep, waitFor } from './helpers.js';
import { TopReference, rng, seedBatch, viewJson, watch } from './keyed-acceptance-helpers.js';

const fx = clusterFixture();
let h: ClusterHarness | undefined;

const VIEW = { tables: { bids: { depth: 10 }, asks: { depth: 10 } } };

function batch(r: () => number, step: number) {
  const ops: unknown[] = [];
  for (const side of ['bids', 'asks'] as const) {
    const dir = side === 'bids' ? -1 : 1;
    const base = side === 'bids' ? 100_000 : 100_001;
    const key = base + dir * Math.floor(r() * 14);
    if (r() < 0.7) ops.push({ op: 'upsert', table: side, key, fields: { qty: Math.round(r() * 1e4) / 100, n: step } });
    else ops.push({ op: 'delete', table: side, key });
  }
  return { fields: { last: step }, tables: { ops } };
}

async function quietExact(origin: ClusterServer, sub: Subscription, topic: string, version: number): Promise<void> {
  const snap = (await http(origin.port, 'GET', `/snapshot/${topic}?depth=10`)).body as { version: number; tables: Record<string, { rows: unknown[] }> };
  expect(snap.version).toBe(version);
  expect(viewJson(sub)).toBe(JSON.stringify({ bids: snap.tables.bids!.rows, asks: snap.tables.asks!.rows }));
}

describe('keyed catch-up across cluster edges', () => {
  it('a depth-10 view cut from edge A resumes on edge B (merged delta) and on edge C (snapshot), exact in the quiet case', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const [a, b, c] = [await h.edge(), await h.edge(), await h.edge()];
    const topic = 'ka.cl';
    const ref = new TopReference(origin, topic, 10);
    ref.publish(origin, seedBatch(40));
    // B follows the book with the same view: it keeps that view's history.
    const observer = h.client(() => b);
    const obs = observer.subscribe(topic, VIEW);
    const ow = watch(obs, ref);
    let to: ClusterServer | null = a;
    const client = h.client(() => to);
    const sub = client.subscribe(topic, VIEW);
    const w = watch(sub, ref);
    await sub.ready;
    await obs.ready;
    const r = rng(77);
    let step = 0;
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++) {
        ref.publish(origin, batch(r, ++step));
        if (i % 10 === 9) await sleep(2);
      }
      return origin.store.get(topic)!.version;
    };
    let v = await publish(60);
    await waitFor(() => w.last === v && ow.last === v, 10_000, 'both clients at the last version');

    // Cut from A; publish while it is away (3 versions: a merged delta is smaller than the view's snapshot); resume on B.
    to = null;
    client.cut();
    for (let i = 0; i < 3; i++) ref.publish(origin, { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 100_000, fields: { qty: 1000 + i } }] } });
    v = origin.store.get(topic)!.version;
    await waitFor(() => ow.last === v, 10_000, 'edge B (its observer) at the last version');
    const before = { d: b.stats.catchUpDeltas, s: b.stats.catchUpSnapshots };
    to = b;
    await waitFor(() => w.last === v, 10_000, 'the client resumed on B at the last version');
    expect(b.stats.catchUpDeltas - before.d, 'B answered the resume with a merged delta').toBe(1);
    expect(b.stats.catchUpSnapshots - before.s).toBe(0);
    await sleep(100);
    expect(w.last).toBe(v);
    await quietExact(origin, sub, topic, v);

    // Cut from B; publish; resume on C, which does not follow the book yet.
    to = null;
    client.cut();
    v = await publish(30);
    expect(c.store.get(topic)).toBeUndefined();
    to = c;
    await waitFor(() => w.last === v, 10_000, 'the client resumed on C at the last version');
    expect(c.stats.catchUpSnapshots + c.stats.catchUpDeltas, 'C answered the resume with a catch-up').toBeGreaterThanOrEqual(1);
    await sleep(100);
    expect(w.last).toBe(v);
    await quietExact(origin, sub, topic, v);

    expect(w.failures.slice(0, 3)).toEqual([]);
    expect(ow.failures.slice(0, 3)).toEqual([]);
    expect(client.stats.reconnects).toBe(2);
    console.log(`cluster catch-up: B deltas ${b.stats.catchUpDeltas} snapshots ${b.stats.catchUpSnapshots}; C deltas ${c.stats.catchUpDeltas} snapshots ${c.stats.catchUpSnapshots}; client ${JSON.stringify({ catchUpDeltas: client.stats.catchUpDeltas, catchUpSnapshots: client.stats.catchUpSnapshots, gaps: client.stats.gaps })}`);
  }, 60_000);
});
