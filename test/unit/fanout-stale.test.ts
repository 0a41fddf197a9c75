// Stale and ok: a topic quiet past topicTtlMs, or whose publisher went away, is
// flagged STALE to its subscribers once (stats.staleTopics) and says OK before its
// next update; a new subscriber of a stale topic learns so right after its snapshot.

import { describe, expect, it } from 'vitest';
import { TopicState, type ServerMessage, type TopicStatusMsg } from '../../src/protocol/index.js';
import { rig, type Client } from './fanout-fakes.js';

const TTL = 1_000;

const statuses = (c: Client, topic = 'px.A'): (TopicStatusMsg & { at: number })[] =>
  c.sink.frames.flatMap((f) =>
    f.messages.filter((m): m is TopicStatusMsg => m.type === 'topicStatus' && m.topic === topic).map((m) => ({ ...m, at: f.at })),
  );

/** A compact trace of one topic's messages: 'snapshot@1', 'delta@2', 'STALE@2', 'OK@2'. */
const trace = (c: Client, topic = 'px.A') =>
  c.sink
    .messages()
    .filter((m): m is Extract<ServerMessage, { topic: string }> => 'topic' in m && m.topic === topic)
    .map((m) => {
      if (m.type === 'topicStatus') return `${m.state === TopicState.STALE ? 'STALE' : m.state === TopicState.OK ? 'OK' : 'GONE'}@${m.version}`;
      return `${m.type}@${(m as { version: number }).version}`;
    });

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('stale topics over %s', (_name, native) => {
  it('flags a topic quiet past its TTL stale, once, and ok again before its next update', () => {
    const r = rig({ topicTtlMs: TTL, heartbeatMs: 60_000 });
    const t0 = r.clock.now();
    r.publish('px.A', { bid: 1 });
    const c = r.connect(native);
    const d = r.connect(native);
    r.subscribe(c, ['px.A']);
    r.subscribe(d, ['px.A'], { maxRate: 4 }); // a throttled subscriber is told too
    r.clock.runTurn();

    r.clock.advance(TTL); // exactly the TTL: not stale yet
    expect(statuses(c)).toEqual([]);
    expect(r.stats.staleTopics).toBe(0);
    r.clock.advance(TTL / 4); // the sweep runs every TTL/4 (20 ms..1 s)
    const [stale] = statuses(c);
    expect(stale).toMatchObject({ state: TopicState.STALE, epoch: r.store.get('px.A')!.epoch, version: 1 });
    expect(stale!.at - t0).toBeGreaterThan(TTL);
    expect(stale!.at - t0).toBeLessThanOrEqual(TTL + TTL / 4);
    expect(statuses(d).map((s) => s.state)).toEqual([TopicState.STALE]);
    expect(r.stats.staleTopics).toBe(1);

    r.clock.advance(5 * TTL); // still quiet: said once, not every sweep
    expect(statuses(c)).toHaveLength(1);
    expect(r.stats.staleTopics).toBe(1);

    r.publish('px.A', { bid: 2 });
    r.clock.runTurn();
    expect(trace(c)).toEqual(['snapshot@1', 'STALE@1', 'OK@2', 'delta@2']);
    expect(trace(d)).toEqual(['snapshot@1', 'STALE@1', 'OK@2', 'delta@2']);
    expect(r.stats.staleTopics).toBe(0);
    expect(c.sink.problems).toEqual([]);
  });

  it('tells a new subscriber of a stale topic right after its snapshot', () => {
    const r = rig({ topicTtlMs: TTL, heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1 });
    r.publish('px.B', { bid: 1 });
    r.clock.advance(2 * TTL);
    expect(r.stats.staleTopics).toBe(2);
    r.publish('px.B', { bid: 2 }); // px.B is fresh again
    expect(r.stats.staleTopics).toBe(1);
    const late = r.connect(native);
    r.subscribe(late, ['px.*']);
    r.clock.runTurn();
    expect(trace(late, 'px.A')).toEqual(['snapshot@1', 'STALE@1']);
    expect(trace(late, 'px.B')).toEqual(['snapshot@2']);
  });

  it('never flags quiet topics when no TTL is set', () => {
    const r = rig({ topicTtlMs: 0, heartbeatMs: 60_000 });
    const c = r.connect(native);
    r.publish('px.A', { bid: 1 });
    r.subscribe(c, ['px.A']);
    r.clock.advance(100 * TTL);
    expect(statuses(c)).toEqual([]);
    expect(r.stats.staleTopics).toBe(0);
  });

  it('flags a topic stale when the connection that published its current version closes', () => {
    const r = rig({ heartbeatMs: 60_000 });
    const sub = r.connect(native);
    const pub = r.connect(native);
    const a = r.publish('px.A', { bid: 1 });
    r.fanout.publishedBy(pub.conn, 'px.A', a.topic.epoch, a.version);
    r.subscribe(sub, ['px.A']);
    r.clock.runTurn();
    r.fanout.closed(pub.conn);
    r.clock.runTurn();
    expect(trace(sub)).toEqual(['snapshot@1', 'STALE@1']);
    expect(r.stats.staleTopics).toBe(1);
    r.publish('px.A', { bid: 2 });
    r.clock.runTurn();
    expect(trace(sub)).toEqual(['snapshot@1', 'STALE@1', 'OK@2', 'delta@2']);
  });

  it('does not flag it when someone else published since', () => {
    const r = rig({ heartbeatMs: 60_000 });
    const sub = r.connect(native);
    const first = r.connect(native);
    const second = r.connect(native);
    r.subscribe(sub, ['px.A']);
    const a1 = r.publish('px.A', { bid: 1 });
    r.fanout.publishedBy(first.conn, 'px.A', a1.topic.epoch, a1.version);
    const a2 = r.publish('px.A', { bid: 2 });
    r.fanout.publishedBy(second.conn, 'px.A', a2.topic.epoch, a2.version);
    r.clock.runTurn();
    r.fanout.closed(first.conn);
    r.clock.runTurn();
    expect(statuses(sub)).toEqual([]);
    r.fanout.closed(second.conn);
    r.clock.runTurn();
    expect(statuses(sub).map((s) => [s.state, s.version])).toEqual([[TopicState.STALE, 2]]);
  });
});
