// Rate tiers: a quiet topic's update goes out on the next turn, a busy one at most
// once per interval as ONE exact merged delta (deletes kept, `updates` = versions
// merged, chain unbroken); a tier-0 subscriber of the same topic gets every version.

import { describe, expect, it } from 'vitest';
import type { DeltaMsg, FieldValue, SnapshotMsg, State } from '../../src/protocol/index.js';
import { rig, type Client, type Rig } from './fanout-fakes.js';

/** Publish i of a busy feed: prices move, fields come and go (deletes included). */
function tick(i: number): Record<string, FieldValue | null> {
  const c: Record<string, FieldValue | null> = { bid: 100 + i / 100, last: `t${i}` };
  if (i % 3 === 0) c.ask = null;
  if (i % 3 === 1) c.ask = 101 + i / 100;
  if (i % 7 === 0) c[`lvl.${i % 4}`] = i;
  if (i % 5 === 0) c[`lvl.${(i + 1) % 4}`] = null;
  return c;
}

function deltas(c: Client, topic = 'px.A'): (DeltaMsg & { at: number })[] {
  return c.sink.frames.flatMap((f) => f.messages.filter((m): m is DeltaMsg => m.type === 'delta' && m.topic === topic).map((m) => ({ ...m, at: f.at })));
}

function setup(native: boolean) {
  const r = rig({ rateTiers: [10, 4, 1] });
  r.publish('px.A', { bid: 100, ask: 101, last: 't0', 'lvl.1': 5 }); // v1
  const every = r.connect(native);
  r.subscribe(every, ['px.A'], { maxRate: 0 });
  const at4 = r.connect(native);
  r.subscribe(at4, ['px.A'], { maxRate: 4 });
  const at10 = r.connect(native);
  r.subscribe(at10, ['px.A'], { maxRate: 10 });
  r.clock.runTurn();
  for (const c of [every, at4, at10]) expect(c.sink.ofType('snapshot', 'px.A').map((s) => s.version)).toEqual([1]);
  return { r, every, at4, at10 };
}

/** Publishes `n` ticks, one every `stepMs`, recording the server's state at each version. */
function busyFeed(r: Rig, n: number, stepMs: number): Map<number, State> {
  const states = new Map<number, State>([[1, new Map(r.store.get('px.A')!.state)]]);
  for (let i = 1; i <= n; i++) {
    const a = r.publish('px.A', tick(i));
    states.set(a.version, new Map(a.topic.state));
    r.clock.advance(stepMs);
  }
  return states;
}

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('rate tiers over %s', (_name, native) => {
  it('sends a quiet topic at once, then waits exactly one interval before the next merged delta', () => {
    const { r, at4, every } = setup(native);
    const t0 = r.clock.now();
    r.publish('px.A', { bid: 101 }); // v2 on a quiet channel
    expect(deltas(at4)).toEqual([]); // nothing leaves before the turn ends
    r.clock.runTurn();
    expect(deltas(at4).map((d) => [d.base, d.version, d.at - t0])).toEqual([[1, 2, 0]]);

    r.clock.advance(50);
    r.publish('px.A', { bid: 102 }); // v3: 50 ms after the last flush
    r.clock.advance(100);
    r.publish('px.A', { ask: null }); // v4
    r.clock.advance(98); // t0 + 248
    r.clock.advance(1); // t0 + 249: still inside the interval
    expect(deltas(at4)).toHaveLength(1);
    expect(deltas(every).map((d) => d.version)).toEqual([2, 3, 4]);
    r.clock.advance(1); // t0 + 250
    const d = deltas(at4);
    expect(d.map((x) => [x.base, x.version, x.updates, x.at - t0])).toEqual([
      [1, 2, 1, 0],
      [2, 4, 2, 250],
    ]);
    expect([...d[1]!.changes]).toEqual([
      ['bid', 102],
      ['ask', null],
    ]);

    // Quiet for longer than an interval: the next update is on the leading edge again.
    r.clock.advance(1_000);
    const t1 = r.clock.now();
    r.publish('px.A', { bid: 103 });
    r.clock.runTurn();
    expect(deltas(at4).slice(2).map((x) => [x.base, x.version, x.at - t1])).toEqual([[4, 5, 0]]);
    expect(at4.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
    expect(at4.sink.problems).toEqual([]);
  });

  it('conflates a busy topic into one exact merged delta per interval, per tier', () => {
    const { r, every, at4, at10 } = setup(native);
    const t0 = r.clock.now();
    const states = busyFeed(r, 100, 10); // v2..v101, one every 10 ms for a second
    r.clock.advance(1_000);
    const last = r.store.get('px.A')!.version;
    expect(last).toBe(101);

    const times = (c: Client) => deltas(c).map((d) => d.at - t0);
    expect(times(at4)).toEqual([0, 250, 500, 750, 1000]);
    expect(times(at10)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);

    for (const c of [at4, at10, every]) {
      const snap = c.sink.ofType('snapshot', 'px.A')[0] as SnapshotMsg;
      const held = new Map(snap.fields);
      let version = snap.version;
      let sawDelete = false;
      for (const d of deltas(c)) {
        expect(d.epoch).toBe(snap.epoch);
        expect(d.base).toBe(version); // the chain never breaks
        expect(d.updates).toBe(d.version - d.base); // counts the updates it merges
        for (const [k, v] of d.changes) {
          if (v === null) {
            sawDelete = true;
            held.delete(k);
          } else held.set(k, v);
        }
        version = d.version;
        expect(held).toEqual(states.get(version)); // exact at its version
      }
      expect(version).toBe(last);
      expect(sawDelete).toBe(true);
      expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
      expect(c.sink.problems).toEqual([]);
    }
    // Every update, one by one, for the tier-0 subscriber.
    expect(deltas(every).map((d) => [d.base, d.version, d.updates])).toEqual(
      Array.from({ length: 100 }, (_, i) => [i + 1, i + 2, 1]),
    );
    expect(r.stats.conflated).toBe(200); // each of 100 updates merged into two throttled channels
  });

  it('picks the fastest tier not above the requested rate', () => {
    const r = rig({ rateTiers: [10, 4, 1] });
    r.publish('px.A', { bid: 1 });
    const c5 = r.connect(native);
    r.subscribe(c5, ['px.A'], { maxRate: 5 }); // → 4/s
    const cSlow = r.connect(native);
    r.subscribe(cSlow, ['px.A'], { maxRate: 0.5 }); // below every tier → the slowest, 1/s
    r.clock.runTurn();
    const t0 = r.clock.now();
    for (let i = 0; i < 200; i++) {
      r.publish('px.A', { bid: 2 + i });
      r.clock.advance(10);
    }
    r.clock.advance(1_000);
    expect(deltas(c5).map((d) => d.at - t0)).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
    expect(deltas(cSlow).map((d) => d.at - t0)).toEqual([0, 1000, 2000]);
    expect(cSlow.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });
});

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('a topic created after its subscribers, over %s', (_name, native) => {
  it('reaches each subscriber once as a snapshot of its first version, then as deltas', () => {
    const r = rig({ rateTiers: [10, 4, 1] });
    const every = r.connect(native);
    r.subscribe(every, ['px.NEW'], { maxRate: 0 });
    const at4 = r.connect(native);
    r.subscribe(at4, ['px.*'], { maxRate: 4 });
    r.clock.runTurn();
    r.publish('px.NEW', { bid: 1, ask: 2 });
    r.clock.advance(1_000);
    r.publish('px.NEW', { bid: 3 });
    r.clock.advance(1_000);
    for (const c of [every, at4]) {
      const seen = c.sink.updates('px.NEW').map((m) => (m.type === 'delta' ? `delta ${m.base}→${m.version} (${m.updates})` : `${m.type} ${(m as SnapshotMsg).version}`));
      // Anything else (a delta 1→1 "with one update", or 0→1 after the snapshot) is an update the client already has.
      expect(seen).toEqual(['snapshot 1', 'delta 1→2 (1)']);
      expect(c.sink.stateOf('px.NEW')).toEqual({ bid: 3, ask: 2 });
      expect(c.sink.problems).toEqual([]);
    }
  });
});
