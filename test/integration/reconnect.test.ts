// Dropped connections and restarts: the SDK reconnects with backoff and
// resumes from the (epoch, version) it holds — a merged delta when the
// server's history covers the gap, a snapshot when it does not or when the
// server restarted (new epoch). It never applies a delta across epochs.

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CloseCode, type TickfanServer } from '../../src/index.js';
import type { FieldValue } from '../../src/protocol/index.js';
import { Harness, caughtUp, freePort, chainProblem, record, serverState, sleep, trackingWebSocket, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

// Many fields that do not change, so a merged delta is smaller than a snapshot.
const STATICS: Record<string, FieldValue> = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`ref${i}`, `static value ${i}`]));

/** Publishes to `topic` every few ms until stopped (bounded). */
function ticker(server: TickfanServer, topic: string, start: number): { stop(): Promise<number> } {
  let i = start;
  let running = true;
  const done = (async () => {
    for (let k = 0; running && k < 5_000; k++) {
      server.publish(topic, { bid: 100 + i / 100, n: i });
      i++;
      await sleep(2); // pacing, not a wait: a steady stream of updates
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return i;
    },
  };
}

describe('dropped connection', () => {
  it.each([
    { kind: 'delta', historySize: 256 },
    { kind: 'snapshot', historySize: 8 },
  ] as const)('the client reconnects and resumes with a catch-up by $kind', async ({ kind, historySize }) => {
    const server = await h.server({ limits: { historySize } });
    const topic = `drop.${kind}`;
    server.publish(topic, { bid: 100, n: 0, ...STATICS });
    const tracked = trackingWebSocket();
    const client = await h.connected(server, { WebSocket: tracked.Ctor });
    const disconnects: number[] = [];
    client.on('disconnect', (d) => disconnects.push(d.code));
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;

    const tick = ticker(server, topic, 1);
    await waitFor(() => sub.version >= 10, 5_000, 'live updates');
    const heldBefore = sub.version;

    // Cut the TCP connection under the client: to the server it is a drop.
    tracked.tcp().destroy();
    const updatesBeforeDrop = ups.length;
    // More than the history holds (8) goes by while it is away.
    for (let k = 0; k < 20; k++) server.publish(topic, { bid: 99, gapFill: k });

    await waitFor(() => client.stats.reconnects >= 1 && client.state === 'connected', 5_000, 'the reconnect');
    // Updates continue after the reconnect too: the catch-up, then live deltas.
    await waitFor(() => ups.length >= updatesBeforeDrop + 4, 5_000, 'live updates after the catch-up');
    await tick.stop();
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'the resumed client to catch up');

    expect(disconnects).toEqual([1006]);
    expect(tracked.sockets).toHaveLength(2);
    expect(client.stats.reconnects).toBe(1);
    if (kind === 'delta') {
      expect(client.stats.catchUpDeltas).toBe(1);
      expect(client.stats.catchUpSnapshots).toBe(0);
    } else {
      expect(client.stats.catchUpSnapshots).toBe(1);
      expect(client.stats.catchUpDeltas).toBe(0);
    }
    expect(client.stats.gaps).toBe(0);
    expect(chainProblem(ups)).toBeNull();
    // Exactly one update jumps over the missed versions: the catch-up.
    const jumps = ups.slice(1).filter((u) => u.snapshot || u.updates > 1);
    expect(jumps).toHaveLength(1);
    expect(jumps[0]!.snapshot).toBe(kind === 'snapshot');
    expect(jumps[0]!.version - heldBefore).toBeGreaterThan(20);
    const want = serverState(server, topic);
    expect(client.stateOf(topic)).toEqual(want);
    expect(ups.at(-1)!.state).toEqual(want.state);
    // The server forgot the dropped connection.
    await waitFor(() => server.stats.connections === 1, 2_000, 'the old connection to be released');
    expect(server.stats.subscriptions).toBe(1);
  });

  it('a client that missed nothing resumes without any catch-up', async () => {
    const server = await h.server();
    const topic = 'drop.quiet';
    server.publish(topic, { bid: 1, ...STATICS });
    const tracked = trackingWebSocket();
    const client = await h.connected(server, { WebSocket: tracked.Ctor });
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;
    tracked.tcp().destroy();
    await waitFor(() => client.stats.reconnects >= 1 && client.state === 'connected', 5_000, 'the reconnect');
    await client.publish('drop.other', { x: 1 }); // round trip: the resubscribe was answered
    expect(ups).toHaveLength(1);
    expect(client.stats).toMatchObject({ catchUps: 0, snapshots: 1, gaps: 0 });
    server.publish(topic, { bid: 2 });
    await waitFor(() => sub.version === 2, 5_000, 'v2');
    expect(chainProblem(ups, { full: true })).toBeNull();
  });
});

describe('server restart', () => {
  it('a client resubscribes to the new server, takes a snapshot of the new epoch, and never applies a delta across epochs', async () => {
    const port = await freePort(); // both servers on one explicit port, as in production
    let server = await h.server({ port });
    server.publish('rs.A', { bid: 1, old: 'only in epoch 1' });
    server.publish('rs.B', { px: 1 });
    const client = await h.connected(server);
    const exact = client.subscribe('rs.A');
    const pattern = client.subscribe('rs.*');
    const exactUps = record(exact);
    const patternUps = record(pattern);
    await Promise.all([exact.ready, pattern.ready]);
    for (let i = 2; i <= 6; i++) server.publish('rs.A', { bid: i });
    await waitFor(() => exact.version === 6, 5_000, 'v6 in epoch 1');
    const epoch1 = exact.epoch;
    const disconnects: number[] = [];
    client.on('disconnect', (d) => disconnects.push(d.code));

    await server.close();
    await waitFor(() => disconnects.length > 0, 5_000, 'the going-away close');
    expect(disconnects[0]).toBe(CloseCode.GOING_AWAY);
    await waitFor(() => disconnects.length >= 4, 5_000, 'a few refused reconnects');
    expect(client.state).not.toBe('connected');

    server = await h.server({ port });
    expect(server.port).toBe(port);
    // Before the client is back, the new epoch passes the v6 it holds: a
    // server that ignored epochs could answer its resume with a merged delta.
    // (Many fields, so that such a delta would be smaller than the snapshot.)
    server.publish('rs.A', { bid: 101, ...STATICS });
    for (let i = 2; i <= 9; i++) server.publish('rs.A', { bid: 100 + i });
    server.publish('rs.C', { px: 3 }); // a new topic the pattern covers
    await waitFor(() => client.stats.reconnects >= 1 && client.state === 'connected', 5_000, 'the reconnect');
    for (let i = 10; i <= 12; i++) server.publish('rs.A', { bid: 100 + i });
    server.publish('rs.B', { px: 2 }); // rs.B comes back later, in a new epoch too
    await waitFor(() => ['rs.A', 'rs.B', 'rs.C'].every((t) => caughtUp(client, server, t)), 5_000, 'every topic in the new epoch');

    const epoch2 = exact.epoch;
    expect(epoch2).not.toBe(epoch1);
    expect(exact.version).toBe(12);
    // Nothing of epoch 1 survives in the picture.
    expect(exact.state).toEqual({ bid: 112, ...STATICS });
    for (const t of ['rs.A', 'rs.B', 'rs.C']) expect(client.stateOf(t)).toEqual(serverState(server, t));

    // Every update: a delta always continues the previous update's epoch and version.
    expect(chainProblem(exactUps)).toBeNull();
    for (const t of ['rs.A', 'rs.B', 'rs.C']) expect(chainProblem(patternUps.filter((u) => u.topic === t)), t).toBeNull();
    const firstInEpoch2 = exactUps.find((u) => u.epoch !== epoch1)!;
    // (At v9 or later: 'connected' comes before the server has read the resubscribe.)
    expect(firstInEpoch2).toMatchObject({ snapshot: true, epoch: epoch2 });
    expect(firstInEpoch2.version).toBeGreaterThanOrEqual(9);
    expect(firstInEpoch2.state).toEqual({ bid: 100 + firstInEpoch2.version, ...STATICS });
    expect(patternUps.find((u) => u.topic === 'rs.C')).toMatchObject({ snapshot: true, version: 1 });
    expect(client.stats.reconnects).toBe(1);
    expect(client.stats.catchUpSnapshots).toBeGreaterThanOrEqual(1);
  });
});

describe('server restart, quiet case', () => {
  it('a resumed topic the new server does not hold is flagged stale (GONE), its last state kept, until it is published again: then a snapshot of the new epoch and ok', async () => {
    const port = await freePort();
    let server = await h.server({ port });
    server.publish('rq.A', { bid: 1 });
    server.publish('rq.B', { bid: 1 });
    const client = await h.connected(server);
    const exact = client.subscribe('rq.A');
    const pattern = client.subscribe('rq.*');
    const statuses: string[] = [];
    exact.on('status', (e) => statuses.push(`exact ${e.topic} ${e.status}`));
    pattern.on('status', (e) => statuses.push(`pattern ${e.topic} ${e.status}`));
    await Promise.all([exact.ready, pattern.ready]);
    const epoch1 = exact.epoch;
    await server.close();
    await waitFor(() => client.state !== 'connected', 5_000, 'the going-away close');
    server = await h.server({ port });
    // Nothing is published in the new epoch: the client must not go on calling epoch 1's prices ok.
    await waitFor(() => client.stats.reconnects >= 1 && client.state === 'connected', 5_000, 'the reconnect');
    await waitFor(() => statuses.includes('exact rq.A stale') && statuses.includes('pattern rq.B stale'), 5_000, 'both topics flagged stale');
    expect(client.stateOf('rq.A')).toMatchObject({ epoch: epoch1, version: 1, state: { bid: 1 } });
    expect(statuses.filter((x) => x.endsWith(' ok'))).toEqual([]);
    // Published again: a snapshot of the new epoch, and ok.
    server.publish('rq.A', { bid: 2 });
    await waitFor(() => exact.epoch !== epoch1 && statuses.includes('exact rq.A ok'), 5_000, 'rq.A in the new epoch, ok');
    expect(client.stateOf('rq.A')).toEqual(serverState(server, 'rq.A'));
    // rq.B, still not published, stays stale.
    expect(statuses.filter((x) => x.includes('rq.B') && x.endsWith(' ok'))).toEqual([]);
  });
});

describe('publishing across an outage', () => {
  it('a publish made while the server is down is sent once it is back, applied once, and acknowledged', async () => {
    const port = await freePort();
    let server = await h.server({ port });
    const client = await h.connected(server);
    await client.publish('pw.A', { x: 0 });
    const disconnects: number[] = [];
    client.on('disconnect', (d) => disconnects.push(d.code));
    await server.close();
    await waitFor(() => disconnects.length >= 2, 5_000, 'a refused reconnect attempt');

    const outcome = client.publish('pw.B', { x: 1 }).then(
      (ack) => ({ ack }),
      (err: unknown) => ({ err }),
    );
    const before = disconnects.length;
    await waitFor(() => disconnects.length >= before + 2, 5_000, 'more refused reconnect attempts');

    server = await h.server({ port });
    await waitFor(() => client.state === 'connected', 5_000, 'the reconnect');
    const settled = await Promise.race([outcome, sleep(3_000).then(() => ({ pending: true }))]);
    await client.publish('pw.barrier', { x: 1 }); // anything queued was handled before this
    // Told it succeeded, and it was applied exactly once.
    expect(settled).toEqual({ ack: { topic: 'pw.B', epoch: server.store.get('pw.B')?.epoch, version: 1 } });
    expect(server.store.get('pw.B')?.version).toBe(1);
  });

  it('with reconnect off, a publish queued while disconnected is rejected and never sent', async () => {
    const port = await freePort();
    const server = await h.server({ port });
    const client = await h.connected(server, { reconnect: false });
    await server.close();
    await waitFor(() => client.state === 'disconnected', 5_000, 'the disconnect');
    const outcome = client.publish('pw.C', { x: 1 }).then(
      () => 'resolved',
      (err: { code?: string }) => err.code,
    );
    expect(await Promise.race([outcome, sleep(2_000).then(() => 'still pending')])).toBe('TICKFAN_ERR_DISCONNECTED');
  });
});

describe('liveness watchdog', () => {
  it('a connection silent past heartbeat + grace is replaced; late frames of the old one are not applied', async () => {
    const server = await h.server({ heartbeatMs: 50 });
    const topic = 'wd.A';
    server.publish(topic, { bid: 1, ...STATICS });
    const tracked = trackingWebSocket();
    const client = await h.connected(server, { WebSocket: tracked.Ctor, heartbeatGraceMs: 200 });
    const disconnects: number[] = [];
    client.on('disconnect', (d) => disconnects.push(d.code));
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;
    const tick = ticker(server, topic, 1);
    await waitFor(() => sub.version >= 5, 5_000, 'live updates');

    // The old connection goes silent (nothing read), so the watchdog gives up on it.
    const old = tracked.tcp();
    old.pause();
    await waitFor(() => client.stats.reconnects >= 1 && client.state === 'connected', 5_000, 'the watchdog reconnect');
    expect(disconnects[0]).toBe(4000);
    expect(tracked.sockets).toHaveLength(2);
    const atReconnect = server.store.get(topic)!.version;
    await waitFor(() => sub.version > atReconnect, 5_000, 'live updates on the new connection');
    // Then its backlog shows up after all: all of it read once the old socket has closed (the server's close comes last).
    old.resume();
    await waitFor(() => tracked.sockets[0]!.readyState === WebSocket.CLOSED, 5_000, 'the old connection to be read to its end');
    await tick.stop();
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'the client to catch up');

    expect(client.stats.sequenceGaps).toBe(0);
    expect(chainProblem(ups)).toBeNull();
    expect(client.stateOf(topic)).toEqual(serverState(server, topic));
  });
});
