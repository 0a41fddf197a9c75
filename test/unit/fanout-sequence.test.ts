// Sequence numbers: a client counting every frame (published ones carry 0) finds
// each direct frame numbered with that count, through channel changes, unsubscribes
// and the slow lane; a seeded random workload also checks for version gaps.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HOLD_TOPIC } from '../../src/server/fanout/fast-path.js';
import { rig, sameState, type Client, type Rig } from './fanout-fakes.js';

/** Direct frames' numbers next to the count of frames received up to each. */
function numbering(c: Client): { direct: [number, number][]; published: number } {
  const direct: [number, number][] = [];
  let published = 0;
  c.sink.frames.forEach((f, i) => {
    if (f.published) published++;
    else direct.push([f.seq, i + 1]);
  });
  return { direct, published };
}

function expectCounted(c: Client): void {
  const { direct } = numbering(c);
  expect(direct.filter(([seq, count]) => seq !== count)).toEqual([]);
  expect(c.sink.problems).toEqual([]);
}

const pong = (r: Rig, c: Client, n: number) => r.fanout.reply(c.conn, r.fanout.encoder.pong(BigInt(n)));

describe('frame sequence numbers', () => {
  it('count the published frames a connection received between its direct frames', () => {
    const r = rig({ heartbeatMs: 300 });
    r.publish('px.A', { bid: 1 });
    r.publish('px.B', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['px.A']);
    r.subscribe(c, ['px.B'], { maxRate: 4 });
    r.clock.runTurn();
    for (let i = 0; i < 40; i++) {
      r.publish('px.A', { bid: 2 + i });
      if (i % 2 === 0) r.publish('px.B', { bid: 2 + i });
      if (i % 5 === 0) pong(r, c, i); // a direct frame in the same turn as published ones
      r.clock.advance(i % 3 === 0 ? 0 : 40);
    }
    r.clock.advance(1_000);
    const { direct, published } = numbering(c);
    expect(published).toBeGreaterThan(20);
    expect(direct.length).toBeGreaterThan(5);
    // The first direct frame after published ones jumps by exactly how many arrived.
    expect(direct.some(([seq], i) => i > 0 && seq - direct[i - 1]![0] > 1)).toBe(true);
    expectCounted(c);
    expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
    expect(c.sink.stateOf('px.B')).toEqual(r.stateOf('px.B'));
  });

  it('keep counting frames from channels the connection has left', () => {
    const r = rig({ heartbeatMs: 60_000 });
    r.publish('px.A', { bid: 1, ask: 2 });
    const c = r.connect();
    r.subscribe(c, ['px.A'], { id: 1 });
    r.subscribe(c, ['px.A'], { id: 2, maxRate: 4, fields: ['bid'] });
    r.clock.runTurn();
    for (let i = 0; i < 5; i++) {
      r.publish('px.A', { bid: 10 + i });
      r.clock.runTurn();
    }
    // Dropping the full-rate subscription moves px.A to the 4/s, bid-only channel: a fresh image.
    r.fanout.unsubscribe(c.conn, 1);
    pong(r, c, 1);
    r.clock.runTurn();
    for (let i = 0; i < 5; i++) {
      r.publish('px.A', { bid: 20 + i, ask: 3 + i });
      r.clock.advance(300);
    }
    r.fanout.unsubscribe(c.conn, 2);
    pong(r, c, 2);
    r.clock.advance(1_000);
    const { published } = numbering(c);
    expect(published).toBeGreaterThanOrEqual(10);
    expectCounted(c);
    expect(c.sink.frames.at(-1)!.published).toBe(false);
  });

  it('count through a stay in the slow lane', () => {
    const r = rig({ heartbeatMs: 60_000, slowThresholdBytes: 64 * 1024 });
    r.publish('px.A', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['px.A']);
    r.clock.runTurn();
    for (let i = 0; i < 3; i++) {
      r.publish('px.A', { bid: 2 + i });
      r.clock.runTurn();
    }
    c.sink.bufferedBytes = 100_000;
    pong(r, c, 1);
    r.clock.runTurn();
    expect(c.conn.slow).toBe(true);
    r.publish('px.A', { bid: 9 });
    r.clock.advance(50);
    c.sink.bufferedBytes = 0;
    r.fanout.drain(c.conn);
    r.clock.runTurn();
    r.publish('px.A', { bid: 10 });
    r.clock.runTurn();
    pong(r, c, 2);
    r.clock.runTurn();
    expectCounted(c);
    expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });

  it('are 1, 2, 3… on a transport without native topics', () => {
    const r = rig({ heartbeatMs: 200 });
    r.publish('px.A', { bid: 1 });
    const c = r.connect(false);
    r.subscribe(c, ['px.A']);
    for (let i = 0; i < 10; i++) {
      r.publish('px.A', { bid: 2 + i });
      r.clock.advance(70);
    }
    expect(c.sink.frames.map((f) => f.seq)).toEqual(c.sink.frames.map((_, i) => i + 1));
    expect(c.sink.problems).toEqual([]);
  });
});

// uWS 20.30 queues a publish for each subscriber until it drains (the loop
// iteration's end, or a direct send to the socket), and frees a socket that
// unsubscribes from its last topic together with what was still queued for it.
describe("frame sequence numbers with uWS's drain timing", () => {
  /** A rig whose uWS stand-in drains at the end of each turn, as uWebSockets.js does. */
  function drainingRig(o: Parameters<typeof rig>[0] = {}): Rig {
    const r = rig({ heartbeatMs: 60_000, ...o });
    r.uws.drainLater = (drain) => r.clock.defer(drain);
    return r;
  }

  it('count exactly the frames sent when the slow lane takes a socket off every channel right after a publish', () => {
    const r = drainingRig({ slowThresholdBytes: 2_048 });
    const names = Array.from({ length: 30 }, (_, i) => `sq.K${i}`);
    for (const t of names) r.publish(t, { bid: 0 });
    const c = r.connect();
    r.subscribe(c, ['sq.*']);
    r.clock.runTurn();
    for (let k = 1; k <= 3; k++) {
      for (const t of names) r.publish(t, { bid: k });
      r.clock.runTurn();
    }
    expect(c.conn.fastCount).toBe(30);
    const catchUps = () => r.stats.catchUpDeltas + r.stats.catchUpSnapshots;
    const before = catchUps();
    // The reader stalls: the turn's 30 frames are published, then the look at the buffer
    // that follows them (SlowLane.published) takes the socket off all 30 channels.
    c.sink.bufferedBytes = 10_000;
    for (const t of names) r.publish(t, { bid: 4, note: 'x'.repeat(100) });
    r.clock.runTurn();
    expect(c.conn.slow).toBe(true);
    expect(r.stats.slowLaneEntries).toBe(1);
    for (let k = 5; k <= 8; k++) {
      for (const t of names) r.publish(t, { bid: k });
      r.clock.advance(20);
    }
    c.sink.bufferedBytes = 0;
    r.fanout.drain(c.conn);
    r.clock.runTurn();
    for (const t of names) r.publish(t, { bid: 9 });
    r.clock.runTurn();
    pong(r, c, 1);
    r.clock.runTurn();
    // Every frame counted for the socket reached it: no direct frame numbered past the count.
    expectCounted(c);
    expect(r.uws.lost).toBe(0);
    // One catch-up per topic, and the client holds the server's state of each.
    expect(catchUps() - before).toBe(30);
    for (const t of names) expect(c.sink.stateOf(t)).toEqual(r.stateOf(t));
  });

  it('count exactly the frames sent when a catch-up takes a socket off its only channel in the turn of a publish', () => {
    const r = drainingRig({ eagerFlushes: 1 });
    r.publish('px.A', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['px.A']);
    r.clock.runTurn();
    r.publish('px.A', { bid: 2 });
    r.clock.runTurn();
    // Published at once (eager), not drained yet; the client's catch-up request arrives in the same turn.
    r.publish('px.A', { bid: 3 });
    expect(c.conn.fastCount).toBe(1);
    const held = c.sink.held.get('px.A')!;
    r.fanout.catchUpRequest(c.conn, 'px.A', held.epoch, held.version);
    r.clock.runTurn();
    r.publish('px.A', { bid: 4 });
    r.clock.runTurn();
    pong(r, c, 1);
    r.clock.runTurn();
    expectCounted(c);
    expect(r.uws.lost).toBe(0);
    expect(c.sink.stateOf('px.A')).toEqual(r.stateOf('px.A'));
  });

  it('hold no extra uWS topic while a socket is on a channel, and one while it is on none', () => {
    const r = drainingRig();
    r.publish('px.A', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['px.A'], { id: 7 });
    r.clock.runTurn();
    expect(c.sink.uwsTopics.size).toBe(1);
    r.fanout.setPaused(c.conn, 7, true);
    expect([...c.sink.uwsTopics]).toEqual([HOLD_TOPIC]);
    r.fanout.setPaused(c.conn, 7, false);
    r.clock.runTurn();
    expect(c.sink.uwsTopics.size).toBe(1);
    expect(c.sink.uwsTopics.has(HOLD_TOPIC)).toBe(false);
    expect(r.uws.subscribers(HOLD_TOPIC)).toBe(0);
    expectCounted(c);
  });
});

// ------------------------------------------------------------------ random workloads

const TOPICS = ['px.A', 'px.B', 'px.C'];
const FILLER = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, `filler ${i}`]));
const op = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('publish' as const), topic: fc.constantFrom(...TOPICS, 'px.D'), field: fc.constantFrom('bid', 'ask', 'x'), del: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(0, 0, 10, 60, 250, 400) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reply' as const), who: fc.nat(2) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('subscribe' as const),
      who: fc.nat(2),
      topics: fc.constantFrom(['px.A'], ['px.B'], ['px.*'], ['px.C', 'px.D']),
      rate: fc.constantFrom(0, 0, 4, 10),
      fields: fc.constantFrom([], [], ['bid']),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unsubscribe' as const), who: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pause' as const), who: fc.nat(2), paused: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('buffer' as const), who: fc.nat(2), bytes: fc.constantFrom(0, 0, 50_000, 100_000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('catchUp' as const), who: fc.nat(2), topic: fc.constantFrom(...TOPICS) }) },
);

describe('random workloads (seeded)', () => {
  // eagerFlushes 0: every turn's messages go out at its end; 2: the first two publishes of a turn go out at once, in the middle of whatever else the turn does.
  // drain: the uWS stand-in drains at the turn's end and frees a socket leaving its last topic with what it queued (uWS 20.30).
  // groups 2: two connections on the same channels share a uWS topic (fast-groups.ts), and leave it as their sets change.
  it.each([
    [0, false, 0],
    [2, false, 0],
    [0, true, 0],
    [2, true, 0],
    [0, false, 2],
    [2, true, 2],
  ])('never show a client a sequence gap or a version gap, and leave it exact once settled (eagerFlushes %d, uWS drain timing %s, groups from %d connections)', (eagerFlushes, drain, groupMinConnections) => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 60 }), (ops) => {
        const r = rig({ heartbeatMs: 500, rateTiers: [10, 4], slowThresholdBytes: 64 * 1024, hardCapBytes: 1024 * 1024, slowTimeoutMs: 60_000, eagerFlushes, groupMinConnections });
        if (drain) r.uws.drainLater = (fn) => r.clock.defer(fn);
        // Filler fields make merged deltas smaller than snapshots, so catch-ups are often deltas (gaps show).
        for (const t of TOPICS) r.publish(t, { bid: 1, ...FILLER });
        // Two uWS sockets and one without native topics.
        const clients = [r.connect(true), r.connect(true), r.connect(false)];
        const subs = clients.map(() => [] as number[]);
        let nextSub = 1;
        let n = 0;
        // With groups, both uWS sockets start on the same set (every topic): a group the operations then break up and re-form.
        if (groupMinConnections) {
          for (const i of [0, 1]) {
            const id = nextSub++;
            r.subscribe(clients[i]!, ['px.*'], { id });
            subs[i]!.push(id);
          }
        }
        for (const o of ops) {
          switch (o.t) {
            case 'publish':
              r.publish(o.topic, { [o.field]: o.del && o.field !== 'bid' ? null : ++n });
              break;
            case 'advance':
              r.clock.advance(o.ms);
              break;
            case 'reply':
              r.fanout.reply(clients[o.who]!.conn, r.fanout.encoder.pong(BigInt(++n)));
              break;
            case 'subscribe': {
              const id = nextSub++;
              r.subscribe(clients[o.who]!, o.topics, { id, maxRate: o.rate, fields: o.fields });
              subs[o.who]!.push(id);
              break;
            }
            case 'unsubscribe': {
              const id = subs[o.who]!.shift();
              if (id !== undefined) r.fanout.unsubscribe(clients[o.who]!.conn, id);
              break;
            }
            case 'pause': {
              const id = subs[o.who]![0];
              if (id !== undefined) r.fanout.setPaused(clients[o.who]!.conn, id, o.paused);
              break;
            }
            case 'buffer':
              clients[o.who]!.sink.bufferedBytes = o.bytes;
              break;
            case 'catchUp': {
              // Asked with nothing in flight: a request crossing a delta on the wire is answered from
              // the version it names, which the client then (rightly) sees as a gap.
              r.clock.runTurn();
              const c = clients[o.who]!;
              const held = c.sink.held.get(o.topic);
              if (held && c.conn.topics.has(o.topic)) r.fanout.catchUpRequest(c.conn, o.topic, held.epoch, held.version);
              break;
            }
          }
        }
        // Settle: everyone reads, resumes, and time passes past every tier and sweep.
        for (const [i, c] of clients.entries()) {
          c.sink.bufferedBytes = 0;
          for (const id of subs[i]!) r.fanout.setPaused(c.conn, id, false);
          r.fanout.drain(c.conn);
        }
        r.clock.advance(1_500);
        // Collected, then checked once: expect() in this loop would cost more than the fan-out under test.
        const issues: string[] = [];
        for (const c of clients) {
          const who = `conn ${c.conn.id}`;
          if (c.sink.closed) issues.push(`${who} closed with ${c.sink.closed.code}`);
          for (const [seq, count] of numbering(c).direct) if (seq !== count) issues.push(`${who}: frame #${count} numbered ${seq}`);
          issues.push(...c.sink.problems.map((p) => `${who}: ${p}`), ...c.sink.heartbeatMismatches.map((p) => `${who}: ${p}`));
          for (const [name, ts] of c.conn.topics) {
            const fields = ts.channel?.fields;
            const want = new Map([...r.store.get(name)!.state].filter(([k]) => !fields || fields.has(k)));
            if (!sameState(c.sink.held.get(name)?.state, want)) {
              issues.push(`${who}: ${name} holds ${JSON.stringify(c.sink.stateOf(name))}, server ${JSON.stringify(Object.fromEntries(want))}`);
            }
          }
        }
        expect(issues).toEqual([]);
      }),
      { numRuns: 60, seed: 20250102 },
    );
  });
});
