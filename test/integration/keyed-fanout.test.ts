// Keyed views over WebSocket with the real SDK: depth views on both sides of a
// book stay equal to top-N of the reference at every delivered version, through
// a seeded random sequence of batches (every op and guard, churn outside the
// window, deletes refilling from below, deleteRange through the top, clear),
// late joiners, a checksum subscriber, a cut and resumed client, maxRate
// conflation, and the refusal of protocol-1 subscribers.

import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import type { TickfanClient, TableRow, Update } from '../../src/client/index.js';
import { Harness, trackingWebSocket, waitFor } from './helpers.js';
import { rng } from '../../src/demo/market-sim.js';

const h = new Harness();
afterEach(() => h.close());

const SIDES = [
  { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } },
  { name: 'asks', key: 'int' as const, order: { key: 'asc' as const } },
];
type Rows = [number, Record<string, unknown>][];


/** The reference: each side's rows (best first) at every version, read from the sequencer after each accepted batch. */
class Reference {
  readonly at = new Map<number, Record<string, Rows>>();
  constructor(private readonly server: TickfanServer, private readonly topic: string) {}
  record(): void {
    const t = this.server.store.get(this.topic)!;
    const sides: Record<string, Rows> = {};
    for (const s of SIDES) sides[s.name] = [...(t.tables?.table(s.name)?.rows() ?? [])].map((r) => [r.key as number, Object.fromEntries(r.fields)]);
    this.at.set(t.version, sides);
  }
}

function project(rows: Rows, depth: number, fields?: string[]): Rows {
  const top = depth ? rows.slice(0, depth) : rows;
  if (!fields) return top;
  return top.map(([k, f]) => [k, Object.fromEntries(Object.entries(f).filter(([n]) => fields.includes(n)))]);
}

function sortedFields(f: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(f).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A client whose view of both sides is checked against the reference after every update. */
function watcher(client: TickfanClient, ref: Reference, topic: string, depth: number, extra: { fields?: string[]; maxRate?: number; checksums?: boolean } = {}) {
  const tables = { bids: { depth, ...(extra.fields ? { fields: extra.fields } : {}) }, asks: { depth, ...(extra.fields ? { fields: extra.fields } : {}) } };
  const sub = client.subscribe(topic, { tables, maxRate: extra.maxRate, checksums: extra.checksums });
  const w = { sub, updates: 0, versions: [] as number[], maxRows: 0, failures: [] as string[], last: 0 };
  sub.on('update', (u: Update) => {
    w.updates++;
    w.versions.push(u.version);
    w.last = u.version;
    if (!u.snapshot) w.maxRows = Math.max(w.maxRows, u.rows?.length ?? 0);
    const want = ref.at.get(u.version);
    if (!want) return void w.failures.push(`no reference at ${u.version}`);
    for (const s of SIDES) {
      // Rows in order, each row's fields by name: a row's field order is not part of the contract (a
      // conflated row entering in full lists its fields as the server holds them).
      const got = sub.table(s.name).rows().map((r: TableRow) => [r.key, sortedFields(r.fields)]);
      const exp = project(want[s.name] ?? [], depth, extra.fields).map(([k, f]) => [k, sortedFields(f)]);
      if (JSON.stringify(got) !== JSON.stringify(exp)) w.failures.push(`depth ${depth} ${s.name} at v${u.version}: ${JSON.stringify(got).slice(0, 300)} != ${JSON.stringify(exp).slice(0, 300)}`);
    }
  });
  sub.on('error', (e: unknown) => w.failures.push(`error ${String(e)}`));
  return w;
}

/** One random batch over both sides: every op and guard, mostly near the top. */
function randomBatch(r: () => number, step: number) {
  const ops: unknown[] = [];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const side = r() < 0.5 ? 'bids' : 'asks';
    const dir = side === 'bids' ? -1 : 1;
    // Near the top most of the time; far outside the window sometimes (churn).
    const far = r() < 0.3;
    const key = 1000 + dir * (far ? 60 + Math.floor(r() * 60) : Math.floor(r() * 20));
    const x = r();
    const qty = Math.round(r() * 1000) / 100;
    if (x < 0.45) ops.push({ op: 'upsert', table: side, key, fields: { qty, n: step } });
    else if (x < 0.6) ops.push({ op: 'replace', table: side, key, fields: { qty } });
    else if (x < 0.8) ops.push({ op: 'delete', table: side, key });
    else if (x < 0.86) ops.push({ op: 'upsert', table: side, key, fields: { qty }, guard: r() < 0.5 ? 'ifNew' : 'ifExists' });
    else if (x < 0.9) ops.push({ op: 'delete', table: side, key, guard: 'ifExists' });
    else if (x < 0.95) ops.push({ op: 'deleteRange', table: side, from: 1000 - 3, to: 1000 + 3 }); // through the top of both sides' ranges
    else if (x < 0.97) ops.push({ op: 'clear', table: side });
    else ops.push({ op: 'upsert', table: side, key, fields: { qty: null, n: step } });
  }
  return { fields: r() < 0.3 ? { last: step } : {}, tables: { ops } };
}

function publish(server: TickfanServer, ref: Reference, topic: string, batch: unknown): boolean {
  try {
    server.publishBatch(topic, batch as never);
    ref.record();
    return true;
  } catch {
    return false; // a refused batch (a guard): nothing changed
  }
}

function seed(server: TickfanServer, ref: Reference, topic: string): void {
  const ops = [];
  for (let i = 0; i < 80; i++) ops.push({ op: 'upsert', table: 'bids', key: 1000 - i, fields: { qty: i + 1, n: 0 } }, { op: 'upsert', table: 'asks', key: 1000 + i, fields: { qty: i + 1, n: 0 } });
  server.publishBatch(topic, { fields: { last: 0 }, tables: { declare: SIDES, ops } } as never);
  ref.record();
}

describe('keyed depth views over WebSocket', () => {
  it('N ∈ {1,5,10,50} and full depth on both sides equal top-N of the reference after every update; late joiners; checksums', async () => {
    const server = await h.server();
    const topic = 'kf.book';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    // One connection holds one view of a topic: a client per depth.
    const clients = await Promise.all([1, 5, 10, 50, 0].map(() => h.connected(server)));
    const ws = [1, 5, 10, 50, 0].map((d, i) => watcher(clients[i]!, ref, topic, d));
    const other = await h.connected(server);
    const checked = watcher(other, ref, topic, 10, { checksums: true, fields: ['qty'] });
    await waitFor(() => ws.every((w) => w.updates > 0) && checked.updates > 0);
    const r = rng(19);
    let accepted = 0;
    const late: ReturnType<typeof watcher>[] = [];
    for (let step = 1; step <= 400; step++) {
      if (publish(server, ref, topic, randomBatch(r, step))) accepted++;
      if (step % 100 === 0) late.push(watcher(await h.connected(server), ref, topic, [1, 5, 10, 50][step / 100 - 1]!));
      if (step % 7 === 0) await new Promise((res) => setImmediate(res));
    }
    const v = server.store.get(topic)!.version;
    const all = [...ws, checked, ...late];
    await waitFor(() => all.every((w) => w.last === v), 10_000, 'every client at the last version');
    for (const w of all) expect(w.failures.slice(0, 3)).toEqual([]);
    expect(accepted).toBeGreaterThan(200);
    // Full rate: every version delivered, none skipped.
    for (const w of ws) {
      const vs = w.versions;
      for (let i = 1; i < vs.length; i++) expect(vs[i]).toBe(vs[i - 1]! + 1);
    }
    for (const c of clients) expect(c.stats.checksumMismatches).toBe(0);
    expect(other.stats.checksumMismatches ?? 0).toBe(0);
  }, 30_000);

  it('maxRate 1: conflated deltas are exact, with at most min(keys changed, depth) rows entering or changing', async () => {
    const server = await h.server({ rateTiers: [1] } as never);
    const topic = 'kf.hot';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const client = await h.connected(server);
    const w = watcher(client, ref, topic, 10, { maxRate: 1 });
    await waitFor(() => w.updates > 0);
    const r = rng(7);
    const t0 = Date.now();
    let step = 0;
    while (Date.now() - t0 < 2_300) {
      for (let i = 0; i < 50; i++) publish(server, ref, topic, randomBatch(r, ++step));
      await new Promise((res) => setTimeout(res, 5));
    }
    const v = server.store.get(topic)!.version;
    await waitFor(() => w.last === v, 5_000);
    expect(w.failures.slice(0, 3)).toEqual([]);
    expect(w.updates).toBeLessThanOrEqual(6);
    // A row change per key at most: the window's 10 plus the evictions of the rows they replaced.
    expect(w.maxRows).toBeLessThanOrEqual(2 * 2 * 10);
  }, 15_000);

  it('a cut client resumes exactly: a merged delta when it is behind a little, a snapshot when far behind', async () => {
    const server = await h.server();
    const topic = 'kf.cut';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const tracked = trackingWebSocket();
    const client = await h.connected(server, { WebSocket: tracked.Ctor });
    const w = watcher(client, ref, topic, 10);
    await waitFor(() => w.updates > 0);
    const r = rng(3);
    for (let round = 0; round < 2; round++) {
      const before = { d: server.stats.catchUpDeltas, s: server.stats.catchUpSnapshots };
      tracked.tcp().destroy();
      // Published at once, before the client can have reconnected: it misses them.
      const n = round === 0 ? 3 : 600;
      for (let i = 0; i < n; i++) publish(server, ref, topic, i % 2 ? { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 1000, fields: { qty: i } }] } } : randomBatch(r, i));
      const v = server.store.get(topic)!.version;
      await waitFor(() => client.stats.reconnects > round && w.last === v, 10_000, 'the resumed client at the last version');
      if (round === 0) expect(server.stats.catchUpDeltas).toBeGreaterThan(before.d);
      else expect(server.stats.catchUpSnapshots).toBeGreaterThan(before.s);
    }
    expect(w.failures.slice(0, 3)).toEqual([]);
  }, 20_000);

  it('encodes per flush do not grow with subscribers sharing a view', async () => {
    const server = await h.server();
    const topic = 'kf.enc';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const count = async (subscribers: number) => {
      const clients = await Promise.all(Array.from({ length: subscribers }, () => h.connected(server)));
      const ws = clients.map((c) => watcher(c, ref, topic, 10));
      await waitFor(() => ws.every((w) => w.updates > 0));
      const e0 = server.stats.encodes;
      for (let i = 0; i < 20; i++) publish(server, ref, topic, { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 1000, fields: { qty: i } }] } });
      const v = server.store.get(topic)!.version;
      await waitFor(() => ws.every((w) => w.last === v));
      for (const w of ws) expect(w.failures).toEqual([]);
      for (const c of clients) c.close();
      return server.stats.encodes - e0;
    };
    const one = await count(1);
    const many = await count(20);
    expect(one).toBe(20);
    expect(many).toBe(20);
  }, 20_000);

  it('protocol-1 subscribers of a keyed topic are refused with PROTOCOL_VERSION naming it', async () => {
    const server = await h.server();
    const ref = new Reference(server, 'kf.p1');
    seed(server, ref, 'kf.p1');
    server.publish('kf.flat', { x: 1 });
    const client = await h.connected(server, { protocol: 1 });
    const errors: { code?: unknown; message?: string }[] = [];
    const sub = client.subscribe('kf.p1');
    sub.on('error', (e) => errors.push(e as never));
    const flat = client.subscribe('kf.flat');
    await waitFor(() => errors.length > 0 && flat.stateOf('kf.flat') !== undefined);
    expect(errors[0]!.message).toMatch(/kf\.p1.*protocol-2/);
    expect(client.stateOf('kf.p1')).toBeUndefined();
  });
});
