// The fakes under every fanout-*.test.ts: the FakeClock runs timers in due
// order and deferred work at the end of each turn; the FakeSink notices the
// sequence and version gaps a client would. If these lie, the rest proves nothing.

import { describe, expect, it } from 'vitest';
import { Encoder, FrameWriter } from '../../src/protocol/index.js';
import { SendStatus } from '../../src/server/sink.js';
import { FakeClock, FakeSink, FakeUws } from './fanout-fakes.js';

describe('FakeClock', () => {
  it('runs timers in due order (ties in the order they were set), reading their due time', () => {
    const clock = new FakeClock(0);
    const ran: string[] = [];
    const at = (name: string) => () => ran.push(`${name}@${clock.now()}`);
    clock.setTimeout(at('c'), 30);
    clock.setTimeout(at('a'), 10);
    clock.setTimeout(at('b1'), 20);
    clock.setTimeout(at('b2'), 20);
    clock.advance(19);
    expect(ran).toEqual(['a@10']);
    expect(clock.now()).toBe(19);
    clock.advance(100);
    expect(ran).toEqual(['a@10', 'b1@20', 'b2@20', 'c@30']);
    expect(clock.now()).toBe(119);
    expect(clock.pendingTimers).toBe(0);
  });

  it('repeats intervals until cleared and forgets cleared timeouts', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const h = clock.setInterval(() => ticks.push(clock.now()), 100);
    const t = clock.setTimeout(() => ticks.push(-1), 150);
    clock.clearTimeout(t);
    clock.advance(350);
    expect(ticks).toEqual([100, 200, 300]);
    clock.clearInterval(h);
    clock.advance(1000);
    expect(ticks).toEqual([100, 200, 300]);
  });

  it('runs deferred work at the end of the turn, before timers, and after each due timer', () => {
    const clock = new FakeClock(0);
    const ran: string[] = [];
    clock.setTimeout(() => {
      ran.push('timer');
      clock.defer(() => ran.push('deferred by timer'));
    }, 0);
    clock.defer(() => {
      ran.push('deferred');
      clock.defer(() => ran.push('deferred again'));
    });
    expect(ran).toEqual([]);
    clock.runTurn();
    expect(ran).toEqual(['deferred', 'deferred again', 'timer', 'deferred by timer']);
    expect(clock.now()).toBe(0);
    expect(clock.pendingDeferred).toBe(0);
  });

  it('keeps wall time moving with the monotonic clock', () => {
    const clock = new FakeClock(500, 1_000_000);
    clock.advance(250);
    expect(clock.now()).toBe(750);
    expect(clock.wallNow()).toBe(1_000_250);
  });
});

describe('FakeSink', () => {
  const enc = new Encoder();
  const writer = new FrameWriter();

  it('applies a delta only on its base and reports gaps and wrong sequence numbers', () => {
    const sink = new FakeSink(null);
    expect(sink.send(1, [enc.snapshot('px.A', 7, 3, new Map([['bid', 1]]), 0)])).toBe(SendStatus.SENT);
    sink.send(2, [enc.delta('px.A', 7, 3, 4, 1, new Map([['bid', 2]]), 0)]);
    expect(sink.stateOf('px.A')).toEqual({ bid: 2 });
    expect(sink.problems).toEqual([]);
    sink.send(3, [enc.delta('px.A', 7, 3, 4, 1, new Map([['bid', 9]]), 0)]); // duplicate: ignored
    expect(sink.duplicates).toBe(1);
    sink.send(5, [enc.delta('px.A', 7, 5, 6, 1, new Map([['bid', 3]]), 0)]); // skips a frame and a version
    expect(sink.stateOf('px.A')).toEqual({ bid: 2 });
    expect(sink.problems).toEqual(['frame #4 carries sequence 5', 'px.A: gap, holds 7/4, got delta 7/5→6']);
  });

  it('counts published frames (sequence 0) toward the next direct number', () => {
    const uws = new FakeUws();
    const sink = new FakeSink(uws);
    sink.native!.subscribe('c1');
    sink.send(1, [enc.snapshot('px.A', 1, 1, new Map([['bid', 1]]), 0)]);
    uws.broadcast('c1', writer.write(0, [enc.delta('px.A', 1, 1, 2, 1, new Map([['bid', 2]]), 0)]));
    uws.broadcast('c2', writer.write(0, [enc.delta('px.B', 1, 1, 2, 1, new Map([['x', 2]]), 0)])); // not ours
    sink.send(3, [enc.heartbeat(0, [{ topic: 'px.A', epoch: 1, version: 2 }])]);
    expect(sink.problems).toEqual([]);
    expect(sink.heartbeatMismatches).toEqual([]);
    sink.send(3, [enc.heartbeat(0, [{ topic: 'px.A', epoch: 1, version: 3 }])]);
    expect(sink.problems).toEqual(['frame #4 carries sequence 3']);
    expect(sink.heartbeatMismatches).toEqual(['px.A: heartbeat says 1/3, holds 1/2']);
  });

  it('records DROPPED frames as never received, and refuses sends after end()', () => {
    const sink = new FakeSink(null);
    sink.policy = SendStatus.DROPPED;
    expect(sink.send(1, [enc.pong(1n)])).toBe(SendStatus.DROPPED);
    expect(sink.frames).toEqual([]);
    expect(sink.dropped).toHaveLength(1);
    sink.end(4008, 'slow consumer');
    expect(sink.closed).toEqual({ code: 4008, reason: 'slow consumer' });
    expect(() => sink.send(2, [enc.pong(2n)])).toThrow(/after end/);
  });
});
