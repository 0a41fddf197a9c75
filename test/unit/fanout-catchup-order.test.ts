// The contract for live deltas around a catch-up (docs/protocol.md, "Catch-ups
// in flight"): a catch-up answered in the same event-loop turn as a publish
// brings the subscriber to the current version at once. The turn's frame on
// its channel's native stream still carries that publish's delta, so the
// subscriber is served directly until the frame has gone out and rejoins the
// stream right after it: the delta its catch-up covered never reaches it (no
// wire duplicate), and the next one does, on the stream. Clients still ignore
// a delta at or below the version they hold (the SDK's replica, below).

import { describe, expect, it } from 'vitest';
import { rig, sameState } from './fanout-fakes.js';
import { TopicReplica } from '../../src/client/replica.js';

describe('a live delta after the catch-up that covered it', () => {
  it('does not reach the subscriber: it rejoins the stream after the frame that carried it', () => {
    const r = rig();
    r.publish('ord.A', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['ord.A']);
    r.clock.runTurn();
    const epoch = r.store.get('ord.A')!.epoch;
    const before = c.sink.frames.length;

    // One turn: a publish (v2, queued on the channel), then the client's CatchUp from v1.
    r.publish('ord.A', { bid: 2 });
    r.fanout.catchUpRequest(c.conn, 'ord.A', epoch, 1);
    r.clock.runTurn();

    const after = c.sink.frames.slice(before).flatMap((f) => f.messages.map((m) => ({ published: f.published, m })));
    const updates = after.filter(({ m }) => m.type === 'delta' || m.type === 'snapshot');
    // The catch-up to v2 (a direct frame: merged delta or snapshot, whichever is smaller), and not the channel's delta to v2 (published).
    expect(updates.map(({ published, m }) => [published, published ? m.type : 'catch-up', 'version' in m ? m.version : null])).toEqual([[false, 'catch-up', 2]]);
    expect(c.sink.duplicates).toBe(0);
    expect(c.sink.problems).toEqual([]);
    expect(sameState(c.sink.held.get('ord.A')!.state, r.store.get('ord.A')!.state)).toBe(true);

    // Back on the stream from there: the next delta is published and applies on its base.
    const before3 = c.sink.frames.length;
    r.publish('ord.A', { bid: 3 });
    r.clock.runTurn();
    const next = c.sink.frames.slice(before3).flatMap((f) => f.messages.map((m) => ({ published: f.published, m }))).filter(({ m }) => m.type === 'delta');
    expect(next.map(({ published, m }) => [published, 'version' in m ? m.version : null])).toEqual([[true, 3]]);
    expect(c.sink.held.get('ord.A')!.version).toBe(3);
    expect(c.sink.duplicates).toBe(0);
    expect(c.sink.problems).toEqual([]);
    expect(c.sink.healRequests).toEqual([]);
  });

  it("the SDK's replica: a delta at or below the held version is a duplicate, not a gap", () => {
    const t = new TopicReplica('ord.B');
    t.snapshot(7, 5, new Map([['bid', 1]]));
    expect(t.delta(7, 4, 5, new Map([['bid', 2]]))).toBe('duplicate');
    expect(t.delta(7, 3, 4, new Map([['bid', 0]]))).toBe('duplicate');
    expect(t.state.get('bid')).toBe(1);
    expect(t.delta(7, 5, 6, new Map([['bid', 3]]))).toBe('applied');
    expect(t.delta(7, 7, 8, new Map([['bid', 4]]))).toBe('gap');
  });
});
