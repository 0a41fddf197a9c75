// Keyed topics with fan-out workers: batches published over HTTP on any worker
// (through the publish ring) and in-process on the sequencer are replicated
// to every worker's replica through the broadcast ring (the Delta2 plus the
// batch's net row change). Each worker answers GET /snapshot/<topic>?depth=N
// from its own replica: after a seeded random sequence, once publishing
// stops, every worker's answer equals the sequencer's at the same version.
// Refusals come back typed from the sequencer; a worker that falls a ring
// behind resynchronises from images that carry the tables.

import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyedBatchError, type TickfanServer } from '../../src/index.js';
import { snapshotJson } from '../../src/server/snapshot-json.js';
import { Harness, http, sleep } from './helpers.js';
import { SPECS, randomBatch, rng } from './keyed-random.js';

const h = new Harness();
afterEach(() => h.close());

function get(agent: Agent, port: number, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** GET `path` from every worker: one kept-alive connection per try, asked who it is, then for `path`. */
export async function fromEachWorker(port: number, n: number, path: string): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  for (let i = 0; i < 80 && out.size < n; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const who = (await get(agent, port, '/healthz')).body.server as string;
      if (!out.has(who)) out.set(who, (await get(agent, port, path)).body);
    } finally {
      agent.destroy();
    }
  }
  expect(out.size, 'answers from every worker').toBe(n);
  return out;
}

/** The sequencer's own answer (its store is the server's). */
function sequencerSnapshot(server: TickfanServer, topic: string, depth?: number): any {
  return JSON.parse(snapshotJson(server.store.get(topic)!, { depth: depth === undefined ? undefined : String(depth), tables: undefined, fields: undefined }));
}

async function converged(server: TickfanServer, topic: string): Promise<void> {
  const want = server.store.get(topic)!.version;
  for (let i = 0; i < 50; i++) {
    const got = await fromEachWorker(server.port, 2, `/snapshot/${topic}?depth=1`);
    if ([...got.values()].every((b) => b.version === want)) return;
    await sleep(50);
  }
  throw new Error(`the workers did not reach ${topic} v${want}`);
}

describe('keyed topics with fan-out workers', () => {
  it('a seeded random sequence over HTTP on any worker and server.publishBatch: every worker serves the sequencer\'s tables at the same version', async () => {
    const server = await h.server({ workers: 2 });
    const topic = 'kw.book';
    const r = rng(20240917);
    let version = 0;
    let refused = 0;
    for (let i = 0; i < 240; i++) {
      const { json, input } = randomBatch(r);
      if (i % 2 === 0) {
        const res = await http(server.port, 'POST', `/publish/${topic}`, json);
        if (res.status === 200) expect((res.body as { version: number }).version).toBe(++version);
        else {
          refused++;
          expect(res.status, JSON.stringify(res.body)).toBe(409);
          expect(res.body).toMatchObject({ error: { name: 'TICKFAN_ERR_ROW_GUARD', reason: expect.stringMatching(/^if(New|Exists)$/), table: expect.any(String), key: expect.anything() } });
        }
      } else {
        try {
          expect(server.publishBatch(topic, input).version).toBe(++version);
        } catch (err) {
          refused++;
          expect(err).toBeInstanceOf(KeyedBatchError);
          expect(err).toMatchObject({ code: 'TICKFAN_ERR_ROW_GUARD', table: expect.any(String) });
        }
      }
      expect(server.store.get(topic)!.version).toBe(version);
    }
    expect(refused, 'some guarded batches were refused').toBeGreaterThan(0);
    await converged(server, topic);
    for (const depth of [undefined, 1, 5, 10]) {
      const want = sequencerSnapshot(server, topic, depth);
      expect(want.tables.bids.size + want.tables.asks.size + want.tables.orders.size).toBeGreaterThan(0);
      const q = depth === undefined ? '' : `?depth=${depth}`;
      for (const [who, body] of await fromEachWorker(server.port, 2, `/snapshot/${topic}${q}`)) expect(body, `${who} depth ${depth}`).toEqual(want);
    }
  });

  it('refusals by the sequencer reach the publisher on a worker typed (BAD_KEY, ROW_GUARD, TOO_MANY_ROWS, named table and row); nothing changes', async () => {
    const server = await h.server({ workers: 2 });
    const topic = 'kw.refuse';
    const declare = { tables: { bids: { declare: { key: 'int', order: { key: 'desc' } }, upsert: { '1': { qty: 1 } } }, orders: { declare: { key: 'string', order: { key: 'asc' }, maxRows: 2 }, upsert: { a: { qty: 1 } } } } };
    expect((await http(server.port, 'POST', `/publish/${topic}`, declare)).body).toMatchObject({ version: 1 });
    const cases: [unknown, number, Record<string, unknown>][] = [
      [{ tables: { bids: { ifNew: [1], upsert: { '1': { qty: 2 } } } } }, 409, { name: 'TICKFAN_ERR_ROW_GUARD', reason: 'ifNew', table: 'bids', key: 1 }],
      [{ tables: { orders: { upsert: { '': { qty: 2 } } } } }, 400, { name: 'TICKFAN_ERR_BAD_KEY', reason: 'badKey', table: 'orders' }],
      [{ tables: { orders: { upsert: { b: { qty: 2 }, c: { qty: 3 } } } } }, 400, { name: 'TICKFAN_ERR_TOO_MANY_ROWS', reason: 'tooManyRows', table: 'orders' }],
    ];
    // Through either worker (new connections land on both).
    for (let round = 0; round < 4; round++) {
      for (const [body, status, error] of cases) {
        const res = await http(server.port, 'POST', `/publish/${topic}`, body);
        expect(res.status, JSON.stringify(res.body)).toBe(status);
        expect(res.body).toMatchObject({ error });
      }
    }
    expect(server.store.get(topic)!.version).toBe(1);
    await converged(server, topic);
    for (const body of (await fromEachWorker(server.port, 2, `/snapshot/${topic}`)).values()) expect(body).toEqual(sequencerSnapshot(server, topic));
  });

  it('a worker that falls a ring behind resynchronises from images with the tables and serves them exactly', async () => {
    const server = await h.server({ workers: 2, ringBytes: 64 * 1024 });
    const topic = 'kw.stall';
    const r = rng(7);
    server.publishBatch(topic, randomBatch(r).input);
    await converged(server, topic);
    const stalled = server.stallWorker(0, 700);
    await sleep(50); // the stall has begun (the overrun check below fails otherwise)
    const pad = 'x'.repeat(80);
    for (let i = 0; i < 1500; i++) {
      try {
        server.publishBatch(topic, randomBatch(r, pad).input);
      } catch (err) {
        expect(err).toBeInstanceOf(KeyedBatchError);
      }
      if (i % 300 === 0) await sleep(5);
    }
    await stalled;
    await converged(server, topic);
    const health = await fromEachWorker(server.port, 2, '/healthz');
    expect([...health.entries()].find(([w]) => w.endsWith('/w0'))![1].overruns).toBeGreaterThanOrEqual(1);
    for (const depth of [undefined, 3]) {
      const want = sequencerSnapshot(server, topic, depth);
      const q = depth === undefined ? '' : `?depth=${depth}`;
      for (const [who, body] of await fromEachWorker(server.port, 2, `/snapshot/${topic}${q}`)) expect(body, who).toEqual(want);
    }
    expect(Object.keys(sequencerSnapshot(server, topic).tables)).toEqual(SPECS.map((s) => s.name));
  });
});
