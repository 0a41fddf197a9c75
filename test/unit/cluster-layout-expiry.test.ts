// The cluster layout's expiry of silent origins (cluster/layout.ts): an
// origin not heard of for ORIGIN_SILENCE_MS is gone — counted in time this
// node spent listening. A node whose own loop stalled (announcements waiting
// unread) must not take its origins for gone because of its own stall; a
// truly silent origin still goes after the deadline. Fake timers and a fake
// NATS link: no network.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ANNOUNCE_MS, Layout, ORIGIN_SILENCE_MS } from '../../src/cluster/layout.js';
import type { NatsLink } from '../../src/cluster/nats-link.js';
import { Subjects } from '../../src/cluster/subjects.js';

function rig() {
  let deliver: (data: Uint8Array) => void = () => {};
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: unknown, msg: { data: Uint8Array }) => void }) => {
      deliver = (data) => opts.callback(null, { data });
      return { unsubscribe() {} };
    },
    requestMany: async () => (async function* () {})(),
  };
  const link = { state: 'connected', nc } as unknown as NatsLink;
  const layout = new Layout(link, new Subjects('t'), () => {}, null);
  const gone: number[] = [];
  layout.on('gone', (shard) => gone.push(shard));
  const announce = () => deliver(new TextEncoder().encode(JSON.stringify({ id: 'o1', shard: 0, of: 1, since: 1, state: 'up' })));
  return { layout, gone, announce };
}

describe('cluster layout: silent origins', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('an origin silent for ORIGIN_SILENCE_MS of listening is gone', async () => {
    const r = rig();
    await r.layout.start();
    r.announce();
    expect(r.layout.isLive(0)).toBe(true);
    await vi.advanceTimersByTimeAsync(ORIGIN_SILENCE_MS - ANNOUNCE_MS);
    expect(r.gone).toEqual([]);
    await vi.advanceTimersByTimeAsync(2 * ANNOUNCE_MS);
    expect(r.gone).toEqual([0]);
    expect(r.layout.isLive(0)).toBe(false);
    r.layout.stop();
  });

  it('a stall of this node\'s own loop is not the origin\'s silence: its announcement read after the stall keeps it live', async () => {
    const r = rig();
    await r.layout.start();
    r.announce();
    // The loop stalls for longer than the silence deadline: no tick runs, the clock moves on.
    vi.setSystemTime(Date.now() + ORIGIN_SILENCE_MS + 1_000);
    await vi.advanceTimersByTimeAsync(ANNOUNCE_MS); // the late tick, before the waiting announcement is read
    expect(r.gone).toEqual([]);
    r.announce(); // the announcement that waited unread during the stall
    expect(r.layout.isLive(0)).toBe(true);
    // And an origin that then really falls silent still goes, after the deadline.
    await vi.advanceTimersByTimeAsync(ORIGIN_SILENCE_MS + ANNOUNCE_MS);
    expect(r.gone).toEqual([0]);
    r.layout.stop();
  });
});
