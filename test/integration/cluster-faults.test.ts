// Issue 11, backbone faults on a real nats-server: NATS killed for 5 s and
// restarted (clients see stale, then exact); an edge stalled until NATS cuts
// it as a slow consumer (it heals, its clients stay exact); an origin restart
// (new epoch: clients re-snapshot, never a delta across epochs).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StatusEvent } from '../../src/client/index.js';
import { ClusterHarness, exactly } from './cluster-helpers.js';
import { chainProblem, http, record, sleep, waitFor, type Recorded } from './helpers.js';
import { NatsServer } from './nats-server.js';

let h: ClusterHarness;
afterEach(async () => {
  await h?.close();
});

function statuses(sub: { on(e: 'status', f: (s: StatusEvent) => void): void }): StatusEvent[] {
  const out: StatusEvent[] = [];
  sub.on('status', (s) => out.push(s));
  return out;
}

function chainsOk(rec: readonly Recorded[], topics: readonly string[]): void {
  for (const t of topics) expect(chainProblem(rec.filter((u) => u.topic === t)), t).toBeNull();
}

describe('cluster faults: NATS restart and origin restart', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('nats-server killed for 5 s and restarted: clients see stale, then exact', async () => {
    h = new ClusterHarness(nats.url);
    const origin = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    const topics = ['nk.A', 'nk.B', 'nk.C'];
    const clients = [h.client(() => a), h.client(() => b)];
    const subs = clients.map((c) => c.subscribe('nk.*'));
    const recs = subs.map(record);
    const seen = subs.map(statuses);
    await waitFor(() => a.cluster.stats.imageRequests > 0 && b.cluster.stats.imageRequests > 0, 5_000, 'the edges to follow nk.*');
    for (let i = 0; i < 30; i++) origin.publish(topics[i % 3]!, { px: i });
    for (const c of clients) await exactly(c, origin, topics);

    await nats.kill();
    const killedAt = Date.now();
    // Every client of both edges is told: stale.
    await waitFor(() => seen.every((s) => topics.every((t) => s.some((e) => e.topic === t && e.status === 'stale'))), 5_000, 'stale on every topic of both edges');
    const staleAfterMs = Date.now() - killedAt;
    const health = (await http(a.port, 'GET', '/healthz')).body as { status: string; cluster: { nats: { state: string } } };
    expect(health).toMatchObject({ status: 'degraded', cluster: { nats: { state: 'reconnecting' } } });
    // The origin goes on sequencing for its own clients meanwhile (edges cannot hear it).
    for (let i = 30; i < 60; i++) origin.publish(topics[i % 3]!, { px: i, [`k${i % 4}`]: i });
    const heardBefore = recs.map((r) => r.length);
    await sleep(Math.max(0, 5_000 - (Date.now() - killedAt)));
    // Nothing was delivered while NATS was away.
    expect(recs.map((r) => r.length)).toEqual(heardBefore);
    await nats.restart();
    const restartedAt = Date.now();

    for (const c of clients) await exactly(c, origin, topics, 15_000);
    await waitFor(() => seen.every((s) => topics.every((t) => s.filter((e) => e.topic === t).at(-1)?.status === 'ok')), 10_000, 'ok again on every topic');
    const exactAfterMs = Date.now() - restartedAt;
    console.log(`RELIABILITY 21, NATS killed ${restartedAt - killedAt} ms: stale on every client after ${staleAfterMs} ms, exact and ok after the restart in ${exactAfterMs} ms; heals ${JSON.stringify(a.cluster.stats.heals)}`);
    expect(staleAfterMs).toBeLessThan(2_000);
    for (const r of recs) chainsOk(r, topics);
    for (const e of [a, b]) expect(e.cluster.stats.heals.reconnect).toBeGreaterThan(0);
    // And it goes on live.
    origin.publish('nk.A', { px: 1000 });
    for (const c of clients) await exactly(c, origin, ['nk.A']);
  }, 40_000);

  it('nats-server paused (hung, connections open) for 7 s: clients see stale, then exact', async () => {
    h = new ClusterHarness(nats.url);
    const origin = await h.origin();
    const a = await h.edge();
    const topics = ['np.A', 'np.B'];
    const c = h.client(() => a);
    const sub = c.subscribe('np.*');
    const rec = record(sub);
    const seen = statuses(sub);
    await waitFor(() => a.cluster.stats.imageRequests > 0, 5_000, 'the edge to follow np.*');
    for (let i = 0; i < 10; i++) origin.publish(topics[i % 2]!, { px: i });
    await exactly(c, origin, topics);
    nats.pause();
    const pausedAt = Date.now();
    let staleAfterMs = -1;
    try {
      for (let i = 10; i < 20; i++) origin.publish(topics[i % 2]!, { px: i });
      // Nothing closes: the edge notices by its pings (every 2 s, 2 unanswered).
      await waitFor(() => topics.every((t) => seen.some((e) => e.topic === t && e.status === 'stale')), 6_900, 'stale while NATS hangs');
      staleAfterMs = Date.now() - pausedAt;
    } finally {
      const left = 7_000 - (Date.now() - pausedAt);
      if (left > 0) await sleep(left);
      nats.resume();
    }
    await exactly(c, origin, topics, 15_000);
    await waitFor(() => topics.every((t) => seen.filter((e) => e.topic === t).at(-1)?.status === 'ok'), 10_000, 'ok again');
    console.log(`RELIABILITY 21, NATS paused 7 s: exact and ok ${Date.now() - pausedAt - 7_000} ms after it resumed (stale on the client after ${staleAfterMs} ms)`);
    chainsOk(rec, topics);
  }, 40_000);

  it('origin restart: new epoch, clients re-snapshot, never a delta across epochs', async () => {
    h = new ClusterHarness(nats.url);
    const first = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    const topics = ['or.A', 'or.B'];
    const clients = [h.client(() => a), h.client(() => b)];
    const subs = clients.map((c) => c.subscribe('or.*'));
    const recs = subs.map(record);
    const seen = subs.map(statuses);
    await waitFor(() => a.cluster.stats.imageRequests > 0 && b.cluster.stats.imageRequests > 0, 5_000, 'the edges to follow or.*');
    for (let i = 0; i < 20; i++) first.publish(topics[i % 2]!, { px: i, old: true });
    for (const c of clients) await exactly(c, first, topics);
    const oldEpochs = topics.map((t) => first.store.get(t)!.epoch);

    await first.close();
    h.nodes.splice(h.nodes.indexOf(first), 1);
    // Its edges hear it leave: its topics go stale.
    await waitFor(() => seen.every((s) => topics.every((t) => s.some((e) => e.topic === t && e.status === 'stale'))), 5_000, 'stale after the origin left');
    const second = await h.origin();
    for (let i = 0; i < 10; i++) second.publish(topics[i % 2]!, { px: 100 + i });
    for (const c of clients) await exactly(c, second, topics);
    for (const [i, t] of topics.entries()) {
      const now = second.store.get(t)!;
      expect(now.epoch).not.toBe(oldEpochs[i]);
      expect(now.version).toBe(5);
      for (const r of recs) {
        const mine = r.filter((u) => u.topic === t);
        // The first update of the new epoch a client got is a snapshot, and no delta ever crossed epochs.
        expect(mine.find((u) => u.epoch === now.epoch)?.snapshot, t).toBe(true);
        expect(chainProblem(mine), t).toBeNull();
        expect(mine.at(-1)!.state).toEqual({ px: 108 + i });
      }
    }
    for (const s of seen) for (const t of topics) expect(s.filter((e) => e.topic === t).at(-1)?.status).toBe('ok');
    expect(a.cluster.stats.heals.epoch + a.cluster.stats.heals.origin).toBeGreaterThan(0);
  });
});

describe('cluster faults: a slow consumer', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    // Small buffers per client, and a short write deadline: a stalled edge is cut soon.
    nats = await NatsServer.start({ maxPending: 256 * 1024, writeDeadline: '1s' });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('an edge stalled until NATS drops it as a slow consumer heals, and its clients stay exact', async () => {
    h = new ClusterHarness(nats.url);
    const origin = await h.origin();
    const a = await h.edge();
    const topics = ['sc.A', 'sc.B', 'sc.C', 'sc.D'];
    const c = h.client(() => a);
    const rec = record(c.subscribe('sc.*'));
    await waitFor(() => a.cluster.stats.imageRequests > 0, 5_000, 'the edge to follow sc.*');
    for (const t of topics) origin.publish(t, { px: 0 });
    await exactly(c, origin, topics);
    const before = (await nats.varz()).slow_consumers ?? 0;

    a.cluster.stallNats(4_000);
    const pad = 'x'.repeat(1000);
    const started = Date.now();
    let i = 0;
    // Bounded: at most 150,000 updates of 1 kB (≈ 50k/s), or 15 s, until nats-server reports the
    // slow consumer (its writes to the edge blocked past the 1 s write deadline).
    while (i < 150_000 && Date.now() - started < 15_000) {
      for (let k = 0; k < 500; k++, i++) origin.publish(topics[i % 4]!, { px: i, pad });
      await sleep(10);
      if (i % 5_000 === 0 && ((await nats.varz()).slow_consumers ?? 0) > before) break;
    }
    expect((await nats.varz()).slow_consumers).toBeGreaterThan(before);
    origin.publish('sc.A', { px: -1, pad: 'last' });
    await exactly(c, origin, topics, 20_000);
    expect(a.cluster.stats.heals.reconnect).toBeGreaterThan(0);
    chainsOk(rec, topics);
    expect(c.stats.sequenceGaps).toBe(0);
  }, 45_000);
});
