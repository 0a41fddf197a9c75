// Shared channel sets over real sockets (groupMinConnections, fanout/fast-groups.ts):
// SDK clients that follow the same topics end up on one uWebSockets.js topic
// for the set, and each still holds every topic's exact state and never sees
// a gap (none to heal) — while the set forms, while clients leave it (an
// unsubscribe, a close) and after the last publish (the quiet case).

import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import type { Subscription, TickfanClient } from '../../src/client/index.js';
import { Harness, serverState, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

const TOPICS = ['ss.A', 'ss.B', 'ss.C'];

interface Desk {
  client: TickfanClient;
  subs: Map<string, Subscription>;
}

function current(server: TickfanServer, desks: readonly Desk[]): boolean {
  return desks.every((d) =>
    [...d.subs].every(([t, s]) => {
      const want = serverState(server, t);
      return s.version === want.version && JSON.stringify(s.state) === JSON.stringify(want.state);
    }),
  );
}

async function publishRounds(server: TickfanServer, rounds: number, from: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    // One callback publishes every topic: one turn's news for the whole set.
    for (const t of TOPICS) server.publish(t, { px: from + i, [`f${i % 3}`]: i });
    await sleep(2);
  }
}

describe('connections that follow the same topics share one uWS topic', () => {
  // With fan-out workers the clients spread over them (2 per set is a quorum there); the main thread's stats do not see the workers' sets.
  it.each([0, 2])('deliver every update exactly, through the set forming, members leaving, and quiet (%d fan-out workers)', async (workers) => {
    const server = await h.server({ groupMinConnections: workers ? 2 : 4, eagerBelowLoad: 0, workers });
    for (const t of TOPICS) server.publish(t, { px: 0 });
    const desks: Desk[] = [];
    for (let i = 0; i < 6; i++) {
      const client = await h.connected(server);
      desks.push({ client, subs: new Map(TOPICS.map((t) => [t, client.subscribe(t)])) });
    }
    await waitFor(() => current(server, desks), 5_000, 'every desk to hold the first images');
    await publishRounds(server, 20, 100);
    // Sets are filed at the turns that publish, once they held still for a regroup pass (100 ms): publish until then.
    for (let i = 0; !workers && server.stats.sharedSets !== 1; i++) {
      if (i === 100) throw new Error('the set did not become one shared uWS topic within 100 rounds');
      await publishRounds(server, 5, 150 + i * 5);
    }
    await publishRounds(server, 30, 200);
    await waitFor(() => current(server, desks), 5_000, 'every desk to be current');

    // One leaves a topic (its set changes), one closes: the others stay in the set.
    desks[0]!.subs.get('ss.C')!.unsubscribe();
    desks[0]!.subs.delete('ss.C');
    desks[1]!.client.close();
    const staying = desks.filter((_, i) => i !== 1);
    await publishRounds(server, 30, 300);
    await waitFor(() => current(server, staying), 5_000, 'the remaining desks to be current');
    if (!workers) expect(server.stats.sharedSets).toBe(1);

    // Quiet: the last publish, then nothing — everyone must hold it without another.
    for (const t of TOPICS) server.publish(t, { px: 999 });
    await waitFor(() => current(server, staying), 5_000, 'every desk to hold the last publish with nothing after it');
    // Exact all along: no gap seen, nothing healed, nothing applied twice.
    for (const d of staying) expect({ gaps: d.client.stats.gaps, sequenceGaps: d.client.stats.sequenceGaps, duplicates: d.client.stats.duplicates }).toEqual({ gaps: 0, sequenceGaps: 0, duplicates: 0 });
  });

  it('stay on per-topic uWS topics below the quorum, and with groupMinConnections 0', async () => {
    for (const [groupMinConnections, clients] of [
      [8, 3],
      [0, 6],
    ] as const) {
      const server = await h.server({ groupMinConnections });
      for (const t of TOPICS) server.publish(t, { px: 0 });
      const desks: Desk[] = [];
      for (let i = 0; i < clients; i++) {
        const client = await h.connected(server);
        desks.push({ client, subs: new Map(TOPICS.map((t) => [t, client.subscribe(t)])) });
      }
      await waitFor(() => current(server, desks), 5_000, 'every desk to hold the first images');
      await publishRounds(server, 20, 100);
      await waitFor(() => current(server, desks), 5_000, 'every desk to be current');
      expect(server.stats.sharedSets).toBe(0);
    }
  });
});
