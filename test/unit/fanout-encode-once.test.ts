// Encode once, send many: encoding work grows with updates × channels (rate
// tier × field subset), never with subscribers, for native publishes and direct
// sends alike; a crowd joining or resuming shares one snapshot encoding.

import { describe, expect, it } from 'vitest';
import { rig } from './fanout-fakes.js';

const UPDATES = 30;

/** `n` subscribers in each of three channels of px.A; UPDATES publishes, 20 ms apart. */
function run(n: number, native: boolean) {
  const r = rig({ rateTiers: [10, 4, 1], heartbeatMs: 60_000 });
  r.publish('px.A', { bid: 1, ask: 2 });
  const clients = [];
  for (let i = 0; i < n; i++) {
    const full = r.connect(native);
    r.subscribe(full, ['px.A']);
    const throttled = r.connect(native);
    r.subscribe(throttled, ['px.A'], { maxRate: 4 });
    const bidOnly = r.connect(native);
    r.subscribe(bidOnly, ['px.A'], { fields: ['bid'] });
    clients.push(full, throttled, bidOnly);
  }
  r.clock.runTurn();
  const snapshotEncodes = r.stats.snapshotEncodes;
  const before = r.stats.encodes;
  for (let i = 0; i < UPDATES; i++) {
    r.publish('px.A', i % 2 ? { bid: 10 + i } : { ask: 20 + i });
    r.clock.advance(20);
  }
  r.clock.advance(1_000);
  const want = r.stateOf('px.A');
  for (const c of clients) {
    const fields = c.conn.topics.get('px.A')!.channel!.fields;
    expect(c.sink.stateOf('px.A')).toEqual(fields ? { bid: want.bid } : want);
    expect(c.sink.problems).toEqual([]);
  }
  return { encodes: r.stats.encodes - before, snapshotEncodes, publishes: r.uws.publishes, deliveries: r.stats.deliveries };
}

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('encoding over %s', (_name, native) => {
  const runs = new Map<number, ReturnType<typeof run>>();
  const measured = (n: number) => runs.get(n) ?? runs.set(n, run(n, native)).get(n)!;

  it('grows with updates and channels, not with subscribers', () => {
    const one = measured(1);
    const many = measured(40);
    // Full rate: one encoding per update per field subset; 4/s: one per flush (at 0, 250, 500, 750 ms).
    expect(one.encodes).toBe(UPDATES + UPDATES + 4);
    expect(many.encodes).toBe(one.encodes);
    expect(many.deliveries).toBeGreaterThan(30 * one.deliveries); // they were all served
    if (native) expect(many.publishes).toBe(one.publishes); // one native publish per channel per turn
  });

  it('encodes one snapshot per topic and field subset for a crowd of new subscribers', () => {
    expect(measured(1).snapshotEncodes).toBe(2);
    expect(measured(40).snapshotEncodes).toBe(2);
  });
});

describe('a reconnect storm', () => {
  it('encodes the snapshot once for clients resuming from versions the history no longer covers', () => {
    const r = rig({ heartbeatMs: 60_000 }, { historySize: 4 });
    for (let v = 1; v <= 30; v++) r.publish('px.A', { bid: v, [`f${v % 5}`]: v });
    const epoch = r.store.get('px.A')!.epoch;
    const before = r.stats.snapshotEncodes;
    const clients = Array.from({ length: 20 }, (_, i) => {
      const c = r.connect(i % 2 === 0);
      r.subscribe(c, ['px.A'], { resume: [{ topic: 'px.A', epoch, version: 1 + i }] }); // each from its own version
      return c;
    });
    r.clock.runTurn();
    for (const c of clients) {
      expect(c.sink.updates('px.A')).toMatchObject([{ type: 'snapshot', version: 30 }]);
      expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
    }
    expect(r.stats.snapshotEncodes - before).toBe(1);
  });
});
