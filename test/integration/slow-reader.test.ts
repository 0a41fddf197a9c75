// Slow readers: a socket that stops reading leaves the fast path (slow lane),
// and on drain gets one exact catch-up; one stalled past the hard cap is
// closed with 4008, while other subscribers of the topic see every version.

import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, type TickfanServer } from '../../src/index.js';
import type { TickfanClient } from '../../src/client/index.js';
import type { FieldValue } from '../../src/protocol/index.js';
import { Harness, caughtUp, chainProblem, http, record, serverState, sleep, trackingWebSocket, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

// Large values so that kernel socket buffers fill after a few MB.
const BLOB = 'x'.repeat(19_990);
const blob = (i: number): string => BLOB + String(i).padStart(10, '0');
const STATICS: Record<string, FieldValue> = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`s${i}`, i]));

/** Publishes large updates through `publisher` until `done()` (bounded). */
async function publishUntil(publisher: TickfanClient, topic: string, done: () => boolean, from: number, max = 3_000): Promise<number> {
  let i = from;
  while (!done()) {
    if (i - from >= max) throw new Error(`still not done after ${max} publishes`);
    const batch: Promise<unknown>[] = [];
    for (let j = 0; j < 10; j++, i++) batch.push(publisher.publish(topic, { n: i, blob: blob(i) }));
    await Promise.all(batch);
  }
  return i;
}

function seed(server: TickfanServer, topic: string): void {
  server.publish(topic, { n: 0, blob: blob(0), ...STATICS });
}

describe('slow reader', () => {
  it.each([
    { kind: 'delta', historySize: 256 },
    { kind: 'snapshot', historySize: 8 },
  ] as const)('leaves the fast path while it does not read, and ends exact through one catch-up by $kind', async ({ kind, historySize }) => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs: 10_000, limits: { historySize } });
    const topic = `slow.${kind}`;
    seed(server, topic);
    const tracked = trackingWebSocket();
    const reader = await h.connected(server, { WebSocket: tracked.Ctor });
    const sub = reader.subscribe(topic);
    const ups = record(sub);
    await sub.ready;
    const publisher = await h.connected(server);
    const before = { ...server.stats };

    tracked.tcp().pause();
    let i = await publishUntil(publisher, topic, () => server.stats.slowLaneEntries > before.slowLaneEntries, 1);
    // Updates while the reader is in the slow lane are held back, not queued.
    const bytesAtSlow = server.stats.bytesOut;
    for (let k = 0; k < 30; k++, i++) await publisher.publish(topic, { n: i, [`late${k % 4}`]: k });
    await http(server.port, 'GET', '/healthz'); // a round trip: the server has run past those publishes and anything it queued for them
    expect(server.stats.bytesOut - bytesAtSlow).toBeLessThan(64 * 1024); // only the acks to the publisher
    const stalledAt = sub.version;
    expect(stalledAt).toBeLessThan(server.store.get(topic)!.version - 30);

    tracked.tcp().resume();
    await waitFor(() => caughtUp(reader, server, topic), 10_000, 'the slow reader to catch up');

    expect(server.stats.slowLaneEntries - before.slowLaneEntries).toBe(1);
    expect(server.stats.slowDisconnects).toBe(0);
    expect(chainProblem(ups)).toBeNull();
    // Everything sent before the slow lane arrived one by one; then one catch-up.
    const jumps = ups.slice(1).filter((u) => u.snapshot || u.updates > 1);
    expect(jumps).toHaveLength(1);
    expect(jumps[0]).toBe(ups.at(-1));
    expect(jumps[0]!.snapshot).toBe(kind === 'snapshot');
    const want = serverState(server, topic);
    expect(ups.at(-1)!.state).toEqual(want.state);
    expect(reader.stateOf(topic)!.state).toEqual(want.state);
    if (kind === 'delta') {
      expect(server.stats.catchUpDeltas - before.catchUpDeltas).toBe(1);
      expect(reader.stats.catchUpDeltas).toBeGreaterThanOrEqual(1);
    } else {
      expect(server.stats.catchUpSnapshots - before.catchUpSnapshots).toBe(1);
      expect(reader.stats.catchUpSnapshots).toBeGreaterThanOrEqual(1);
    }
    expect(reader.stats.catchUps).toBeGreaterThanOrEqual(1);
    expect(reader.stats.gaps).toBe(0);

    // Back on the fast path: every update arrives on its own again.
    const n = ups.length;
    for (let k = 0; k < 5; k++) await publisher.publish(topic, { n: i + k });
    await waitFor(() => caughtUp(reader, server, topic), 5_000, 'the fast path');
    expect(ups.slice(n).map((u) => u.updates)).toEqual([1, 1, 1, 1, 1]);
    expect(chainProblem(ups)).toBeNull();
  });

  it('a reader stalled past the time cap is closed with 4008 while another subscriber sees every version', async () => {
    const slowTimeoutMs = 500;
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs });
    const topic = 'slow.cap';
    seed(server, topic);

    const healthy = await h.connected(server);
    const hs = healthy.subscribe(topic);
    const hUps = record(hs);
    const tracked = trackingWebSocket();
    const stalled = await h.connected(server, { WebSocket: tracked.Ctor });
    const ss = stalled.subscribe(topic);
    const sUps = record(ss);
    const disconnects: number[] = [];
    let receivedBeforeClose = -1;
    stalled.on('disconnect', (d) => {
      disconnects.push(d.code);
      if (receivedBeforeClose < 0) receivedBeforeClose = sUps.length;
    });
    await Promise.all([hs.ready, ss.ready]);
    const publisher = await h.connected(server);

    tracked.tcp().pause();
    let i = await publishUntil(publisher, topic, () => server.stats.slowLaneEntries > 0, 1);
    const slowAt = performance.now();
    // The publisher keeps going (smaller updates now) until the sweep closes the stalled socket.
    const deadline = slowAt + slowTimeoutMs + 5_000;
    while (server.stats.slowDisconnects === 0) {
      if (performance.now() > deadline) throw new Error('the stalled reader was never disconnected');
      await publisher.publish(topic, { n: i, [`f${i % 8}`]: i });
      i++;
      await sleep(2); // time is the signal: the publisher keeps going until slowTimeoutMs passes
    }
    const closedAfter = performance.now() - slowAt;
    expect(closedAfter).toBeGreaterThanOrEqual(slowTimeoutMs - 100);
    expect(server.stats.slowDisconnects).toBe(1);
    expect(disconnects).toEqual([]); // it has not read anything yet

    // When it reads again it finds its backlog, then the slow-consumer close code.
    tracked.tcp().resume();
    await waitFor(() => disconnects.length > 0, 5_000, 'the disconnect event');
    expect(disconnects[0]).toBe(CloseCode.SLOW_CONSUMER);
    expect(disconnects[0]).toBe(4008);
    // What it got before the close was every version up to where it stalled.
    expect(chainProblem(sUps.slice(0, receivedBeforeClose), { full: true })).toBeNull();

    // The healthy subscriber, meanwhile, saw every version, no gap, no catch-up.
    for (let k = 0; k < 10; k++, i++) await publisher.publish(topic, { n: i });
    await waitFor(() => caughtUp(healthy, server, topic), 5_000, 'the healthy subscriber');
    expect(chainProblem(hUps, { full: true })).toBeNull();
    expect(hUps).toHaveLength(server.store.get(topic)!.version);
    expect(hUps.at(-1)!.state).toEqual(serverState(server, topic).state);
    expect(healthy.stats).toMatchObject({ gaps: 0, catchUps: 0, reconnects: 0, sequenceGaps: 0 });

    // The disconnected reader reconnects on its own and resumes exactly.
    await waitFor(() => stalled.stats.reconnects >= 1 && caughtUp(stalled, server, topic), 5_000, 'the stalled reader to resume');
    expect(stalled.stateOf(topic)!.state).toEqual(serverState(server, topic).state);
    expect(chainProblem(sUps)).toBeNull();
  });
});
