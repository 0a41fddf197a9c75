// Keyed topics over STOMP with the real @stomp/stompjs client: MESSAGE bodies
// in the keyed JSON form, held in plain maps (JsonView), equal top-N of the
// reference after every delivered update (tickfan-tables depth 10, full
// depth, tickfan-checksums) through a seeded random run with a late joiner;
// a resume by tickfan-resume gets a merged view delta; SEND publishes a keyed
// batch (the HTTP publish's JSON body) with a receipt, and a refused one is
// an ERROR naming the row.

import { Client, type IFrame, type IMessage, type StompHeaders } from '@stomp/stompjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import { Harness, waitFor } from './helpers.js';
import { JsonView, Reference, publish, randomBatch, rng, seed } from './keyed-transport-helpers.js';
import { stompClient } from './json-clients.js';

const h = new Harness();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await h.close();
});

/** A connected stompjs Client on the server; its ERROR frames collected. */
function stomp(server: TickfanServer): Promise<{ client: Client; errors: IFrame[] }> {
  return stompClient(server.port, cleanup);
}

/** A STOMP subscription whose JSON view is checked against the reference after every completed version. */
function watch(client: Client, ref: Reference, topic: string, depth: number, headers: StompHeaders = {}, check = true) {
  const w = { view: new JsonView(), versions: [] as number[], messages: [] as IMessage[], kinds: new Set<string>() };
  const h: StompHeaders = { ...headers };
  if (depth) h['tickfan-tables'] = `bids:${depth},asks:${depth}`;
  client.subscribe(
    `/topic/${topic}`,
    (m) => {
      w.messages.push(m);
      w.kinds.add(m.headers['tickfan-kind']!);
      const body = JSON.parse(m.body);
      if (String(body.version) !== m.headers['tickfan-version']) w.view.problems.push(`header version ${m.headers['tickfan-version']} != body ${body.version}`);
      if (!w.view.apply(body)) return;
      w.versions.push(w.view.version);
      if (check) w.view.check(ref, depth, `depth ${depth}`);
    },
    h,
  );
  return w;
}

const yieldTurn = () => new Promise((res) => setImmediate(res));

describe('keyed topics over STOMP (@stomp/stompjs)', () => {
  it('depth 10, full depth and checksums equal top-N of the reference after every update; a late joiner; resume by tickfan-resume', async () => {
    const server = await h.server();
    const topic = 'kt.book';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    const peers = await Promise.all([0, 1, 2].map(() => stomp(server)));
    const ws = [watch(peers[0]!.client, ref, topic, 10), watch(peers[1]!.client, ref, topic, 0), watch(peers[2]!.client, ref, topic, 10, { 'tickfan-checksums': 'true' })];
    await waitFor(() => ws.every((w) => w.view.version === ref.version), 5_000, 'first images');
    const r = rng(3131);
    let late: ReturnType<typeof watch> | null = null;
    let accepted = 0;
    let resumeAt = '';
    for (let step = 1; step <= 300; step++) {
      if (publish(server, ref, topic, randomBatch(r, step))) accepted++;
      if (step === 150) late = watch((await stomp(server)).client, ref, topic, 10);
      if (step === 297) resumeAt = `${topic}@${ws[0]!.view.epoch}:${ws[0]!.view.version}`;
      if (step % 5 === 0) await yieldTurn();
    }
    const all = [...ws, late!];
    await waitFor(() => all.every((w) => w.view.version === ref.version), 10_000, 'every subscriber at the last version');
    for (const w of all) expect(w.view.problems.slice(0, 3)).toEqual([]);
    expect(accepted).toBeGreaterThan(150);
    for (const w of ws) for (let i = 1; i < w.versions.length; i++) expect(w.versions[i]).toBe(w.versions[i - 1]! + 1);
    expect(ws[0]!.kinds).toEqual(new Set(['keyedSnapshot', 'keyedDelta']));
    expect(JSON.parse(ws[2]!.messages.at(-1)!.body).checksum).toEqual(expect.any(Number));
    expect(JSON.parse(ws[0]!.messages.at(-1)!.body).checksum).toBeUndefined();
    // The whole book at full depth: 80 levels a side to start with, far more than a depth-10 view.
    expect(ws[1]!.view.rows('bids').length).toBeGreaterThan(10);
    expect(late!.versions[0]).toBeGreaterThan(ws[0]!.versions[0]! + 50);

    // A client that held the depth-10 view a few batches ago resumes from there: one merged view delta (smaller than the view).
    const resumed = (await stomp(server)).client;
    const rw = watch(resumed, ref, topic, 10, { 'tickfan-resume': resumeAt });
    // What it held then: top 10 of the reference at that version.
    const [epoch, version] = resumeAt.split('@')[1]!.split(':').map(Number);
    rw.view.epoch = epoch!;
    rw.view.version = version!;
    for (const side of ['bids', 'asks']) rw.view.tables.set(side, new Map((ref.at.get(version!)![side] ?? []).slice(0, 10)));
    await waitFor(() => rw.view.version === ref.version, 5_000, 'the resumed subscriber');
    expect(rw.kinds).toEqual(new Set(['keyedDelta']));
    expect(rw.view.problems).toEqual([]);
  }, 30_000);

  it('SEND publishes a keyed batch with a receipt; a refused batch is an ERROR naming the row', async () => {
    const server = await h.server();
    const topic = 'kt.send';
    const ref = new Reference(server, topic);
    seed(server, ref, topic);
    // Publishes through STOMP land before the reference records them: checked at the end.
    const sub = watch((await stomp(server)).client, ref, topic, 5, {}, false);
    await waitFor(() => sub.view.version === ref.version, 5_000, 'the first image');
    const pub = await stomp(server);
    const receipt = new Promise<IFrame>((resolve) => pub.client.watchForReceipt('k1', resolve));
    pub.client.publish({
      destination: `/topic/${topic}`,
      headers: { receipt: 'k1', 'content-type': 'application/json' },
      body: JSON.stringify({ fields: { last: 7 }, tables: { bids: { upsert: { 1001: { qty: 5, n: 1 } }, delete: [999] }, asks: { deleteRange: [{ from: 1000, to: 1001 }] } } }),
    });
    await receipt;
    ref.record();
    await waitFor(() => sub.view.version === ref.version, 5_000, 'the delta');
    sub.view.check(ref, 5, 'after SEND');
    expect(sub.view.problems).toEqual([]);
    const last = JSON.parse(sub.messages.at(-1)!.body);
    expect(last).toMatchObject({ type: 'keyedDelta', fields: { last: 7 }, tables: { bids: { insert: { 1001: { qty: 5, n: 1 } }, delete: [999] } } });
    expect(last.tables.asks.delete.sort()).toEqual([1000, 1001]);
    expect(sub.view.rows('bids')[0]).toEqual([1001, { qty: 5, n: 1 }]);

    // A guard that fails refuses the whole batch: ERROR with the reason and row, and the version does not move.
    pub.client.publish({ destination: `/topic/${topic}`, headers: { receipt: 'k2' }, body: JSON.stringify({ fields: { last: 8 }, tables: { bids: { upsert: { 1001: { qty: 1 } }, ifNew: [1001] } } }) });
    await waitFor(() => pub.errors.length > 0, 5_000, 'the ERROR');
    expect(pub.errors[0]!.headers['receipt-id']).toBe('k2');
    expect(pub.errors[0]!.body).toMatch(/1001/);
    expect(server.store.get(topic)!.version).toBe(ref.version);
  }, 15_000);
});
