// Value kinds across the workers' ring: a fan-out worker's replica holds each
// value in the sequencer's own kind, so GET /snapshot (answered by whichever
// worker the connection lands on) gives {"$bigint":"5"} for a field published
// as 5n, as a single node does — flat fields, a keyed topic's summary and its
// rows alike — not the number 5 the Delta2 alone reads back.
//
// Workers run the compiled build (dist/): `npm run build` first.

import { afterEach, expect, it } from 'vitest';
import { fieldsToJson, type FieldValue } from '../../src/protocol/index.js';
import { Harness, http } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

const KINDS: Record<string, FieldValue> = { big0: 0n, big5: 5n, bigSafeMin: -(2n ** 53n - 1n), big2to53: 2n ** 53n, num5: 5, negZero: -0, tenth: 0.1, empty: '', bytes: new Uint8Array([0, 255]) };

it('GET /snapshot on every worker gives the sequencer\u2019s value kinds (5n stays {"$bigint":"5"})', async () => {
  const server = await h.server({ workers: 2 });
  server.publish('wk.flat', { seed: 1 });
  server.publishBatch('wk.book', { tables: { declare: [{ name: 'rows', key: 'int', order: { key: 'asc' } }], ops: [] } });
  server.publish('wk.flat', { seed: null, ...KINDS });
  server.publishBatch('wk.book', { fields: KINDS, tables: { ops: [{ op: 'upsert', table: 'rows', key: 1, fields: KINDS }] } });
  const json = JSON.parse(JSON.stringify(fieldsToJson(Object.entries(KINDS)))) as Record<string, unknown>;
  // Each request is a new connection: the kernel spreads them over the workers (both seen answering /healthz).
  const servers = new Set<string>();
  for (let i = 0; i < 30; i++) {
    servers.add(((await http(server.port, 'GET', '/healthz')).body as { server: string }).server);
    let flat: { version: number; fields: Record<string, unknown> } | undefined;
    let book: { version: number; fields: Record<string, unknown>; tables: { rows: { rows: [number, Record<string, unknown>][] } } } | undefined;
    // A worker may still be reading the ring: ask again until it holds version 2 of both.
    for (let tries = 0; tries < 100 && !(flat?.version === 2 && book?.version === 2); tries++) {
      flat = (await http(server.port, 'GET', '/snapshot/wk.flat')).body as typeof flat;
      book = (await http(server.port, 'GET', '/snapshot/wk.book')).body as typeof book;
    }
    expect(flat!.fields).toEqual(json);
    expect(book!.fields).toEqual(json);
    expect(book!.tables.rows.rows).toEqual([[1, json]]);
  }
  expect(servers.size).toBe(2);
}, 30_000);
