// Throttled rate tiers: a burst reaches a `maxRate: 10` subscriber as a few
// conflated deltas whose final state is exact, while a full-rate subscriber
// on the same topic sees every version. Each update is encoded once per tier.

import { afterEach, describe, expect, it } from 'vitest';
import type { FieldValue } from '../../src/protocol/index.js';
import { Harness, caughtUp, chainProblem, http, record, serverState, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

describe('throttled tier', () => {
  it('1,000 updates in ~200 ms reach a maxRate 10 subscriber as a handful of exact conflated deltas', async () => {
    const server = await h.server({ heartbeatMs: 100 });
    const topic = 'rt.EURUSD';
    const statics: Record<string, FieldValue> = {};
    for (let i = 0; i < 20; i++) statics[`lvl.${i}`] = 1000 + i;
    server.publish(topic, { bid: 1.1, ask: 1.2, ...statics });

    // Two throttled subscribers and one full-rate one, each on its own connection.
    const slow1 = await h.connected(server);
    const slow2 = await h.connected(server);
    const fast = await h.connected(server);
    const s1 = slow1.subscribe(topic, { maxRate: 10 });
    const s2 = slow2.subscribe(topic, { maxRate: 10 });
    const sf = fast.subscribe(topic);
    const [u1, u2, uf] = [record(s1), record(s2), record(sf)];
    await Promise.all([s1.ready, s2.ready, sf.ready]);
    const encodesBefore = server.stats.encodes;

    // The burst: 10 batches of 100 pipelined publishes, 20 ms apart.
    const publisher = await h.connected(server);
    const acks: Promise<unknown>[] = [];
    const started = performance.now();
    for (let batch = 0; batch < 10; batch++) {
      for (let j = 0; j < 100; j++) {
        const i = batch * 100 + j;
        const changes: Record<string, FieldValue | null> = { bid: 1.1 + i / 1e5, ask: 1.2 + i / 1e5, n: i };
        // Field-level conflation with deletes and re-adds along the way.
        changes[`lvl.${i % 20}`] = i % 3 === 0 ? null : i;
        acks.push(publisher.publish(topic, changes));
      }
      await sleep(20); // time is the signal: the burst spans ~200 ms, i.e. a few flushes of the 100 ms tier
    }
    await Promise.all(acks);
    const burstMs = performance.now() - started;
    expect(server.store.get(topic)!.version).toBe(1001);

    await waitFor(() => [slow1, slow2, fast].every((c) => caughtUp(c, server, topic)), 5_000, 'all subscribers at v1001');
    const want = serverState(server, topic);

    for (const [client, sub, ups] of [
      [slow1, s1, u1],
      [slow2, s2, u2],
    ] as const) {
      const deltas = ups.slice(1);
      expect(ups[0]!.snapshot).toBe(true);
      expect(chainProblem(ups)).toBeNull();
      // At 10/s, a ~200 ms burst is a handful of deltas, not 1,000 (a loaded
      // machine that stretched the burst may see one more per 100 ms).
      const allowed = Math.max(6, Math.ceil(burstMs / 100) + 2);
      expect(deltas.length, `burst of ${burstMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(1);
      expect(deltas.length, `burst of ${burstMs.toFixed(0)} ms`).toBeLessThanOrEqual(allowed);
      expect(deltas.some((u) => u.updates > 1)).toBe(true);
      expect(deltas.reduce((n, u) => n + u.updates, 0)).toBe(1000);
      // Exact: the final state is the server's, field for field.
      expect(ups.at(-1)!.state).toEqual(want.state);
      expect(sub.state).toEqual(want.state);
      expect(client.stats).toMatchObject({ gaps: 0, catchUps: 0 });
    }
    // Both throttled subscribers got the very same conflated deltas.
    expect(u2.map((u) => [u.version, u.updates])).toEqual(u1.map((u) => [u.version, u.updates]));

    // The full-rate subscriber saw every version.
    expect(chainProblem(uf, { full: true })).toBeNull();
    expect(uf).toHaveLength(1001);
    expect(uf.at(-1)!.state).toEqual(want.state);

    // Encode once per update per tier: 1,000 for the full-rate tier plus one
    // per flush of the 10/s tier, however many subscribers each has.
    expect(server.stats.encodes - encodesBefore).toBe(1000 + u1.length - 1);

    const snap = await http(server.port, 'GET', `/snapshot/${topic}`);
    expect((snap.body as { fields: unknown }).fields).toEqual(want.state);
  });

  it('a quiet throttled topic is delivered at once, and the flushes stay at least one interval apart', async () => {
    const server = await h.server();
    const topic = 'rt.QUIET';
    server.publish(topic, { px: 0 });
    const client = await h.connected(server);
    const sub = client.subscribe(topic, { maxRate: 4 }); // 250 ms tier
    const at: number[] = [];
    const ups = record(sub);
    sub.on('update', () => at.push(performance.now()));
    await sub.ready;

    const t0 = performance.now();
    server.publish(topic, { px: 1 });
    await waitFor(() => sub.version === 2, 2_000, 'the leading-edge delta');
    expect(performance.now() - t0).toBeLessThan(200); // leading edge: not held back a whole 250 ms interval

    // Keep publishing for ~600 ms: at 4/s that is at most 3–4 deltas more.
    for (let i = 2; i < 62; i++) {
      server.publish(topic, { px: i });
      await sleep(10); // time is the signal: publishes spread over ~600 ms, against a 250 ms tier
    }
    await waitFor(() => caughtUp(client, server, topic), 2_000, 'the last flush');
    expect(chainProblem(ups)).toBeNull();
    // Server flushes are ≥ 250 ms apart; allow 100 ms of receive jitter (unthrottled would be ~10 ms).
    const gaps = at.slice(2).map((t, i) => t - at[i + 1]!);
    for (const g of gaps) expect(g).toBeGreaterThan(150);
    expect(ups.length - 1).toBeLessThanOrEqual(5);
    expect(sub.state).toEqual({ px: 61 });
  });
});
