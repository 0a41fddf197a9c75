// Keyed topics over SSE: the SDK with `transport: 'sse'` holds depth views
// equal to top-N of the reference after every delivered update (depth 10 and
// full depth, a checksum subscriber, a late joiner) through a seeded random
// run; a cut client resumes by Last-Event-ID (its table views restored by the
// server, by merged delta when behind a little, by snapshot when far behind);
// raw SSE commands subscribe with `tables`/`checksums` and publish keyed
// batches; subscribers sharing a view cost one encode per update; the URL of
// GET /sse asks for views (`?tables=`, `?depth=`, `?checksums=`) and bad
// values there are a 400 with a code.

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { FetchLike, TableRow, TickfanClient, Update } from '../../src/client/index.js';
import { TcpProxy } from '../e2e/tcp-proxy.js';
import { Harness, waitFor } from './helpers.js';
import { JsonView, Reference, SIDES, project, publish, randomBatch, rng, seed } from './keyed-transport-helpers.js';
import { RawSse } from './json-clients.js';

const h = new Harness();
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await h.close();
});

/** An SDK subscription whose view of both sides is checked against the reference after every update. */
function watcher(client: TickfanClient, ref: Reference, topic: string, depth: number, extra: { checksums?: boolean } = {}) {
  const sub = client.subscribe(topic, { tables: { bids: { depth }, asks: { depth } }, checksums: extra.checksums });
  const w = { sub, updates: 0, versions: [] as number[], failures: [] as string[], last: 0 };
  sub.on('update', (u: Update) => {
    w.updates++;
    w.versions.push(u.version);
    w.last = u.version;
    const want = ref.at.get(u.version);
    if (!want) return void w.failures.push(`no reference at ${u.version}`);
    for (const s of SIDES) {
      const got = sub.table(s.name).rows().map((r: TableRow) => [r.key, { ...r.fields }]);
      const exp = project(want[s.name] ?? [], depth);
      if (JSON.stringify(got) !== JSON.stringify(exp)) w.failures.push(`depth ${depth} ${s.name} at v${u.version}: ${JSON.stringify(got).slice(0, 200)} != ${JSON.stringify(exp).slice(0, 200)}`);
    }
  });
  sub.on('error', (e: unknown) => w.failures.push(`error ${String(e)}`));
  return w;
}

const yieldTurn = () => new Promise((res) => setImmediate(res));

describe('keyed topics over SSE (SDK, transport sse)', () => {
  it('depth 10, full depth and checksums equal top-N of the reference after every update; a late joiner', async () => {
    const server = await h.server();
    const topic = 'ks.book';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const depths = [10, 0];
    const clients = await Promise.all(depths.map(() => h.connected(server, { transport: 'sse' })));
    const ws = depths.map((d, i) => watcher(clients[i]!, ref, topic, d));
    const checked = watcher(await h.connected(server, { transport: 'sse' }), ref, topic, 10, { checksums: true });
    await waitFor(() => ws.every((w) => w.updates > 0) && checked.updates > 0, 5_000, 'first images');
    expect(clients[0]!.transport).toBe('sse');
    const r = rng(1919);
    let accepted = 0;
    let late: ReturnType<typeof watcher> | null = null;
    for (let step = 1; step <= 300; step++) {
      if (publish(server, ref, topic, randomBatch(r, step))) accepted++;
      if (step === 150) late = watcher(await h.connected(server, { transport: 'sse' }), ref, topic, 10);
      if (step % 5 === 0) await yieldTurn();
    }
    const all = [...ws, checked, late!];
    await waitFor(() => all.every((w) => w.last === ref.version), 10_000, 'every client at the last version');
    for (const w of all) expect(w.failures.slice(0, 3)).toEqual([]);
    expect(accepted).toBeGreaterThan(150);
    // Full rate: every version delivered, none skipped, none twice.
    for (const w of ws) for (let i = 1; i < w.versions.length; i++) expect(w.versions[i]).toBe(w.versions[i - 1]! + 1);
    expect(late!.versions[0]).toBeGreaterThan(ref.at.keys().next().value!);
    expect(checked.sub).toBeDefined();
    for (const c of clients) expect(c.stats).toMatchObject({ gaps: 0, checksumMismatches: 0 });
  }, 30_000);

  it('a cut client resumes by Last-Event-ID with its table views: merged delta when a little behind, snapshot when far', async () => {
    const server = await h.server();
    const topic = 'ks.cut';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const proxy = await TcpProxy.start(server.port);
    cleanup.push(() => proxy.close());
    const commands: Record<string, unknown>[] = [];
    const rec: FetchLike = (url, init) => {
      if (init?.method === 'POST' && typeof init.body === 'string') commands.push(...JSON.parse(init.body));
      return fetch(url, init);
    };
    const client = h.client(proxy.port, { transport: 'sse', fetch: rec });
    const w = watcher(client, ref, topic, 10);
    await waitFor(() => w.updates > 0, 5_000, 'the first image');
    expect(commands.find((c) => c.type === 'subscribe')).toMatchObject({ tables: { bids: { depth: 10 }, asks: { depth: 10 } } });
    const r = rng(5);
    for (let round = 0; round < 2; round++) {
      const before = { d: server.stats.catchUpDeltas, s: server.stats.catchUpSnapshots, cmds: commands.length };
      proxy.cut();
      const n = round === 0 ? 3 : 700;
      for (let i = 0; i < n; i++) publish(server, ref, topic, i % 2 ? { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 1000, fields: { qty: i } }] } } : randomBatch(r, i));
      await waitFor(() => client.stats.reconnects > round && w.last === ref.version, 10_000, 'the resumed client at the last version');
      // The session was resumed: the server restored the subscription (with its views), the SDK did not send it again.
      expect(commands.slice(before.cmds).filter((c) => c.type === 'subscribe')).toEqual([]);
      if (round === 0) expect(server.stats.catchUpDeltas).toBeGreaterThan(before.d);
      else expect(server.stats.catchUpSnapshots).toBeGreaterThan(before.s);
    }
    expect(w.failures.slice(0, 3)).toEqual([]);
    expect(w.sub.table('bids').rows().length).toBeLessThanOrEqual(10);
  }, 20_000);

  it('raw SSE: subscribe with tables and checksums, publish a keyed batch; subscribers sharing a view share one encode', async () => {
    const server = await h.server();
    const topic = 'ks.raw';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const streams = await Promise.all([0, 1, 2].map(() => RawStream.open(server.port, cleanup)));
    for (const s of streams) {
      await waitFor(() => s.session !== '', 5_000, 'the session event');
      const a = await post(server.port, `/sse/${s.session}`, [{ type: 'subscribe', id: 1, topics: [topic], tables: { bids: { depth: 5 }, asks: { depth: 5 } }, checksums: true }]);
      expect(a.status).toBe(202);
    }
    await waitFor(() => streams.every((s) => s.view.version === ref.version), 5_000, 'the snapshots');
    const snap = streams[0]!.messages.find((m) => m.type === 'keyedSnapshot')!;
    expect(snap).toMatchObject({ topic, part: 0, last: true, views: { bids: { key: 'int', order: { key: 'desc' }, depth: 5 } } });
    expect(typeof snap.checksum).toBe('number');
    const e0 = server.stats.encodes;
    // A keyed publish through SSE: the HTTP publish's JSON form with the command's head.
    const pub = await post(server.port, `/sse/${streams[0]!.session}`, [{ type: 'publish', id: 7, topic, fields: { last: 9 }, tables: { bids: { upsert: { 1001: { qty: 5, n: 1 } }, delete: [999] } } }]);
    expect(pub.status).toBe(202);
    ref.record();
    await waitFor(() => streams.every((s) => s.view.version === ref.version), 5_000, 'the delta');
    expect(streams[0]!.messages.find((m) => m.type === 'ack' && m.id === 7)).toMatchObject({ topic, version: ref.version });
    const delta = streams[1]!.messages.at(-1)!;
    expect(delta).toMatchObject({ type: 'keyedDelta', base: ref.version - 1, version: ref.version, fields: { last: 9 }, tables: { bids: { key: 'int', insert: { 1001: { qty: 5, n: 1 } }, delete: [999] } } });
    expect(server.stats.encodes - e0).toBe(1);
    for (const s of streams) {
      s.view.check(ref, 5, 'raw');
      expect(s.view.problems).toEqual([]);
    }
    // Batches that cannot be read are refused with the POST: an undeclared table, a key that is not an int.
    const undeclared = await post(server.port, `/sse/${streams[0]!.session}`, [{ type: 'publish', id: 8, topic, tables: { nope: { delete: [1] } } }]);
    expect(undeclared.status).toBe(400);
    expect(JSON.stringify(undeclared.body)).toMatch(/declare/);
    const bad = await post(server.port, `/sse/${streams[0]!.session}`, [{ type: 'publish', id: 9, topic, tables: { bids: { upsert: { '1.5': { qty: 1 } } } } }]);
    expect(bad.status).toBe(400);
    expect(server.store.get(topic)!.version).toBe(ref.version);
  }, 15_000);

  it('a flat topic that becomes keyed moves its SSE subscriber to the keyed JSON form, with a whole view', async () => {
    const server = await h.server();
    const topic = 'ks.grows';
    server.publish(topic, { last: 1 });
    const s = await RawStream.open(server.port, cleanup);
    await waitFor(() => s.session !== '', 5_000, 'the session event');
    await post(server.port, `/sse/${s.session}`, [{ type: 'subscribe', id: 1, topics: [topic], tables: { bids: { depth: 3 } } }]);
    await waitFor(() => s.messages.some((m) => m.type === 'snapshot'), 5_000, 'the flat snapshot');
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    await waitFor(() => s.view.version === ref.version, 5_000, 'the keyed snapshot');
    expect(s.messages.filter((m) => m.type === 'error')).toEqual([]);
    expect(s.view.problems).toEqual([]);
    // bids at depth 3, asks whole (not listed).
    const want = ref.at.get(ref.version)!;
    expect(s.view.rows('bids')).toEqual(project(want.bids!, 3));
    expect(s.view.rows('asks')).toEqual(want.asks);
    expect(want.asks!.length).toBe(80);
  }, 10_000);

  it('GET /sse?topics=…&tables=…&checksums=…: the URL subscription asks for table views; bad values are a 400 with a code', async () => {
    const server = await h.server();
    const topic = 'ks.url';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    // bids at depth 3 with qty only, asks at depth 5 whole rows; the `depth` form; checksums.
    const a = await RawStream.open(server.port, cleanup, `/sse?topics=${topic}&tables=bids:3:qty,asks:5&checksums=true`);
    const b = await RawStream.open(server.port, cleanup, `/sse?topics=${topic}&tables=bids,asks&depth=4`);
    const c = await RawStream.open(server.port, cleanup, `/sse?topics=${topic}`);
    await waitFor(() => [a, b, c].every((s) => s.view.version === ref.version), 5_000, 'the snapshots');
    const r = rng(77);
    for (let step = 1; step <= 60; step++) publish(server, ref, topic, randomBatch(r, step));
    await waitFor(() => [a, b, c].every((s) => s.view.version === ref.version), 5_000, 'the last version');
    const want = ref.at.get(ref.version)!;
    expect(a.view.rows('bids')).toEqual(project(want.bids!, 3, ['qty']));
    expect(a.view.rows('asks')).toEqual(project(want.asks!, 5));
    expect(a.messages.filter((m) => m.type === 'keyedDelta').every((m) => typeof m.checksum === 'number')).toBe(true);
    expect(a.messages.find((m) => m.type === 'keyedSnapshot')).toMatchObject({ views: { bids: { depth: 3, fields: ['qty'] }, asks: { depth: 5 } } });
    for (const s of [b]) {
      s.view.check(ref, 4, 'depth=4');
      expect(s.view.problems).toEqual([]);
      expect(s.messages.filter((m) => m.type === 'keyedDelta').some((m) => 'checksum' in m)).toBe(false);
    }
    // No views in the URL: the whole book.
    expect(c.view.rows('bids')).toEqual(want.bids);
    expect(c.view.rows('asks').length).toBe(want.asks!.length);
    for (const s of [a, b, c]) expect(s.messages.filter((m) => m.type === 'error')).toEqual([]);

    const bad: [string, RegExp][] = [
      [`/sse?topics=${topic}&tables=bids:x`, /\?tables=: "bids:x" is not table/],
      [`/sse?topics=${topic}&tables=bids:10,bids:5`, /each table once/],
      [`/sse?topics=${topic}&tables=bids:999999`, /depth must be 0/],
      [`/sse?topics=${topic}&tables=bids:10&checksums=yes`, /\?checksums= must be true or false/],
      [`/sse?topics=${topic}&depth=10`, /\?depth= applies to the tables named in \?tables=/],
      [`/sse?topics=${topic}&tables=bids&depth=-1`, /\?depth= must be a whole number/],
      ['/sse?tables=bids:10', /apply to the subscription of \?topics=/],
    ];
    for (const [path, why] of bad) {
      const res = await get(server.port, path);
      expect(res.status, path).toBe(400);
      expect(res.body.error, path).toMatchObject({ code: 3, message: expect.stringMatching(why) });
    }
    expect(server.stats.connections).toBe(3);
  }, 15_000);
});

// ------------------------------------------------------------------ a raw SSE reader

/** A raw SSE reader whose messages also build a JSON view of the keyed topic. */
class RawStream extends RawSse {
  readonly view = new JsonView();

  protected override onMessage(m: Record<string, any>): void {
    this.view.apply(m);
  }
}

function post(port: number, path: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

function get(port: number, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}
