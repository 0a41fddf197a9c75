// Issue 11, on a real nats-server: one origin and two edges. Clients on both
// edges see the same version chains; a publish on edge B is acknowledged with
// the origin's version and reaches clients on edge A; a client cut from edge A
// resumes on edge B — by merged delta when B's history covers the gap, by
// snapshot when not — and holds exactly what the origin's GET /snapshot says.

import { describe, expect, it } from 'vitest';
import { ClusterHarness, exactly, snapshotOn, clusterFixture } from './cluster-helpers.js';
import { chainProblem, http, record, waitFor, type Recorded } from './helpers.js';

const fx = clusterFixture();
let h: ClusterHarness;

function byTopic(updates: readonly Recorded[]): Map<string, Recorded[]> {
  const m = new Map<string, Recorded[]>();
  for (const u of updates) m.set(u.topic, [...(m.get(u.topic) ?? []), u]);
  return m;
}

describe('cluster: one origin, two edges', () => {
  it('clients on both edges see the same version chains, exact against the origin', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    const ca = h.client(() => a);
    const cb = h.client(() => b);
    const ra = record(ca.subscribe('ch.*'));
    const rb = record(cb.subscribe('ch.*'));
    await Promise.all([ca, cb].map((c) => waitFor(() => c.state === 'connected', 5_000, 'clients connected')));
    await waitFor(() => a.cluster.stats.imageRequests > 0 && b.cluster.stats.imageRequests > 0, 5_000, 'both edges to follow ch.*');
    const topics = ['ch.A', 'ch.B', 'ch.C', 'ch.D'];
    for (let i = 0; i < 400; i++) {
      origin.publish(topics[i % topics.length]!, { bid: 100 + i / 100, seq: i, ...(i % 7 === 0 ? { note: null } : { note: `n${i}` }) });
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    for (const c of [ca, cb]) await exactly(c, origin, topics);
    const [ga, gb] = [byTopic(ra), byTopic(rb)];
    for (const t of topics) {
      expect(chainProblem(ga.get(t)!, { full: true }), `${t} on edge A`).toBeNull();
      expect(chainProblem(gb.get(t)!, { full: true }), `${t} on edge B`).toBeNull();
      // From where both started, the same versions in the same order.
      const from = Math.max(ga.get(t)![0]!.version, gb.get(t)![0]!.version);
      const va = ga.get(t)!.filter((u) => u.version >= from).map((u) => `${u.epoch}:${u.version}`);
      const vb = gb.get(t)!.filter((u) => u.version >= from).map((u) => `${u.epoch}:${u.version}`);
      expect(va).toEqual(vb);
      expect(va.length).toBeGreaterThan(50);
      expect(va.at(-1)).toBe(`${origin.store.get(t)!.epoch}:100`);
    }
    // The edges hold the origin's versions and topic ids, they do not sequence.
    for (const e of [a, b]) for (const t of topics) expect(e.store.get(t)!.id).toBe(origin.store.get(t)!.id);
    expect(a.stats.publishes).toBe(400);
  });

  it('a publish on edge B is acknowledged with the origin version and reaches clients on edge A', async () => {
    h = fx.harness();
    const origin = await h.origin({ limits: { maxFieldsPerTopic: 4 } });
    const [a, b] = [await h.edge(), await h.edge()];
    const ca = h.client(() => a);
    const ra = record(ca.subscribe('pb.x'));
    await waitFor(() => a.cluster.stats.imageRequests > 0, 5_000, 'edge A to follow pb.x');
    const cb = h.client(() => b);
    const ack1 = await cb.publish('pb.x', { bid: 1.5, size: 2n ** 60n + 1n });
    expect(ack1).toEqual({ topic: 'pb.x', epoch: origin.store.get('pb.x')!.epoch, version: 1 });
    const ack2 = await cb.publish('pb.x', { bid: 1.75 });
    expect(ack2.version).toBe(2);
    // HTTP on edge B: forwarded too, answered with the origin's version.
    const r = await http(b.port, 'POST', '/publish/pb.x', { ask: 2.5 });
    expect(r).toMatchObject({ status: 200, body: { topic: 'pb.x', epoch: ack1.epoch, version: 3 } });
    expect(origin.store.get('pb.x')!.version).toBe(3);
    await exactly(ca, origin, ['pb.x']);
    expect(ca.stateOf('pb.x')!.state).toEqual({ bid: 1.75, size: 2n ** 60n + 1n, ask: 2.5 });
    expect(chainProblem(ra, { full: true })).toBeNull();
    expect(b.cluster.stats.forwardedOut).toBe(3);
    expect(origin.cluster.stats.forwardedIn).toBe(3);
    // A publish the origin refuses (its own limits) is refused on the edge with the origin's typed error.
    await expect(cb.publish('pb.x', { f1: 1, f2: 2, f3: 3 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_TOO_MANY_FIELDS' });
    expect(origin.store.get('pb.x')!.version).toBe(3);
  });

  it('a client cut from edge A resumes on edge B: merged delta when B has the history, exact', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    // Edge B follows the topic already (another client), so its history covers what follows.
    const keeper = h.client(() => b);
    keeper.subscribe('rs.*');
    await waitFor(() => b.cluster.stats.imageRequests > 0, 5_000, 'edge B to follow rs.*');
    // Much held that the gap does not touch: the merged delta is the smaller catch-up.
    origin.publish('rs.D', Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`static${i}`, `unchanged value ${i}`])));
    for (let i = 1; i < 5; i++) origin.publish('rs.D', { px: i, [`f${i}`]: true });
    let to: typeof a | null = a;
    const c = h.client(() => to);
    const rec = record(c.subscribe('rs.D'));
    await exactly(c, origin, ['rs.D']);
    const before = { ...c.stats };
    to = null; // the balancer has nowhere to send it for now
    c.cut();
    await waitFor(() => c.state !== 'connected', 5_000, 'the client to notice the cut');
    for (let i = 5; i < 25; i++) origin.publish('rs.D', { px: i, [`f${i % 3}`]: i % 2 === 0 ? null : i });
    await waitFor(() => b.store.get('rs.D')?.version === 25, 5_000, 'edge B at v25');
    to = b;
    await exactly(c, origin, ['rs.D']);
    expect(c.stats.catchUpDeltas - before.catchUpDeltas).toBe(1);
    expect(c.stats.catchUpSnapshots - before.catchUpSnapshots).toBe(0);
    const resumed = rec.find((u) => u.version === 25)!;
    expect(resumed).toMatchObject({ snapshot: false, updates: 20 });
    expect(chainProblem(rec)).toBeNull();
    expect(b.stats.catchUpDeltas).toBeGreaterThan(0);
  });

  it('a client cut from edge A resumes on edge B: snapshot when the gap is past B history, exact', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const a = await h.edge();
    const b = await h.edge({ limits: { historySize: 8 } });
    const keeper = h.client(() => b);
    keeper.subscribe('rz.*');
    await waitFor(() => b.cluster.stats.imageRequests > 0, 5_000, 'edge B to follow rz.*');
    origin.publish('rz.D', { px: 0, gone: 'soon' });
    let to: typeof a | null = a;
    const c = h.client(() => to);
    const rec = record(c.subscribe('rz.D'));
    await exactly(c, origin, ['rz.D']);
    const before = { ...c.stats };
    to = null;
    c.cut();
    await waitFor(() => c.state !== 'connected', 5_000, 'the client to notice the cut');
    for (let i = 1; i <= 30; i++) origin.publish('rz.D', { px: i, ...(i === 3 ? { gone: null } : {}) });
    await waitFor(() => b.store.get('rz.D')?.version === 31, 5_000, 'edge B at v31');
    to = b;
    await exactly(c, origin, ['rz.D']);
    expect(c.stats.catchUpSnapshots - before.catchUpSnapshots).toBe(1);
    expect(c.stats.catchUpDeltas - before.catchUpDeltas).toBe(0);
    expect(rec.at(-1)).toMatchObject({ version: 31, snapshot: true, state: { px: 30 } });
    expect(chainProblem(rec)).toBeNull();
    expect((await snapshotOn(b, 'rz.D')).fields).toEqual((await snapshotOn(origin, 'rz.D')).fields);
  });

  it("a publisher on edge B goes away: its topic is flagged stale on every edge, and ok at the next update", async () => {
    h = fx.harness();
    const origin = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    const ca = h.client(() => a);
    const sub = ca.subscribe('pg.x');
    const seen: string[] = [];
    sub.on('status', (e) => seen.push(e.status));
    const publisher = h.client(() => b);
    publisher.subscribe('pg.x'); // edge B follows what its publisher publishes
    await waitFor(() => a.cluster.stats.imageRequests > 0 && b.cluster.stats.imageRequests > 0, 5_000, 'both edges to follow pg.x');
    await publisher.publish('pg.x', { px: 1 });
    await exactly(ca, origin, ['pg.x']);
    publisher.close();
    await waitFor(() => seen.includes('stale'), 5_000, 'stale on edge A after the publisher on edge B left');
    expect(origin.store.get('pg.x')!.stale).toBe(true);
    expect(a.store.get('pg.x')!.stale).toBe(true);
    origin.publish('pg.x', { px: 2 });
    await exactly(ca, origin, ['pg.x']);
    await waitFor(() => seen.at(-1) === 'ok', 5_000, 'ok again after the next update');
    expect(a.store.get('pg.x')!.stale).toBe(false);
  });

  it('an edge started before any origin: publishes are refused (not applied), then it finds the origin by its announcement', async () => {
    h = fx.harness();
    const a = await h.edge();
    const c = h.client(() => a);
    const rec = record(c.subscribe('eb.*'));
    await expect(c.publish('eb.x', { v: 1 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_NO_RESPONDER' });
    const r = await http(a.port, 'POST', '/publish/eb.x', { v: 1 });
    expect(r).toMatchObject({ status: 503, body: { error: { name: 'TICKFAN_ERR_NO_RESPONDER' } } });
    const origin = await h.origin();
    origin.publish('eb.x', { v: 2 });
    origin.publish('eb.y', { v: 3 });
    await exactly(c, origin, ['eb.x', 'eb.y']);
    // Once it knows the layout, a publish on the edge goes through.
    await waitFor(() => a.cluster.stats.heals.origin + a.cluster.stats.updatesIn > 0, 5_000, 'the edge to hear of the origin');
    const ack = await c.publish('eb.x', { v: 4 });
    expect(ack.version).toBe(2);
    await exactly(c, origin, ['eb.x']);
    expect(chainProblem(rec.filter((u) => u.topic === 'eb.x'), { full: true })).toBeNull();
  });

  it('/healthz and /metrics show the role, NATS state, replica lag and heals', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const a = await h.edge();
    const c = h.client(() => a);
    c.subscribe('hz.x');
    // Answered, not just asked: an update published while the image is in
    // flight may arrive inside the image (no update counted, a heal instead).
    await waitFor(() => a.cluster.stats.imageAnswers > 0, 5_000, 'edge A to follow hz.x');
    origin.publish('hz.x', { v: 1 });
    await exactly(c, origin, ['hz.x']);
    const edge = (await http(a.port, 'GET', '/healthz')).body as { status: string; cluster: Record<string, unknown> };
    expect(edge.status).toBe('ok');
    expect(edge.cluster).toMatchObject({ role: 'edge', shard: null, nats: { state: 'connected' }, updatesIn: 1 });
    expect(edge.cluster.heals).toEqual({ gap: 0, epoch: 0, beat: 0, reconnect: 0, interest: 0, origin: 0 });
    const org = (await http(origin.port, 'GET', '/healthz')).body as { cluster: Record<string, unknown> };
    expect(org.cluster).toMatchObject({ role: 'origin', shard: '1/1', updatesOut: 1 });
    const metrics = (await http(a.port, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/tickfan_cluster_info\{role="edge",shard="",id="[^"]+"\} 1/);
    expect(metrics).toMatch(/tickfan_cluster_nats_connected 1/);
    expect(metrics).toMatch(/tickfan_cluster_heals_total\{kind="reconnect"\} 0/);
    expect(metrics).toMatch(/tickfan_cluster_replica_lag_seconds \d/);
  });
});
