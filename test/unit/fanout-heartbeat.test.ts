// Heartbeats carry versions: every heartbeatMs a connection is told the (topic,
// epoch, version) it was sent of each quiet topic (no update within heartbeatMs/2,
// wall time) so it can tell it missed one; busy and paused topics are left out.

import { describe, expect, it } from 'vitest';
import type { HeartbeatMsg } from '../../src/protocol/index.js';
import { rig, type Client } from './fanout-fakes.js';

const HB = 1_000;

const heartbeats = (c: Client): (HeartbeatMsg & { at: number })[] =>
  c.sink.frames.flatMap((f) => f.messages.filter((m): m is HeartbeatMsg => m.type === 'heartbeat').map((m) => ({ ...m, at: f.at })));

const listed = (hb: HeartbeatMsg) => hb.versions.map((v) => [v.topic, v.version]).sort();

describe.each([
  ['native fast path', true],
  ['direct sends (no uWS topics)', false],
])('heartbeats over %s', (_name, native) => {
  it('list the version each quiet topic was sent, leave out busy and paused ones', () => {
    const r = rig({ heartbeatMs: HB, rateTiers: [4, 1] });
    const start = r.clock.now(); // the heartbeat timer started with the Fanout
    for (const t of ['px.Q', 'px.B', 'px.P', 'px.T']) r.publish(t, { bid: 1 });
    const c = r.connect(native);
    r.subscribe(c, ['px.Q', 'px.B'], { id: 1 });
    r.subscribe(c, ['px.P'], { id: 2 });
    r.subscribe(c, ['px.T'], { id: 3, maxRate: 1 });
    r.clock.runTurn();
    r.fanout.setPaused(c.conn, 2, true);

    r.clock.advance(50);
    r.publish('px.T', { bid: 2 }); // v2, sent at once (leading edge of its 1/s tier)
    r.clock.advance(50);
    r.publish('px.T', { bid: 3 }); // v3, held back until the tier's next flush (start + 1050)
    r.clock.advance(100);
    r.publish('px.Q', { bid: 2 }); // v2 at start + 200: quiet by the heartbeat at start + 1000
    r.clock.advance(100);
    r.publish('px.P', { bid: 2 }); // paused: not sent, not listed
    for (let i = 0; i < 6; i++) {
      r.clock.advance(100);
      r.publish('px.B', { bid: 10 + i }); // busy until start + 900
    }
    r.clock.advance(start + HB - 1 - r.clock.now());
    expect(heartbeats(c)).toEqual([]);
    r.clock.advance(1);

    const [hb] = heartbeats(c);
    expect(hb).toBeDefined();
    expect(hb!.at).toBe(start + HB);
    expect(hb!.time).toBe(r.clock.wallNow());
    const epochOf = (t: string) => r.store.get(t)!.epoch;
    // px.T is at v3 on the server, but this subscriber was sent v2 so far: that is what it must be told.
    expect(hb!.versions.sort((a, b) => a.topic.localeCompare(b.topic))).toEqual([
      { topic: 'px.Q', epoch: epochOf('px.Q'), version: 2 },
      { topic: 'px.T', epoch: epochOf('px.T'), version: 2 },
    ]);
    expect(c.sink.heartbeatMismatches).toEqual([]);

    // Resumed: it catches up on px.P and px.P is listed again; px.B went quiet; px.T's v3 went out.
    r.fanout.setPaused(c.conn, 2, false);
    r.clock.advance(HB);
    const second = heartbeats(c)[1]!;
    expect(second.at).toBe(start + 2 * HB);
    expect(listed(second)).toEqual([
      ['px.B', 7],
      ['px.P', 2],
      ['px.Q', 2],
      ['px.T', 3],
    ]);
    expect(c.sink.heartbeatMismatches).toEqual([]);
    expect(c.sink.problems).toEqual([]);
  });

  it('call a topic quiet only when it has not updated for half a heartbeat (wall time)', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    const c = r.connect(native);
    r.clock.advance(HB / 2 - 2);
    r.publish('px.OLD', { bid: 1 }); // 502 ms before the heartbeat
    r.clock.advance(2);
    r.publish('px.EDGE', { bid: 1 }); // exactly 500 ms before (either answer is fine)
    r.clock.advance(2);
    r.publish('px.NEW', { bid: 1 }); // 498 ms before
    r.subscribe(c, ['px.*']);
    r.clock.advance(start + HB - r.clock.now());
    const [hb] = heartbeats(c);
    const names = hb!.versions.map((v) => v.topic);
    expect(names).toContain('px.OLD');
    expect(names).not.toContain('px.NEW');
    expect(c.sink.heartbeatMismatches).toEqual([]);
  });

  it('come every heartbeatMs, empty when there is nothing quiet to report', () => {
    const r = rig({ heartbeatMs: HB });
    const start = r.clock.now();
    const c = r.connect(native);
    r.clock.advance(3 * HB + HB / 2);
    const hbs = heartbeats(c);
    expect(hbs.map((h) => h.at - start)).toEqual([HB, 2 * HB, 3 * HB]);
    expect(hbs.every((h) => h.versions.length === 0)).toBe(true);
  });
});
