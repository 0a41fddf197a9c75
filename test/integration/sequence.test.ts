// Frame sequence numbers: every server frame on a connection carries the
// next number, starting at 1, whatever mix of messages it holds; each
// connection counts on its own. Checked on the raw wire, frame by frame.

import { afterEach, describe, expect, it } from 'vitest';
import { Encoder, PROTOCOL_VERSION, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, isType, sleep, waitFor, type RawClient } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

const enc = new Encoder();

function deltasOf(messages: AnyMessage[], topic: string) {
  return messages.filter(isType('delta')).filter((m) => m.topic === topic);
}

describe('frame sequence numbers', () => {
  it('go 1, 2, 3, … per connection through subscribes, bursts, throttled flushes, acks, pongs and heartbeats', async () => {
    const server = await h.server({ heartbeatMs: 30 });
    server.publish('sq.A', { px: 0 });
    server.publish('sq.B', { px: 0 });
    const a = await h.raw(server);
    const b = await h.raw(server);
    a.send(enc.hello(PROTOCOL_VERSION, 'a', ''), enc.subscribe(1, ['sq.A'], 0, [], []), enc.subscribe(2, ['sq.*'], 10, [], []));
    b.send(enc.hello(PROTOCOL_VERSION, 'b', ''), enc.subscribe(1, ['sq.B'], 0, [], []));
    await a.next(isType('ack'), 0);
    await b.next(isType('ack'), 0);

    // Bursts in one turn (coalesced into big frames) and spread out (many small ones),
    // with pings and acked publishes in between.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 25; i++) server.publish('sq.A', { px: round * 25 + i, pad: 'y'.repeat(round * 500) });
      server.publish('sq.B', { px: round });
      a.send(enc.ping(BigInt(round)));
      b.send(enc.publish(round + 10, 'sq.C', [['n', round]]));
      await sleep(round % 4 === 0 ? 20 : 1); // time is the signal: some rounds spread out (many small frames), others not
    }
    const last = server.store.get('sq.A')!.version;
    await waitFor(() => deltasOf(a.messages, 'sq.A').at(-1)?.version === last, 5_000, 'the last delta on a');
    await waitFor(() => b.messages.filter(isType('ack')).length >= 21, 5_000, 'the publish acks on b');
    await waitFor(() => a.messages.filter(isType('pong')).length === 20, 5_000, 'the pongs on a');
    // The last throttled flush of each sq.* topic on a (10/s tier), and a few heartbeats on each connection.
    for (const t of ['sq.B', 'sq.C']) {
      const v = server.store.get(t)!.version;
      await waitFor(() => a.messages.some((m) => (m.type === 'delta' || m.type === 'snapshot') && m.topic === t && m.version === v), 5_000, `the last throttled flush of ${t} on a`);
    }
    const beats = (r: RawClient) => r.messages.filter(isType('heartbeat')).length;
    const [beatsA, beatsB] = [beats(a), beats(b)];
    await waitFor(() => beats(a) >= beatsA + 2 && beats(b) >= beatsB + 2, 5_000, 'heartbeats on both connections');

    for (const [name, raw] of [['a', a], ['b', b]] as const) {
      expect(raw.problems, name).toEqual([]);
      expect(raw.frames.map((f) => f.seq), name).toEqual(raw.frames.map((_, i) => i + 1));
      expect(raw.frames[0]!.messages[0]!.type, name).toBe('welcome');
    }
    expect(a.frames.length).toBeGreaterThan(10);
    expect(a.messages.some((m) => m.type === 'heartbeat')).toBe(true);

    // And the deltas in them chain without a gap (full rate on sq.A).
    const deltas = deltasOf(a.messages, 'sq.A');
    expect(deltas.map((d) => d.base)).toEqual(deltas.map((d) => d.version - 1));
    expect(deltas.map((d) => d.version)).toEqual(Array.from({ length: deltas.length }, (_, i) => i + 2));
  });
});
