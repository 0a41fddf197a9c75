// Stale data: a topic not updated within topicTtlMs, or whose WebSocket
// publisher disconnected (and nobody published since), is flagged stale to its
// subscribers and in HTTP answers; its next update flags it ok again.

import { afterEach, describe, expect, it } from 'vitest';
import { Encoder, TopicState } from '../../src/protocol/index.js';
import { Harness, chainProblem, http, record, roundTrip, serverState, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

type Status = { topic: string; status: 'ok' | 'stale'; at: number };

async function watcher(server: Parameters<Harness['connected']>[0], topic: string) {
  const client = await h.connected(server);
  const sub = client.subscribe(topic);
  const statuses: Status[] = [];
  sub.on('status', (e) => statuses.push({ topic: e.topic, status: e.status, at: Date.now() }));
  const ups = record(sub);
  await sub.ready;
  return { client, sub, statuses, ups };
}

describe('stale topics', () => {
  it('a topic quiet past topicTtlMs is flagged stale to subscribers and in HTTP; its next update flags it ok, then delivers', async () => {
    const server = await h.server({ topicTtlMs: 300 });
    server.publish('st.A', { px: 1 });
    server.publish('st.BUSY', { px: 1 });
    const publishedAt = Date.now();
    const w = await watcher(server, 'st.A');
    const raw = await h.raw(server);
    raw.send(new Encoder().subscribe(1, ['st.A'], 0, [], []));

    // A busy topic next to it never goes stale.
    let busy = true;
    const feed = (async () => {
      for (let i = 2; busy; i++) {
        server.publish('st.BUSY', { px: i });
        await sleep(50); // time is the signal: updated well within the 300 ms TTL
      }
    })();

    await waitFor(() => w.statuses.length > 0, 2_000, 'the stale status');
    expect(w.statuses[0]).toMatchObject({ topic: 'st.A', status: 'stale' });
    const after = w.statuses[0]!.at - publishedAt;
    expect(after).toBeGreaterThanOrEqual(300);
    expect(after).toBeLessThan(300 + 400);
    expect((await http(server.port, 'GET', '/snapshot/st.A')).body).toMatchObject({ topic: 'st.A', stale: true });
    expect((await http(server.port, 'GET', '/snapshot/st.BUSY')).body).toMatchObject({ stale: false });
    expect(((await http(server.port, 'GET', '/topics?pattern=st.*')).body as { topics: { topic: string; stale: boolean }[] }).topics.sort((a, b) => a.topic.localeCompare(b.topic))).toMatchObject([
      { topic: 'st.A', stale: true },
      { topic: 'st.BUSY', stale: false },
    ]);
    expect(server.stats.staleTopics).toBe(1);

    // A subscriber joining now learns it right after the snapshot.
    const late = await watcher(server, 'st.A');
    await waitFor(() => late.statuses.length > 0, 2_000, 'the late subscriber status');
    expect(late.statuses[0]).toMatchObject({ status: 'stale' });

    // The next update: ok first, then the delta, on one frame.
    server.publish('st.A', { px: 2 });
    await waitFor(() => w.sub.version === 2 && w.statuses.length === 2, 2_000, 'ok and v2');
    expect(w.statuses[1]).toMatchObject({ status: 'ok' });
    await waitFor(() => raw.messages.some((m) => m.type === 'delta' && m.topic === 'st.A'), 2_000, 'the raw delta');
    const order = raw.messages.filter((m) => 'topic' in m && m.topic === 'st.A').map((m) => (m.type === 'topicStatus' ? `status:${m.state}` : `${m.type}:${'version' in m ? m.version : ''}`));
    expect(order).toEqual(['snapshot:1', `status:${TopicState.STALE}`, `status:${TopicState.OK}`, 'delta:2']);
    expect((await http(server.port, 'GET', '/snapshot/st.A')).body).toMatchObject({ stale: false, version: 2 });
    expect(server.stats.staleTopics).toBe(0);
    expect(chainProblem(w.ups, { full: true })).toBeNull();
    expect(w.sub.state).toEqual(serverState(server, 'st.A').state);
    busy = false;
    await feed;
    expect(w.statuses.filter((s) => s.topic === 'st.BUSY')).toEqual([]);
  });

  it('a topic whose WebSocket publisher disconnects goes stale, unless someone published it since', async () => {
    const server = await h.server();
    const a = await h.connected(server, { reconnect: false });
    const b = await h.connected(server, { reconnect: false });
    await a.publish('pd.A', { px: 1 });
    await a.publish('pd.B', { px: 1 });
    await a.publish('pd.C', { px: 1 });
    await b.publish('pd.B', { px: 2 }); // B published pd.B since
    server.publish('pd.C', { px: 2 }); // in-process (or HTTP) publish since: not A's any more
    const watchers = await Promise.all(['pd.A', 'pd.B', 'pd.C'].map((t) => watcher(server, t)));
    const [wa, wb, wc] = watchers as [Awaited<ReturnType<typeof watcher>>, Awaited<ReturnType<typeof watcher>>, Awaited<ReturnType<typeof watcher>>];

    a.close();
    await waitFor(() => wa.statuses.length > 0, 2_000, 'pd.A stale');
    expect(wa.statuses).toMatchObject([{ topic: 'pd.A', status: 'stale' }]);
    // The close was handled (pd.A's status is here): a round trip on the other watchers' connections
    // brings anything it queued for them.
    await Promise.all([roundTrip(wb.client), roundTrip(wc.client)]);
    expect(wb.statuses).toEqual([]);
    expect(wc.statuses).toEqual([]);
    expect(server.store.get('pd.A')!.stale).toBe(true);

    b.close();
    await waitFor(() => wb.statuses.length > 0, 2_000, 'pd.B stale');
    expect(wb.statuses).toMatchObject([{ topic: 'pd.B', status: 'stale' }]);

    // A new publisher brings it back.
    const c = await h.connected(server, { reconnect: false });
    await c.publish('pd.A', { px: 3 });
    await waitFor(() => wa.sub.version === 2, 2_000, 'pd.A v2');
    expect(wa.statuses.map((s) => s.status)).toEqual(['stale', 'ok']);
    expect(wc.statuses).toEqual([]);
    expect(server.stats.staleTopics).toBe(1); // pd.B
  });

  it('with worker threads too: every worker flags a quiet topic stale and ok again (runs the build in dist/)', async () => {
    const server = await h.server({ workers: 2, topicTtlMs: 300 });
    server.publish('st.W', { px: 1 });
    const watchers = await Promise.all(Array.from({ length: 6 }, () => watcher(server, 'st.W')));
    await waitFor(() => watchers.every((w) => w.statuses.length === 1), 3_000, 'every subscriber to see stale');
    expect(watchers.map((w) => w.statuses[0]!.status)).toEqual(watchers.map(() => 'stale'));
    server.publish('st.W', { px: 2 });
    await waitFor(() => watchers.every((w) => w.sub.version === 2), 3_000, 'v2 everywhere');
    expect(watchers.map((w) => w.statuses.map((x) => x.status))).toEqual(watchers.map(() => ['stale', 'ok']));
  });

  it('without topicTtlMs a quiet topic stays ok', async () => {
    const server = await h.server();
    server.publish('st.Q', { px: 1 });
    const w = await watcher(server, 'st.Q');
    await sleep(600); // time is the signal: quiet for twice the 300 ms TTL the tests above use
    await roundTrip(w.client); // anything queued for it until now has arrived
    expect(w.statuses).toEqual([]);
    expect(server.store.get('st.Q')!.stale).toBe(false);
  });
});
