// An edge's NATS subscriptions when its clients' names and patterns overlap,
// on a real nats-server: a name (or pattern) covered by another followed
// pattern holds no subscription of its own, so each update crosses NATS once
// (not once per matching subscription); handing over between the covering
// pattern and what it covers, while publishing, loses no update. First through
// an origin, an edge and SDK clients; then EdgeInterest alone on a NATS link,
// with numbered raw messages.

import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import { EdgeInterest, patternCovers } from '../../src/cluster/edge-interest.js';
import { TopicPattern } from '../../src/engine/index.js';
import { LINGER_MS } from '../../src/cluster/replicas.js';
import { NatsLink } from '../../src/cluster/nats-link.js';
import { Subjects } from '../../src/cluster/subjects.js';
import { ClusterHarness, exactly, freshPrefix } from './cluster-helpers.js';
import { chainProblem, record, sleep, waitFor } from './helpers.js';
import { NatsServer } from './nats-server.js';

let nats: NatsServer;
let h: ClusterHarness | undefined;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats?.stop();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function inMsgs(edge: ClusterServer): number {
  return (edge.cluster.stats.toJSON().nats as { inMsgs: number }).inMsgs;
}

/** NATS messages into a fresh edge, and its duplicates, for 100 publishes on `d.x` while one client wants `sources` (in that order). */
async function inboundFor(sources: string[]): Promise<{ inMsgs: number; duplicates: number }> {
  h = new ClusterHarness(nats.url);
  const origin = await h.origin();
  const edge = await h.edge();
  origin.publish('d.x', { v: 0 });
  const client = h.client(() => edge);
  for (const [i, s] of sources.entries()) {
    client.subscribe(s);
    await waitFor(() => edge.cluster.stats.imageRequests >= i + 1, 5_000, `the edge to follow ${s}`);
  }
  await exactly(client, origin, ['d.x']);
  await sleep(200); // a handover ends after a NATS round trip
  const before = { inMsgs: inMsgs(edge), duplicates: edge.cluster.stats.duplicates };
  for (let i = 1; i <= 100; i++) origin.publish('d.x', { v: i });
  await exactly(client, origin, ['d.x']);
  await sleep(200); // a second copy, if any, would be here by now
  const r = { inMsgs: inMsgs(edge) - before.inMsgs, duplicates: edge.cluster.stats.duplicates - before.duplicates };
  await h.close();
  h = undefined;
  return r;
}

describe('cluster: an edge subscribes to NATS once per update, whatever its clients overlap', () => {
  it('100 publishes cross NATS about 100 times with an exact name, a pattern, or both', async () => {
    const exact = await inboundFor(['d.x']);
    const pattern = await inboundFor(['d.*']);
    const exactThenPattern = await inboundFor(['d.x', 'd.*']);
    const patternThenExact = await inboundFor(['d.*', 'd.x']);
    const nested = await inboundFor(['d.x', 'd.*', 'd.>']);
    const figures = { exact, pattern, exactThenPattern, patternThenExact, nested };
    console.log(`edge NATS inMsgs / duplicates for 100 publishes: ${JSON.stringify(figures)}`);
    // 100 updates, plus the odd version heartbeat or origin announcement in the window.
    for (const [name, f] of Object.entries(figures)) {
      expect(f.inMsgs, name).toBeGreaterThanOrEqual(100);
      expect(f.inMsgs, name).toBeLessThanOrEqual(110);
      expect(f.duplicates, name).toBe(0);
    }
  });

  it('a covering pattern added and removed while a name is published loses no update of a client of that name', async () => {
    h = new ClusterHarness(nats.url);
    const origin = await h.origin();
    const edge = await h.edge();
    for (const t of ['e.x', 'e.y']) origin.publish(t, { v: 0 });
    const a = h.client(() => edge);
    const seen = record(a.subscribe('e.x'));
    await exactly(a, origin, ['e.x']);
    let publishing = true;
    let k = 0;
    const loop = (async () => {
      while (publishing) {
        origin.publish('e.x', { v: ++k });
        if (k % 3 === 0) origin.publish('e.y', { v: k });
        await sleep(1);
      }
    })();
    /** NATS messages into the edge per update published (e.x, and e.y when `withY`) over `ms`, and the duplicates counted meanwhile. */
    const measure = async (ms: number, withY: boolean): Promise<{ perUpdate: number; duplicates: number }> => {
      const from = { inMsgs: inMsgs(edge), duplicates: edge.cluster.stats.duplicates, k };
      await sleep(ms);
      const published = k - from.k + (withY ? Math.floor(k / 3) - Math.floor(from.k / 3) : 0);
      return { perUpdate: (inMsgs(edge) - from.inMsgs) / published, duplicates: edge.cluster.stats.duplicates - from.duplicates };
    };
    let covered: { perUpdate: number; duplicates: number };
    let alone: { perUpdate: number; duplicates: number };
    try {
      await sleep(300);
      const b = h.client(() => edge);
      const wide = b.subscribe('e.*');
      await waitFor(() => edge.cluster.stats.imageRequests >= 2, 5_000, 'the edge to follow e.*');
      await sleep(300);
      covered = await measure(600, true);
      // Its last client leaves: after the linger the edge stops following e.* and holds e.x by itself again.
      b.unsubscribe(wide);
      await sleep(LINGER_MS + 700);
      alone = await measure(600, false);
    } finally {
      publishing = false;
      await loop;
    }
    // One copy per update (e.x and e.y while covered; e.x only after), none counted twice.
    expect(covered.duplicates).toBe(0);
    expect(covered.perUpdate).toBeGreaterThan(0.9);
    expect(covered.perUpdate).toBeLessThan(1.1);
    expect(alone.duplicates).toBe(0);
    expect(alone.perUpdate).toBeGreaterThan(0.9);
    expect(alone.perUpdate).toBeLessThan(1.1);
    // The quiet case: nothing more published; the client of e.x must reach the origin's last version by an unbroken chain.
    await exactly(a, origin, ['e.x']);
    expect(chainProblem(seen, { full: true })).toBeNull();
    expect(edge.store.get('e.x')!.stale).toBe(false);
    expect(edge.store.get('e.y')!.version).toBeLessThan(origin.store.get('e.y')!.version); // no longer followed
    const s = edge.cluster.stats;
    expect({ gap: s.heals.gap, beat: s.heals.beat, epoch: s.heals.epoch }).toEqual({ gap: 0, beat: 0, epoch: 0 });
    console.log(
      `handover while publishing: ${k} publishes on e.x, ${seen.length} updates to its client, duplicates ${s.duplicates}; NATS messages per update: ${covered.perUpdate.toFixed(3)} covered by e.*, ${alone.perUpdate.toFixed(3)} after`,
    );
  }, 20_000);
});

describe('EdgeInterest on a NATS link: subscriptions held, and handovers under load', () => {
  let link: NatsLink;
  let pub: NatsConnection;
  let interest: EdgeInterest;
  let subjects: Subjects;
  /** Per topic, the numbers received (in order). */
  let got: Map<string, number[]>;

  beforeAll(async () => {
    pub = await natsConnect({ servers: nats.url });
  });
  afterAll(async () => {
    await pub?.close();
  });

  async function open(): Promise<void> {
    subjects = new Subjects(freshPrefix());
    link = await NatsLink.open([nats.url], 'edge-interest-test', () => {});
    got = new Map();
    interest = new EdgeInterest(link, subjects, 256, (m) => {
      const t = subjects.topicOf(m.subject);
      got.set(t, [...(got.get(t) ?? []), Number(m.string())]);
    });
  }
  afterEach(async () => {
    interest?.close();
    await link?.close();
  });

  function send(topic: string, n: number): void {
    pub.publish(subjects.update(topic), String(n));
  }
  async function settled(): Promise<void> {
    await pub.flush();
    await link.nc.flush();
    await link.nc.flush(); // a handover's round trip, then the copies on their way
  }

  it('pattern containment: which followed pattern takes every update of another', () => {
    const covers = (p: string, q: string): boolean => patternCovers(TopicPattern.parse(p), TopicPattern.parse(q));
    const yes = [['>', 'd.*'], ['>', '*.>'], ['d.>', 'd.*'], ['d.>', 'd.*.>'], ['d.>', 'd.x.>'], ['*.>', 'd.>'], ['d.*', 'd.x'], ['*.*', 'd.*'], ['d.*.z', 'd.y.z']];
    const no = [['d.*', 'd.>'], ['d.*', '*.x'], ['d.x.>', 'd.>'], ['d.>', 'd'], ['d.*', 'd.*.z'], ['d.*.z', 'd.*'], ['d.x', 'd.*'], ['*.x', 'd.*'], ['e.>', 'd.*']];
    for (const [p, q] of yes) expect(covers(p!, q!), `${p} covers ${q}`).toBe(true);
    for (const [p, q] of no) expect(covers(p!, q!), `${p} does not cover ${q}`).toBe(false);
  });

  it('holds one subscription per source not covered by another; has/follows/sources/size are unchanged', async () => {
    await open();
    interest.add('d.x');
    interest.add('d.y.z');
    expect(interest.subscriptions).toBe(2);
    interest.add('d.*');
    await settled();
    expect(interest.subscriptions).toBe(2); // d.*, d.y.z
    interest.add('d.>');
    await settled();
    expect(interest.subscriptions).toBe(1); // d.>
    expect(interest.sources().sort()).toEqual(['d.*', 'd.>', 'd.x', 'd.y.z']);
    expect(interest.size).toBe(4);
    for (const s of ['d.x', 'd.y.z', 'd.*', 'd.>']) expect(interest.has(s)).toBe(true);
    expect([interest.follows('d.x'), interest.follows('d.q'), interest.follows('d.y.z'), interest.follows('e.x')]).toEqual([true, true, true, false]);
    for (let i = 1; i <= 100; i++) for (const t of ['d.x', 'd.y.z', 'e.x']) send(t, i);
    await settled();
    expect(got.get('d.x')).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(got.get('d.y.z')).toHaveLength(100);
    expect(got.has('e.x')).toBe(false);
    // Removing the broad one hands over to what it covered.
    interest.remove('d.>');
    await settled();
    expect(interest.subscriptions).toBe(2);
    expect(interest.follows('d.y.z')).toBe(true);
    expect(interest.follows('d.q.r')).toBe(false);
    got.clear();
    for (let i = 1; i <= 50; i++) for (const t of ['d.x', 'd.y.z', 'd.q.r']) send(t, i);
    await settled();
    expect([got.get('d.x')?.length, got.get('d.y.z')?.length, got.get('d.q.r')?.length]).toEqual([50, 50, undefined]);
    interest.remove('d.*');
    interest.remove('d.x');
    await settled();
    expect(interest.subscriptions).toBe(1);
    expect(interest.sources()).toEqual(['d.y.z']);
  });

  it('patterns added and removed over and over while publishing: every update of the names kept arrives', async () => {
    await open();
    interest.add('d.x');
    interest.add('d.y.z');
    await link.nc.flush(); // the server has both before the first message
    let n = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        for (let i = 0; i < 20; i++) {
          n++;
          send('d.x', n);
          send('d.y.z', n);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const toggles = ['d.*', 'd.>', '>', '*.x', 'd.y.*'];
    for (let round = 0; round < 60; round++) {
      const p = toggles[round % toggles.length]!;
      if (interest.has(p)) interest.remove(p);
      else interest.add(p);
      await sleep(round % 4);
    }
    for (const p of toggles) interest.remove(p);
    await sleep(50);
    running = false;
    await loop;
    await settled();
    expect(interest.subscriptions).toBe(2);
    for (const t of ['d.x', 'd.y.z']) {
      const seen = new Set(got.get(t));
      const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !seen.has(i));
      expect(missing.slice(0, 10), `${t}: ${missing.length} of ${n} updates lost`).toEqual([]);
    }
    // Settled: once each again.
    got.clear();
    for (let i = 1; i <= 100; i++) send('d.x', i);
    await settled();
    expect(got.get('d.x')).toHaveLength(100);
  });

  it('after a NATS restart the subscriptions renewed are still one per update', async () => {
    await open();
    interest.add('d.x');
    interest.add('d.*');
    await settled();
    await nats.kill();
    await waitFor(() => link.state === 'reconnecting', 5_000, 'the link to notice');
    // Changed while disconnected: a handover whose round trip fails.
    interest.add('d.>');
    await nats.restart();
    await pub.flush().catch(() => undefined);
    await waitFor(() => link.state === 'connected' && !pub.isClosed(), 10_000, 'both connections back');
    await waitFor(() => (pub as unknown as { protocol: { connected: boolean } }).protocol.connected, 10_000, 'the publisher back');
    await settled();
    expect(interest.subscriptions).toBe(1);
    got.clear();
    for (let i = 1; i <= 100; i++) send('d.x', i);
    await settled();
    expect(got.get('d.x')).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });
});
