// Value kinds across a cluster, on a real nats-server: what an edge's clients
// (and its store, and its GET /snapshot) hold of a topic published on the
// origin is the origin's value kind for kind — a bigint stays a bigint
// whatever its size (5n, not 5), numbers stay numbers (-0, NaN, ±Infinity,
// 2^53 - 1, 1e308), strings, booleans and bytes stay themselves — in a live
// delta, after a heal by image (the quiet case: nothing published after the
// lost update), in keyed rows and summary fields, and for a publish made over
// HTTP on the edge (forwarded) in the `{"$bigint": "5"}` form. Each node's
// clients are compared with the origin's clients of the same transport
// (protocol 2 over WebSocket, the JSON form over SSE).

import { describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import { connect, type Subscription, type TickfanClient } from '../../src/client/index.js';
import { fieldsToJson, type FieldValue } from '../../src/protocol/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http, waitFor, wsUrl } from './helpers.js';

/** Every value kind at its boundaries. */
const KINDS: Record<string, FieldValue> = {
  big0: 0n,
  big5: 5n,
  bigNeg5: -5n,
  bigSafeMax: 2n ** 53n - 1n,
  bigSafeMin: -(2n ** 53n - 1n),
  big2to53: 2n ** 53n,
  bigMin64: -(2n ** 63n),
  bigMax64: 2n ** 63n - 1n,
  num5: 5,
  numSafeMax: 2 ** 53 - 1,
  num2to53: 2 ** 53,
  tenth: 0.1,
  negZero: -0,
  huge: 1e308,
  nan: NaN,
  inf: Infinity,
  negInf: -Infinity,
  empty: '',
  text: 'é€𝄞',
  yes: true,
  no: false,
  bytes: new Uint8Array([0, 1, 127, 128, 255]),
  noBytes: new Uint8Array(0),
};

const show = (v: unknown): string => (v instanceof Uint8Array ? `bytes[${[...v].join(',')}]` : v === undefined ? 'missing' : `${typeof v} ${Object.is(v, -0) ? '-0' : String(v)}`);

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));
  return typeof a === typeof b && Object.is(a, b);
}

/** Every field whose value or kind differs, as readable lines (empty when exact). */
function differences(what: string, got: Record<string, unknown> | undefined, want: Record<string, unknown>): string[] {
  if (!got) return [`${what}: holds nothing`];
  const out: string[] = [];
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) if (!same(got[k], want[k])) out.push(`${what} ${k}: ${show(got[k])}, want ${show(want[k])}`);
  return out;
}

const plain = (m: Iterable<readonly [string, FieldValue]>): Record<string, FieldValue> => Object.fromEntries(m);

const fx = clusterFixture();
let h: ClusterHarness;

const SPEC = { name: 'rows', key: 'int' as const, order: { key: 'asc' as const } };

interface Watcher {
  node: string;
  transport: 'ws' | 'sse';
  client: TickfanClient;
  flat: Subscription;
  book: Subscription;
}

/** One WebSocket and one SSE client on `node`, each following `flat` and all rows of `book`. */
function watchers(node: ClusterServer, name: string, flat: string, book: string): Watcher[] {
  return (['ws', 'sse'] as const).map((transport) => {
    const client = connect(wsUrl(node), { transport, backoff: { initialMs: 10, maxMs: 50 } });
    h.clients.push(client);
    return { node: name, transport, client, flat: client.subscribe(flat), book: client.subscribe(book, { tables: { rows: { depth: 0 } } }) };
  });
}

async function allAt(ws: Watcher[], topics: string[], version: number): Promise<void> {
  await waitFor(() => ws.every((w) => topics.every((t) => w.client.stateOf(t)?.version === version)), 10_000, `every client at v${version} of ${topics.join(', ')}`);
}

function rowsOf(w: Watcher, book: string): Record<string, Record<string, FieldValue>> {
  return Object.fromEntries(w.book.table('rows', book).rows().map((r) => [String(r.key), { ...r.fields }]));
}

/**
 * The edge's store, GET /snapshot and clients hold exactly what the origin's
 * do (`want`: the fields and row 1 just published, kind for kind).
 */
async function expectExact(origin: ClusterServer, edge: ClusterServer, ws: Watcher[], flat: string, book: string, want: Record<string, FieldValue>): Promise<void> {
  const problems: string[] = [];
  const o = origin.store.get(flat)!;
  const e = edge.store.get(flat);
  // The origin holds what was published (the reference itself is right).
  problems.push(...differences('origin store', plain(o.state), want));
  problems.push(...differences('edge store', e && plain(e.state), plain(o.state)));
  const ob = origin.store.get(book)!;
  const eb = edge.store.get(book);
  problems.push(...differences('origin book summary', plain(ob.state), { ...want, n: plain(ob.state).n! }));
  problems.push(...differences('edge book summary', eb && plain(eb.state), plain(ob.state)));
  const row = (t: typeof ob | undefined, k: number) => [...(t?.tables?.table('rows')?.rows() ?? [])].find((r) => r.key === k)?.fields;
  problems.push(...differences('origin row 1', row(ob, 1) && plain(row(ob, 1)!), want));
  problems.push(...differences('edge row 1', row(eb, 1) && plain(row(eb, 1)!), plain(row(ob, 1)!)));
  for (const path of [`/snapshot/${flat}`, `/snapshot/${book}`, `/snapshot/${book}?depth=5`]) {
    const [a, b] = [await http(origin.port, 'GET', path), await http(edge.port, 'GET', path)];
    if (JSON.stringify(b.body) !== JSON.stringify(a.body)) problems.push(`GET ${path}: edge ${JSON.stringify(b.body).slice(0, 400)}, origin ${JSON.stringify(a.body).slice(0, 400)}`);
  }
  for (const transport of ['ws', 'sse'] as const) {
    const ref = ws.find((w) => w.node === 'origin' && w.transport === transport)!;
    for (const w of ws.filter((x) => x.node !== 'origin' && x.transport === transport)) {
      const tag = `${w.node} ${transport} client`;
      problems.push(...differences(`${tag} ${flat}`, w.client.stateOf(flat)?.state, ref.client.stateOf(flat)!.state));
      problems.push(...differences(`${tag} ${book} summary`, w.client.stateOf(book)?.state, ref.client.stateOf(book)!.state));
      const [got, exp] = [rowsOf(w, book), rowsOf(ref, book)];
      for (const k of new Set([...Object.keys(got), ...Object.keys(exp)])) problems.push(...differences(`${tag} ${book} row ${k}`, got[k], exp[k] ?? {}));
    }
  }
  expect(problems).toEqual([]);
  // The comparisons above can tell 5n from 5: the origin's GET /snapshot and its SSE clients' rows (the keyed JSON form) hold 5n.
  expect(((await http(origin.port, 'GET', `/snapshot/${flat}`)).body as { fields: Record<string, unknown> }).fields.big5).toEqual(fieldsToJson([['big5', want.big5!]]).big5);
  expect(typeof rowsOf(ws.find((w) => w.node === 'origin' && w.transport === 'sse')!, book)['1']!.big5).toBe(typeof want.big5);
}

function publishKinds(origin: ClusterServer, flat: string, book: string, n: number, fields: Record<string, FieldValue> = KINDS): void {
  origin.publish(flat, fields);
  origin.publishBatch(book, { fields: { ...fields, n }, tables: { ops: [{ op: 'upsert', table: 'rows', key: 1, fields }, { op: 'upsert', table: 'rows', key: 2, fields: { n: BigInt(n) } }] } });
}

describe('cluster: value kinds stay exact on edges', () => {
  it('in live deltas, keyed rows, and a publish forwarded from an edge over HTTP', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const edge = await h.edge();
    const [flat, book] = ['vk.flat', 'vk.book'];
    origin.publish(flat, { seed: 1 });
    origin.publishBatch(book, { fields: { n: 0 }, tables: { declare: [SPEC], ops: [{ op: 'upsert', table: 'rows', key: 0, fields: { seed: 1 } }] } });
    const ws = [...watchers(origin, 'origin', flat, book), ...watchers(edge, 'edge', flat, book)];
    await allAt(ws, [flat, book], 1);
    const heals = JSON.stringify(edge.cluster.stats.heals);

    // Live: version 2 reaches the edge as an update (no heal).
    origin.publish(flat, { seed: null });
    origin.publishBatch(book, { tables: { ops: [{ op: 'delete', table: 'rows', key: 0 }] } });
    publishKinds(origin, flat, book, 3);
    await allAt(ws, [flat, book], 3);
    expect(JSON.stringify(edge.cluster.stats.heals)).toBe(heals);
    await expectExact(origin, edge, ws, flat, book, KINDS);

    // Over HTTP on the edge, in the JSON form ({"$bigint": "5"}…): forwarded to the origin, exact both ways.
    const negated: Record<string, FieldValue> = Object.fromEntries(Object.entries(KINDS).map(([k, v]) => [k, typeof v === 'bigint' && v !== -(2n ** 63n) ? -v : v]));
    const res = await http(edge.port, 'POST', `/publish/${flat}`, fieldsToJson(Object.entries(negated)));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const keyed = await http(edge.port, 'POST', `/publish/${book}`, { fields: { ...fieldsToJson(Object.entries(negated)), n: 4 }, tables: { rows: { upsert: { '1': fieldsToJson(Object.entries(negated)), '2': { n: { $bigint: '4' } } } } } });
    expect(keyed.status, JSON.stringify(keyed.body)).toBe(200);
    await allAt(ws, [flat, book], 4);
    expect(JSON.stringify(edge.cluster.stats.heals)).toBe(heals);
    await expectExact(origin, edge, ws, flat, book, negated);
  }, 60_000);

  it('after a heal by image, with nothing published after the lost update (quiet), and on an edge that joins later', async () => {
    h = fx.harness();
    const origin = await h.origin({ clusterHeartbeatMs: 100 });
    const edge = await h.edge();
    const [flat, book] = ['vk.heal', 'vk.hbook'];
    origin.publish(flat, { seed: 1 });
    origin.publishBatch(book, { fields: { n: 0 }, tables: { declare: [SPEC], ops: [{ op: 'upsert', table: 'rows', key: 0, fields: { seed: 1 } }] } });
    const ws = [...watchers(origin, 'origin', flat, book), ...watchers(edge, 'edge', flat, book)];
    await allAt(ws, [flat, book], 1);
    const beats = edge.cluster.stats.heals.beat;

    // Both updates are lost on their way to the edges; nothing is published after: the version heartbeat shows the edge behind.
    origin.cluster.loseUpdates(2);
    origin.publish(flat, { seed: null, ...KINDS });
    origin.publishBatch(book, { fields: { ...KINDS, n: 2 }, tables: { ops: [{ op: 'delete', table: 'rows', key: 0 }, { op: 'upsert', table: 'rows', key: 1, fields: KINDS }, { op: 'upsert', table: 'rows', key: 2, fields: { n: 2n } }] } });
    await allAt(ws, [flat, book], 2);
    expect(edge.cluster.stats.heals.beat).toBeGreaterThan(beats);
    await expectExact(origin, edge, ws, flat, book, KINDS);

    // An edge that subscribes now starts from an image of each topic.
    const late = await h.edge();
    const lw = watchers(late, 'late', flat, book);
    await allAt(lw, [flat, book], 2);
    await expectExact(origin, late, [...ws.filter((w) => w.node === 'origin'), ...lw], flat, book, KINDS);
  }, 60_000);
});
