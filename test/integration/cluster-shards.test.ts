// Issue 11, ownership on a real nats-server: two origins share 1,000 topics
// by hash (each topic has one version chain, one owner, ids that never
// collide), publishes from anywhere reach the owner; a second origin for the
// same shard, or one that cuts the topics another way, refuses to start.

import { describe, expect, it } from 'vitest';
import { ShardTakenError, shardOf, type ClusterServer } from '../../src/cluster/index.js';
import { ClusterHarness, exactly, heldBy, snapshotOn, clusterFixture } from './cluster-helpers.js';
import { chainProblem, record, waitFor } from './helpers.js';

const fx = clusterFixture();
let h: ClusterHarness;

describe('cluster: two origins sharding topics', () => {
  it('1,000 topics over two origins: each topic has one owner and one version chain', async () => {
    h = fx.harness();
    const o1 = await h.origin({ shard: '1/2' });
    const o2 = await h.origin({ shard: '2/2' });
    const [a, b] = [await h.edge(), await h.edge()];
    const watchers = [h.client(() => a), h.client(() => b)];
    const recs = watchers.map((c) => record(c.subscribe('sh.>')));
    await waitFor(() => a.cluster.stats.imageRequests >= 2 && b.cluster.stats.imageRequests >= 2, 5_000, 'both edges to ask both origins');
    // Publishers on every node: edges forward, origins sequence their own and forward the rest.
    const publishers = [h.client(() => a), h.client(() => b), h.client(() => o1), h.client(() => o2)];
    const topics = Array.from({ length: 1000 }, (_, i) => `sh.t${i}`);
    const acks = new Map<string, { epoch: number; version: number }[]>();
    for (let round = 0; round < 3; round++) {
      for (let from = 0; from < topics.length; from += 250) {
        await Promise.all(
          topics.slice(from, from + 250).map(async (t, k) => {
            const ack = await publishers[(from + k + round) % 4]!.publish(t, { px: round, [`r${round}`]: t });
            acks.set(t, [...(acks.get(t) ?? []), ack]);
          }),
        );
      }
    }
    const owner = (t: string): ClusterServer => (shardOf(t, 2) === 1 ? o1 : o2);
    const counts = [0, 0];
    for (const t of topics) {
      const o = owner(t);
      const other = o === o1 ? o2 : o1;
      counts[o === o1 ? 0 : 1]!++;
      expect(o.store.get(t), t).toMatchObject({ version: 3 });
      expect(other.store.get(t), t).toBeUndefined();
      // Origin i of 2 numbers its topics i, i + 2, …: ids never collide.
      expect(o.store.get(t)!.id % 2).toBe(o === o1 ? 1 : 0);
      // One chain: the three acks carry versions 1, 2, 3 of one epoch, the owner's.
      const mine = acks.get(t)!;
      expect(mine.map((x) => x.version).sort()).toEqual([1, 2, 3]);
      expect(new Set(mine.map((x) => x.epoch))).toEqual(new Set([o.store.get(t)!.epoch]));
    }
    expect(Math.min(...counts)).toBeGreaterThan(400);
    // Both edges and their clients hold every topic at the owner's (epoch, version).
    for (const [i, c] of watchers.entries()) {
      await waitFor(() => topics.every((t) => c.stateOf(t)?.version === 3), 10_000, `watcher ${i} to hold every topic at v3`);
      for (const t of topics) {
        const o = owner(t).store.get(t)!;
        expect(heldBy(c, t)).toMatchObject({ epoch: o.epoch, version: 3 });
        expect(c.stateOf(t)!.state).toEqual({ px: 2, r0: t, r1: t, r2: t });
      }
      const byTopic = new Map<string, typeof recs[0]>();
      for (const u of recs[i]!) byTopic.set(u.topic, [...(byTopic.get(u.topic) ?? []), u]);
      for (const t of topics) expect(chainProblem(byTopic.get(t)!), t).toBeNull();
    }
    for (const e of [a, b]) for (const t of topics.slice(0, 50)) expect(e.store.get(t)!.id).toBe(owner(t).store.get(t)!.id);
    expect((await snapshotOn(a, 'sh.t7')).fields).toEqual((await snapshotOn(owner('sh.t7'), 'sh.t7')).fields);
  }, 30_000);

  it("a 'both' node sequences its shard and serves its clients replicas of the other shard's topics", async () => {
    h = fx.harness();
    const both = await h.node({ role: 'both', shard: '1/2' });
    const o2 = await h.origin({ shard: '2/2' });
    const c = h.client(() => both);
    const rec = record(c.subscribe('bo.>'));
    await waitFor(() => both.cluster.stats.imageAnswers > 0, 5_000, "shard 2 to answer the 'both' node's image request for bo.>");
    const topics = Array.from({ length: 20 }, (_, i) => `bo.t${i}`);
    for (const t of topics) for (let v = 0; v < 3; v++) await c.publish(t, { v });
    const theirs = topics.filter((t) => shardOf(t, 2) === 2);
    expect(theirs.length).toBeGreaterThan(3);
    expect(theirs.length).toBeLessThan(17);
    for (const t of topics) {
      const owner = shardOf(t, 2) === 1 ? both : o2;
      await exactly(c, owner, [t]);
      // The replica on the 'both' node is the owner's topic: same id and epoch.
      expect(both.store.get(t)).toMatchObject({ id: owner.store.get(t)!.id, epoch: owner.store.get(t)!.epoch, version: 3 });
      expect(chainProblem(rec.filter((u) => u.topic === t), { full: true }), t).toBeNull();
    }
    expect(both.cluster.stats.forwardedOut).toBe(3 * theirs.length);
    // Its own updates come back from NATS too (the pattern covers them) and are not applied twice.
    expect(both.cluster.stats.updatesIn).toBe(3 * theirs.length);
    expect(both.cluster.stats.updatesOut).toBe(3 * (topics.length - theirs.length));
  });

  it('an edge follows only what its clients want: it lets a topic go 5 s after its last subscriber, and takes it up again exactly', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const a = await h.edge();
    origin.publish('if.x', { v: 0 });
    origin.publish('if.other', { v: 0 });
    const c1 = h.client(() => a);
    const s1 = c1.subscribe('if.x');
    await exactly(c1, origin, ['if.x']);
    origin.publish('if.other', { v: 1 });
    s1.unsubscribe();
    origin.publish('if.x', { v: 1 });
    await waitFor(() => a.store.get('if.x')!.version === 2, 5_000, 'still followed right after the last client left');
    // Only what was asked for: the other topic (published before, on the same origin connection) never reached the edge.
    expect(a.store.get('if.other')).toBeUndefined();
    await waitFor(() => a.store.get('if.x')!.stale, 8_000, 'let go (flagged stale) after the linger');
    origin.publish('if.x', { v: 2 });
    origin.publish('if.x', { v: 3 });
    await new Promise((r) => setTimeout(r, 200));
    expect(a.store.get('if.x')!.version).toBe(2); // no longer updated
    const c2 = h.client(() => a);
    const seen: string[] = [];
    c2.subscribe('if.x').on('status', (e) => seen.push(e.status));
    await exactly(c2, origin, ['if.x']);
    await waitFor(() => seen.at(-1) === 'ok', 5_000, 'ok again once followed');
    expect(a.store.get('if.x')).toMatchObject({ version: 4, stale: false });
  }, 20_000);

  it('a second origin for the same shard refuses to start, naming the holder; it may once the holder stops', async () => {
    h = fx.harness();
    const o1 = await h.origin({ shard: '1/2' });
    const second = h.origin({ shard: '1/2' });
    await expect(second).rejects.toBeInstanceOf(ShardTakenError);
    await expect(second).rejects.toMatchObject({ code: 'TICKFAN_ERR_SHARD_TAKEN', holder: { id: o1.cluster.id, shard: '1/2' } });
    await expect(second).rejects.toThrow(/shard 1\/2 is held by origin .*: a live origin .*a second origin for the same shard refuses to start/);
    // Cutting the topics another way (n = 3) is refused as well.
    await expect(h.origin({ shard: '2/3' })).rejects.toThrow(/every origin of a cluster must give the same n, this one says 2\/3/);
    // Still one owner: the first one goes on sequencing.
    const mine = ['own.a', 'own.b', 'own.c', 'own.d'].find((t) => shardOf(t, 2) === 1)!;
    expect(o1.publish(mine, { v: 1 }).version).toBe(1);
    await o1.close();
    h.nodes.splice(h.nodes.indexOf(o1), 1);
    const next = await h.origin({ shard: '1/2' });
    expect(next.cluster.shard).toBe('1/2');
  });
});
