// Shared channel sets (fast-groups.ts): connections that follow the same
// channels get one native publish per turn for the set instead of one per
// channel, and every client still counts its frames exactly and holds every
// topic's state — through joining, leaving, the slow lane and a close.

import { describe, expect, it } from 'vitest';
import { REGROUP_MS } from '../../src/server/fanout/fast-path.js';
import { rig, type Client, type Rig } from './fanout-fakes.js';

const TOPICS = ['px.A', 'px.B', 'px.C'];

function expectExact(r: Rig, c: Client): void {
  const wrong: string[] = [];
  let published = 0;
  c.sink.frames.forEach((f, i) => {
    if (f.published) published++;
    else if (f.seq !== i + 1) wrong.push(`frame #${i + 1} numbered ${f.seq}`);
  });
  expect(wrong).toEqual([]);
  expect(c.sink.problems).toEqual([]);
  for (const name of c.conn.topics.keys()) expect(c.sink.stateOf(name), `${name} of conn ${c.conn.id}`).toEqual(r.stateOf(name));
  expect(published).toBeGreaterThanOrEqual(0);
}

/** A rig with `n` native clients on all of TOPICS (one subscription each), settled. */
function setUp(n: number, groupMinConnections: number, drain = true) {
  const r = rig({ groupMinConnections, heartbeatMs: 60_000 });
  if (drain) r.uws.drainLater = (fn) => r.clock.defer(fn);
  for (const t of TOPICS) r.publish(t, { bid: 1, ask: 2 });
  const clients = Array.from({ length: n }, () => r.connect(true, { protocol: 2 }));
  for (const c of clients) r.subscribe(c, TOPICS);
  r.clock.runTurn();
  return { r, clients };
}

let v = 10;
function publishAll(r: Rig): void {
  for (const t of TOPICS) r.publish(t, { bid: ++v });
  r.clock.runTurn();
}

/** Publishes until changed sets have been filed: a regroup pass makes them settled, the next publish files them. */
function settle(r: Rig): void {
  publishAll(r);
  r.clock.advance(REGROUP_MS);
  publishAll(r);
}

describe('shared channel sets', () => {
  it('publish one frame per turn to a set many connections follow, instead of one per channel', () => {
    const { r, clients } = setUp(10, 8);
    settle(r); // the set becomes a group
    expect(r.stats.sharedSets).toBe(1);
    const before = r.uws.publishes;
    for (let i = 0; i < 5; i++) publishAll(r);
    expect(r.uws.publishes - before).toBe(5);
    for (const c of clients) expectExact(r, c);
    // The same workload without groups: one native publish per channel per turn.
    const off = setUp(10, 0);
    settle(off.r);
    const offBefore = off.r.uws.publishes;
    for (let i = 0; i < 5; i++) publishAll(off.r);
    expect(off.r.uws.publishes - offBefore).toBe(15);
    expect(off.r.stats.sharedSets).toBe(0);
  });

  it('leave a set below the quorum on the channels’ own topics', () => {
    const { r } = setUp(7, 8);
    settle(r);
    expect(r.stats.sharedSets).toBe(0);
    const before = r.uws.publishes;
    publishAll(r);
    expect(r.uws.publishes - before).toBe(3);
  });

  it('keep every client exact as members leave a channel, pause, fall behind, close and come back (quiet at the end)', () => {
    const { r, clients } = setUp(10, 3);
    settle(r);
    expect(r.stats.sharedSets).toBe(1);
    const [a, b, c, d, e] = clients as [Client, Client, Client, Client, Client];
    // a: one more subscription (its set grows: out of the group, then filed under a new set alone).
    r.subscribe(a, ['px.D']);
    r.publish('px.D', { bid: 1 });
    publishAll(r);
    // b: unsubscribes its one subscription, then takes two topics (a new set of its own).
    r.fanout.unsubscribe(b.conn, [...b.conn.subs.keys()][0]!);
    r.subscribe(b, ['px.A', 'px.B']);
    publishAll(r);
    // c: slow (out of every channel), then drained back in.
    c.sink.bufferedBytes = 10 * 1024 * 1024;
    r.clock.advance(200);
    publishAll(r);
    expect(c.conn.slow).toBe(true);
    c.sink.bufferedBytes = 0;
    r.fanout.drain(c.conn);
    publishAll(r);
    // d: paused then resumed; e: closes mid-turn.
    const dSub = [...d.conn.subs.keys()][0]!;
    r.fanout.setPaused(d.conn, dSub, true);
    publishAll(r);
    r.publish('px.A', { ask: 99 });
    e.sink.end(1000, 'bye');
    r.fanout.setPaused(d.conn, dSub, false);
    publishAll(r);
    // The others are still in the group (a and b are on sets of their own, d back in after it settles); everyone is exact.
    settle(r);
    expect(r.stats.sharedSets).toBeGreaterThanOrEqual(1);
    // Quiet: no publish after the last moves; time passes, nothing is owed.
    r.clock.advance(2_000);
    for (const cl of clients) if (!cl.conn.closed) expectExact(r, cl);
    // A direct frame now (a pong) is numbered after every published frame each client got.
    for (const cl of clients) if (!cl.conn.closed) r.fanout.reply(cl.conn, r.fanout.encoder.pong(1n));
    r.clock.runTurn();
    for (const cl of clients) if (!cl.conn.closed) expectExact(r, cl);
  });

  it('dissolve a group when its last member leaves, and form it again', () => {
    const { r, clients } = setUp(3, 2);
    settle(r);
    expect(r.stats.sharedSets).toBe(1);
    for (const c of clients) c.sink.end(1000, 'bye');
    r.clock.runTurn();
    expect(r.stats.sharedSets).toBe(0);
    const again = [r.connect(true, { protocol: 2 }), r.connect(true, { protocol: 2 })];
    for (const c of again) r.subscribe(c, TOPICS);
    r.clock.runTurn();
    r.clock.advance(REGROUP_MS);
    settle(r);
    expect(r.stats.sharedSets).toBe(1);
    publishAll(r);
    for (const c of again) expectExact(r, c);
  });

  it('file a changed connection after the next regroup pass, and only if its set held still until then', () => {
    const { r, clients } = setUp(4, 2);
    settle(r);
    expect(r.stats.sharedSets).toBe(1);
    const [a, b] = clients as [Client, Client];
    r.publish('px.D', { bid: 1 });
    r.publish('px.E', { bid: 1 });
    r.subscribe(a, ['px.D']);
    r.clock.runTurn();
    publishAll(r); // a pass (the last was a pass interval ago): a is settled on {A, B, C, D}
    r.subscribe(b, ['px.D']);
    r.clock.runTurn();
    publishAll(r); // a is filed alone (no quorum); b changed after the pass and waits for the next
    publishAll(r);
    expect(r.stats.sharedSets).toBe(1);
    r.clock.advance(REGROUP_MS);
    publishAll(r); // the pass: b is settled
    r.subscribe(a, ['px.E'], { id: 99 }); // a leaves that set before b is filed
    r.clock.runTurn();
    publishAll(r); // b is filed alone: no quorum
    expect(r.stats.sharedSets).toBe(1);
    r.fanout.unsubscribe(a.conn, 99); // a is back on b's set
    r.clock.runTurn();
    r.clock.advance(REGROUP_MS);
    settle(r);
    expect(r.stats.sharedSets).toBe(2);
    for (const c of clients) expectExact(r, c);
  });
});
