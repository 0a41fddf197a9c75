// Issue 19, "Checksums": a proxy that corrupts one row value in flight is
// caught by the SDK within one update and healed by catch-up. An SDK client
// (depth 10 on both sides, checksums on) connects through a proxy that
// parses the server's WebSocket frames and flips one bit of a qty mantissa
// inside one KeyedDelta2 (the message still decodes). The SDK must count the
// mismatch on that very message (nothing wrong is ever shown: the view is
// compared with the sequencer's top 10 after every update), heal with a
// snapshot, and end exact against GET /snapshot?depth=10 at the same version:
// once while the book is busy, once on its last update (the quiet case: no
// later update comes to help).

import { afterEach, describe, expect, it } from 'vitest';
import { Harness, http, sleep, waitFor } from './helpers.js';
import { CorruptingProxy } from './keyed-acceptance-proxy.js';
import { TopReference, rng, seedBatch, viewJson, watch } from './keyed-acceptance-helpers.js';

const h = new Harness();
let proxy: CorruptingProxy | undefined;
afterEach(async () => {
  await h.close();
  await proxy?.close();
  proxy = undefined;
});

/** Changes near the top of both sides (inside a depth-10 window): upserts with decimal qty, sometimes an insert or delete. */
function nearTop(r: () => number, step: number) {
  const ops: unknown[] = [];
  for (const side of ['bids', 'asks'] as const) {
    const key = side === 'bids' ? 100_000 - Math.floor(r() * 6) : 100_001 + Math.floor(r() * 6);
    ops.push({ op: 'upsert', table: side, key, fields: { qty: Math.round(r() * 10_000) / 100 + 0.01, n: step } });
  }
  if (r() < 0.2) ops.push({ op: 'delete', table: 'bids', key: 100_000 - 7 - Math.floor(r() * 4) });
  if (r() < 0.2) ops.push({ op: 'upsert', table: 'bids', key: 100_000 - 7 - Math.floor(r() * 4), fields: { qty: 1.5, n: step } });
  return { fields: { last: step }, tables: { ops } };
}

describe('keyed checksums through a corrupting proxy', () => {
  it('one corrupted row value is detected on its own update and healed by a snapshot; exact against /snapshot?depth=10, busy and quiet', async () => {
    const server = await h.server();
    const topic = 'ka.ck';
    const ref = new TopReference(server, topic, 10);
    ref.publish(server, seedBatch(40));
    proxy = await CorruptingProxy.start(server.port);
    const client = await h.connected(proxy.port);
    const sub = client.subscribe(topic, { tables: { bids: { depth: 10 }, asks: { depth: 10 } }, checksums: true });
    const w = watch(sub, ref);
    // The mismatch count each update was delivered with.
    const seen: { version: number; snapshot: boolean; mismatches: number }[] = [];
    sub.on('update', (u) => seen.push({ version: u.version, snapshot: u.snapshot, mismatches: client.stats.checksumMismatches }));
    await sub.ready;
    const r = rng(1919);
    let step = 0;

    // Busy: corrupt one delta in the middle of a stream of updates.
    for (let i = 0; i < 150; i++) {
      if (i === 50) proxy.armed = true;
      ref.publish(server, nearTop(r, ++step));
      if (i % 5 === 4) await sleep(2);
    }
    let v = server.store.get(topic)!.version;
    await waitFor(() => w.last === v, 10_000, 'the client at the last version (busy)');
    expect(proxy.corrupted.length, 'one delta corrupted').toBe(1);
    const busy = proxy.corrupted[0]!;
    expect(client.stats.checksumMismatches).toBe(1);
    // Within one update: the first update delivered at or past the corrupted version already counts the mismatch, and is the healing snapshot.
    const after = seen.find((s) => s.version >= busy)!;
    expect(after).toMatchObject({ snapshot: true, mismatches: 1 });
    expect(seen.filter((s) => s.version < busy).every((s) => s.mismatches === 0)).toBe(true);
    expect(w.failures.slice(0, 3)).toEqual([]);

    // Quiet: corrupt the last update of the book; nothing is published after it.
    await sleep(50);
    proxy.armed = true;
    ref.publish(server, nearTop(r, ++step));
    v = server.store.get(topic)!.version;
    await waitFor(() => w.last === v && client.stats.checksumMismatches === 2, 10_000, 'the client healed at the last version (quiet)');
    expect(proxy.corrupted).toEqual([busy, v]);
    await sleep(100); // nothing else arrives
    expect(w.last).toBe(v);
    expect(w.failures.slice(0, 3)).toEqual([]);
    const snap = (await http(server.port, 'GET', `/snapshot/${topic}?depth=10`)).body as { version: number; tables: Record<string, { rows: [number, Record<string, unknown>][] }> };
    expect(snap.version).toBe(v);
    expect(viewJson(sub)).toBe(JSON.stringify({ bids: snap.tables.bids!.rows, asks: snap.tables.asks!.rows }));
    expect(client.stats.gaps).toBeGreaterThanOrEqual(2);
    console.log(`checksum: corrupted v${busy} (busy) and v${v} (quiet); mismatches ${client.stats.checksumMismatches}, catch-up snapshots ${client.stats.catchUpSnapshots}, updates ${w.updates.length}`);
  }, 30_000);
});
