// Each subscription sees its own view of a keyed topic (issue 19): two or
// three subscriptions of one topic on one client ask for different tables,
// depths and field subsets; the connection holds the widest (the server's
// own merge rule, mergeViewReqs, decides it, and the server's views are
// simulated exactly: top-N of the reference, projected, as net view deltas
// with evictions and a clear when everything leaves). Random batches over
// two books and a blotter sorted by fields (fast-check); subscriptions are
// added and removed midway (the union changes: a snapshot of the new union
// at the current version, with a delta of the old union still in flight).
// After every callback and every step, each subscription's rows() equals
// top-N(reference) with its fields, in sort order, and its row changes,
// replayed on the app's own copy, take its previous view to its new one;
// a subscription whose view the connection does not hold yet sees nothing.
// The connection's checksums (of the widest view) never mismatch.

import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Subscription, SubscribeOptions, TickfanClient, Update } from '../../src/client/index.js';
import { DELETE, diffRow, viewChecksum, type Changes, type FieldValue, type Key, type RowChange, type State, type TableChange, type TableSpec } from '../../src/protocol/index.js';
import type { KeyedTableView } from '../../src/protocol/messages.js';
import { mergeViewReqs, viewReq, type ViewReq } from '../../src/server/fanout/view-entry.js';
import { ASKS, BIDS, ORDERS, applyModel, opArb, sameList, sameRows, topN, type Model } from './keyed-model.js';
import { FakeWs } from './fake-ws.js';
import { acceptedClient, inject } from './fake-client.js';

const T = 'book.SV';
const E = 4;
const SPECS = new Map<string, TableSpec>([BIDS, ASKS, ORDERS].map((s) => [s.name, s]));

const clients: TickfanClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  FakeWs.all = [];
});

const client = (): TickfanClient => acceptedClient(clients);

type Want = { depth: number; fields: readonly string[] };
/** A subscription's view of a table (not listed: whole). */
const wantOf = (o: SubscribeOptions, table: string): Want => {
  const t = o.tables?.[table];
  return t === undefined ? { depth: 0, fields: [] } : { depth: t.depth ?? 0, fields: t.fields ?? [] };
};
const reqOf = (o: SubscribeOptions): ViewReq | null =>
  viewReq(
    Object.entries(o.tables ?? {}).map(([table, t]) => ({ table, depth: t.depth ?? 0, fields: t.fields ?? [] })),
    o.checksums,
  );

/** The view of `model` a (depth, fields) want gives, best first. */
function viewOf(model: Model, table: string, w: Want): [Key, State][] {
  return topN(SPECS.get(table)!, model.get(table), w.depth, w.fields.length ? w.fields : undefined);
}

/** What the server holds for one connection: the merged request and the view it last sent. */
class ServerSim {
  req: ViewReq | null = null;
  sent = new Map<string, Map<Key, State>>();
  summaryFields: Set<string> | null = null;

  constructor(
    private readonly c: TickfanClient,
    private readonly refs: { model: Model; summary: State }[],
  ) {}

  private want(table: string): Want {
    const t = this.req?.tables.get(table);
    return t ?? { depth: 0, fields: [] };
  }

  /** Re-derives the union from the live subscriptions; true when it changed (the server then sends a snapshot). */
  merge(subs: readonly SubscribeOptions[]): boolean {
    const next = mergeViewReqs(subs.map(reqOf));
    const fields = subs.some((s) => !s.fields?.length) ? null : new Set(subs.flatMap((s) => s.fields ?? []));
    const key = (f: Set<string> | null): string => (f === null ? '*' : [...f].sort().join());
    const changed = (next?.key ?? '') !== (this.req?.key ?? '') || key(fields) !== key(this.summaryFields);
    this.req = next;
    this.summaryFields = fields;
    return changed;
  }

  private summary(v: number): State {
    const s = this.refs[v]!.summary;
    return this.summaryFields === null ? new Map(s) : new Map([...s].filter(([k]) => this.summaryFields!.has(k)));
  }

  private checksum(v: number): number {
    const tables = [...SPECS.values()].map((spec) => ({ name: spec.name, keyType: spec.key, rows: this.view(v, spec.name) }));
    return viewChecksum(tables, this.summary(v));
  }

  private view(v: number, table: string): [Key, State][] {
    return viewOf(this.refs[v]!.model, table, this.want(table));
  }

  snapshot(v: number): void {
    const tables = new Map<string, KeyedTableView>();
    const rows = new Map<string, Map<Key, State>>();
    for (const spec of SPECS.values()) {
      const w = this.want(spec.name);
      tables.set(spec.name, { spec, depth: w.depth, fields: [...w.fields] });
      rows.set(spec.name, new Map(this.view(v, spec.name)));
    }
    this.sent = new Map([...rows].map(([n, r]) => [n, new Map(r)]));
    inject(this.c, { type: 'keyedSnapshot', topic: T, epoch: E, version: v, summary: this.summary(v), tables, rows, part: 0, last: true, checksum: this.checksum(v), ts: 0 });
  }

  delta(v: number): void {
    const tables = new Map<string, TableChange>();
    for (const spec of SPECS.values()) {
      const before = this.sent.get(spec.name)!;
      const after = new Map(this.view(v, spec.name));
      const rows = new Map<Key, RowChange>();
      let left = 0;
      for (const k of before.keys()) if (!after.has(k)) rows.set(k, DELETE), left++;
      for (const [k, f] of after) {
        const c = diffRow(k, before.get(k), f);
        if (c) rows.set(k, c);
      }
      let clear = false;
      if (left === before.size && left > 1) {
        clear = true;
        for (const [k, c] of rows) if (c.op === 'delete') rows.delete(k);
      }
      if (clear || rows.size) tables.set(spec.name, { clear, rows });
      this.sent.set(spec.name, after);
    }
    const prev = this.summary(v - 1);
    const now = this.summary(v);
    const summary: Changes = new Map();
    for (const [k, x] of now) if (prev.get(k) !== x) summary.set(k, x);
    for (const k of prev.keys()) if (!now.has(k)) summary.set(k, null);
    inject(this.c, { type: 'keyedDelta', topic: T, epoch: E, base: v - 1, version: v, updates: 1, summary, tables: new Map(), change: { declared: [], tables }, checksum: this.checksum(v), ts: 0 });
  }
}

/** One subscription under test: its options, the app's own copy of its view (kept from u.rows alone), and what went wrong. */
class Watched {
  readonly copy = new Map<string, Map<Key, State>>();
  lastVersion = -1;
  callbacks = 0;
  readonly sub: Subscription;

  constructor(
    c: TickfanClient,
    readonly options: SubscribeOptions,
    private readonly refs: { model: Model; summary: State }[],
    private readonly errors: string[],
    readonly name: string,
  ) {
    this.sub = c.subscribe(T, options);
    this.sub.on('update', (u) => this.onUpdate(u));
  }

  private onUpdate(u: Update): void {
    this.callbacks++;
    if (u.version <= this.lastVersion && !(u.snapshot && u.version === this.lastVersion)) this.errors.push(`${this.name}: update v${u.version} after v${this.lastVersion}`);
    this.lastVersion = u.version;
    if (u.snapshot) this.copy.clear();
    for (const r of u.rows ?? []) {
      let t = this.copy.get(r.table);
      if (t === undefined) this.copy.set(r.table, (t = new Map()));
      if (r.op === 'delete') t.delete(r.key);
      else if (r.op === 'replace') t.set(r.key, new Map(Object.entries(r.fields)));
      else {
        const row = new Map(t.get(r.key) ?? []);
        if (!t.has(r.key)) this.errors.push(`${this.name}: v${u.version} upsert of ${String(r.key)} not in its view`);
        for (const [f, v] of Object.entries(r.fields)) {
          if (v === null) row.delete(f);
          else row.set(f, v);
        }
        t.set(r.key, row);
      }
    }
    this.check(u.version, 'callback', true, u.state);
  }

  /** Its view read through rows() (and the app's copy, when `replayed`) equals the reference's top-N at `v`. */
  check(v: number, when: string, replayed: boolean, state: Record<string, FieldValue> | null = this.sub.state): void {
    const model = this.refs[v]!.model;
    for (const table of SPECS.keys()) {
      const want = viewOf(model, table, wantOf(this.options, table));
      const got = this.sub.table(table).rows().map((r) => [r.key, new Map(Object.entries(r.fields))] as [Key, State]);
      if (!sameList(got, want)) this.errors.push(`${this.name} ${when} v${v} ${table}: rows() ${JSON.stringify(got.map((r) => r[0]))} want ${JSON.stringify(want.map((r) => r[0]))} (${got.length} vs ${want.length})`);
      if (replayed && !sameRows(this.copy.get(table) ?? new Map(), new Map(want))) this.errors.push(`${this.name} ${when} v${v} ${table}: its row changes replayed give ${JSON.stringify([...(this.copy.get(table) ?? new Map()).keys()])}`);
      const depth = this.sub.table(table).depth;
      if (depth !== undefined && depth !== wantOf(this.options, table).depth) this.errors.push(`${this.name} ${table}: depth ${depth}`);
    }
    const summary = this.refs[v]!.summary;
    const fields = this.options.fields;
    if (state !== null) for (const [k, x] of summary) if ((!fields || fields.includes(k)) && state[k] !== x) this.errors.push(`${this.name} v${v}: summary ${k}`);
  }
}

// --- generators ---------------------------------------------------------------

const depthArb = fc.constantFrom(1, 2, 3, 5, 8, 0);
const bookFields = fc.constantFrom<readonly string[] | undefined>(undefined, ['qty'], ['n'], ['n', 'qty']);
// A blotter sorted by px then seq: a field subset keeps the order's fields (rows() sorts by them).
const orderFields = fc.constantFrom<readonly string[] | undefined>(undefined, ['px', 'seq'], ['px', 'qty', 'seq']);
const tableArb = (fields: fc.Arbitrary<readonly string[] | undefined>) =>
  fc.option(fc.record({ depth: depthArb, fields }).map(({ depth, fields }) => ({ depth, ...(fields ? { fields: [...fields] } : {}) })), { nil: undefined, freq: 3 });
const optionsArb: fc.Arbitrary<SubscribeOptions> = fc
  .record({ bids: tableArb(bookFields), asks: tableArb(bookFields), orders: tableArb(orderFields), summary: fc.boolean() })
  .map(({ bids, asks, orders, summary }) => {
    const tables: NonNullable<SubscribeOptions['tables']> = {};
    if (bids) tables.bids = bids;
    if (asks) tables.asks = asks;
    if (orders) tables.orders = orders;
    return { tables, checksums: true, ...(summary ? { fields: ['last'] } : {}) };
  });
const shape = { intKeys: fc.integer({ min: 0, max: 24 }), strKeys: fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5', 'o6'), bad: false, tables: [BIDS, ASKS, ORDERS] };
const batchArb = fc.array(opArb(shape), { maxLength: 6 }).map((ops) => ({ ops }));

interface Plan {
  subs: SubscribeOptions[];
  later: SubscribeOptions;
  batches: { ops: unknown[] }[];
  /** Version step at which `later` joins, and at which the first subscription leaves. */
  joinAt: number;
  leaveAt: number;
}

/** Runs a plan; returns what went wrong (empty: every subscription saw exactly its view). */
function run(p: Plan): string[] {
  const errors: string[] = [];
  // The reference at every version (refused batches make none).
  let model: Model = new Map([...SPECS.keys()].map((n) => [n, new Map()]));
  const refs: { model: Model; summary: State }[] = [{ model, summary: new Map([['last', 0]]) }];
  for (const b of p.batches) {
    const next = applyModel(SPECS, model, b as Parameters<typeof applyModel>[2]);
    if (typeof next === 'string') continue;
    model = next;
    const v = refs.length;
    refs.push({ model, summary: new Map<string, FieldValue>([['last', v], ...(v % 3 === 0 ? [['vol', v * 10] as [string, FieldValue]] : [])]) });
  }
  const c = client();
  const server = new ServerSim(c, refs);
  const watched = p.subs.map((o, i) => new Watched(c, o, refs, errors, `sub${i}`));
  const live = (): Watched[] => watched.filter((w) => w.sub.active);
  server.merge(live().map((w) => w.options));
  server.snapshot(0);
  for (const w of live()) w.check(0, 'after first snapshot', true);
  for (let v = 1; v < refs.length; v++) {
    if (v === p.joinAt) {
      // A subscription joins: the server still sends a version of the old union before it reads the Subscribe.
      const w = new Watched(c, p.later, refs, errors, 'later');
      watched.push(w);
      server.delta(v);
      for (const x of live()) if (x !== w) x.check(v, 'before the new union', true);
      if (w.callbacks > 0 || w.sub.table('bids').size > 0) {
        // Held view already covers it: it may read its tables (exactly), never more. (Its summary, before its
        // first update, is what the connection holds: summary fields only it follows come with the new union.)
        w.check(v, 'joined, covered', w.callbacks > 0, w.callbacks > 0 ? w.sub.state : null);
      }
      if (server.merge(live().map((x) => x.options))) server.snapshot(v);
      for (const x of live()) x.check(v, 'after the new union', x.callbacks > 0);
      continue;
    }
    if (v === p.leaveAt && watched[0]!.sub.active) {
      watched[0]!.sub.unsubscribe();
      if (server.merge(live().map((x) => x.options))) server.snapshot(v - 1);
      for (const x of live()) x.check(v - 1, 'after a subscription left', x.callbacks > 0);
    }
    server.delta(v);
    for (const w of live()) w.check(v, 'after delta', w.callbacks > 0);
  }
  if (c.stats.checksumMismatches !== 0) errors.push(`checksum mismatches: ${c.stats.checksumMismatches}`);
  if (c.stats.gaps !== 0) errors.push(`gaps: ${c.stats.gaps}`);
  return errors;
}

describe('each subscription of a keyed topic sees its own view', () => {
  it('a depth-3 ladder and a full book on one client: rows() and u.rows of each are its own', () => {
    const errors = run({
      subs: [{ tables: { bids: { depth: 3, fields: ['qty'] }, asks: { depth: 3, fields: ['qty'] } }, checksums: true }, { checksums: true }],
      later: { tables: { bids: { depth: 1 } }, checksums: true },
      batches: Array.from({ length: 60 }, (_, i) => ({
        ops: [
          { op: 'upsert', table: 'bids', key: (i * 7) % 20, fields: new Map<string, FieldValue>([['qty', i], ['n', 1]]) },
          { op: 'upsert', table: 'asks', key: (i * 5) % 20, fields: new Map<string, FieldValue>([[i % 2 ? 'qty' : 'n', i]]) },
          ...(i % 9 === 8 ? [{ op: 'deleteRange', table: 'bids', from: 15 }] : []),
          ...(i % 11 === 10 ? [{ op: 'clear', table: 'asks' }] : []),
        ],
      })),
      joinAt: 20,
      leaveAt: 40,
    });
    expect(errors.slice(0, 10)).toEqual([]);
  });

  it('random batches, two or three subscriptions with different depths and fields, one joining and one leaving', () => {
    fc.assert(
      fc.property(
        fc.array(optionsArb, { minLength: 2, maxLength: 3 }),
        optionsArb,
        fc.array(batchArb, { minLength: 10, maxLength: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (subs, later, batches, joinAt, leaveAt) => {
          const errors = run({ subs, later, batches, joinAt, leaveAt });
          expect(errors.slice(0, 5)).toEqual([]);
        },
      ),
      { numRuns: 200, seed: 1919 },
    );
  });

  it('a version that changes nothing in a subscription\'s view: one callback with no row changes, or none when it follows summary fields that did not change either', () => {
    const c = client();
    const refs: { model: Model; summary: State }[] = [];
    const model = (bids: [Key, number][]): Model => new Map([['bids', new Map(bids.map(([k, q]) => [k, new Map([['qty', q]])]))], ['asks', new Map()], ['orders', new Map()]]);
    refs.push({ model: model([[10, 1], [9, 1], [8, 1]]), summary: new Map([['last', 0]]) });
    refs.push({ model: model([[10, 1], [9, 1], [8, 2]]), summary: new Map([['last', 0]]) }); // below a depth-2 window
    refs.push({ model: model([[10, 1], [9, 3], [8, 2]]), summary: new Map([['last', 0]]) }); // inside it
    const server = new ServerSim(c, refs);
    const seen: Record<string, Update[]> = { top: [], topLast: [], full: [] };
    const opts: Record<string, SubscribeOptions> = { top: { tables: { bids: { depth: 2 } } }, topLast: { tables: { bids: { depth: 2 } }, fields: ['last'] }, full: {} };
    for (const [n, o] of Object.entries(opts)) c.subscribe(T, o).on('update', (u) => seen[n]!.push(u));
    server.merge(Object.values(opts));
    server.snapshot(0);
    server.delta(1);
    server.delta(2);
    expect(seen.full!.map((u) => [u.version, u.rows?.length])).toEqual([[0, 3], [1, 1], [2, 1]]);
    expect(seen.top!.map((u) => [u.version, u.rows?.length])).toEqual([[0, 2], [1, 0], [2, 1]]);
    expect(seen.topLast!.map((u) => [u.version, u.rows?.length])).toEqual([[0, 2], [2, 1]]);
    expect(seen.top![2]!.rows).toEqual([{ table: 'bids', key: 9, op: 'upsert', fields: { qty: 3 } }]);
  });

  it("a wider subscription's ready waits for the widened view when the ack comes first", async () => {
    const c = client();
    const ladder = (depth: number, rows: number, version: number) => {
      const bids = new Map<Key, State>(Array.from({ length: rows }, (_, i) => [100 - i, new Map<string, FieldValue>([['qty', i + 1]])]));
      inject(c, { type: 'keyedSnapshot', topic: T, epoch: E, version, summary: new Map(), tables: new Map([['bids', { spec: BIDS, depth, fields: [] }]]), rows: new Map([['bids', bids]]), part: 0, last: true, checksum: null, ts: 0 });
    };
    const ack = (id: number, version: number) => inject(c, { type: 'ack', id, topic: T, epoch: E, version, count: 1 });
    const narrow = c.subscribe(T, { tables: { bids: { depth: 2 } } });
    ladder(2, 2, 5);
    ack(1, 5);
    await narrow.ready;
    const wide = c.subscribe(T, { tables: { bids: { depth: 4 } } });
    let ready = false;
    void wide.ready.then(() => (ready = true));
    // The server acknowledges before its image of the widened view (a slow or paused connection gets it later).
    ack(2, 5);
    await new Promise((res) => setImmediate(res));
    expect(ready, 'ready while the connection still held depth 2').toBe(false);
    expect(wide.table('bids').rows()).toEqual([]);
    ladder(4, 4, 5);
    await new Promise((res) => setImmediate(res));
    expect(ready).toBe(true);
    expect(wide.table('bids').rows().map((r) => r.key)).toEqual([100, 99, 98, 97]);
    expect(narrow.table('bids').rows().map((r) => r.key)).toEqual([100, 99]);
  });

  it('a table a delta declares is cut for a depth subscription, whole for the others', () => {
    const c = client();
    const depth2 = c.subscribe(T, { tables: { asks: { depth: 2, fields: ['qty'] } } });
    const whole = c.subscribe(T);
    const seen: Update[] = [];
    depth2.on('update', (u) => seen.push(u));
    const bids = new Map<Key, State>([[10, new Map<string, FieldValue>([['qty', 1]])]]);
    inject(c, { type: 'keyedSnapshot', topic: T, epoch: E, version: 1, summary: new Map(), tables: new Map([['bids', { spec: BIDS, depth: 0, fields: [] }]]), rows: new Map([['bids', bids]]), part: 0, last: true, checksum: null, ts: 0 });
    const asks = new Map<Key, RowChange>([11, 12, 13].map((k) => [k, { op: 'replace', fields: new Map<string, FieldValue>([['qty', k], ['n', 0]]), existed: false }]));
    inject(c, { type: 'keyedDelta', topic: T, epoch: E, base: 1, version: 2, updates: 1, summary: new Map(), tables: new Map(), change: { declared: [ASKS], tables: new Map([['asks', { clear: false, rows: asks }]]) }, checksum: null, ts: 0 });
    expect(depth2.table('asks').rows()).toEqual([{ key: 11, fields: { qty: 11 } }, { key: 12, fields: { qty: 12 } }]);
    expect(whole.table('asks').size).toBe(3);
    expect(seen.map((u) => [u.version, u.snapshot, u.rows?.map((r) => `${r.op} ${r.table} ${String(r.key)}`)])).toEqual([
      [1, true, ['replace bids 10']],
      [2, false, ['replace asks 11', 'replace asks 12']],
    ]);
  });
});
