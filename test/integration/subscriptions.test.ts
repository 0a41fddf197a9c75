// Field subsets and patterns deliver exactly what was asked for, topics
// created after a pattern subscription are delivered, and unsubscribe stops
// delivery at the server (not just in the SDK).

import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanClient } from '../../src/client/index.js';
import { Harness, caughtUp, chainProblem, record, serverState, sleep, waitFor, type Recorded } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

describe('field subset', () => {
  it("fields ['bid'] sees only bid, in changes and in state, while the version stays exact", async () => {
    const server = await h.server();
    const topic = 'fs.AAPL';
    server.publish(topic, { bid: 1, ask: 2, last: 3 });
    const client = await h.connected(server);
    const sub = client.subscribe(topic, { fields: ['bid'] });
    const ups = record(sub);
    await sub.ready;

    server.publish(topic, { bid: 10, ask: 20 }); // v2
    server.publish(topic, { ask: 21, last: 31 }); // v3: nothing for this subscriber to see
    server.publish(topic, { bid: null, last: 32 }); // v4: bid deleted
    server.publish(topic, { bid: 12 }); // v5
    server.publish(topic, { last: 33 }); // v6
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'v6');

    expect(ups.map((u) => [u.version, u.snapshot, u.changes, u.state])).toEqual([
      [1, true, { bid: 1 }, { bid: 1 }],
      [2, false, { bid: 10 }, { bid: 10 }],
      [4, false, { bid: null }, {}],
      [5, false, { bid: 12 }, { bid: 12 }],
    ]);
    expect(sub.version).toBe(6);
    expect(sub.state).toEqual({ bid: 12 });
    // The server never sent the other fields: the client's whole copy is bid only.
    expect(client.stateOf(topic)).toEqual({ epoch: server.store.get(topic)!.epoch, version: 6, state: { bid: 12 } });
    expect(client.stats).toMatchObject({ gaps: 0, catchUps: 0 });
  });

  it('a subset subscriber and a full subscriber on one connection each get what they asked for', async () => {
    const server = await h.server();
    const topic = 'fs.MSFT';
    server.publish(topic, { bid: 1, ask: 2 });
    const client = await h.connected(server);
    const narrow = client.subscribe(topic, { fields: ['ask'] });
    const wide = client.subscribe(topic);
    const [n, w] = [record(narrow), record(wide)];
    await Promise.all([narrow.ready, wide.ready]);
    server.publish(topic, { bid: 5 });
    server.publish(topic, { ask: 6 });
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'v3');
    expect(narrow.state).toEqual({ ask: 6 });
    expect(wide.state).toEqual({ bid: 5, ask: 6 });
    for (const u of n) expect(Object.keys(u.changes).every((k) => k === 'ask')).toBe(true);
    expect(w.at(-1)!.state).toEqual(serverState(server, topic).state);
    expect(chainProblem(w)).toBeNull();
  });
});

describe('two subscriptions to one topic on one connection', () => {
  it('a wider field subset added later gets the fields the connection had not been sent', async () => {
    const server = await h.server();
    const topic = 'fs.WIDE';
    server.publish(topic, { bid: 1, ask: 2, last: 3 });
    const client = await h.connected(server);
    const narrow = client.subscribe(topic, { fields: ['bid'] });
    await narrow.ready;
    const wide = client.subscribe(topic, { fields: ['bid', 'ask', 'last'] });
    const all = client.subscribe(topic);
    await Promise.all([wide.ready, all.ready]);
    expect(wide.state).toEqual({ bid: 1, ask: 2, last: 3 });
    expect(all.state).toEqual({ bid: 1, ask: 2, last: 3 });
    expect(narrow.state).toEqual({ bid: 1 });
    server.publish(topic, { bid: 5 });
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'v2');
    expect(all.state).toEqual(serverState(server, topic).state);

    // Narrowing again: the client must not keep fields the server no longer updates.
    wide.unsubscribe();
    all.unsubscribe();
    server.publish(topic, { ask: 99, bid: 6 });
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'v3');
    expect(client.stateOf(topic)!.state).toEqual({ bid: 6 });
    expect(narrow.state).toEqual({ bid: 6 });
    expect(client.stats.gaps).toBe(0);
  });

  it('a full-rate subscription added to a throttled one is brought current at once, not at the next flush', async () => {
    const server = await h.server();
    const topic = 'rt.JOIN';
    server.publish(topic, { px: 0 });
    const client = await h.connected(server);
    const slow = client.subscribe(topic, { maxRate: 1 }); // one flush per second
    await slow.ready;
    server.publish(topic, { px: 1 }); // leading edge: sent at once
    await waitFor(() => slow.version === 2, 2_000, 'the leading-edge flush');
    const leadingEdgeAt = performance.now();
    server.publish(topic, { px: 2 }); // held for the next flush, ~1 s away
    server.publish(topic, { px: 3 });
    const fast = client.subscribe(topic);
    await fast.ready;
    // The topic is quiet from now on: the full-rate subscriber must still see v4 soon.
    await waitFor(() => caughtUp(client, server, topic), 500, 'v4 for the full-rate subscription');
    expect(fast.state).toEqual({ px: 3 });
    // The throttled flush that would have come must not break anything. Time is the signal: it was due
    // one interval (1 s) after the leading edge; wait until then, plus 100 ms.
    await sleep(leadingEdgeAt + 1_100 - performance.now());
    server.publish(topic, { px: 4 });
    await waitFor(() => caughtUp(client, server, topic), 2_000, 'v5');
    expect(fast.state).toEqual({ px: 4 });
    expect(client.stats.gaps).toBe(0);
  });
});

describe('patterns', () => {
  /** Topics a client received, once it holds the `barrier` topic's current version. */
  async function received(client: TickfanClient, ups: Recorded[], server: Parameters<typeof caughtUp>[1], barrier: string): Promise<string[]> {
    await waitFor(() => caughtUp(client, server, barrier), 5_000, `${barrier} to arrive`);
    return [...new Set(ups.map((u) => u.topic))].sort();
  }

  it('px.* matches one level, px.> the rest, > everything; topics created later are delivered', async () => {
    const server = await h.server();
    for (const t of ['pt.A', 'pt.A.B', 'pt.C', 'other.X']) server.publish(t, { v: 1 });

    const clients = {
      star: await h.connected(server),
      tail: await h.connected(server),
      all: await h.connected(server),
    };
    const subs = {
      star: clients.star.subscribe('pt.*'),
      tail: clients.tail.subscribe('pt.>'),
      all: clients.all.subscribe('>'),
    };
    const ups = { star: record(subs.star), tail: record(subs.tail), all: record(subs.all) };
    await Promise.all(Object.values(subs).map((s) => s.ready));

    // Images of the matching topics came before ready.
    expect(ups.star.map((u) => u.topic).sort()).toEqual(['pt.A', 'pt.C']);
    expect(ups.tail.map((u) => u.topic).sort()).toEqual(['pt.A', 'pt.A.B', 'pt.C']);
    expect(ups.all.map((u) => u.topic).sort()).toEqual(['other.X', 'pt.A', 'pt.A.B', 'pt.C']);
    for (const u of [...ups.star, ...ups.tail, ...ups.all]) expect(u).toMatchObject({ snapshot: true, version: 1 });

    // Updates to every topic, and new topics after the subscription.
    for (const t of ['pt.A', 'pt.A.B', 'pt.C', 'other.X']) server.publish(t, { v: 2 });
    server.publish('pt.D', { v: 1 });
    server.publish('pt.D.E', { v: 1 });
    server.publish('other.Y', { v: 1 });
    server.publish('pt.Z', { end: true }); // barrier: every pattern matches it, and it comes last

    expect(await received(clients.star, ups.star, server, 'pt.Z')).toEqual(['pt.A', 'pt.C', 'pt.D', 'pt.Z']);
    expect(await received(clients.tail, ups.tail, server, 'pt.Z')).toEqual(['pt.A', 'pt.A.B', 'pt.C', 'pt.D', 'pt.D.E', 'pt.Z']);
    expect(await received(clients.all, ups.all, server, 'pt.Z')).toEqual(['other.X', 'other.Y', 'pt.A', 'pt.A.B', 'pt.C', 'pt.D', 'pt.D.E', 'pt.Z']);
    // The server did not send the rest at all (the SDK holds no copy of it).
    expect(clients.star.stateOf('pt.A.B')).toBeUndefined();
    expect(clients.star.stateOf('other.X')).toBeUndefined();
    expect(clients.tail.stateOf('other.Y')).toBeUndefined();

    for (const [name, list] of Object.entries(ups)) {
      // A topic created after the subscription arrives as a snapshot at v1.
      expect(list.find((u) => u.topic === 'pt.D'), name).toMatchObject({ snapshot: true, version: 1, state: { v: 1 } });
      for (const t of new Set(list.map((u) => u.topic))) {
        const mine = list.filter((u) => u.topic === t);
        expect(chainProblem(mine, { full: true }), `${name} ${t}`).toBeNull();
        expect(mine.at(-1)!.state, `${name} ${t}`).toEqual(serverState(server, t).state);
      }
    }
  });

  it('unsubscribe stops delivery from the server', async () => {
    const server = await h.server();
    server.publish('us.A', { v: 0 });
    const client = await h.connected(server);
    const sub = client.subscribe('us.A');
    const pat = client.subscribe('us.*');
    const ups = record(sub);
    const patUps = record(pat);
    await Promise.all([sub.ready, pat.ready]);
    for (let i = 1; i <= 3; i++) server.publish('us.A', { v: i });
    await waitFor(() => sub.version === 4, 5_000, 'v4');
    expect(server.stats.subscriptions).toBe(2);

    sub.unsubscribe();
    pat.unsubscribe();
    await client.publish('us2.barrier', { x: 1 }); // acked after the unsubscribes were handled
    expect(server.stats.subscriptions).toBe(0);
    const deltasBefore = client.stats.deltas;
    const [n, pn] = [ups.length, patUps.length];
    for (let i = 5; i <= 10; i++) server.publish('us.A', { v: i });
    server.publish('us.B', { v: 1 }); // a new topic the pattern would have matched
    await client.publish('us2.barrier', { x: 2 }); // anything sent before this ack has arrived

    expect(ups.length).toBe(n);
    expect(patUps.length).toBe(pn);
    expect(client.stats.deltas).toBe(deltasBefore);
    expect(client.stats.snapshots).toBe(1);
    expect(client.stateOf('us.A')).toBeUndefined();
    expect(client.stateOf('us.B')).toBeUndefined();
  });
});
