// The fast-path buffer check bounded (issue 13): native publishes do not report
// per socket, so the slow lane looks at fast-path sockets' buffers — only
// those with a fast-path subscription, round-robin, in proportion to the bytes
// published — instead of scanning every connection every so many bytes. The
// guarantee stays: no fast-path socket takes more than half the threshold
// between two looks.

import { describe, expect, it } from 'vitest';
import { rig, type Client } from './fanout-fakes.js';

const THRESHOLD = 64 * 1024;

/** Counts the looks at a client's transport buffer. */
function counted(c: Client): { n: number } {
  const count = { n: 0 };
  const sink = c.sink;
  sink.buffered = () => {
    count.n++;
    return sink.bufferedBytes;
  };
  return count;
}

function setup(fastClients: number, idle: number) {
  const r = rig({ slowThresholdBytes: THRESHOLD, hardCapBytes: 16 * THRESHOLD, slowTimeoutMs: 60_000, heartbeatMs: 600_000 });
  r.publish('px.A', { bid: 1 });
  const fast = Array.from({ length: fastClients }, () => r.connect(true));
  for (const c of fast) r.subscribe(c, ['px.A']);
  const others = Array.from({ length: idle }, () => r.connect(true)); // connected, no subscription
  r.clock.runTurn();
  return { r, fast, others };
}

describe('fast-path buffer checks', () => {
  it('look only at sockets with a fast-path subscription, a few per turn in proportion to the bytes published', () => {
    const { r, fast, others } = setup(200, 300);
    const fastLooks = fast.map(counted);
    const idleLooks = others.map(counted);
    let published = 0;
    let maxPerTurn = 0;
    const pad = 'x'.repeat(200);
    while (published < THRESHOLD / 2) {
      const before = fastLooks.reduce((s, c) => s + c.n, 0);
      r.publish('px.A', { bid: published, pad });
      r.clock.runTurn();
      published += fast[0]!.sink.frames.at(-1)!.bytes;
      const looks = fastLooks.reduce((s, c) => s + c.n, 0) - before;
      maxPerTurn = Math.max(maxPerTurn, looks);
    }
    expect(idleLooks.every((c) => c.n === 0)).toBe(true);
    // One frame of ~250 bytes owes 200 × 250 / 32 KiB ≈ 1.5 looks: never a scan of all 200.
    expect(maxPerTurn).toBeLessThanOrEqual(3);
    // Half the threshold published: every fast-path socket was looked at (once, round-robin).
    expect(fastLooks.every((c) => c.n >= 1)).toBe(true);
    expect(Math.max(...fastLooks.map((c) => c.n))).toBeLessThanOrEqual(2);
  });

  it('notice a fast-path socket past the threshold before another half threshold is published, without the sweep', () => {
    const { r, fast } = setup(100, 0);
    const stalled = fast[57]!;
    stalled.sink.bufferedBytes = THRESHOLD + 1;
    let published = 0;
    const pad = 'y'.repeat(500);
    while (!stalled.conn.slow && published < THRESHOLD) {
      r.publish('px.A', { bid: published, pad });
      r.clock.runTurn();
      published += fast[0]!.sink.frames.at(-1)!.bytes;
    }
    expect(stalled.conn.slow).toBe(true);
    expect(published).toBeLessThanOrEqual(THRESHOLD / 2 + 600);
    expect(fast.filter((c) => c.conn.slow)).toEqual([stalled]);
    expect(r.stats.slowLaneEntries).toBe(1);
  });

  it('a turn publishing half the threshold or more looks at every fast-path socket at once', () => {
    const { r, fast } = setup(50, 0);
    const looks = fast.map(counted);
    r.publish('px.A', { a: 'z'.repeat(12_000), b: 'z'.repeat(12_000), c: 'z'.repeat(12_000) });
    r.clock.runTurn();
    expect(looks.every((c) => c.n === 1)).toBe(true);
  });
});
