// The SDK's keyed view through the client (issue 19, §7.7 of the research
// notes): `sub.table('bids')` reads rows in the table's sort order; one
// `update` per version with the summary and every row change; a snapshot in
// parts is applied only whole; the held version advances only after the
// callbacks returned (a resubscribe inside one resumes from the version
// before it, the centrifuge-js #406 lesson) and a callback that throws does
// not stop the others; a checksum mismatch applies nothing, is counted, and
// is healed by a snapshot. Decoded keyed messages are handed to the client
// directly until the codec produces them.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientError, type Subscription, type TickfanClient, type Update } from '../../src/client/index.js';
import { viewChecksum, type Changes, type Key, type KeyedChange, type RowChange, type State, type TableSpec } from '../../src/protocol/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg, KeyedTableView, SubscribeMsg } from '../../src/protocol/messages.js';
import { FakeWs } from './fake-ws.js';
import { acceptedClient, inject } from './fake-client.js';

const BIDS: TableSpec = { name: 'bids', key: 'int', order: { key: 'desc' } };
const ASKS: TableSpec = { name: 'asks', key: 'int', order: { key: 'asc' } };
const ORDERS: TableSpec = { name: 'orders', key: 'string', order: { fields: [{ field: 'px', dir: 'desc' }, { field: 'seq', dir: 'asc' }], key: 'asc' } };
const T = 'book.X';
const E = 3;

const clients: TickfanClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  FakeWs.all = [];
  vi.restoreAllMocks();
});

const client = (): TickfanClient => acceptedClient(clients);

const views = (...specs: TableSpec[]): Map<string, KeyedTableView> => new Map(specs.map((spec) => [spec.name, { spec, depth: 0, fields: [] }]));
const row = (o: Record<string, number | string>): State => new Map(Object.entries(o));
const rows = (...r: [Key, Record<string, number | string>][]): Map<Key, State> => new Map(r.map(([k, f]) => [k, row(f)]));

function snapshot(version: number, tables: Record<string, Map<Key, State>>, o: Partial<KeyedSnapshotMsg> = {}): KeyedSnapshotMsg {
  const specs = [BIDS, ASKS, ORDERS].filter((s) => s.name in tables);
  return { type: 'keyedSnapshot', topic: T, epoch: E, version, summary: new Map(), tables: views(...specs), rows: new Map(Object.entries(tables)), part: 0, last: true, checksum: null, ts: 0, ...o };
}

function delta(base: number, version: number, tables: Record<string, { clear?: boolean; rows: [Key, RowChange][] }>, o: Partial<KeyedDeltaMsg> = {}): KeyedDeltaMsg {
  const change: KeyedChange = { declared: [], tables: new Map(Object.entries(tables).map(([n, t]) => [n, { clear: t.clear ?? false, rows: new Map(t.rows) }])) };
  return { type: 'keyedDelta', topic: T, epoch: E, base, version, updates: version - base, summary: new Map(), tables: new Map(), change, checksum: null, ts: 0, ...o };
}

const up = (f: Record<string, number | string | null>): RowChange => ({ op: 'upsert', fields: new Map(Object.entries(f)) as Changes });
const rep = (f: Record<string, number | string>): RowChange => ({ op: 'replace', fields: row(f), existed: false });
const del: RowChange = { op: 'delete' };
const keys = (sub: Subscription, table: string): Key[] => sub.table(table).rows().map((r) => r.key);

describe('sub.table(): rows in the sort order', () => {
  it('orders by key (desc, asc) and by fields then key, with get/has/size, and stays live across snapshots', async () => {
    const c = client();
    const sub = c.subscribe(T);
    const bids = sub.table('bids');
    expect(bids.rows()).toEqual([]); // nothing held yet: empty, not an error
    inject(
      c,
      snapshot(5, {
        bids: rows([100, { qty: 1 }], [102, { qty: 2 }], [101, { qty: 3 }]),
        asks: rows([105, { qty: 1 }], [103, { qty: 2 }]),
        orders: rows(['o3', { px: 10, seq: 2 }], ['o1', { px: 10, seq: 1 }], ['o2', { px: 11, seq: 9 }], ['o0', { px: 10, seq: 1 }]),
      }),
    );
    await sub.ready;
    expect(bids.rows().map((r) => r.key)).toEqual([102, 101, 100]);
    expect(bids.rows()[0]!.fields).toEqual({ qty: 2 });
    expect(sub.table('asks').rows().map((r) => r.key)).toEqual([103, 105]);
    expect(sub.table('orders').rows().map((r) => r.key)).toEqual(['o2', 'o0', 'o1', 'o3']);
    expect(bids.get(101)).toEqual({ qty: 3 });
    expect(bids.has(99)).toBe(false);
    expect(bids.size).toBe(3);
    expect(bids.spec).toEqual(BIDS);
    expect(sub.table('nope').size).toBe(0);
    // A seq change moves an order; a new snapshot is read through the same handle.
    inject(c, delta(5, 6, { orders: { rows: [['o0', up({ seq: 5 })]] } }));
    expect(sub.table('orders').rows().map((r) => r.key)).toEqual(['o2', 'o1', 'o3', 'o0']);
    inject(c, snapshot(9, { bids: rows([7, { qty: 1 }]) }));
    expect(bids.rows().map((r) => r.key)).toEqual([7]);
    expect(sub.table('orders').size).toBe(0);
  });
});

describe('one update per version', () => {
  it('carries the summary changes and every row change; a clear is reported as deletes', () => {
    const c = client();
    const sub = c.subscribe(T, { fields: ['last'] });
    const seen: Update[] = [];
    sub.on('update', (u) => seen.push(u));
    inject(c, snapshot(1, { bids: rows([100, { qty: 1 }], [101, { qty: 2 }]) }, { summary: row({ last: 5, vol: 9 }) }));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ snapshot: true, version: 1, changes: { last: 5 }, state: { last: 5 } });
    expect(seen[0]!.rows).toEqual([
      { table: 'bids', key: 101, op: 'replace', fields: { qty: 2 } },
      { table: 'bids', key: 100, op: 'replace', fields: { qty: 1 } },
    ]);
    inject(c, delta(1, 3, { bids: { rows: [[100, up({ qty: 4, n: 1 })], [101, del], [99, rep({ qty: 7 })]] } }, { summary: new Map([['last', 6], ['vol', null]]) }));
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ snapshot: false, version: 3, updates: 2, changes: { last: 6 } });
    expect(seen[1]!.rows).toEqual([
      { table: 'bids', key: 100, op: 'upsert', fields: { qty: 4, n: 1 } },
      { table: 'bids', key: 101, op: 'delete', fields: null },
      { table: 'bids', key: 99, op: 'replace', fields: { qty: 7 } },
    ]);
    // clear + a re-added row: deletes for the rows gone, a replace for the one re-added.
    inject(c, delta(3, 4, { bids: { clear: true, rows: [[99, up({ qty: 1 })]] } }));
    expect(seen[2]!.rows).toEqual([
      { table: 'bids', key: 100, op: 'delete', fields: null },
      { table: 'bids', key: 99, op: 'replace', fields: { qty: 1 } },
    ]);
    expect(keys(sub, 'bids')).toEqual([99]);
    expect(c.stats).toMatchObject({ snapshots: 1, deltas: 2, gaps: 0 });
  });

  it('holds snapshot parts until the last one, applying none early; a part out of sequence is a gap', async () => {
    const c = client();
    const sub = c.subscribe(T);
    const seen: Update[] = [];
    sub.on('update', (u) => seen.push(u));
    inject(c, snapshot(4, { bids: rows([1, { q: 1 }]) }, { last: false, summary: row({ last: 1 }) }));
    inject(c, snapshot(4, { bids: rows([2, { q: 2 }]) }, { part: 1, last: false, summary: new Map() }));
    expect(seen).toHaveLength(0);
    expect(sub.version).toBe(-1);
    expect(sub.table('bids').size).toBe(0);
    inject(c, snapshot(4, { bids: rows([3, { q: 3 }]) }, { part: 2, last: true, summary: new Map() }));
    await sub.ready;
    expect(seen).toHaveLength(1);
    expect(sub.table('bids').rows().map((r) => r.key)).toEqual([3, 2, 1]);
    expect(sub.state).toEqual({ last: 1 });
    // A catch-up snapshot whose part 1 is lost: part 2 cannot complete it.
    inject(c, snapshot(8, { bids: rows([5, { q: 5 }]) }, { last: false }));
    inject(c, snapshot(8, { bids: rows([6, { q: 6 }]) }, { part: 2, last: true }));
    expect(seen).toHaveLength(1);
    expect(sub.version).toBe(4);
    expect(FakeWs.last().sentOf('catchUp')).toEqual([{ type: 'catchUp', topic: T, epoch: E, version: 4 }]);
  });

  it('ignores duplicates and older versions; a delta that does not follow is a gap, healed by one catch-up', () => {
    const c = client();
    const sub = c.subscribe(T);
    const seen: number[] = [];
    sub.on('update', (u) => seen.push(u.version));
    inject(c, snapshot(10, { bids: rows([1, { q: 1 }]) }));
    inject(c, delta(10, 11, { bids: { rows: [[2, rep({ q: 2 })]] } }));
    inject(c, delta(10, 11, { bids: { rows: [[2, rep({ q: 2 })]] } })); // duplicate
    inject(c, snapshot(9, { bids: rows([9, { q: 9 }]) })); // an older snapshot
    inject(c, delta(12, 13, { bids: { rows: [[3, rep({ q: 3 })]] } })); // 12 lost
    inject(c, delta(13, 14, { bids: { rows: [[4, rep({ q: 4 })]] } }));
    expect(seen).toEqual([10, 11]);
    expect(keys(sub, 'bids')).toEqual([2, 1]);
    expect(c.stats).toMatchObject({ duplicates: 2, gaps: 1 });
    expect(FakeWs.last().sentOf('catchUp')).toEqual([{ type: 'catchUp', topic: T, epoch: E, version: 11 }]);
    inject(c, delta(11, 14, { bids: { rows: [[3, rep({ q: 3 })], [4, rep({ q: 4 })]] } }, { tables: views(BIDS) }));
    expect(seen).toEqual([10, 11, 14]);
    expect(c.stats).toMatchObject({ gapsHealed: 1, catchUps: 1, catchUpDeltas: 1 });
  });
});

describe('the held version advances after the callbacks', () => {
  it('during a callback: the view shows the new version, the held position is still the old one', () => {
    const c = client();
    const sub = c.subscribe(T);
    inject(c, snapshot(1, { bids: rows([1, { q: 1 }]) }));
    const during: unknown[] = [];
    let resubscribe: SubscribeMsg | undefined;
    sub.on('update', (u) => {
      during.push(u.version, sub.version, sub.table('bids').rows().map((r) => r.key));
      // The app re-enters the subscribe flow (a StrictMode remount): it resumes from what it held before this update.
      resubscribe = (c as unknown as { subscribeMessage(s: unknown): SubscribeMsg }).subscribeMessage(sub);
    });
    inject(c, delta(1, 2, { bids: { rows: [[2, rep({ q: 2 })]] } }));
    expect(during).toEqual([2, 1, [2, 1]]);
    expect(resubscribe!.resume).toEqual([{ topic: T, epoch: E, version: 1 }]);
    expect(sub.version).toBe(2);
  });

  it('a callback that throws: the other listeners still get the update, its error is rethrown asynchronously, the version advances', () => {
    const c = client();
    const sub = c.subscribe(T);
    const rethrown: (() => void)[] = [];
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((fn) => void rethrown.push(fn));
    const after: number[] = [];
    sub.on('update', () => {
      throw new Error('app bug');
    });
    sub.on('update', (u) => after.push(u.version));
    inject(c, snapshot(1, { bids: rows([1, { q: 1 }]) }));
    inject(c, delta(1, 2, { bids: { rows: [[1, up({ q: 5 })]] } }));
    expect(after).toEqual([1, 2]);
    expect(sub.version).toBe(2);
    expect(sub.table('bids').get(1)).toEqual({ q: 5 });
    expect(rethrown).toHaveLength(2);
    expect(() => rethrown[0]!()).toThrow('app bug');
    expect(c.stats.gaps).toBe(0);
  });
});

describe('view checksums', () => {
  const sum = (bids: [Key, Record<string, number>][], summary: State = new Map()) =>
    viewChecksum([{ name: 'bids', keyType: 'int', rows: bids.map(([k, f]) => [k, row(f)] as const) }], summary);

  it('a mismatch applies nothing, is counted, asks for a snapshot, ignores deltas until it arrives; the snapshot heals', () => {
    const c = client();
    const sub = c.subscribe(T, { checksums: true });
    const seen: number[] = [];
    sub.on('update', (u) => seen.push(u.version));
    inject(c, snapshot(1, { bids: rows([2, { q: 2 }], [1, { q: 1 }]) }, { checksum: sum([[2, { q: 2 }], [1, { q: 1 }]]) }));
    inject(c, delta(1, 2, { bids: { rows: [[1, up({ q: 3 })]] } }, { checksum: sum([[2, { q: 2 }], [1, { q: 3 }]]) }));
    expect(seen).toEqual([1, 2]);
    // A value corrupted in flight: the server's checksum is of q 4, the delta says 40.
    inject(c, delta(2, 3, { bids: { rows: [[1, up({ q: 40 })]] } }, { checksum: sum([[2, { q: 2 }], [1, { q: 4 }]]) }));
    expect(seen).toEqual([1, 2]);
    expect(sub.version).toBe(2);
    expect(sub.table('bids').get(1)).toEqual({ q: 3 }); // the view at 2, as the app was shown it
    expect(c.stats).toMatchObject({ checksumMismatches: 1, gaps: 1 });
    expect(FakeWs.last().sentOf('catchUp')).toEqual([{ type: 'catchUp', topic: T, epoch: 0, version: 0 }]);
    // Untrusted: later deltas are not applied, a resubscribe carries no resume point.
    inject(c, delta(3, 4, { bids: { rows: [[5, rep({ q: 5 })]] } }));
    expect(seen).toEqual([1, 2]);
    expect((c as unknown as { subscribeMessage(s: unknown): SubscribeMsg }).subscribeMessage(sub).resume).toEqual([]);
    inject(c, snapshot(4, { bids: rows([2, { q: 2 }], [1, { q: 4 }], [5, { q: 5 }]) }, { checksum: sum([[5, { q: 5 }], [2, { q: 2 }], [1, { q: 4 }]]) }));
    expect(seen).toEqual([1, 2, 4]);
    expect(sub.table('bids').rows().map((r) => [r.key, r.fields.q])).toEqual([[5, 5], [2, 2], [1, 4]]);
    expect(c.stats).toMatchObject({ checksumMismatches: 1, gapsHealed: 1, catchUpSnapshots: 1 });
    inject(c, delta(4, 5, { bids: { rows: [[5, del]] } }, { checksum: sum([[2, { q: 2 }], [1, { q: 4 }]]) }));
    expect(seen).toEqual([1, 2, 4, 5]);
  });

  it('covers the summary fields of the view too', () => {
    const c = client();
    const sub = c.subscribe(T, { checksums: true });
    inject(c, snapshot(1, { bids: rows([1, { q: 1 }]) }, { summary: row({ last: 5 }), checksum: sum([[1, { q: 1 }]]) }));
    expect(sub.version).toBe(-1);
    expect(c.stats.checksumMismatches).toBe(1);
  });
});

describe('subscribe options for tables', () => {
  it('ask for depth and fields per table, and checksums', () => {
    const c = client();
    const sub = c.subscribe(T, { tables: { bids: { depth: 10, fields: ['qty'] }, asks: {} }, checksums: true });
    const m = (c as unknown as { subscribeMessage(s: unknown): SubscribeMsg }).subscribeMessage(sub);
    expect(m.tables).toEqual([
      { table: 'bids', depth: 10, fields: ['qty'] },
      { table: 'asks', depth: 0, fields: [] },
    ]);
    expect(m.checksums).toBe(true);
    const flat = (c as unknown as { subscribeMessage(s: unknown): SubscribeMsg }).subscribeMessage(c.subscribe('px.A'));
    expect('tables' in flat || 'checksums' in flat).toBe(false);
    expect(() => c.subscribe(T, { tables: { bids: { depth: -1 } } })).toThrow(ClientError);
    expect(() => c.subscribe(T, { tables: { bids: { depth: 2.5 } } })).toThrow(/tables\.bids\.depth/);
  });
});
