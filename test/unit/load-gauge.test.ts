// Adaptive batching (issue 21): fan-out sends each publish at once while the
// event loop is lightly loaded, and batches a turn's publishes into one frame
// per channel once the loop is busy (load-gauge.ts). The gauge is driven here
// by a scripted utilization and a fake clock; the fan-out part checks that a
// light loop means one native publish per update and a busy one a frame per
// channel per turn, exact either way.

import { describe, expect, it } from 'vitest';
import { LOAD_SAMPLE_MS, LoadGauge } from '../../src/server/fanout/load-gauge.js';
import { FakeClock, rig } from './fanout-fakes.js';

describe('LoadGauge', () => {
  it('batches from the threshold up, and sends at once again only 10 points below it', () => {
    const clock = new FakeClock();
    const script = [0.1, 0.49, 0.5, 0.45, 0.41, 0.4, 0.9, 0.2];
    let i = 0;
    const g = new LoadGauge(clock, 50, () => script[i++]!);
    const seen: boolean[] = [g.light];
    for (let k = 0; k < script.length; k++) {
      clock.advance(LOAD_SAMPLE_MS);
      seen.push(g.light);
    }
    // start light; 0.1 light; 0.49 light; 0.5 busy; 0.45, 0.41 still busy; 0.4 light; 0.9 busy; 0.2 light
    expect(seen).toEqual([true, true, true, false, false, false, true, false, true]);
    g.close();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('fan-out with adaptive batching', () => {
  it('a light loop sends every publish at once, one native publish each, exact', () => {
    const r = rig({ eagerFlushes: 0, eagerBelowLoad: 50 });
    r.publish('px.A', { bid: 1 });
    const a = r.connect(true);
    r.subscribe(a, ['px.A']);
    r.clock.runTurn();
    r.clock.holdDeferred = true;
    const before = r.uws.publishes;
    for (let v = 2; v <= 6; v++) {
      r.publish('px.A', { bid: v });
      expect(r.uws.publishes - before).toBe(v - 1);
    }
    r.clock.holdDeferred = false;
    r.clock.runTurn();
    expect(a.sink.problems).toEqual([]);
    expect(a.sink.stateOf('px.A')).toEqual({ bid: 6 });
  });

  it('with the option off (0), a turn\'s publishes wait for its end and share one frame', () => {
    const r = rig({ eagerFlushes: 0, eagerBelowLoad: 0 });
    r.publish('px.A', { bid: 1 });
    const a = r.connect(true);
    r.subscribe(a, ['px.A']);
    r.clock.runTurn();
    r.clock.holdDeferred = true;
    const before = r.uws.publishes;
    for (let v = 2; v <= 6; v++) r.publish('px.A', { bid: v });
    expect(r.uws.publishes - before).toBe(0);
    r.clock.runDeferredOnce();
    expect(r.uws.publishes - before).toBe(1);
    r.clock.holdDeferred = false;
    r.clock.runTurn();
    expect(a.sink.problems).toEqual([]);
    expect(a.sink.stateOf('px.A')).toEqual({ bid: 6 });
  });
});
