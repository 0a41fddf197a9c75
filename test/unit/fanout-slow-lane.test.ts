// The slow lane: past the threshold a socket gets nothing; drained below half of
// it, ONE exact catch-up per missed topic, then the live stream. Past the hard cap,
// past the timeout, or on a DROPPED send: closed with 4008 (slow consumer).

import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { HOLD_TOPIC } from '../../src/server/fanout/fast-path.js';
import { SendStatus } from '../../src/server/sink.js';
import { rig, type Client } from './fanout-fakes.js';

const THRESHOLD = 64 * 1024;
const HARD_CAP = 1024 * 1024;
const TIMEOUT = 2_000;

function setup(native: boolean) {
  const r = rig({ slowThresholdBytes: THRESHOLD, hardCapBytes: HARD_CAP, slowTimeoutMs: TIMEOUT, heartbeatMs: 60_000 });
  for (const t of ['px.A', 'px.B', 'px.C']) r.publish(t, { bid: 1, ask: 2 });
  const slow = r.connect(native);
  r.subscribe(slow, ['px.*']);
  const other = r.connect(native);
  r.subscribe(other, ['px.*']);
  r.clock.runTurn();
  return { r, slow, other };
}

/** Messages that arrived after `mark` frames. */
const since = (c: Client, mark: number) => c.sink.frames.slice(mark).flatMap((f) => f.messages);

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('slow lane over %s', (_name, native) => {
  it('withholds updates from a slow socket, then sends one exact catch-up per missed topic and rejoins', () => {
    const { r, slow, other } = setup(native);
    r.publish('px.A', { bid: 10 });
    r.clock.runTurn();
    expect(slow.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));

    // The reader stalls: the next frame it is sent finds the buffer past the threshold.
    slow.sink.bufferedBytes = THRESHOLD + 1;
    r.fanout.reply(slow.conn, r.fanout.encoder.pong(1n));
    r.clock.runTurn();
    expect(slow.conn.slow).toBe(true);
    expect(r.stats.slowLaneEntries).toBe(1);
    // Off every channel's native stream (a uWS socket holds its subscriber through HOLD_TOPIC).
    expect([...slow.sink.uwsTopics]).toEqual(native ? [HOLD_TOPIC] : []);

    const mark = slow.sink.frames.length;
    r.publish('px.A', { bid: 11 });
    r.publish('px.A', { ask: null }); // a delete it must not lose
    r.publish('px.B', { bid: 20, note: 'x' });
    r.publish('px.B', { note: null });
    r.clock.advance(500); // sweeps run; still above half the threshold
    expect(since(slow, mark)).toEqual([]);
    expect(other.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));

    // Still above half the threshold: no drain yet.
    slow.sink.bufferedBytes = THRESHOLD / 2 + 1;
    r.fanout.drain(slow.conn);
    r.clock.runTurn();
    expect(since(slow, mark)).toEqual([]);
    expect(slow.conn.slow).toBe(true);

    const catchUpsBefore = r.stats.catchUpDeltas + r.stats.catchUpSnapshots;
    slow.sink.bufferedBytes = THRESHOLD / 2;
    r.fanout.drain(slow.conn);
    r.clock.runTurn();
    const caught = since(slow, mark);
    // One message per topic that changed (px.C did not), each at the current version.
    expect(caught.map((m) => [m.type === 'snapshot' || m.type === 'delta' ? m.topic : m.type, (m as { version?: number }).version]).sort()).toEqual([
      ['px.A', r.store.get('px.A')!.version],
      ['px.B', r.store.get('px.B')!.version],
    ]);
    for (const t of ['px.A', 'px.B', 'px.C']) expect(slow.sink.stateOf(t)).toEqual(r.stateOf(t));
    expect(slow.conn.slow).toBe(false);
    expect(r.stats.catchUpDeltas + r.stats.catchUpSnapshots - catchUpsBefore).toBe(2);

    // Back on the live stream: the next update arrives as a plain delta.
    const mark2 = slow.sink.frames.length;
    r.publish('px.C', { bid: 30 });
    r.clock.runTurn();
    expect(since(slow, mark2)).toMatchObject([{ type: 'delta', topic: 'px.C', base: 1, version: 2 }]);
    if (native) expect(slow.sink.frames.at(-1)!.published).toBe(true);
    expect(slow.sink.problems).toEqual([]);
    expect(slow.sink.closed).toBeNull();
  });

  it('drains on the sweep timer too, with no drain event from the transport', () => {
    const { r, slow } = setup(native);
    slow.sink.bufferedBytes = THRESHOLD * 2;
    r.fanout.reply(slow.conn, r.fanout.encoder.pong(1n));
    r.clock.runTurn();
    expect(slow.conn.slow).toBe(true);
    const mark = slow.sink.frames.length;
    r.publish('px.A', { bid: 5 });
    r.clock.advance(300);
    expect(since(slow, mark)).toEqual([]);
    slow.sink.bufferedBytes = 0;
    r.clock.advance(100); // one sweep period (slowTimeoutMs / 4, at most 100 ms)
    expect(since(slow, mark)).toHaveLength(1);
    expect(slow.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
    expect(slow.conn.slow).toBe(false);
  });

  it('closes with 4008 once the buffer passes the hard cap, not at it', () => {
    const { r, slow, other } = setup(native);
    slow.sink.bufferedBytes = HARD_CAP;
    r.fanout.reply(slow.conn, r.fanout.encoder.pong(1n));
    r.clock.advance(300);
    expect(slow.conn.slow).toBe(true);
    expect(slow.sink.closed).toBeNull();
    slow.sink.bufferedBytes = HARD_CAP + 1;
    r.clock.advance(100);
    expect(slow.sink.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(r.stats.slowDisconnects).toBe(1);
    expect(r.stats.connections).toBe(1);
    // The survivors are unaffected; the closed socket is never written to again (the fake throws if it is).
    r.publish('px.A', { bid: 7 });
    r.clock.advance(1_000);
    expect(other.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });

  it('closes with 4008 a socket still slow after slowTimeoutMs, not before', () => {
    const { r, slow } = setup(native);
    slow.sink.bufferedBytes = THRESHOLD + 1;
    r.fanout.reply(slow.conn, r.fanout.encoder.pong(1n));
    r.clock.runTurn();
    const entered = r.clock.now();
    expect(slow.conn.slow).toBe(true);
    r.publish('px.A', { bid: 8 }); // keeps it owing something
    r.clock.advance(TIMEOUT);
    expect(r.clock.now() - entered).toBe(TIMEOUT);
    expect(slow.sink.closed).toBeNull();
    r.clock.advance(100); // the next sweep
    expect(slow.sink.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(r.stats.slowDisconnects).toBe(1);
  });

  it('closes with 4008 when the transport drops a frame', () => {
    const { r, slow, other } = setup(native);
    slow.sink.policy = SendStatus.DROPPED;
    r.fanout.reply(slow.conn, r.fanout.encoder.pong(1n));
    r.publish('px.A', { bid: 9 });
    r.clock.runTurn();
    expect(slow.sink.dropped).toHaveLength(1);
    expect(slow.sink.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(r.stats.slowDisconnects).toBe(1);
    expect(r.stats.connections).toBe(1);
    r.publish('px.A', { bid: 10 });
    r.clock.advance(1_000);
    expect(other.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });
});

describe('slow lane, native only', () => {
  it('notices a fast-path socket falling behind without any direct send to it', () => {
    const { r, slow, other } = setup(true);
    slow.sink.bufferedBytes = THRESHOLD + 1; // growing from published frames alone
    r.publish('px.A', { bid: 2 });
    r.clock.advance(100); // one sweep looks at every fast-path socket
    expect(slow.conn.slow).toBe(true);
    expect(other.conn.slow).toBe(false);
    expect(r.stats.slowLaneEntries).toBe(1);
    const mark = slow.sink.frames.length;
    r.publish('px.B', { bid: 3 });
    r.clock.advance(50);
    expect(since(slow, mark)).toEqual([]);
    slow.sink.bufferedBytes = 0;
    r.fanout.drain(slow.conn);
    r.clock.runTurn();
    expect(since(slow, mark).map((m) => (m as { topic?: string }).topic)).toEqual(['px.B']);
    for (const t of ['px.A', 'px.B', 'px.C']) expect(slow.sink.stateOf(t)).toEqual(r.stateOf(t));
    expect(slow.sink.problems).toEqual([]);
  });
});

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('slow lane and subscription changes over %s', (_name, native) => {
  it('owes a whole image to a slow socket that widened its fields, even if it asks for a catch-up meanwhile', () => {
    const r = rig({ slowThresholdBytes: THRESHOLD, heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1, x: 1 });
    const c = r.connect(native);
    r.subscribe(c, ['px.A'], { id: 1, fields: ['bid'] });
    r.clock.runTurn();
    expect(c.sink.stateOf('px.A')).toEqual({ bid: 1 });
    c.sink.bufferedBytes = THRESHOLD + 1;
    r.fanout.reply(c.conn, r.fanout.encoder.pong(1n));
    r.clock.runTurn();
    expect(c.conn.slow).toBe(true);
    r.subscribe(c, ['px.A'], { id: 2 }); // now every field: it lacks x
    const held = c.sink.held.get('px.A')!;
    r.fanout.catchUpRequest(c.conn, 'px.A', held.epoch, held.version);
    r.publish('px.A', { bid: 2 });
    c.sink.bufferedBytes = 0;
    r.fanout.drain(c.conn);
    r.clock.runTurn();
    expect(c.sink.stateOf('px.A')).toEqual({ bid: 2, x: 1 });
  });
});

describe('slow lane right after a first image (native)', () => {
  it('catches up from the image it was sent, not from an older version', () => {
    const r = rig({ slowThresholdBytes: THRESHOLD, heartbeatMs: 60_000 });
    // Many fields, so that a merged delta is smaller than a snapshot and is the catch-up chosen.
    r.publish('px.A', Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, `value ${i}`])));
    const early = r.connect();
    r.subscribe(early, ['px.A']);
    r.clock.runTurn();
    r.publish('px.A', { bid: 2 }); // v2 is on its way to the native stream this turn
    const late = r.connect();
    late.sink.bufferedBytes = THRESHOLD + 1; // its first frame (welcome + snapshot v2) leaves it behind
    r.subscribe(late, ['px.A']);
    r.clock.runTurn();
    expect(late.conn.slow).toBe(true);
    expect(late.sink.held.get('px.A')?.version).toBe(2);
    r.publish('px.A', { bid: 3 });
    late.sink.bufferedBytes = 0;
    r.fanout.drain(late.conn);
    r.clock.runTurn();
    // A catch-up based on v1 would be a gap for a client holding v2 (one more round trip to heal).
    expect(late.sink.problems).toEqual([]);
    expect(late.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });
});
