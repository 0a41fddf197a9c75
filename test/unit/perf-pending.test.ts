// A throttled channel merges into one reused map (issue 13: fewer fresh Maps
// on the hot path): flushing clears it instead of replacing it, an empty flush
// allocates nothing, and every subscriber still gets exact merged deltas.

import { describe, expect, it } from 'vitest';
import { rig } from './fanout-fakes.js';

describe('throttled channels reuse their pending map', () => {
  it('keeps one map across flushes and still delivers exact merged deltas', () => {
    const r = rig({ rateTiers: [4, 1], heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1, ask: 2 });
    const fast = r.connect(true);
    const direct = r.connect(false);
    for (const c of [fast, direct]) r.subscribe(c, ['px.A'], { maxRate: 4 });
    r.clock.runTurn();
    const ch = fast.conn.topics.get('px.A')!.channel!;
    const pending = ch.pending;
    for (let i = 0; i < 40; i++) {
      r.publish('px.A', i % 3 ? { bid: i } : { ask: i, bid: null });
      r.clock.advance(90);
    }
    r.clock.advance(1_000);
    expect(ch.pending).toBe(pending);
    expect(ch.pending.size).toBe(0);
    for (const c of [fast, direct]) {
      expect(c.sink.problems).toEqual([]);
      expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
      expect(c.sink.held.get('px.A')!.version).toBe(r.store.get('px.A')!.version);
    }
  });
});
