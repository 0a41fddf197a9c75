// Eager flushes: the first `eagerFlushes` publishes of an event-loop turn go
// out as soon as they are accepted; the turn's later ones wait for its end and
// leave together, one frame per channel — a quiet feed's update does not wait
// for the rest of its turn, a busy turn still sends few frames.

import { describe, expect, it } from 'vitest';
import { rig } from './fanout-fakes.js';

describe('eager flushes', () => {
  it('send a turn\'s first publishes at once and batch the rest at its end; the next turn is eager again', () => {
    const r = rig({ eagerFlushes: 2 });
    r.publish('px.A', { bid: 1 });
    r.publish('px.B', { bid: 1 });
    const a = r.connect(true);
    r.subscribe(a, ['px.A', 'px.B']);
    r.clock.runTurn();
    r.clock.holdDeferred = true;
    const before = r.uws.publishes;
    r.publish('px.A', { bid: 2 }); // eager
    expect(r.uws.publishes - before).toBe(1);
    r.publish('px.B', { bid: 2 }); // eager
    expect(r.uws.publishes - before).toBe(2);
    r.publish('px.A', { bid: 3 }); // the turn's eager ones are spent: queued
    r.publish('px.A', { bid: 4 });
    r.publish('px.B', { bid: 3 });
    expect(r.uws.publishes - before).toBe(2);
    r.clock.runDeferredOnce(); // the turn's end: one frame per channel for the rest
    expect(r.uws.publishes - before).toBe(4);
    const frames = a.sink.frames.length;
    r.publish('px.A', { bid: 5 }); // a new turn: eager again
    expect(r.uws.publishes - before).toBe(5);
    expect(a.sink.frames.length).toBe(frames + 1);
    r.clock.holdDeferred = false;
    r.clock.runTurn();
    expect(a.sink.problems).toEqual([]);
    expect(a.sink.stateOf('px.A')).toEqual({ bid: 5 });
    expect(a.sink.stateOf('px.B')).toEqual({ bid: 3 });
  });

  it('with 0, every publish waits for the turn\'s end', () => {
    const r = rig({ eagerFlushes: 0 });
    r.publish('px.A', { bid: 1 });
    const a = r.connect(true);
    r.subscribe(a, ['px.A']);
    r.clock.runTurn();
    const before = r.uws.publishes;
    r.publish('px.A', { bid: 2 });
    r.publish('px.A', { bid: 3 });
    expect(r.uws.publishes - before).toBe(0);
    r.clock.runTurn();
    expect(r.uws.publishes - before).toBe(1);
    expect(a.sink.stateOf('px.A')).toEqual({ bid: 3 });
  });

  it('a snapshot queued for a joiner in the same turn still reaches it before the eager delta', () => {
    const r = rig({ eagerFlushes: 4 });
    r.publish('px.A', { bid: 1 });
    const a = r.connect(true);
    r.clock.holdDeferred = true;
    r.subscribe(a, ['px.A']); // snapshot queued (direct), joins the stream
    r.publish('px.A', { bid: 2 }); // eager: direct frames go first
    r.clock.holdDeferred = false;
    r.clock.runTurn();
    expect(a.sink.problems).toEqual([]);
    expect(a.sink.stateOf('px.A')).toEqual({ bid: 2 });
  });
});
