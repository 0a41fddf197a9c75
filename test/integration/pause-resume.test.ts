// Pause and resume: a paused subscription gets nothing while the publisher
// goes on (the server holds back, it does not just hide updates in the SDK);
// on resume it gets exactly one catch-up per topic and ends exact.

import { afterEach, describe, expect, it } from 'vitest';
import { Harness, caughtUp, chainProblem, record, serverState, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

const TOPICS = ['pr.A', 'pr.B', 'pr.C'];

describe('pause / resume', () => {
  it('a paused pattern subscription receives nothing, then exactly one exact catch-up per topic', async () => {
    const server = await h.server({ heartbeatMs: 50 });
    for (const t of TOPICS) server.publish(t, { px: 0, ref: `static ${t}`, extra: 'x'.repeat(200) });
    const client = await h.connected(server);
    const sub = client.subscribe('pr.*');
    const ups = record(sub);
    await sub.ready;
    const publisher = await h.connected(server);
    for (let i = 1; i <= 5; i++) for (const t of TOPICS) await publisher.publish(t, { px: i });
    await waitFor(() => TOPICS.every((t) => caughtUp(client, server, t)), 5_000, 'live updates');

    sub.pause();
    await client.publish('pr2.barrier', { x: 1 }); // acked after the pause was handled
    const frozen = { deltas: client.stats.deltas, frames: client.stats.frames, events: ups.length };
    const heldAtPause = Object.fromEntries(TOPICS.map((t) => [t, client.stateOf(t)!.version]));

    // The publisher goes on; a field is deleted and another added on the way.
    for (let i = 6; i <= 40; i++) {
      for (const t of TOPICS) await publisher.publish(t, { px: i, ...(i === 10 ? { extra: null } : {}), ...(i === 20 ? { note: 'added' } : {}) });
    }
    // A few heartbeats (the only frames this client can get now): they must not raise false gaps on paused topics.
    const framesBefore = client.stats.frames;
    await waitFor(() => client.stats.frames >= framesBefore + 3, 5_000, 'three heartbeats');
    await client.publish('pr2.barrier', { x: 2 });
    expect(ups.length).toBe(frozen.events);
    expect(client.stats.deltas).toBe(frozen.deltas); // the server sent no delta at all
    for (const t of TOPICS) expect(client.stateOf(t)!.version).toBe(heldAtPause[t]);
    expect(client.stats.gaps).toBe(0);
    const catchUpsBefore = client.stats.catchUps;

    sub.resume();
    await waitFor(() => TOPICS.every((t) => caughtUp(client, server, t)), 5_000, 'the catch-ups');
    await client.publish('pr2.barrier', { x: 3 }); // nothing more is on its way
    const after = ups.slice(frozen.events);
    expect(after.map((u) => u.topic).sort()).toEqual(TOPICS);
    for (const u of after) {
      const want = serverState(server, u.topic);
      expect(u.version).toBe(want.version);
      expect(u.version - heldAtPause[u.topic]!).toBe(35);
      expect(u.snapshot || u.updates === 35).toBe(true);
      expect(u.state).toEqual(want.state);
      expect(u.state).not.toHaveProperty('extra');
      expect(u.state).toHaveProperty('note', 'added');
    }
    expect(client.stats.catchUps - catchUpsBefore).toBe(3);
    expect(client.stats.gaps).toBe(0);

    // Live again, one delta per publish.
    for (const t of TOPICS) await publisher.publish(t, { px: 41 });
    await waitFor(() => TOPICS.every((t) => caughtUp(client, server, t)), 5_000, 'live again');
    for (const t of TOPICS) expect(chainProblem(ups.filter((u) => u.topic === t)), t).toBeNull();
    expect(ups.slice(frozen.events + 3).map((u) => u.updates)).toEqual([1, 1, 1]);
  });

  it('pausing one of two subscriptions of a topic keeps the other live', async () => {
    const server = await h.server();
    server.publish('pr.D', { px: 0 });
    const client = await h.connected(server);
    const a = client.subscribe('pr.D');
    const b = client.subscribe('pr.*');
    const [ua, ub] = [record(a), record(b)];
    await Promise.all([a.ready, b.ready]);
    a.pause();
    for (let i = 1; i <= 10; i++) server.publish('pr.D', { px: i });
    await waitFor(() => caughtUp(client, server, 'pr.D'), 5_000, 'v11');
    expect(ua).toHaveLength(1); // just the first image
    expect(chainProblem(ub.filter((u) => u.topic === 'pr.D'), { full: true })).toBeNull();
    expect(ub.at(-1)!.version).toBe(11);
    a.resume();
    server.publish('pr.D', { px: 11 });
    await waitFor(() => ua.length > 1 && ua.at(-1)!.version === 12, 5_000, 'the resumed subscription');
    expect(a.state).toEqual({ px: 11 });
  });
});
