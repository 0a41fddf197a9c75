// Joining a channel's native stream while that channel has messages queued
// for the turn's publish (fast-path.ts#join): the subscriber's first image is
// at the topic's version, which the queued frame also reaches, so it must not
// be on the stream when that frame goes out — it is served directly for the
// rest of the turn and joins right after. Each case checks that the joiner
// gets no delta of a version it holds (no wire duplicate), no gap, and is on
// the native stream from the next turn on. The integration counterpart, over
// real sockets and workers: test/integration/late-joiner-wire-duplicates.test.ts.

import { describe, expect, it } from 'vitest';
import { rig, sameState, type Client, type Rig } from './fanout-fakes.js';

/** The joiner's deltas of `topic` after frame index `from`: [published, base, version]. */
function deltas(c: Client, topic: string, from = 0): [boolean, number, number][] {
  const out: [boolean, number, number][] = [];
  for (const f of c.sink.frames.slice(from)) {
    for (const m of f.messages) if (m.type === 'delta' && m.topic === topic) out.push([f.published, m.base, m.version]);
  }
  return out;
}

function exact(r: Rig, c: Client, topic: string): void {
  expect(c.sink.problems).toEqual([]);
  expect(c.sink.duplicates, 'deltas of versions already held').toBe(0);
  expect(c.sink.held.get(topic)!.version).toBe(r.store.get(topic)!.version);
  expect(sameState(c.sink.held.get(topic)!.state, r.store.get(topic)!.state)).toBe(true);
}

describe('a subscriber joining while its channel has a frame queued', () => {
  it('full rate: snapshot at v3 with v2 and v3 queued, then v4 directly; on the stream from v5', () => {
    const r = rig();
    r.publish('jo.A', { bid: 1 });
    const a = r.connect();
    r.subscribe(a, ['jo.A']);
    r.clock.runTurn();

    // One turn: two publishes queued on the channel (a is on its stream), b subscribes, one more publish.
    r.publish('jo.A', { bid: 2 });
    r.publish('jo.A', { bid: 3 });
    const b = r.connect();
    r.subscribe(b, ['jo.A']);
    r.publish('jo.A', { bid: 4 });
    r.clock.runTurn();
    const snaps = b.sink.frames.flatMap((f) => f.messages).filter((m) => m.type === 'snapshot');
    expect(snaps.map((m) => m.type === 'snapshot' && m.version)).toEqual([3]);
    expect(deltas(b, 'jo.A')).toEqual([[false, 3, 4]]);
    exact(r, b, 'jo.A');

    const before = b.sink.frames.length;
    r.publish('jo.A', { bid: 5 });
    r.clock.runTurn();
    expect(deltas(b, 'jo.A', before)).toEqual([[true, 4, 5]]);
    exact(r, b, 'jo.A');
    exact(r, a, 'jo.A');
  });

  it('throttled tier: the catch-up to a flush queued in the same turn is not followed by that flush', () => {
    const r = rig();
    r.publish('jo.T', { bid: 1 });
    const a = r.connect();
    r.subscribe(a, ['jo.T'], { maxRate: 10 });
    r.clock.runTurn();
    r.clock.advance(200); // a's first flush is behind it: the next waits for the tier's interval
    r.publish('jo.T', { bid: 2 });
    // b subscribes between flushes: its snapshot (v2) is ahead of the channel's last flush, so it waits outside.
    const b = r.connect();
    r.subscribe(b, ['jo.T'], { maxRate: 10 });
    r.publish('jo.T', { bid: 3 });
    r.clock.advance(200); // the flush: 1→3 queued for the stream, b caught up from v2 to v3 directly
    const images = b.sink.frames.flatMap((f) => f.messages.filter((m) => m.type === 'snapshot' || m.type === 'delta').map((m) => [f.published, m.type, 'version' in m ? m.version : null]));
    expect(images).toEqual([
      [false, 'snapshot', 2],
      [false, 'snapshot', 3], // the catch-up (a snapshot: smaller than the delta here), and not the flush's 1→3 after it
    ]);
    exact(r, b, 'jo.T');

    const before = b.sink.frames.length;
    r.publish('jo.T', { bid: 4 });
    r.clock.advance(200);
    expect(deltas(b, 'jo.T', before)).toEqual([[true, 3, 4]]);
    exact(r, b, 'jo.T');
    exact(r, a, 'jo.T');
  });

  it("a queue its channel's last stream subscriber left behind reaches no one who joins in that turn", () => {
    const r = rig();
    r.publish('jo.L', { bid: 1 });
    const a = r.connect();
    const sid = r.subscribe(a, ['jo.L']);
    const sse = r.connect(false); // off the native stream: keeps the channel alive after a goes
    r.subscribe(sse, ['jo.L']);
    r.clock.runTurn();

    r.publish('jo.L', { bid: 2 }); // queued for a
    r.fanout.unsubscribe(a.conn, sid); // the channel lives on with nobody on its stream and v2 queued
    const b = r.connect();
    r.subscribe(b, ['jo.L']);
    r.clock.runTurn();
    expect(deltas(b, 'jo.L')).toEqual([]);
    exact(r, b, 'jo.L');

    const before = b.sink.frames.length;
    r.publish('jo.L', { bid: 3 });
    r.clock.runTurn();
    expect(deltas(b, 'jo.L', before)).toEqual([[true, 2, 3]]);
    exact(r, b, 'jo.L');
    exact(r, sse, 'jo.L');
  });
});
