// Shared by the keyed SSE and STOMP tests: a two-sided book (bids desc, asks
// asc), a seeded random batch generator (every op and guard, churn outside
// the window, deleteRange through the top, clear), the reference rows at
// every version, and a plain-JSON view that applies keyed JSON messages
// (keyedSnapshot parts, keyedDelta) the way a client in another language would.

import type { TickfanServer } from '../../src/index.js';
import { rng } from '../../src/demo/market-sim.js';

/** mulberry32, the project's seeded generator (the demo feed's): a failure replays. */
export { rng };

export const SIDES = [
  { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } },
  { name: 'asks', key: 'int' as const, order: { key: 'asc' as const } },
];
export type Rows = [number, Record<string, unknown>][];


/** Each side's rows (best first) at every version, read from the server after each accepted batch. */
export class Reference {
  readonly at = new Map<number, Record<string, Rows>>();
  constructor(
    private readonly server: TickfanServer,
    private readonly topic: string,
  ) {}
  record(): void {
    const t = this.server.store.get(this.topic)!;
    const sides: Record<string, Rows> = {};
    for (const s of SIDES) sides[s.name] = [...(t.tables?.table(s.name)?.rows() ?? [])].map((r) => [r.key as number, Object.fromEntries(r.fields)]);
    this.at.set(t.version, sides);
  }
  get version(): number {
    return this.server.store.get(this.topic)!.version;
  }
}

/** top-N of rows (0: all), with a field subset. */
export function project(rows: Rows, depth: number, fields?: readonly string[]): Rows {
  const top = depth ? rows.slice(0, depth) : rows;
  if (!fields) return top;
  return top.map(([k, f]) => [k, Object.fromEntries(Object.entries(f).filter(([n]) => fields.includes(n)))]);
}

/** One random batch over both sides (the in-process form of server.publishBatch). */
export function randomBatch(r: () => number, step: number): { fields: Record<string, unknown>; tables: { ops: unknown[] } } {
  const ops: unknown[] = [];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const side = r() < 0.5 ? 'bids' : 'asks';
    const dir = side === 'bids' ? -1 : 1;
    const far = r() < 0.3; // churn outside a depth-10 window
    const key = 1000 + dir * (far ? 60 + Math.floor(r() * 60) : Math.floor(r() * 20));
    const x = r();
    const qty = Math.round(r() * 1000) / 100;
    if (x < 0.45) ops.push({ op: 'upsert', table: side, key, fields: { qty, n: step } });
    else if (x < 0.6) ops.push({ op: 'replace', table: side, key, fields: { qty } });
    else if (x < 0.8) ops.push({ op: 'delete', table: side, key });
    else if (x < 0.86) ops.push({ op: 'upsert', table: side, key, fields: { qty }, guard: r() < 0.5 ? 'ifNew' : 'ifExists' });
    else if (x < 0.9) ops.push({ op: 'delete', table: side, key, guard: 'ifExists' });
    else if (x < 0.95) ops.push({ op: 'deleteRange', table: side, from: 1000 - 3, to: 1000 + 3 });
    else if (x < 0.97) ops.push({ op: 'clear', table: side });
    else ops.push({ op: 'upsert', table: side, key, fields: { qty: null, n: step } });
  }
  return { fields: r() < 0.3 ? { last: step } : {}, tables: { ops } };
}

/** Publishes in process; true when accepted (a refused batch changes nothing). */
export function publish(server: TickfanServer, ref: Reference, topic: string, batch: unknown): boolean {
  try {
    server.publishBatch(topic, batch as never);
    ref.record();
    return true;
  } catch {
    return false;
  }
}

/** 80 levels a side. */
export function seed(server: TickfanServer, ref: Reference, topic: string): void {
  const ops = [];
  for (let i = 0; i < 80; i++) ops.push({ op: 'upsert', table: 'bids', key: 1000 - i, fields: { qty: i + 1, n: 0 } }, { op: 'upsert', table: 'asks', key: 1000 + i, fields: { qty: i + 1, n: 0 } });
  server.publishBatch(topic, { fields: { last: 0 }, tables: { declare: SIDES, ops } } as never);
  ref.record();
}

type Json = Record<string, any>;

/**
 * A view held as plain maps from keyed JSON messages: a snapshot (in parts)
 * replaces it, a delta applies only on its base. No sort logic but for the
 * comparison with the reference. Problems are collected, not thrown.
 */
export class JsonView {
  epoch = 0;
  version = -1;
  readonly tables = new Map<string, Map<number, Json>>();
  readonly problems: string[] = [];
  private pending: { version: number; tables: Map<string, Map<number, Json>> } | null = null;

  /** Applies one message; true when it completed a version (a delta, or a snapshot's last part). */
  apply(m: Json): boolean {
    if (m.type === 'keyedSnapshot') {
      if (m.part === 0) this.pending = { version: m.version, tables: new Map(Object.keys(m.views).map((n) => [n, new Map()])) };
      const p = this.pending;
      if (!p || p.version !== m.version) return void this.problems.push(`snapshot part ${m.part} of v${m.version} without its first part`), false;
      for (const [name, rows] of Object.entries(m.rows as Json)) for (const [k, f] of Object.entries(rows as Json)) p.tables.get(name)!.set(Number(k), f);
      if (!m.last) return false;
      this.tables.clear();
      for (const [n, t] of p.tables) this.tables.set(n, t);
      this.pending = null;
      this.epoch = m.epoch;
      this.version = m.version;
      return true;
    }
    if (m.type !== 'keyedDelta') return false;
    if (m.epoch !== this.epoch || m.base !== this.version) {
      this.problems.push(`delta ${m.base}→${m.version} on v${this.version}`);
      return false;
    }
    for (const [name, tc] of Object.entries(m.tables as Json)) {
      let t = this.tables.get(name);
      if (!t) this.tables.set(name, (t = new Map()));
      if (tc.clear) t.clear();
      for (const k of tc.delete ?? []) t.delete(Number(k));
      for (const op of ['replace', 'insert'] as const) for (const [k, f] of Object.entries((tc[op] ?? {}) as Json)) t.set(Number(k), { ...f });
      for (const [k, f] of Object.entries((tc.upsert ?? {}) as Json)) {
        const row = { ...(t.get(Number(k)) ?? {}) };
        for (const [n, v] of Object.entries(f as Json)) {
          if (v === null) delete row[n];
          else row[n] = v;
        }
        t.set(Number(k), row);
      }
    }
    const changed = m.version !== this.version;
    this.version = m.version;
    return changed;
  }

  /** A side's rows in the book's order. */
  rows(side: string): Rows {
    const dir = side === 'bids' ? -1 : 1;
    return [...(this.tables.get(side) ?? new Map<number, Json>())].sort((a, b) => dir * (a[0] - b[0]));
  }

  /** Compares both sides with top-`depth` of the reference at the held version. */
  check(ref: Reference, depth: number, what: string): void {
    const want = ref.at.get(this.version);
    if (!want) return void this.problems.push(`${what}: no reference at v${this.version}`);
    // Fields compared whatever their order in the object.
    const canon = (rows: Rows) => JSON.stringify(rows.map(([k, f]) => [k, Object.fromEntries(Object.entries(f).sort(([a], [b]) => (a < b ? -1 : 1)))]));
    for (const s of SIDES) {
      const got = canon(this.rows(s.name));
      const exp = canon(project(want[s.name] ?? [], depth));
      if (got !== exp) this.problems.push(`${what} ${s.name} at v${this.version}: ${got.slice(0, 200)} != ${exp.slice(0, 200)}`);
    }
  }
}
