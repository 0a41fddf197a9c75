// Heartbeats and stale flags per channel (issue 13): fast-path subscribers of
// a quiet channel share one encoded heartbeat and one native publish; a stale
// flag is encoded once and published once per channel. The invariants stay:
// a client notices a lost last update from the heartbeat, sequence numbers
// stay exact, and a subscriber leaving the stream mid-turn still hears the flag.

import { describe, expect, it } from 'vitest';
import { TopicState, type HeartbeatMsg, type TopicStatusMsg } from '../../src/protocol/index.js';
import { rig, type Client } from './fanout-fakes.js';
import { HEARTBEAT_SLICE } from '../../src/server/fanout/liveness.js';

const HB = 1_000;

const heartbeats = (c: Client) =>
  c.sink.frames.flatMap((f) => f.messages.filter((m): m is HeartbeatMsg => m.type === 'heartbeat').map((m) => ({ ...m, published: f.published })));
const statuses = (c: Client) =>
  c.sink.frames.flatMap((f) => f.messages.filter((m): m is TopicStatusMsg => m.type === 'topicStatus').map((m) => ({ ...m, published: f.published })));

describe('heartbeats per channel', () => {
  it('walk the connections a slice per turn: publishes and I/O go in between, and each connection still gets exactly one', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    r.publish('px.Q', { bid: 1 });
    // Connections without uWS topics: each needs a heartbeat of its own.
    const clients = Array.from({ length: 2 * HEARTBEAT_SLICE + 10 }, () => r.connect(false));
    for (const c of clients) r.subscribe(c, ['px.Q']);
    r.clock.runTurn();
    r.clock.holdDeferred = true;
    r.clock.advance(start + HB - r.clock.now()); // the heartbeat timer fires; its deferred work waits
    const got = () => clients.filter((c) => heartbeats(c).length > 0).length;
    const seen: number[] = [];
    for (let turn = 0; turn < 5 && r.clock.pendingDeferred > 0; turn++) {
      r.clock.runDeferredOnce();
      seen.push(got());
    }
    // Turn 1 sends the first slice; each later turn one more; then nothing is left to do.
    expect(seen).toEqual([HEARTBEAT_SLICE, 2 * HEARTBEAT_SLICE, clients.length]);
    expect(r.clock.pendingDeferred).toBe(0);
    r.clock.holdDeferred = false;
    for (const c of clients) {
      expect(heartbeats(c)).toHaveLength(1);
      expect(heartbeats(c)[0]!.versions.map((v) => v.version)).toEqual([1]);
      expect(c.sink.problems).toEqual([]);
    }
  });

  it('a quiet channel whose subscribers span several slices is published one heartbeat per interval, not one per slice', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    r.publish('px.Q', { bid: 1 });
    const clients = Array.from({ length: 2 * HEARTBEAT_SLICE + 10 }, () => r.connect(true));
    for (const c of clients) r.subscribe(c, ['px.Q']);
    r.clock.runTurn();
    const publishes = r.uws.publishes;
    r.clock.advance(start + HB - r.clock.now());
    expect(r.uws.publishes - publishes).toBe(1);
    for (const c of clients) expect(heartbeats(c)).toHaveLength(1);
    r.clock.advance(HB); // the next interval: one more
    expect(r.uws.publishes - publishes).toBe(2);
    for (const c of clients) {
      expect(heartbeats(c)).toHaveLength(2);
      expect(c.sink.problems).toEqual([]);
    }
  });

  it('fast-path subscribers of a quiet topic share one heartbeat, published once, at the version they hold', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    r.publish('px.Q', { bid: 1 });
    r.publish('px.Q', { bid: 2 });
    const clients = Array.from({ length: 50 }, () => r.connect(true));
    for (const c of clients) r.subscribe(c, ['px.Q']);
    const direct = r.connect(false); // no uWS topics: its own heartbeat
    r.subscribe(direct, ['px.Q']);
    r.clock.runTurn();
    const publishes = r.uws.publishes;
    const frames = clients.map((c) => c.sink.frames.length);
    r.clock.advance(start + HB - r.clock.now());

    expect(r.uws.publishes - publishes).toBe(1); // one native publish for all 50
    clients.forEach((c, i) => {
      const got = c.sink.frames.slice(frames[i]);
      expect(got).toHaveLength(1);
      expect(got[0]!.published).toBe(true);
      const hbs = heartbeats(c);
      expect(hbs).toHaveLength(1);
      expect(hbs[0]!.versions).toEqual([{ topic: 'px.Q', epoch: r.store.get('px.Q')!.epoch, version: 2 }]);
      expect(hbs[0]!.time).toBe(r.clock.wallNow());
      expect(c.sink.heartbeatMismatches).toEqual([]);
    });
    const own = heartbeats(direct);
    expect(own).toHaveLength(1);
    expect(own[0]!.published).toBe(false);
    expect(own[0]!.versions.map((v) => v.version)).toEqual([2]);

    // Sequence numbers stay exact: a direct frame after the shared heartbeat counts it.
    r.fanout.reply(clients[0]!.conn, r.fanout.encoder.heartbeat(0, []));
    r.clock.runTurn();
    for (const c of [...clients, direct]) expect(c.sink.problems).toEqual([]);
  });

  it('a client that lost the last update notices it from the shared heartbeat', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    r.publish('px.Q', { bid: 1 });
    const c = r.connect(true);
    r.subscribe(c, ['px.Q']);
    r.clock.runTurn();
    r.publish('px.Q', { bid: 2 });
    r.clock.runTurn();
    // The network lost v2: the client still holds v1.
    c.sink.held.get('px.Q')!.version = 1;
    r.clock.advance(start + HB - r.clock.now());
    expect(heartbeats(c).map((h) => h.versions[0]!.version)).toEqual([2]);
    expect(c.sink.heartbeatMismatches).toEqual([expect.stringContaining('px.Q: heartbeat says')]);
  });

  it('names the version the stream reaches in its frame, even when an update and a joiner come later in the same turn', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    r.publish('px.Q', { bid: 1 });
    const a = r.connect(true);
    r.subscribe(a, ['px.Q']);
    r.clock.runTurn();
    let late: Client | null = null;
    // Due at the heartbeat's instant, after it: a publish and a new subscriber before the turn's flush.
    r.clock.setTimeout(() => {
      r.publish('px.Q', { bid: 2 });
      late = r.connect(true);
      r.subscribe(late, ['px.Q']);
    }, start + HB - r.clock.now());
    r.clock.advance(start + HB - r.clock.now());
    r.clock.runTurn();
    expect(heartbeats(a).map((h) => h.versions.map((v) => v.version))).toEqual([[2]]);
    for (const c of [a, late!]) {
      expect(c.sink.heartbeatMismatches).toEqual([]);
      expect(c.sink.problems).toEqual([]);
    }
  });

  it('skips a connection whose every topic is on the fast path and busy; one with no topic still gets an empty one', () => {
    const r = rig({ heartbeatMs: HB });
    const busy = r.connect(true);
    const idle = r.connect(true);
    r.publish('px.B', { bid: 0 });
    r.subscribe(busy, ['px.B']);
    for (let i = 1; i <= 30; i++) {
      r.clock.advance(HB / 10);
      r.publish('px.B', { bid: i });
    }
    expect(heartbeats(busy)).toEqual([]);
    expect(heartbeats(idle).length).toBe(3);
    expect(heartbeats(idle).every((h) => h.versions.length === 0)).toBe(true);
    expect(busy.sink.problems).toEqual([]);
  });
});

describe('stale flags per channel', () => {
  it('are encoded once and published once per channel to its fast-path subscribers', () => {
    const r = rig({ heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1 });
    const clients = Array.from({ length: 40 }, () => r.connect(true));
    for (const c of clients) r.subscribe(c, ['px.A']);
    const sse = r.connect(false);
    r.subscribe(sse, ['px.A']);
    r.clock.runTurn();
    const publishes = r.uws.publishes;
    r.fanout.setStale(r.store.get('px.A')!, true);
    r.clock.runTurn();
    expect(r.uws.publishes - publishes).toBe(1);
    for (const c of clients) {
      expect(statuses(c)).toEqual([expect.objectContaining({ state: TopicState.STALE, version: 1, published: true })]);
    }
    expect(statuses(sse)).toEqual([expect.objectContaining({ state: TopicState.STALE, version: 1, published: false })]);
    // OK comes before the update that ends it, in the stream.
    r.publish('px.A', { bid: 2 });
    r.clock.runTurn();
    expect(r.uws.publishes - publishes).toBe(2);
    const last = clients[0]!.sink.frames.at(-1)!;
    expect(last.messages.map((m) => m.type)).toEqual(['topicStatus', 'delta']);
    for (const c of [...clients, sse]) expect(c.sink.problems).toEqual([]);
  });

  it('still reach a subscriber that leaves the stream before the frame goes out', () => {
    const r = rig({ heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1 });
    const c = r.connect(true);
    const d = r.connect(true);
    r.subscribe(c, ['px.A'], { id: 1 });
    r.subscribe(d, ['px.A'], { id: 1 });
    r.clock.runTurn();
    r.fanout.setStale(r.store.get('px.A')!, true);
    r.fanout.setPaused(c.conn, 1, true); // leaves the native stream in the same turn
    r.clock.runTurn();
    expect(statuses(c).map((s) => [s.state, s.published])).toEqual([[TopicState.STALE, false]]);
    expect(statuses(d).map((s) => [s.state, s.published])).toEqual([[TopicState.STALE, true]]);
    expect(c.sink.problems).toEqual([]);
  });
});
