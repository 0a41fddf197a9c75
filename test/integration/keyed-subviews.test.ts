// Two subscriptions of one book on one client, over a real server, WebSocket
// and SSE (issue 19): a desk's depth-10 ladder (qty only) and a full-book
// pane. The server sends the connection the widest view; each subscription
// must see its own: after every update its rows() equal top-N of the
// reference at that version with its fields, in sort order, and its u.rows,
// replayed on the app's own copy, give the same rows (no row of the full
// book ever reaches the ladder's changes). Midway a depth-5 subscription
// joins (the union is unchanged), then the full pane leaves (the server
// narrows the union: a snapshot of the new one) and a full pane comes back
// (it widens again: the new subscription gets its whole view from the
// server's snapshot); every view stays exact across both. Quiet case: with
// no further publishes each view equals the final reference.

import { afterEach, describe, expect, it } from 'vitest';
import type { SubscribeOptions, TableRow, TickfanClient, Update } from '../../src/client/index.js';
import { Harness, waitFor } from './helpers.js';
import { Reference, SIDES, project, publish, randomBatch, rng, seed, type Rows } from './keyed-transport-helpers.js';

const h = new Harness();
afterEach(async () => {
  await h.close();
});

const LADDER: SubscribeOptions = { tables: { bids: { depth: 10, fields: ['qty'] }, asks: { depth: 10, fields: ['qty'] } } };
const FULL: SubscribeOptions = { checksums: true };
const TOP5: SubscribeOptions = { tables: { bids: { depth: 5, fields: ['n'] }, asks: { depth: 5, fields: ['n'] } } };

const wantOf = (o: SubscribeOptions, side: string): { depth: number; fields?: string[] } => ({ depth: o.tables?.[side]?.depth ?? 0, fields: o.tables?.[side]?.fields });

/** Rows as text with each row's fields in name order (field order is not part of a view). */
const text = (rows: Rows): string => JSON.stringify(rows.map(([k, f]) => [k, Object.fromEntries(Object.entries(f).sort(([a], [b]) => (a < b ? -1 : 1)))]));

/** A subscription whose view is checked after every update, through rows() and through its own row changes. */
function watcher(client: TickfanClient, ref: Reference, topic: string, name: string, options: SubscribeOptions) {
  const sub = client.subscribe(topic, options);
  const copy = new Map<string, Map<number, Record<string, unknown>>>();
  const w = { sub, name, updates: 0, snapshots: 0, rowChanges: 0, last: -1, failures: [] as string[], check };
  function check(version: number, when: string): void {
    const want = ref.at.get(version);
    if (!want) return void w.failures.push(`${name}: no reference at ${version}`);
    for (const s of SIDES) {
      const { depth, fields } = wantOf(options, s.name);
      const exp = text(project(want[s.name] ?? [], depth, fields));
      const got = text(sub.table(s.name).rows().map((r: TableRow) => [r.key as number, { ...r.fields }]));
      if (got !== exp) w.failures.push(`${name} ${when} ${s.name} v${version}: rows() ${got.slice(0, 160)} != ${exp.slice(0, 160)}`);
      const mine: Rows = [...(copy.get(s.name) ?? new Map())].sort((a, b) => (s.name === 'bids' ? b[0] - a[0] : a[0] - b[0]));
      if (when === 'update' && text(mine) !== exp) w.failures.push(`${name} ${s.name} v${version}: its row changes give ${JSON.stringify(mine).slice(0, 160)} != ${exp.slice(0, 160)}`);
    }
  }
  sub.on('update', (u: Update) => {
    w.updates++;
    if (u.snapshot) w.snapshots++;
    if (u.version <= w.last) w.failures.push(`${name}: a second update at v${u.version} (after v${w.last})`);
    w.last = u.version;
    if (u.snapshot) copy.clear();
    for (const r of u.rows ?? []) {
      w.rowChanges++;
      let t = copy.get(r.table);
      if (!t) copy.set(r.table, (t = new Map()));
      const k = r.key as number;
      if (r.op === 'delete') {
        if (!t.has(k)) w.failures.push(`${name} v${u.version}: delete of ${k}, not in its view`);
        t.delete(k);
      } else if (r.op === 'replace') t.set(k, { ...r.fields });
      else {
        if (!t.has(k)) w.failures.push(`${name} v${u.version}: upsert of ${k}, not in its view`);
        const row: Record<string, unknown> = { ...t.get(k) };
        for (const [f, v] of Object.entries(r.fields)) {
          if (v === null) delete row[f];
          else row[f] = v;
        }
        t.set(k, row);
      }
    }
    check(u.version, 'update');
  });
  sub.on('error', (e: unknown) => w.failures.push(`${name}: error ${String(e)}`));
  return w;
}

const yieldTurn = () => new Promise((res) => setImmediate(res));

/** A server with a seeded book on `topic`, its reference, and a client connected over `transport`. */
async function seededBook(topic: string, transport: 'ws' | 'sse') {
  const server = await h.server();
  const ref = new Reference(server, topic);
  seed(server, ref, topic);
  const client = await h.connected(server, transport === 'sse' ? { transport: 'sse' } : {});
  return { server, topic, ref, client };
}

describe.each(['ws', 'sse'] as const)('each subscription of a book sees its own view (%s)', (transport) => {
  it('a depth-10 ladder and a full-book pane on one client, subscriptions joining and leaving', async () => {
    const { server, topic, ref, client } = await seededBook(`sv.${transport}`, transport);
    const ladder = watcher(client, ref, topic, 'ladder', LADDER);
    let full = watcher(client, ref, topic, 'full', FULL);
    const all = [ladder, full];
    await waitFor(() => all.every((w) => w.updates > 0), 5_000, 'first images');
    expect(client.transport).toBe(transport);

    const r = rng(1919);
    let step = 0;
    let accepted = 0;
    const run = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        if (publish(server, ref, topic, randomBatch(r, ++step))) accepted++;
        if (i % 10 === 9) await yieldTurn();
      }
      await waitFor(() => all.every((w) => !w.sub.active || w.last === ref.version), 10_000, `views at v${ref.version}`);
    };

    await run(300);
    const [ladderFirst, fullFirst] = [ladder.rowChanges, full.rowChanges];
    const top5 = watcher(client, ref, topic, 'top5', TOP5); // the union is unchanged: cut from what is held
    all.push(top5);
    await run(200);
    full.sub.unsubscribe(); // the union narrows to depth 10 with qty and n: a snapshot of it
    await yieldTurn();
    await run(200);
    full = watcher(client, ref, topic, 'full again', FULL); // the union widens: the server's snapshot of it
    all.push(full);
    await run(300);

    // Quiet: nothing more published; every view is the final reference.
    await new Promise((res) => setTimeout(res, 200));
    for (const w of all) if (w.sub.active) w.check(ref.version, 'quiet');
    const failures = all.flatMap((w) => w.failures);
    expect(failures.slice(0, 10)).toEqual([]);
    // The ladder saw fewer row changes than the full pane (none beyond its window: checked above), at most
    // one update per version (checked above), and no snapshot but its first image for the unions' snapshots
    // taken at the version it held.
    expect(ladderFirst).toBeLessThan(fullFirst);
    expect(ladder.updates).toBeGreaterThan(accepted * 0.9);
    console.log(`${transport}: ${accepted} versions; ladder ${ladder.updates} updates (${ladder.snapshots} snapshots), ${ladder.rowChanges} row changes; full pane ${fullFirst} row changes to the ladder's ${ladderFirst} over the first 300 batches`);
    expect(client.stats.checksumMismatches).toBe(0);
    expect(client.stats.gaps).toBe(0);
  }, 60_000);

  it("a wider subscription's ready waits for its view (quiet: nothing published after it)", async () => {
    // A depth-5 ladder is held; a depth-20 one joins. The topic is already held, so the ack alone used to
    // resolve `ready` while the connection held depth 5: right after `await ready` the new ladder showed
    // no rows until the server's image of the widened view came in. Nothing is published meanwhile.
    const { topic, ref, client } = await seededBook(`svr.${transport}`, transport);
    const narrow = client.subscribe(topic, { tables: { bids: { depth: 5 }, asks: { depth: 5 } } });
    await narrow.ready;
    expect(narrow.table('bids').rows()).toHaveLength(5);
    for (const depth of [20, 0]) {
      const wide = client.subscribe(topic, { tables: { bids: { depth }, asks: { depth } } });
      await wide.ready;
      const want = depth || 80;
      expect(wide.table('bids').rows().map((r: TableRow) => r.key), `depth ${depth}: bids right after ready`).toEqual(
        project(ref.at.get(ref.version)!.bids!, want, undefined).map(([k]) => k),
      );
      expect(wide.table('asks').rows(), `depth ${depth}: asks right after ready`).toHaveLength(want);
      expect(wide.version).toBe(ref.version);
    }
    expect(narrow.table('bids').rows()).toHaveLength(5);
  }, 30_000);
});
