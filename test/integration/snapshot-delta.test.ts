// A subscriber gets one snapshot, then one delta per publish with consecutive
// versions, and holds exactly what the server holds at every version. The
// HTTP endpoints (publish, snapshot, healthz) answer as documented.

import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import type { FieldValue } from '../../src/protocol/index.js';
import { Harness, caughtUp, chainProblem, http, record, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

type Fields = Record<string, FieldValue | null>;

function apply(state: Record<string, FieldValue>, changes: Fields): Record<string, FieldValue> {
  const next = { ...state };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}

describe('snapshot then deltas', () => {
  it('delivers a snapshot, then every publish (HTTP, SDK, in-process) as a delta with the next version, each exact', async () => {
    const server = await h.server();
    const topic = 'sd.AAPL';
    const first = await http(server.port, 'POST', `/publish/${topic}`, { bid: 101.25, ask: 101.27, venue: 'XNAS', halted: false, lot: 100 });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ topic, epoch: expect.any(Number), version: 1 });
    const epoch = (first.body as { epoch: number }).epoch;
    expect(epoch).toBeGreaterThan(0);

    // What the state must be at each version, built from what was published.
    const model = new Map<number, Record<string, FieldValue>>([[1, { bid: 101.25, ask: 101.27, venue: 'XNAS', halted: false, lot: 100 }]]);
    const published = new Map<number, Fields>();

    const client = await h.connected(server);
    const sub = client.subscribe(topic);
    const updates = record(sub);
    await sub.ready;
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ topic, snapshot: true, epoch, version: 1, state: model.get(1) });

    const publisher = await h.connected(server);
    for (let i = 0; i < 30; i++) {
      const changes: Fields = { bid: 101.25 + i / 100, seq: i };
      if (i % 5 === 1) changes.ask = null; // deletes travel as deletes
      if (i % 5 === 3) changes.ask = 101.3 + i / 100;
      if (i % 7 === 2) changes.note = `tick ${i}`;
      if (i % 7 === 5) changes.note = null;
      let ack: { topic: string; epoch: number; version: number };
      if (i % 3 === 0) {
        const res = await http(server.port, 'POST', `/publish/${topic}`, changes);
        expect(res.status).toBe(200);
        ack = res.body as typeof ack;
      } else if (i % 3 === 1) {
        ack = await publisher.publish(topic, changes);
      } else {
        ack = server.publish(topic, changes);
      }
      expect(ack).toEqual({ topic, epoch, version: i + 2 });
      published.set(i + 2, changes);
      model.set(i + 2, apply(model.get(i + 1)!, changes));
    }

    await waitFor(() => sub.version === 31, 5_000, 'the subscriber to reach v31');
    expect(chainProblem(updates, { full: true })).toBeNull();
    expect(updates.map((u) => u.version)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    for (const u of updates.slice(1)) {
      expect(u).toMatchObject({ snapshot: false, epoch, updates: 1 });
      expect(u.changes).toEqual(published.get(u.version));
      expect(u.state).toEqual(model.get(u.version));
    }

    // The client holds exactly what GET /snapshot says, at the same version.
    const snap = await http(server.port, 'GET', `/snapshot/${topic}`);
    expect(snap.status).toBe(200);
    expect(snap.body).toMatchObject({ topic, epoch, version: 31, stale: false });
    const held = client.stateOf(topic)!;
    expect(held.version).toBe((snap.body as { version: number }).version);
    expect(held.state).toEqual((snap.body as { fields: unknown }).fields);
    expect(held.state).toEqual(model.get(31));
    expect(client.stats).toMatchObject({ gaps: 0, catchUps: 0, snapshots: 1, deltas: 30 });
  });

  it('a subscription made before the topic exists gets its first image when it is created', async () => {
    const server = await h.server();
    const client = await h.connected(server);
    const sub = client.subscribe('sd.LATE');
    const updates = record(sub);
    await http(server.port, 'POST', '/publish/sd.OTHER', { x: 1 }); // round trip: the subscribe is in
    const res = await http(server.port, 'POST', '/publish/sd.LATE', { px: 5 });
    expect(res.body).toMatchObject({ topic: 'sd.LATE', version: 1 });
    await sub.ready;
    server.publish('sd.LATE', { px: 6 });
    await waitFor(() => caughtUp(client, server, 'sd.LATE'), 5_000, 'v2');
    expect(updates.map((u) => [u.snapshot, u.version, u.state])).toEqual([
      [true, 1, { px: 5 }],
      [false, 2, { px: 6 }],
    ]);
    expect(chainProblem(updates, { full: true })).toBeNull();
  });
});

describe('SDK defaults', () => {
  it("connects with the SDK's default WebSocket (the ws package on Node 20)", async () => {
    const server = await h.server();
    server.publish('sd.DEF', { px: 1 });
    const client = await h.connected(server, { WebSocket: undefined });
    const sub = client.subscribe('sd.DEF');
    await sub.ready;
    server.publish('sd.DEF', { px: 2 });
    await waitFor(() => sub.version === 2, 5_000, 'v2');
    expect(sub.state).toEqual({ px: 2 });
  });
});

describe('HTTP', () => {
  it('GET /snapshot of an unknown topic is a 404 with UNKNOWN_TOPIC', async () => {
    const server = await h.server();
    const res = await http(server.port, 'GET', '/snapshot/sd.NOPE');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: ErrorCode.UNKNOWN_TOPIC, name: 'TICKFAN_ERR_UNKNOWN_TOPIC' } });
  });

  it('POST /publish with a null field deletes it, and bad bodies or topics are refused with codes', async () => {
    const server = await h.server();
    await http(server.port, 'POST', '/publish/sd.DEL', { a: 1, b: 'two' });
    const del = await http(server.port, 'POST', '/publish/sd.DEL', { b: null });
    expect(del.body).toMatchObject({ topic: 'sd.DEL', version: 2 });
    expect((await http(server.port, 'GET', '/snapshot/sd.DEL')).body).toMatchObject({ version: 2, fields: { a: 1 } });
    expect((await http(server.port, 'GET', '/snapshot/sd.DEL')).body).not.toHaveProperty('fields.b');

    const notJson = await http(server.port, 'POST', '/publish/sd.DEL', '{"a":');
    expect(notJson.status).toBe(400);
    expect(notJson.body).toMatchObject({ error: { code: ErrorCode.BAD_REQUEST } });
    const array = await http(server.port, 'POST', '/publish/sd.DEL', [1, 2]);
    expect(array.status).toBe(400);
    const badTopic = await http(server.port, 'POST', `/publish/${encodeURIComponent('bad topic!')}`, { a: 1 });
    expect(badTopic.status).toBe(400);
    expect(badTopic.body).toMatchObject({ error: { code: ErrorCode.BAD_TOPIC } });
    // Nothing of that was applied.
    expect((await http(server.port, 'GET', '/snapshot/sd.DEL')).body).toMatchObject({ version: 2 });
  });

  it('GET /healthz reports ok with counters', async () => {
    const server = await h.server();
    server.publish('sd.H', { a: 1 });
    const client = await h.connected(server);
    await client.subscribe('sd.H').ready;
    const res = await http(server.port, 'GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', topics: 1, connections: 1, subscriptions: 1, publishes: 1 });
  });
});
