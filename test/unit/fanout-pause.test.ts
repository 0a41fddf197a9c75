// Pause and resume: nothing arrives for a paused subscription; resuming brings
// ONE exact catch-up, then the live stream — also when the pause lands in the
// same turn as updates already queued for the native stream.

import { describe, expect, it } from 'vitest';
import { rig } from './fanout-fakes.js';

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('pause over %s', (_name, native) => {
  it('withholds updates while paused, then sends one catch-up and resumes the stream', () => {
    const r = rig({ heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1, ask: 1 });
    r.publish('px.B', { bid: 1 });
    const c = r.connect(native);
    r.subscribe(c, ['px.*'], { id: 1 });
    r.subscribe(c, ['px.B'], { id: 2 });
    r.clock.runTurn();
    r.fanout.setPaused(c.conn, 1, true); // px.A: paused; px.B: still wanted by subscription 2
    r.clock.runTurn();
    const mark = c.sink.frames.length;
    r.publish('px.A', { bid: 2 });
    r.publish('px.A', { ask: null });
    r.publish('px.B', { bid: 2 });
    r.clock.advance(500);
    expect(c.sink.frames.slice(mark).flatMap((f) => f.messages.map((m) => (m as { topic?: string }).topic))).toEqual(['px.B']);

    r.fanout.setPaused(c.conn, 1, false);
    r.clock.runTurn();
    const caught = c.sink.updates('px.A').slice(1);
    expect(caught).toHaveLength(1); // one catch-up, not the two updates it missed
    expect(caught[0]).toMatchObject({ topic: 'px.A', version: 3 });
    expect(c.sink.stateOf('px.A')).toEqual({ bid: 2 });

    r.publish('px.A', { bid: 3 });
    r.clock.runTurn();
    expect(c.sink.updates('px.A').at(-1)).toMatchObject({ type: 'delta', base: 3, version: 4 });
    expect(c.sink.problems).toEqual([]);
  });

  it('catches up on resume when the pause came in the same turn as updates, even if the topic then goes quiet', () => {
    const r = rig({ heartbeatMs: 1_000 });
    r.publish('px.A', { bid: 1 });
    const c = r.connect(native);
    r.subscribe(c, ['px.A'], { id: 1 });
    r.clock.runTurn();
    r.publish('px.A', { bid: 2 });
    r.publish('px.A', { bid: 3 });
    r.fanout.setPaused(c.conn, 1, true); // before the turn's frames went out
    r.clock.advance(100);
    r.fanout.setPaused(c.conn, 1, false);
    r.clock.advance(2_000); // px.A stays quiet; heartbeats come and go
    expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
    // Nor may a heartbeat tell it that the stale version it holds is the one it was sent.
    const last = c.sink.ofType('heartbeat').at(-1)!;
    expect(last.versions).toEqual([{ topic: 'px.A', epoch: r.store.get('px.A')!.epoch, version: 3 }]);
  });
});
