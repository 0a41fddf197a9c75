// Keyed batches per server layout. One thread: server.publishBatch works like
// HTTP (one version, refused batches typed and without effect). Fan-out
// workers and a cluster replicate row changes (server/replication.ts): keyed
// batches work there too, refusals typed (keyed-workers.test.ts and
// keyed-cluster.test.ts have the random runs and the quiet-case checks).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, KeyedBatchError, TickfanError } from '../../src/index.js';
import { ClusterHarness } from './cluster-helpers.js';
import { Harness, caughtUp, http, sleep, waitFor } from './helpers.js';
import { NatsServer } from './nats-server.js';

const h = new Harness();
afterEach(() => h.close());

const BIDS = { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } };

describe('keyed batches in one thread', () => {
  it('server.publishBatch applies summary and rows as one version; refusals are typed and change nothing', async () => {
    const server = await h.server();
    const r = server.publishBatch('kl.book', {
      fields: { last: 65000.5 },
      tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 6500050, fields: { qty: 3.2 } }, { op: 'upsert', table: 'bids', key: 6500100, fields: new Map([['qty', 1]]) }] },
    });
    expect(r).toEqual({ topic: 'kl.book', epoch: expect.any(Number), version: 1 });
    let err: unknown;
    try {
      server.publishBatch('kl.book', { fields: { last: 1 }, tables: { ops: [{ op: 'upsert', table: 'bids', key: 6500050, fields: { qty: 9 }, guard: 'ifNew' }] } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyedBatchError);
    expect(err).toBeInstanceOf(TickfanError);
    expect(err).toMatchObject({ code: 'TICKFAN_ERR_ROW_GUARD', table: 'bids', key: 6500050 });
    const snap = (await http(server.port, 'GET', '/snapshot/kl.book?depth=1')).body;
    expect(snap).toMatchObject({ version: 1, fields: { last: 65000.5 }, tables: { bids: { size: 2, rows: [[6500100, { qty: 1 }]] } } });
    expect(server.publish('kl.book', { last: 2 }).version).toBe(2);
    expect(server.publishBatch('kl.book', { fields: { last: 3 } }).version).toBe(3);
  });
});

describe('subscribers of a keyed topic before the keyed views', () => {
  it('follow every version of the summary (row-only versions arrive as empty deltas), with no gap', async () => {
    const server = await h.server();
    server.publishBatch('kl.sub', { fields: { last: 1 }, tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 1, fields: { qty: 1 } }] } });
    const client = await h.connected(server);
    const errors: unknown[] = [];
    const sub = client.subscribe('kl.sub');
    sub.on('error', (e) => errors.push(e));
    await waitFor(() => caughtUp(client, server, 'kl.sub'));
    for (let i = 2; i <= 20; i++) {
      if (i % 3 === 0) server.publish('kl.sub', { last: i });
      else server.publishBatch('kl.sub', { tables: { ops: [{ op: 'upsert', table: 'bids', key: i, fields: { qty: i } }] } });
    }
    await waitFor(() => caughtUp(client, server, 'kl.sub'));
    expect(client.stateOf('kl.sub')).toMatchObject({ version: 20, state: { last: 18 } });
    expect(errors).toEqual([]);
  });
});

describe('keyed batches with fan-out workers', () => {
  it('are sequenced over HTTP and in-process and replicated to the workers (keyed-workers.test.ts has the random runs)', async () => {
    const server = await h.server({ workers: 1 });
    const res = await http(server.port, 'POST', '/publish/kl.w', { fields: { last: 1 }, tables: { bids: { declare: { key: 'int', order: { key: 'desc' } }, upsert: { '1': { qty: 1 } } } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ version: 1 });
    expect(server.publishBatch('kl.w', { tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 2, fields: { qty: 2 } }] } }).version).toBe(2);
    expect(() => server.publishBatch('kl.w', { tables: { ops: [{ op: 'delete', table: 'bids', key: 9, guard: 'ifExists' }] } })).toThrow(KeyedBatchError);
    // The keyed form without tables is a flat publish.
    expect((await http(server.port, 'POST', '/publish/kl.w', { fields: { last: 3 } })).body).toMatchObject({ version: 3 });
    // The worker serves its replica: it follows the sequencer within moments.
    let snap = (await http(server.port, 'GET', '/snapshot/kl.w?depth=1')).body as { version: number };
    for (let i = 0; i < 50 && snap.version !== 3; i++) {
      await sleep(20);
      snap = (await http(server.port, 'GET', '/snapshot/kl.w?depth=1')).body as { version: number };
    }
    expect(snap).toMatchObject({ version: 3, fields: { last: 3 }, tables: { bids: { size: 2, rows: [[2, { qty: 2 }]] } } });
  });
});

describe('keyed batches in a cluster', () => {
  let nats: NatsServer;
  let c: ClusterHarness;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats?.stop();
  });
  afterEach(async () => {
    await c?.close();
  });

  it('are sequenced on the origin and forwarded from edges with the origin\'s version; flat publishes are forwarded as before', async () => {
    c = new ClusterHarness(nats.url);
    const origin = await c.origin();
    const edge = await c.edge();
    const keyed = { tables: { bids: { declare: { key: 'int', order: { key: 'desc' } }, upsert: { '1': { qty: 1 } } } } };
    expect((await http(origin.port, 'POST', '/publish/kl.c', keyed)).body).toMatchObject({ version: 1 });
    expect((await http(edge.port, 'POST', '/publish/kl.c', keyed)).body).toMatchObject({ version: 2 });
    expect(origin.publishBatch('kl.c', { tables: { declare: [BIDS], ops: [{ op: 'delete', table: 'bids', key: 1 }] } }).version).toBe(3);
    expect(() => edge.publishBatch('kl.c', { tables: { ops: [] } })).toThrow(expect.objectContaining({ errorCode: ErrorCode.BAD_REQUEST }));
    expect((await http(edge.port, 'POST', '/publish/kl.c', { fields: { last: 1 } })).body).toMatchObject({ version: 4 });
    expect(origin.store.get('kl.c')!.tables!.table('bids')!.size).toBe(0);
  }, 30_000);
});
