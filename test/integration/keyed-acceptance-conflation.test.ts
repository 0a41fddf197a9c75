// Issue 19, "Conflation": at maxRate 1 on a hot book (≥ 10k level changes/s
// over ≥ 2k keys, ~4 s), each delivered update holds at most
// min(keys changed, depth) rows and is exact at its version.
//
// The bound asserted, per table and per delivered delta (base b = the
// previously delivered version, K = distinct keys of that table touched by
// the batches in (b, v], N = depth 10), counting the row ops the SDK reports
// (`u.rows`: one per wire op; no `clear` is published, so none is expanded):
//   entries (rows entering or changing in the window: insert/replace/upsert) ≤ min(K, N)
//   evictions (rows leaving the window: delete)                              ≤ min(K, N)
// Why evictions are bounded apart: a window turnover needs both. A deleted
// window row is one changed key but costs its delete plus the refill from
// below (an unchanged row entering); a new best level is one changed key but
// costs its insert plus the eviction of the row it pushes out. Refills never
// outnumber the changed keys that left, nor evictions the changed keys that
// entered, so each side of the count is ≤ K, and ≤ N as the window holds N.
// Hence entries + evictions ≤ 2·min(K, N), and no per-version sum.
// Also: every row op names a key in the window at b or at v (a row added
// and deleted inside the interval, or changed only outside the window, costs
// nothing), and the view equals the sequencer's top 10 at every version.

import { afterEach, describe, expect, it } from 'vitest';
import type { Update } from '../../src/client/index.js';
import { Harness, waitFor } from './helpers.js';
import { TopReference, rng, seedBatch, watch, type Rows } from './keyed-acceptance-helpers.js';

const h = new Harness();
afterEach(() => h.close());

const N = 10;
const LEVELS = 1200;

describe('keyed conflation at maxRate 1 on a hot book', () => {
  it('each delivered delta holds ≤ min(K, depth) entries and ≤ min(K, depth) evictions per table, only window keys, exact at its version', async () => {
    const server = await h.server();
    const topic = 'ka.hot';
    const ref = new TopReference(server, topic, N);
    ref.publish(server, seedBatch(LEVELS));
    /** Keys each version touched, per table. */
    const touched = new Map<number, { bids: number[]; asks: number[] }>();
    const client = await h.connected(server);
    const sub = client.subscribe(topic, { tables: { bids: { depth: N }, asks: { depth: N } }, maxRate: 1 });
    const w = watch(sub, ref);
    const deltas: { base: number; version: number; rows: NonNullable<Update['rows']> }[] = [];
    let held = 0;
    sub.on('update', (u) => {
      if (!u.snapshot) deltas.push({ base: held, version: u.version, rows: [...(u.rows ?? [])] });
      held = u.version;
    });
    await sub.ready;

    const r = rng(20250);
    const t = () => server.store.get(topic)!.tables!;
    const distinct = new Set<string>();
    let changes = 0;
    let step = 0;
    const RATE = 20_000; // level changes/s
    const PER = 8; // a batch
    const t0 = Date.now();
    let publishedUntil = 0;
    for (let el = 0; (el = Date.now() - t0) < 4_000; await new Promise((res) => setTimeout(res, 1))) {
      publishedUntil = el;
      const phase = el < 1_000 ? 0 : el < 3_000 ? 1 : 2; // phase 1 lasts 2 s: at least one delivery interval lies wholly in it
      // Keep up with the target rate: a late tick publishes what it owes.
      const owed = Math.floor(((el / 1000) * RATE - changes) / PER);
      for (let b = 0; b < owed; b++) {
        const ops: { op: string; table: 'bids' | 'asks'; key: number; fields?: Record<string, unknown>; guard?: string }[] = [];
        const add = (op: string, table: 'bids' | 'asks', key: number, fields?: Record<string, unknown>) => ops.push(fields ? { op, table, key, fields } : { op, table, key });
        for (let i = 0; i < PER; i++) {
          const side = r() < 0.5 ? 'bids' : 'asks';
          const dir = side === 'bids' ? -1 : 1;
          const base = side === 'bids' ? 100_000 : 100_001;
          if (phase === 0) {
            // Everywhere in the book: upserts, deletes, re-adds.
            const key = base + dir * Math.floor(r() * (LEVELS + 100));
            if (r() < 0.7) add('upsert', side, key, { qty: Math.round(r() * 1e4) / 100, n: step });
            else add('delete', side, key);
          } else if (phase === 1) {
            // Three hot levels inside the window, and a level above the top added then deleted.
            const x = r();
            if (x < 0.8) add('upsert', side, base + dir * Math.floor(r() * 3), { qty: Math.round(r() * 1e4) / 100 });
            else if (x < 0.9) add('upsert', side, base - dir * (1 + Math.floor(r() * 3)), { qty: 9.99 });
            else add('delete', side, base - dir * (1 + Math.floor(r() * 3)));
          } else {
            // Turnover: the best level goes (a refill from below) or a better one comes (an eviction).
            const top = t().table(side)!.top(1)[0]!.key as number;
            const x = r();
            if (x < 0.4) add('delete', side, top);
            else if (x < 0.7) add('upsert', side, top - dir * (1 + Math.floor(r() * 2)), { qty: 0.5 });
            else add('upsert', side, top + dir * Math.floor(r() * 30), { qty: Math.round(r() * 1e4) / 100 });
          }
        }
        if (ref.publish(server, { fields: {}, tables: { ops } })) {
          const v = server.store.get(topic)!.version;
          touched.set(v, { bids: ops.filter((o) => o.table === 'bids').map((o) => o.key), asks: ops.filter((o) => o.table === 'asks').map((o) => o.key) });
          for (const o of ops) distinct.add(`${o.table}:${o.key}`);
          changes += ops.length;
          step++;
        }
      }
    }
    const secs = publishedUntil / 1000;
    const last = server.store.get(topic)!.version;
    await waitFor(() => w.last === last, 5_000, 'the client at the last version');
    expect(w.failures.slice(0, 3)).toEqual([]);
    expect(changes / secs, 'level changes/s').toBeGreaterThanOrEqual(10_000);
    expect(distinct.size, 'distinct keys').toBeGreaterThanOrEqual(2_000);
    expect(deltas.length, 'conflated deliveries').toBeLessThanOrEqual(Math.ceil(secs) + 3);

    const problems: string[] = [];
    const figures: string[] = [];
    for (const d of deltas) {
      const before = JSON.parse(ref.at.get(d.base)!) as Record<string, Rows>;
      const after = JSON.parse(ref.at.get(d.version)!) as Record<string, Rows>;
      const fig: string[] = [];
      for (const side of ['bids', 'asks'] as const) {
        const keys = new Set<number>();
        for (let v = d.base + 1; v <= d.version; v++) for (const k of touched.get(v)?.[side] ?? []) keys.add(k);
        const K = keys.size;
        const rows = d.rows.filter((x) => x.table === side);
        const entries = rows.filter((x) => x.op !== 'delete').length;
        const evictions = rows.length - entries;
        const bound = Math.min(K, N);
        fig.push(`${side} K=${K} entries=${entries} evictions=${evictions}`);
        if (entries > bound) problems.push(`v${d.base}→v${d.version} ${side}: ${entries} entries > min(${K}, ${N})`);
        if (evictions > bound) problems.push(`v${d.base}→v${d.version} ${side}: ${evictions} evictions > min(${K}, ${N})`);
        const window = new Set([...before[side]!, ...after[side]!].map(([k]) => k));
        for (const x of rows) if (!window.has(x.key as number)) problems.push(`v${d.base}→v${d.version} ${side}: op ${x.op} on ${String(x.key)}, in the window at neither end`);
      }
      figures.push(`v${d.base}→v${d.version} (${d.version - d.base} versions): ${fig.join(', ')}`);
    }
    console.log(`conflation: ${changes} level changes in ${secs.toFixed(1)} s (${Math.round(changes / secs)}/s) over ${distinct.size} keys, ${last - 1} versions, ${deltas.length} deliveries:\n  ${figures.join('\n  ')}`);
    expect(problems.slice(0, 5)).toEqual([]);
    // The bound was tested where it is below the depth too (an interval of hot levels only).
    expect(figures.some((f) => /K=[0-9] entries=[1-9]/.test(f)), "a delivery with fewer than 10 keys changed on a side, some in the window").toBe(true);
  }, 30_000);
});
