// The SDK's keyed replica against a reference model (issue 19, "model test"):
// random batches of upsert / replace / delete / clear / deleteRange over two
// tables (an int-keyed book, key descending, and a string-keyed blotter sorted
// by fields then key) plus the summary, turned into net changes with the
// protocol's helpers (diffRow per key, mergeKeyedChanges for conflated and
// catch-up deltas), delivered with faults injected: reordering, duplicates,
// drops, conflation, snapshots in parts, catch-ups answered late (after what
// was in flight), and deltas corrupted in flight under a correct checksum.
// After every applied update, before and after it is committed: the view
// equals the reference at that version, rows() is in the naive model's sort
// order, and the row changes reported replayed on the app's own copy give the
// same rows. The replica never applies a delta that does not follow it.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { diffRow, mergeKeyedChanges, viewChecksum, type Changes, type FieldValue, type Key, type KeyedChange, type RowChange, type State, type TableChange, type TableSpec } from '../../src/protocol/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg, KeyedTableView } from '../../src/protocol/messages.js';
import { KeyedReplica } from '../../src/client/keyed-replica.js';
import type { RowUpdate } from '../../src/client/keyed-table.js';
import { BIDS, ORDERS, applyModel, copyModel, opArb, sameRow, sameRows, sortedRows, type Model } from './keyed-model.js';
import { rng } from '../../src/demo/market-sim.js';

const TOPIC = 'book.T';
const EPOCH = 7;
const SPECS = new Map<string, TableSpec>([
  [BIDS.name, BIDS],
  [ORDERS.name, ORDERS],
]);
const VIEWS = new Map<string, KeyedTableView>([...SPECS].map(([n, spec]) => [n, { spec, depth: 0, fields: [] }]));
const shape = { intKeys: fc.integer({ min: 0, max: 12 }), strKeys: fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5'), bad: false, tables: [BIDS, ORDERS] };
const summaryArb = fc
  .array(fc.tuple(fc.constantFrom('last', 'vol', 'state'), fc.option(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom('open', 'halt')), { freq: 4, nil: null })), { maxLength: 2 })
  .map((e) => new Map<string, FieldValue | null>(e));

interface Ref {
  summary: State;
  tables: Model;
}
interface Step {
  summary: Changes;
  change: KeyedChange;
}

/** The history: the reference at every version and each version's net change (refused batches skipped: no version). */
function history(batches: { ops: readonly unknown[] }[], summaries: Changes[]): { refs: Ref[]; steps: Step[] } {
  let model: Model = new Map([...SPECS.keys()].map((n) => [n, new Map()]));
  let summary: State = new Map();
  const refs: Ref[] = [{ summary, tables: model }];
  const steps: Step[] = [{ summary: new Map(), change: { declared: [], tables: new Map() } }];
  batches.forEach((b, i) => {
    const next = applyModel(SPECS, model, b as Parameters<typeof applyModel>[2]);
    if (typeof next === 'string') return;
    const tables = new Map<string, TableChange>();
    for (const [name, after] of next) {
      const before = model.get(name)!;
      const cleared = b.ops.some((o) => (o as { op: string; table: string }).op === 'clear' && (o as { table: string }).table === name);
      const rows = new Map<Key, RowChange>();
      for (const k of new Set([...before.keys(), ...after.keys()])) {
        const c = cleared ? (after.has(k) ? diffRow(k, undefined, after.get(k)) : undefined) : diffRow(k, before.get(k), after.get(k));
        if (c) rows.set(k, c);
      }
      if (cleared || rows.size > 0) tables.set(name, { clear: cleared, rows });
    }
    const sc = summaries[i % summaries.length] ?? new Map();
    const nextSummary = new Map(summary);
    for (const [k, v] of sc) v === null ? nextSummary.delete(k) : nextSummary.set(k, v);
    model = next;
    summary = nextSummary;
    refs.push({ summary, tables: copyModel(model) });
    steps.push({ summary: sc, change: { declared: [], tables } });
  });
  return { refs, steps };
}

/** The reference's checksum, rows in the naive model's order (independent of rowRank). */
function refChecksum(r: Ref): number {
  return viewChecksum(
    [...SPECS.values()].map((spec) => ({ name: spec.name, keyType: spec.key, rows: sortedRows(spec, r.tables.get(spec.name)!) })),
    r.summary,
  );
}

/** A snapshot of `r` at `version` in `parts` parts (rows spread over them). */
function snapshotParts(r: Ref, version: number, parts: number, checksum: boolean): KeyedSnapshotMsg[] {
  const out: KeyedSnapshotMsg[] = [];
  for (let p = 0; p < parts; p++) {
    const rows = new Map<string, Map<Key, State>>();
    for (const [name, t] of r.tables) {
      const mine = [...t].filter((_, i) => i % parts === p);
      if (mine.length > 0) rows.set(name, new Map(mine));
    }
    const last = p === parts - 1;
    out.push({ type: 'keyedSnapshot', topic: TOPIC, epoch: EPOCH, version, summary: p === 0 ? r.summary : new Map(), tables: VIEWS, rows, part: p, last, checksum: last && checksum ? refChecksum(r) : null, ts: 0 });
  }
  return out;
}

/** The merged delta (base, version]. */
function delta(refs: Ref[], steps: Step[], base: number, version: number, checksum: boolean, bind = false): KeyedDeltaMsg {
  const window = steps.slice(base + 1, version + 1);
  const summary: Changes = new Map();
  for (const s of window) for (const [k, v] of s.summary) summary.set(k, v);
  return {
    type: 'keyedDelta',
    topic: TOPIC,
    epoch: EPOCH,
    base,
    version,
    updates: version - base,
    summary,
    tables: bind ? VIEWS : new Map(),
    change: mergeKeyedChanges(window.map((s) => s.change)),
    checksum: checksum ? refChecksum(refs[version]!) : null,
    ts: 0,
  };
}

/** A copy of `m` with one row value changed (null when it changes no row). */
function corrupt(m: KeyedDeltaMsg): KeyedDeltaMsg | null {
  for (const [name, t] of m.change.tables) {
    for (const [k, c] of t.rows) {
      if (c.op === 'delete') continue;
      const fields = new Map(c.fields);
      fields.set('qty', 'corrupted');
      const bad: RowChange = c.op === 'replace' ? { op: 'replace', fields: fields as State, existed: c.existed } : { op: 'upsert', fields };
      const tables = new Map(m.change.tables);
      tables.set(name, { clear: t.clear, rows: new Map([...t.rows, [k, bad]]) });
      return { ...m, change: { declared: m.change.declared, tables } };
    }
  }
  return null;
}


/** The view the replica shows, as a model (sorted lists checked separately). */
function expectView(r: KeyedReplica, ref: Ref): void {
  expect(sameRow(r.state, ref.summary), 'summary').toBe(true);
  for (const [name, spec] of SPECS) {
    const t = r.tables.get(name)!;
    expect(sameRows(t.rows, ref.tables.get(name)!), `rows of ${name}`).toBe(true);
    const want = sortedRows(spec, ref.tables.get(name)!).map(([k]) => k);
    expect(t.list().map((row) => row.key), `order of ${name}`).toEqual(want);
  }
}

/** The app's own copy, kept from the row changes it was told about. */
function replay(app: Model, rows: readonly RowUpdate[], snapshot: boolean): void {
  if (snapshot) for (const t of app.values()) t.clear();
  for (const u of rows) {
    const t = app.get(u.table)!;
    if (u.op === 'delete') {
      expect(t.has(u.key), `delete of a row the app holds (${u.table} ${u.key})`).toBe(true);
      t.delete(u.key);
    } else if (u.op === 'replace') t.set(u.key, new Map(Object.entries(u.fields)));
    else {
      const row = new Map(t.get(u.key) ?? expect.fail(`upsert of a row the app does not hold (${u.table} ${u.key})`));
      for (const [f, v] of Object.entries(u.fields)) v === null ? row.delete(f) : row.set(f, v);
      t.set(u.key, row);
    }
  }
}

interface Tally {
  applied: number;
  gaps: number;
  duplicates: number;
  mismatches: number;
  snapshots: number;
  pending: number;
}

/** Streams the history to a replica with faults; returns what happened. */
function run(refs: Ref[], steps: Step[], seed: number): Tally {
  const rand = rng(seed);
  const last = refs.length - 1;
  const r = new KeyedReplica(TOPIC);
  const app: Model = new Map([...SPECS.keys()].map((n) => [n, new Map()]));
  const tally: Tally = { applied: 0, gaps: 0, duplicates: 0, mismatches: 0, snapshots: 0, pending: 0 };
  const inflight: (KeyedSnapshotMsg | KeyedDeltaMsg)[] = [];
  const sent: KeyedDeltaMsg[] = [];
  let server = 0;
  let asked = false; // a catch-up answer is in flight
  let need = false;
  const snapshots: KeyedSnapshotMsg[][] = [];
  const snapshot = (v: number): void => {
    snapshots.push(snapshotParts(refs[v]!, v, 1 + Math.floor(rand() * 3), rand() < 0.5));
    inflight.push(...snapshots[snapshots.length - 1]!);
  };
  snapshot(0);
  asked = true;
  for (let guard = 0; guard < 20 * refs.length + 100; guard++) {
    // The server moves on: one delta per version, or a conflated one.
    if (server < last && rand() < 0.6) {
      const to = Math.min(last, server + (rand() < 0.2 ? 2 + Math.floor(rand() * 3) : 1));
      const d = delta(refs, steps, server, to, rand() < 0.5);
      server = to;
      const f = rand();
      if (f < 0.08) {
        /* dropped */
      } else if (f < 0.16 && inflight.length > 0) inflight.splice(inflight.length - 1, 0, d); // overtakes the previous one
      else if (f < 0.22 && d.checksum !== null && corrupt(d)) inflight.push(corrupt(d)!);
      else inflight.push(d);
      sent.push(d);
      if (rand() < 0.08) inflight.push(sent[Math.floor(rand() * sent.length)]!); // a duplicate of anything sent
      if (rand() < 0.03 && snapshots.length > 0) inflight.push(...snapshots[Math.floor(rand() * snapshots.length)]!); // an old snapshot again
    }
    const m = inflight.shift();
    if (m !== undefined) {
      const res = m.type === 'keyedSnapshot' ? r.keyedSnapshot(m) : r.keyedDelta(m);
      if (m.type === 'keyedSnapshot' && m.last) asked = false;
      if (m.type === 'keyedDelta' && m.tables.size > 0) asked = false; // a catch-up delta binds the tables
      switch (res.kind) {
        case 'applied': {
          tally.applied++;
          if (m.type === 'keyedSnapshot') tally.snapshots++;
          const v = r.viewVersion;
          if (r.held) expect(v, 'never back to an older version').toBeGreaterThanOrEqual(r.version);
          expect(r.version, 'held version moves only at commit').toBe(m.type === 'keyedDelta' ? m.base : r.version);
          expectView(r, refs[v]!);
          replay(app, res.rows, m.type === 'keyedSnapshot');
          for (const [name] of SPECS) expect(sameRows(app.get(name)!, refs[v]!.tables.get(name)!), `app copy of ${name}`).toBe(true);
          r.commit();
          expect(r.version).toBe(v);
          break;
        }
        case 'pending':
          tally.pending++;
          break;
        case 'current':
        case 'duplicate':
          tally.duplicates++;
          break;
        case 'mismatch':
          tally.mismatches++;
          expect(r.resync || m.type === 'keyedSnapshot').toBe(true);
          need = true;
          asked = false;
          break;
        case 'gap':
          tally.gaps++;
          need = true;
          break;
      }
      // Whatever happened, the held view is the reference at the held version.
      if (r.held) expectView(r, refs[r.version]!);
    }
    // Quiet at the end with something missing: a heartbeat would say so.
    if (server === last && inflight.length === 0 && r.version < last) need = true;
    if (need && !asked) {
      // The catch-up is answered after everything already in flight.
      need = false;
      asked = true;
      if (!r.held || r.resync || rand() < 0.3) snapshot(server);
      else inflight.push(delta(refs, steps, r.version, server, rand() < 0.5, true));
    } else if (need && inflight.length === 0) asked = false; // the answer went nowhere useful: ask again (the catch-up timeout)
    if (server === last && inflight.length === 0 && r.version === last && !need) break;
  }
  expect(r.version, 'converged').toBe(last);
  expectView(r, refs[last]!);
  return tally;
}

describe('keyed replica against the reference model', () => {
  it('is exact after every applied update, whatever the faults, and converges', () => {
    const total: Tally = { applied: 0, gaps: 0, duplicates: 0, mismatches: 0, snapshots: 0, pending: 0 };
    fc.assert(
      fc.property(fc.array(fc.array(opArb(shape), { maxLength: 6 }).map((ops) => ({ ops })), { minLength: 20, maxLength: 50 }), fc.array(summaryArb, { minLength: 1, maxLength: 8 }), fc.integer(), (batches, summaries, seed) => {
        const { refs, steps } = history(batches, summaries);
        const t = run(refs, steps, seed);
        for (const k of Object.keys(total) as (keyof Tally)[]) total[k] += t[k];
      }),
      { numRuns: 150, seed: 1919 },
    );
    // The faults were exercised, not just generated.
    expect(total.applied).toBeGreaterThan(1000);
    for (const k of ['gaps', 'duplicates', 'mismatches', 'snapshots', 'pending'] as const) expect(total[k], k).toBeGreaterThan(10);
  });
});
