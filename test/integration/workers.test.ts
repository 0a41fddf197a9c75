// Multi-core layout: one sequencer, fan-out workers on one port. Clients on
// different workers see identical (epoch, version) chains; publishes on any
// worker are acknowledged with the sequencer's version; a client that
// reconnects onto another worker resumes by merged delta; a stalled worker
// that overruns the ring resynchronises to an exact state.
//
// Workers run the compiled build (dist/): `npm test` builds first.

import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, type TickfanServer } from '../../src/index.js';
import { Encoder, decodeServerFrame, type AnyMessage, type WelcomeMsg } from '../../src/protocol/index.js';
import { applyChanges } from '../../src/engine/index.js';
import type { TickfanClient, WebSocketCtor } from '../../src/client/index.js';
import { Harness, RawClient, caughtUp, http, isType, serverState, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());
const enc = new Encoder();

function workerOf(r: RawClient): string {
  const w = r.messages.find(isType('welcome')) as WelcomeMsg | undefined;
  return w?.server ?? '?';
}

/** Raw clients until each of `n` workers has one (bounded attempts). */
async function rawOnEachWorker(server: TickfanServer, n: number): Promise<RawClient[]> {
  const found = new Map<string, RawClient>();
  for (let i = 0; i < 60 && found.size < n; i++) {
    const r = await h.raw(server);
    const w = workerOf(r);
    if (!found.has(w)) found.set(w, r);
  }
  expect(found.size, 'the kernel spread connections over every worker').toBe(n);
  return [...found.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, r]) => r);
}

/** The (epoch, base, version) chain and final state a raw client saw for one topic. */
function chainOf(msgs: AnyMessage[], topic: string): { chain: string[]; state: Map<string, unknown> } {
  const chain: string[] = [];
  const state = new Map<string, unknown>();
  for (const m of msgs) {
    if (m.type === 'snapshot' && m.topic === topic) {
      chain.push(`S ${m.epoch}:${m.version}`);
      state.clear();
      for (const [k, v] of m.fields) state.set(k, v);
    } else if (m.type === 'delta' && m.topic === topic) {
      chain.push(`D ${m.epoch}:${m.base}->${m.version}`);
      applyChanges(state as never, m.changes);
    }
  }
  return { chain, state };
}

describe('fan-out workers', () => {
  it('clients on different workers see identical (epoch, version) chains and identical states', async () => {
    const server = await h.server({ workers: 2 });
    expect(server.workers).toBe(2);
    for (const t of ['px.W1.A', 'px.W1.B']) server.publish(t, { bid: 0, ask: 1 });
    const [a, b] = await rawOnEachWorker(server, 2);
    expect(workerOf(a!)).not.toBe(workerOf(b!));
    for (const r of [a!, b!]) {
      const at = r.lastSeq;
      r.send(enc.subscribe(1, ['px.W1.>'], 0, [], []));
      await r.next(isType('ack'), at);
    }
    for (let i = 1; i <= 300; i++) {
      server.publish(i % 2 ? 'px.W1.A' : 'px.W1.B', { bid: i, ask: i + 1, note: i % 7 ? `n${i}` : null });
      if (i % 50 === 0) await sleep(1); // pacing, not a wait: let the workers read between bursts
    }
    for (const topic of ['px.W1.A', 'px.W1.B']) {
      const want = serverState(server, topic);
      await waitFor(() => [a!, b!].every((r) => chainOf(r.messages, topic).chain.at(-1)?.endsWith(`${want.version}`)), 5_000, `both workers to deliver ${topic} v${want.version}`);
      const ca = chainOf(a!.messages, topic);
      const cb = chainOf(b!.messages, topic);
      expect(ca.chain).toEqual(cb.chain);
      expect(ca.chain.length).toBe(want.version); // snapshot at v1, then one delta per version
      expect(Object.fromEntries(ca.state)).toEqual(want.state);
      expect(Object.fromEntries(cb.state)).toEqual(want.state);
    }
  });

  it('a publish on any worker (WebSocket or HTTP) is acknowledged with the version the sequencer assigned', async () => {
    const server = await h.server({ workers: 2 });
    const [a, b] = await rawOnEachWorker(server, 2);
    const acks: number[] = [];
    for (let i = 1; i <= 40; i++) {
      const r = i % 2 ? a! : b!;
      const at = r.lastSeq;
      r.send(enc.publish(i, 'px.W2.P', [['bid', i], ['who', workerOf(r)]]));
      const { message } = await r.next((m): m is Extract<AnyMessage, { type: 'ack' }> => m.type === 'ack' && m.id === i, at);
      acks.push(message.version);
      expect(message.topic).toBe('px.W2.P');
    }
    expect(acks).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const res = await http(server.port, 'POST', '/publish/px.W2.P', { bid: 41 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ topic: 'px.W2.P', version: 41 });
    expect(serverState(server, 'px.W2.P').state).toEqual({ bid: 41, who: workerOf(b!) });
    // A refused publish is answered by the worker with the sequencer's error code.
    const at = a!.lastSeq;
    a!.send(enc.publish(99, 'px.W2.P', [['', 1]]));
    const { message } = await a!.next((m): m is Extract<AnyMessage, { type: 'error' }> => m.type === 'error' && m.id === 99, at);
    expect(message.code).toBe(14); // BAD_FIELD
  });

  it('a client that reconnects onto another worker resumes with a merged delta', async () => {
    const server = await h.server({ workers: 2 });
    const statics = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`ref${i}`, `static value ${i}`]));
    server.publish('px.W3.R', { ...statics, bid: 0 });
    const sockets: WebSocket[] = [];
    const workers: string[] = [];
    class Tracking extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
        this.once('message', (data) => {
          const w = decodeServerFrame(new Uint8Array(data as ArrayBuffer)).messages.find(isType('welcome')) as WelcomeMsg | undefined;
          workers.push(w?.server ?? '?');
        });
      }
    }
    const client: TickfanClient = h.client(server, { WebSocket: Tracking as unknown as WebSocketCtor });
    const sub = client.subscribe('px.W3.R');
    await sub.ready;
    let v = 1;
    // Drop the connection until the client lands on the other worker (each attempt is a coin flip).
    for (let attempt = 0; attempt < 30 && new Set(workers).size < 2; attempt++) {
      const seen = workers.length;
      sockets.at(-1)!.terminate();
      for (let i = 0; i < 5; i++) server.publish('px.W3.R', { bid: ++v });
      await waitFor(() => workers.length > seen && client.state === 'connected', 5_000, 'the reconnect');
      await waitFor(() => caughtUp(client, server, 'px.W3.R'), 5_000, 'the resume');
    }
    expect(new Set(workers).size, 'the client reconnected onto both workers').toBe(2);
    expect(client.stats.reconnects).toBeGreaterThan(0);
    expect(client.stats.catchUpDeltas).toBe(client.stats.reconnects);
    expect(client.stats.catchUpSnapshots).toBe(0);
    expect(sub.state).toEqual(serverState(server, 'px.W3.R').state);
  });

  it('a stalled worker overruns the ring, resynchronises, and its clients end exact', async () => {
    const server = await h.server({ workers: 2, ringBytes: 64 * 1024 });
    server.publish('px.W4.S', { bid: 0 });
    const [a, b] = await rawOnEachWorker(server, 2);
    for (const r of [a!, b!]) {
      const at = r.lastSeq;
      r.send(enc.subscribe(1, ['px.W4.S'], 0, [], []));
      await r.next(isType('ack'), at);
    }
    const stalled = server.stallWorker(0, 700);
    // No positive signal that a thread is blocked (the stall reports only when it ends): give it 50 ms to begin.
    // The overrun checks below fail if it had not.
    await sleep(50);
    // ~300 KB of updates while worker 0 cannot read: far more than its 64 KiB ring.
    for (let i = 1; i <= 3_000; i++) {
      server.publish('px.W4.S', { bid: i, pad: 'x'.repeat(80) });
      if (i % 500 === 0) await sleep(5); // pacing, not a wait: let worker 1 keep up while worker 0 cannot
    }
    await stalled;
    const want = serverState(server, 'px.W4.S');
    for (const r of [a!, b!]) {
      await waitFor(() => chainOf(r.messages, 'px.W4.S').chain.at(-1)?.endsWith(`:${want.version}`) ?? false, 5_000, 'the client to reach the last version');
      expect(Object.fromEntries(chainOf(r.messages, 'px.W4.S').state)).toEqual(want.state);
    }
    // Worker 0's client healed through a catch-up (a snapshot or a merged delta), not by reading overwritten slots.
    const chain0 = chainOf(a!.messages, 'px.W4.S').chain;
    expect(chain0.length).toBeLessThan(want.version);
    // Its chain never breaks: every delta starts at the version the previous message ended at.
    let held = -1;
    for (const step of chain0) {
      const m = /^(S|D) \d+:(?:(\d+)->)?(\d+)$/.exec(step)!;
      if (m[1] === 'D') expect(Number(m[2])).toBe(held);
      held = Number(m[3]);
    }
    // The worker reports its overrun on /healthz (ask until that worker answers).
    let overruns = -1;
    for (let i = 0; i < 40 && overruns < 1; i++) {
      const res = await http(server.port, 'GET', '/healthz');
      const body = res.body as { server: string; overruns: number };
      if (body.server.endsWith('/w0')) overruns = body.overruns;
    }
    expect(overruns).toBeGreaterThanOrEqual(1);
  });

  it('closes gracefully with workers running: every client is told 1001 going away', async () => {
    const server = await h.server({ workers: 2 });
    const raws = await rawOnEachWorker(server, 2);
    await server.close();
    await waitFor(() => raws.every((r) => r.closeCode !== null), 5_000, 'the clients to be closed');
    for (const r of raws) expect(r.closeCode).toBe(CloseCode.GOING_AWAY);
    // The port is free again: nothing is left listening.
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(res).toBe('refused');
  });
});
