// Keyed topics over HTTP: POST /publish/<topic> with the keyed JSON form (every
// op and guard, both the object form and the ordered "ops" form), refused
// batches leaving version and state as they were, GET /snapshot with depth,
// tables and fields exact against a reference model kept in this test, and a
// seeded random run of batches checked after every publish.

import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import { Harness, http } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

type Fields = Record<string, number | string | null>;
type Row = Record<string, number | string>;
type Model = { version: number; fields: Row; tables: Map<string, Map<number, Row>> };
const ORDER: Record<string, 'asc' | 'desc'> = { bids: 'desc', asks: 'asc' };

/** The reference: rows best first (bids high to low, asks low to high), cut to depth, fields picked. */
function expectedTable(m: Model, name: string, depth = Infinity, pick?: string[]) {
  const rows = [...m.tables.get(name)!].sort((a, b) => (ORDER[name] === 'asc' ? a[0] - b[0] : b[0] - a[0]));
  return {
    key: 'int',
    order: { key: ORDER[name] },
    size: rows.length,
    rows: rows.slice(0, depth).map(([k, f]) => [k, pick ? Object.fromEntries(Object.entries(f).filter(([n]) => pick.includes(n))) : f]),
  };
}

const DECLARE = { bids: { declare: { key: 'int', order: { key: 'desc' } } }, asks: { declare: { key: 'int', order: { key: 'asc' } } } };

describe('keyed publish over HTTP', () => {
  it('declares tables, applies every op in the documented order, and snapshots rows in sort order', async () => {
    const server = await h.server();
    const pub = (body: unknown) => http(server.port, 'POST', '/publish/kh.book', body);
    const snap = async (q = '') => (await http(server.port, 'GET', `/snapshot/kh.book${q}`)).body as { version: number; fields: Row; tables: Record<string, unknown> };
    const first = await pub({
      fields: { last: 100.5, venue: 'X' },
      tables: {
        bids: { ...DECLARE.bids, upsert: { '100': { qty: 1 }, '99': { qty: 2 }, '98': { qty: 3 }, '97': { qty: 4 } } },
        asks: { ...DECLARE.asks, upsert: { '101': { qty: 5, n: 1 }, '102': { qty: 6 } } },
      },
    });
    expect(first).toEqual({ status: 200, body: { topic: 'kh.book', epoch: expect.any(Number), version: 1 } });
    expect(await snap()).toMatchObject({
      version: 1,
      fields: { last: 100.5, venue: 'X' },
      tables: {
        bids: { key: 'int', order: { key: 'desc' }, size: 4, rows: [[100, { qty: 1 }], [99, { qty: 2 }], [98, { qty: 3 }], [97, { qty: 4 }]] },
        asks: { key: 'int', order: { key: 'asc' }, size: 2, rows: [[101, { qty: 5, n: 1 }], [102, { qty: 6 }]] },
      },
    });
    // Order inside a table: clear, deleteRange, delete, replace, upsert; a guard goes with its key's first op.
    // Here: 98..99 go, 100 is deleted (ifExists: it was there) then re-added by replace, 97 merges (ifExists),
    // 96 is new (ifNew); asks: 102 replaced, 101 loses n.
    const second = await pub({
      tables: {
        bids: { deleteRange: [{ from: 98, to: 99 }], delete: [100], replace: { '100': { qty: 10 } }, upsert: { '97': { qty: 40, x: 1 }, '96': { qty: 7 } }, ifNew: ['96'], ifExists: [97, '100'] },
        asks: { replace: { '102': { px: 'a' } }, upsert: { '101': { n: null } } },
      },
    });
    expect(second.status).toBe(200);
    expect((await snap()).tables).toEqual({
      bids: { key: 'int', order: { key: 'desc' }, size: 3, rows: [[100, { qty: 10 }], [97, { qty: 40, x: 1 }], [96, { qty: 7 }]] },
      asks: { key: 'int', order: { key: 'asc' }, size: 2, rows: [[101, { qty: 5 }], [102, { px: 'a' }]] },
    });
    // Exclusive bounds, then clear restating a table; the ordered "ops" form runs exactly in its order.
    expect((await pub({ tables: { bids: { deleteRange: [{ from: 96, to: 100, fromExclusive: true, toExclusive: true }] } } })).status).toBe(200);
    expect(((await snap()).tables.bids as { rows: unknown[] }).rows).toEqual([[100, { qty: 10 }], [96, { qty: 7 }]]);
    expect((await pub({ tables: { asks: { clear: true, upsert: { '200': { qty: 1 } } } } })).status).toBe(200);
    expect(((await snap()).tables.asks as { rows: unknown[] }).rows).toEqual([[200, { qty: 1 }]]);
    const ordered = await pub({
      tables: {
        bids: {
          ops: [
            { op: 'upsert', key: 50, fields: { qty: 1 }, guard: 'ifNew' },
            { op: 'delete', key: '50', guard: 'ifExists' },
            { op: 'upsert', key: 51, fields: { qty: 2 } },
            { op: 'replace', key: 96, fields: { qty: 70 }, guard: 'ifExists' },
            { op: 'deleteRange', from: 100 },
            { op: 'clear' },
            { op: 'upsert', key: 1, fields: { qty: 1 } },
          ].slice(0, 5),
        },
      },
    });
    expect(ordered.status).toBe(200);
    const s = await snap('?depth=2&tables=bids&fields=qty');
    expect(s.version).toBe(5);
    expect(s.tables).toEqual({ bids: { key: 'int', order: { key: 'desc' }, size: 2, rows: [[96, { qty: 70 }], [51, { qty: 2 }]] } });
    expect(Object.keys((await snap('?tables=asks')).tables)).toEqual(['asks']);
    // The summary alone through the keyed form.
    expect((await pub({ fields: { last: 101 } })).body).toMatchObject({ version: 6 });
    expect((await snap()).fields).toEqual({ last: 101, venue: 'X' });
  });

  it('refuses a batch with a typed error naming the row, and changes nothing', async () => {
    const server = await h.server();
    const pub = (body: unknown) => http(server.port, 'POST', '/publish/kh.refuse', body);
    await pub({ fields: { last: 1 }, tables: { bids: { ...DECLARE.bids, upsert: { '100': { qty: 1 } } } } });
    const before = (await http(server.port, 'GET', '/snapshot/kh.refuse')).body;
    const cases: [unknown, number, number, Record<string, unknown>][] = [
      [{ fields: { last: 2 }, tables: { bids: { upsert: { '101': { qty: 1 }, '100': { qty: 9 } }, ifNew: [100] } } }, 409, ErrorCode.ROW_GUARD, { table: 'bids', key: 100, reason: 'ifNew' }],
      [{ tables: { bids: { delete: [5], ifExists: [5] } } }, 409, ErrorCode.ROW_GUARD, { table: 'bids', key: 5, reason: 'ifExists' }],
      [{ tables: { bids: { upsert: { '100.5': { qty: 1 } } } } }, 400, ErrorCode.BAD_KEY, { table: 'bids' }],
      [{ tables: { bids: { upsert: { '007': { qty: 1 } } } } }, 400, ErrorCode.BAD_KEY, { table: 'bids' }],
      [{ tables: { bids: { delete: [1e300] } } }, 400, ErrorCode.BAD_KEY, { table: 'bids' }],
      [{ tables: { bids: { upsert: { '9007199254740993': { qty: 1 } } } } }, 400, ErrorCode.BAD_KEY, { table: 'bids' }],
      [{ tables: { asks: { upsert: { '1': { qty: 1 } } } } }, 400, ErrorCode.BAD_REQUEST, { table: 'asks', reason: 'undeclared' }],
      [{ tables: { bids: { upsert: { '1': { qty: [1] } } } } }, 400, ErrorCode.BAD_FIELD, { table: 'bids', key: 1 }],
      [{ tables: { bids: { replace: { '1': { qty: null } } } } }, 400, ErrorCode.BAD_FIELD, { table: 'bids', key: 1 }],
      [{ tables: { bids: { upsert: { '1': { qty: 1 } }, ifNew: [2] } } }, 400, ErrorCode.BAD_REQUEST, { table: 'bids', key: 2 }],
      [{ tables: { bids: { upsrt: {} } } }, 400, ErrorCode.BAD_REQUEST, { table: 'bids' }],
      [{ tables: { bids: { declare: { key: 'string', order: { key: 'asc' } } } } }, 400, ErrorCode.BAD_REQUEST, { table: 'bids', reason: 'specConflict' }],
      [{ tables: { small: { declare: { key: 'int', order: { key: 'asc' }, maxRows: 1 }, upsert: { '1': { a: 1 }, '2': { a: 1 } } } } }, 400, ErrorCode.TOO_MANY_ROWS, { table: 'small' }],
      [{ fields: { last: { x: 1 } }, tables: { bids: { upsert: { '3': { qty: 1 } } } } }, 400, ErrorCode.BAD_FIELD, {}],
      [{ fields: {}, tables: {} }, 400, ErrorCode.BAD_REQUEST, {}],
    ];
    for (const [body, status, code, at] of cases) {
      const r = await pub(body);
      expect({ body, status: r.status }).toEqual({ body, status });
      expect(r.body).toMatchObject({ error: { code, ...at } });
    }
    expect((await http(server.port, 'GET', '/snapshot/kh.refuse')).body).toEqual(before);
    expect((await pub({ tables: { bids: { upsert: { '-3': { qty: 1 } } } } })).body).toMatchObject({ version: 2 });
    const none = await http(server.port, 'POST', '/publish/kh.never', { tables: { bids: { upsert: { '1': { qty: 1 } } } } });
    expect(none.status).toBe(400);
    expect((await http(server.port, 'GET', '/snapshot/kh.never')).status).toBe(404);
  });

  it('keeps the flat form: top-level "fields" or "tables" holding a value are flat fields', async () => {
    const server = await h.server();
    expect((await http(server.port, 'POST', '/publish/kh.flat', { tables: 5, fields: 'x' })).status).toBe(200);
    expect((await http(server.port, 'POST', '/publish/kh.flat2', { fields: { $bigint: '5' } })).status).toBe(200);
    expect((await http(server.port, 'POST', '/publish/kh.flat3', { tables: { a: 1 }, bid: 1 })).body).toMatchObject({ error: { code: ErrorCode.BAD_FIELD } });
    const s = (await http(server.port, 'GET', '/snapshot/kh.flat')).body as Record<string, unknown>;
    expect(s.fields).toEqual({ tables: 5, fields: 'x' });
    expect(s.tables).toBeUndefined();
    expect(((await http(server.port, 'GET', '/snapshot/kh.flat2')).body as { fields: unknown }).fields).toEqual({ fields: { $bigint: '5' } });
    expect((await http(server.port, 'GET', '/snapshot/kh.flat?tables=bids')).status).toBe(400);
    expect((await http(server.port, 'GET', '/snapshot/kh.flat?depth=0')).status).toBe(400);
  });
});

/** mulberry32: a small seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type ModelOp =
  | { op: 'clear' }
  | { op: 'deleteRange'; from?: number; to?: number; fromExclusive?: boolean; toExclusive?: boolean }
  | { op: 'delete' | 'upsert' | 'replace'; key: number; fields?: Fields; guard?: 'ifNew' | 'ifExists' };

/**
 * Applies ops in order to `rows`; returns the keys whose guard fails (the
 * batch is then refused). The server reports one of them: rows of one
 * upsert or replace object are independent (each key once; JS orders
 * integer-like object keys ascending, other parsers keep document order).
 */
function applyModel(rows: Map<number, Row>, ops: ModelOp[]): number[] {
  const failed: number[] = [];
  for (const o of ops) {
    if (o.op === 'clear') rows.clear();
    else if (o.op === 'deleteRange') {
      for (const k of [...rows.keys()]) {
        const lo = o.from === undefined || (o.fromExclusive ? k > o.from : k >= o.from);
        const hi = o.to === undefined || (o.toExclusive ? k < o.to : k <= o.to);
        if (lo && hi) rows.delete(k);
      }
    } else {
      const has = rows.has(o.key);
      if ((o.guard === 'ifNew' && has) || (o.guard === 'ifExists' && !has)) {
        failed.push(o.key);
        continue;
      }
      if (o.op === 'delete') rows.delete(o.key);
      else {
        const next: Row = o.op === 'replace' ? {} : { ...(rows.get(o.key) ?? {}) };
        for (const [f, v] of Object.entries(o.fields!)) {
          if (v === null) delete next[f];
          else next[f] = v;
        }
        rows.set(o.key, next);
      }
    }
  }
  return failed;
}

/** A random table batch: the JSON sent and the model ops in the documented order. */
function randomTable(r: () => number, ordered: boolean): { json: Record<string, unknown>; ops: ModelOp[] } {
  const key = () => 100 + Math.floor(r() * 30);
  const fields = (nulls: boolean): Fields => {
    const f: Fields = { qty: Math.floor(r() * 1000) / 4 };
    if (r() < 0.3) f.n = Math.floor(r() * 9);
    if (nulls && r() < 0.2) f.n = null;
    if (r() < 0.1) f.tag = 'x' + Math.floor(r() * 3);
    return f;
  };
  const guard = (): 'ifNew' | 'ifExists' | undefined => (r() < 0.15 ? 'ifNew' : r() < 0.15 ? 'ifExists' : undefined);
  const range = () => {
    const a = key();
    const b = a + Math.floor(r() * 5);
    return { from: a, to: b, ...(r() < 0.3 ? { fromExclusive: true } : {}), ...(r() < 0.3 ? { toExclusive: true } : {}) };
  };
  if (ordered) {
    const ops: ModelOp[] = [];
    const n = 1 + Math.floor(r() * 6);
    for (let i = 0; i < n; i++) {
      const p = r();
      const g = guard();
      if (p < 0.03) ops.push({ op: 'clear' });
      else if (p < 0.12) ops.push({ op: 'deleteRange', ...range() });
      else if (p < 0.35) ops.push({ op: 'delete', key: key(), ...(g ? { guard: g } : {}) });
      else if (p < 0.5) ops.push({ op: 'replace', key: key(), fields: fields(false), ...(g ? { guard: g } : {}) });
      else ops.push({ op: 'upsert', key: key(), fields: fields(true), ...(g ? { guard: g } : {}) });
    }
    return { json: { ops: ops.map((o) => ('key' in o && r() < 0.5 ? { ...o, key: String(o.key) } : o)) }, ops };
  }
  const json: Record<string, unknown> = {};
  const ops: ModelOp[] = [];
  const guards = new Map<number, 'ifNew' | 'ifExists'>();
  if (r() < 0.04) {
    json.clear = true;
    ops.push({ op: 'clear' });
  }
  if (r() < 0.15) {
    const d = range();
    json.deleteRange = [d];
    ops.push({ op: 'deleteRange', ...d });
  }
  const withGuard = (k: number): { guard?: 'ifNew' | 'ifExists' } => {
    if (guards.has(k) || ops.some((o) => 'key' in o && o.key === k)) return {};
    const g = guard();
    if (g) guards.set(k, g);
    return g ? { guard: g } : {};
  };
  const dels = Array.from({ length: Math.floor(r() * 3) }, key);
  if (dels.length) json.delete = dels.map((k) => (r() < 0.5 ? k : String(k)));
  for (const k of dels) ops.push({ op: 'delete', key: k, ...withGuard(k) });
  for (const op of ['replace', 'upsert'] as const) {
    const rows: Record<string, Fields> = {};
    const n = Math.floor(r() * (op === 'upsert' ? 4 : 2)) + (op === 'upsert' && ops.length === 0 ? 1 : 0);
    for (let i = 0; i < n; i++) {
      const k = key();
      if (String(k) in rows) continue;
      rows[String(k)] = fields(op === 'upsert');
      ops.push({ op, key: k, fields: rows[String(k)], ...withGuard(k) });
    }
    if (Object.keys(rows).length) json[op] = rows;
  }
  for (const [k, g] of guards) ((json[g] ??= []) as unknown[]).push(r() < 0.5 ? k : String(k));
  return { json, ops };
}

describe('a seeded random run of keyed batches', () => {
  it('matches the reference model after every publish, refused batches included', async () => {
    const server = await h.server();
    const seed = 20261206;
    const r = rng(seed);
    const topic = 'kh.random';
    const m: Model = { version: 0, fields: {}, tables: new Map([['bids', new Map()], ['asks', new Map()]]) };
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const tables: Record<string, unknown> = {};
      const next = new Map([...m.tables].map(([t, rows]) => [t, new Map(rows)]));
      const failing: number[] = [];
      for (const t of ['bids', 'asks']) {
        if (i > 0 && r() < 0.3) continue;
        const { json, ops } = randomTable(r, r() < 0.3);
        tables[t] = { ...json, ...DECLARE[t as 'bids'] }; // re-declaring the same spec is a no-op
        failing.push(...applyModel(next.get(t)!, ops));
      }
      const fields: Fields = {};
      if (r() < 0.4) fields.last = Math.floor(r() * 1e4) / 100;
      if (r() < 0.1) fields.vol = r() < 0.5 ? null : 7;
      if (Object.keys(tables).length === 0) fields.tick = i;
      const res = await http(server.port, 'POST', `/publish/${topic}`, { fields, tables });
      if (failing.length > 0) {
        refused++;
        expect(res.status, `batch ${i} (seed ${seed})`).toBe(409);
        expect(res.body, JSON.stringify({ fields, tables })).toMatchObject({ error: { code: ErrorCode.ROW_GUARD, table: expect.any(String) } });
        expect(failing).toContain((res.body as { error: { key: number } }).error.key);
      } else {
        expect(res.status, `batch ${i} (seed ${seed}): ${JSON.stringify(res.body)}`).toBe(200);
        m.version++;
        m.tables = next;
        for (const [f, v] of Object.entries(fields)) {
          if (v === null) delete m.fields[f];
          else m.fields[f] = v;
        }
      }
      const depth = [1, 5, 10, 50][i % 4]!;
      const pick = i % 3 === 0 ? ['qty'] : undefined;
      const q = `?depth=${depth}${pick ? '&fields=qty' : ''}`;
      const got = await http(server.port, 'GET', `/snapshot/${topic}${q}`);
      if (m.version === 0) {
        expect(got.status).toBe(404); // refused first batches create no topic
        continue;
      }
      const snap = got.body as { version: number; fields: Row; tables: Record<string, unknown> };
      expect(snap.version, `batch ${i}`).toBe(m.version);
      expect(snap.fields).toEqual(m.fields);
      expect(snap.tables, `batch ${i} (seed ${seed}) ${q}`).toEqual({ bids: expectedTable(m, 'bids', depth, pick), asks: expectedTable(m, 'asks', depth, pick) });
    }
    expect(refused).toBeGreaterThan(10);
    expect(m.version).toBeGreaterThan(150);
    const full = (await http(server.port, 'GET', `/snapshot/${topic}`)).body as { tables: Record<string, unknown> };
    expect(full.tables).toEqual({ bids: expectedTable(m, 'bids'), asks: expectedTable(m, 'asks') });
  }, 60_000);
});
