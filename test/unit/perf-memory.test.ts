// Issues 13 and 21, memory: a connection with one subscription of one topic
// keeps its records slim — no Map or wrapper of its own for its subscriptions
// or topics (the records stand for their one-entry maps), no ClientSub list
// per topic, no outbox array while idle, one shared pattern list, a sink
// without closures, a Session without its rarely used fields. Structural checks, not
// timed or heap-measured ones (those would be flaky).

import { describe, expect, it } from 'vitest';
import { ClientSub, Conn } from '../../src/server/fanout/state.js';
import { Session, Sessions, type SessionOptions } from '../../src/server/session.js';
import { ServerStats } from '../../src/server/stats.js';
import { DeflateWsConn, WsConn } from '../../src/server/ws-conn.js';
import type { Fanout } from '../../src/server/fanout/index.js';
import { rig } from './fanout-fakes.js';

describe('per-connection memory', () => {
  it('one subscription of one topic allocates no Map, no wrapper and no list per connection', () => {
    const r = rig();
    for (let i = 0; i < 10; i++) r.publish(`mm.T${i}`, { bid: i });
    const clients = Array.from({ length: 200 }, () => r.connect());
    clients.forEach((c, i) => r.subscribe(c, [`mm.T${i % 10}`]));
    r.clock.runTurn();
    for (const { conn } of clients) {
      const cs = [...conn.subs.values()][0]!;
      const ts = [...conn.topics.values()][0]!;
      // The records stand for their one-entry maps.
      expect(conn.subs).toBe(cs);
      expect(conn.topics).toBe(ts);
      expect(conn.spilled).toBe(false);
      expect(conn.subs.size).toBe(1);
      expect(conn.topics.size).toBe(1);
      expect(conn.topics.get(ts.topic.name)).toBe(ts);
      expect(conn.topics.get('mm.nope')).toBeUndefined();
      expect(ts.sids).toBe(cs);
      expect(conn.dirtySubs).toBeNull();
      expect(conn.published).toBeNull();
      expect((conn as unknown as { rare: unknown }).rare).toBeNull();
      // The outbox was flushed: no array kept.
      expect((conn as unknown as { pending: unknown }).pending).toBeNull();
      expect(conn.outboxBytes).toBe(0);
    }
    // Their topics exist (and topics are never removed): no exact-name interest entry per subscription.
    const exact = (r.fanout as unknown as { interest: { exact: Map<string, Set<unknown>> } }).interest.exact;
    expect(exact.size).toBe(0);
    // A name not published yet is registered, and its subscriber attached when it is created.
    const early = r.connect();
    r.subscribe(early, ['mm.Later']);
    expect(exact.get('mm.Later')?.size).toBe(1);
    r.publish('mm.Later', { bid: 1 });
    expect(early.conn.topics.has('mm.Later')).toBe(true);
    // The same pattern: one list shared by every subscription to it.
    const lists = new Set(clients.map((c) => [...c.conn.subs.values()][0]!.patterns));
    expect(lists.size).toBe(10);
    // Still a map when it must be: a second subscription spills, and going back to one works.
    const c = clients[0]!;
    r.subscribe(c, ['mm.T1'], { id: 9001 });
    expect(c.conn.spilled).toBe(true);
    expect(c.conn.topics.size).toBe(2);
    r.subscribe(c, ['mm.T0'], { id: 9002 });
    const t0 = c.conn.topics.get('mm.T0')!;
    expect(Array.isArray(t0.sids)).toBe(true);
    r.fanout.unsubscribe(c.conn, 9002);
    expect(Array.isArray(t0.sids)).toBe(false);
    r.fanout.unsubscribe(c.conn, 9001);
    expect(c.conn.topics.size).toBe(1);
    expect(c.conn.spilled).toBe(false);
    expect([...c.conn.topics.keys()]).toEqual(['mm.T0']);
    r.fanout.closed(c.conn);
    expect(c.conn.subs.size).toBe(0);
    expect(c.conn.topics.size).toBe(0);
    expect(c.conn.spilled).toBe(false);
  });

  it('random subscribes and unsubscribes: subs, topics and their ClientSubs always as a model says, in one slot whenever one subscription covers at most one topic', () => {
    const r = rig();
    const names = ['rm.A', 'rm.B', 'rm.C'];
    for (const n of names) r.publish(n, { bid: 1 });
    const c = r.connect();
    const model = new Map<number, string[]>(); // id -> what it subscribed to
    const choices = [['rm.A'], ['rm.B'], ['rm.A', 'rm.B'], ['rm.*'], ['rm.D']];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let step = 0; step < 400; step++) {
      const id = 1 + rnd(4);
      if (model.has(id)) {
        r.fanout.unsubscribe(c.conn, id);
        model.delete(id);
      } else {
        const topics = choices[rnd(choices.length)]!;
        r.subscribe(c, topics, { id });
        model.set(id, topics);
      }
      // Half way, rm.D is published: its earlier subscribers (by name or rm.*) are attached.
      if (step === 200) r.publish('rm.D', { bid: 2 });
      const existing = step >= 200 ? [...names, 'rm.D'] : names;
      const covered = new Map<string, number[]>();
      for (const [k, subs] of model) {
        for (const t of existing) if (subs.includes(t) || subs.includes('rm.*')) covered.set(t, [...(covered.get(t) ?? []), k].sort());
      }
      expect([...c.conn.subs.keys()].sort()).toEqual([...model.keys()].sort());
      const held = new Map([...c.conn.topics].map(([n, ts]) => [n, (Array.isArray(ts.sids) ? ts.sids : [ts.sids]).map((cs) => cs.id).sort()]));
      expect(held).toEqual(covered);
      expect(c.conn.spilled).toBe(!(model.size <= 1 && covered.size <= 1));
    }
  });

  it("a connection's subscriptions behave as a Map through one, two and back to none", () => {
    const conn = new Conn(1, 'test');
    const ref = new Map<number, ClientSub>();
    const rec = new Map<number, ClientSub>();
    const ops: [string, number][] = [
      ['set', 1], ['set', 1], ['delete', 2], ['set', 2], ['delete', 1], ['set', 3],
      ['delete', 2], ['delete', 3], ['delete', 3], ['set', 4], ['delete', 4], ['set', 5], ['set', 6], ['set', 7], ['delete', 6],
    ];
    for (const [op, id] of ops) {
      if (op === 'set') {
        const cs = rec.get(id) ?? new ClientSub(conn, id, [], 0, null);
        rec.set(id, cs);
        conn.setSub(cs);
        ref.set(id, cs);
      } else {
        conn.deleteSub(id);
        ref.delete(id);
      }
      const m = conn.subs;
      expect(m.size).toBe(ref.size);
      expect([...m]).toEqual([...ref]);
      expect([...m.keys()]).toEqual([...ref.keys()]);
      expect([...m.values()]).toEqual([...ref.values()]);
      expect(conn.spilled).toBe(ref.size > 1);
      for (let key = 1; key <= 7; key++) {
        expect(m.has(key)).toBe(ref.has(key));
        expect(m.get(key)).toBe(ref.get(key));
      }
    }
    conn.clearSubs();
    expect(conn.subs.size).toBe(0);
    expect([...conn.subs]).toEqual([]);
  });

  it('a connection keeps its booleans, protocol and rare fields apart', () => {
    const conn = new Conn(1, 'test');
    expect(conn.protocol).toBe(1);
    for (const k of ['closed', 'json', 'holding', 'queued', 'slow'] as const) {
      expect(conn[k]).toBe(false);
      conn[k] = true;
      expect(conn[k]).toBe(true);
    }
    conn.protocol = 2;
    expect(conn.protocol).toBe(2);
    for (const k of ['closed', 'json', 'holding', 'queued', 'slow'] as const) {
      expect(conn[k]).toBe(true);
      conn[k] = false;
      expect(conn[k]).toBe(false);
    }
    expect(conn.protocol).toBe(2);
    conn.slowSince = 0;
    expect((conn as unknown as { rare: unknown }).rare).toBeNull();
    conn.slowSince = 5;
    expect(conn.slowSince).toBe(5);
    expect(conn.dirtySubs).toBeNull();
    // The outbox and its bytes: made by the first message, given back by the flush's fresh array.
    const pending = () => (conn as unknown as { pending: unknown }).pending;
    expect(conn.outboxBytes).toBe(0);
    conn.outboxBytes = 0;
    expect(pending()).toBeNull();
    conn.outbox.push(new Uint8Array(3));
    conn.outboxBytes += 3;
    conn.outbox.push(new Uint8Array(4));
    conn.outboxBytes += 4;
    expect(conn.outbox).toHaveLength(2);
    expect(conn.outboxBytes).toBe(7);
    conn.outbox = [];
    conn.outboxBytes = 0;
    expect(pending()).toBeNull();
    // The frame counters: one field, the same sequence numbers as two (fast-path.ts and outbox.ts's arithmetic).
    const two = { seq: 0, retired: 0, atLast: 0 };
    let onChannels = 0; // frames counted by the channels it is on (fast-path.ts#frames adds them)
    for (let i = 0; i < 200; i++) {
      const step = (i * 7919) % 5;
      if (step < 2) onChannels += step + 1; // frames published to it
      else if (step === 2) {
        // it leaves a channel: what that channel counted moves to retiredFrames
        conn.retiredFrames += onChannels;
        two.retired += onChannels;
        onChannels = 0;
      } else {
        // a direct frame
        const fast = conn.retiredFrames + onChannels;
        conn.seq += fast - conn.fastAtLastSend + 1;
        conn.fastAtLastSend = fast;
        const fast2 = two.retired + onChannels;
        two.seq += fast2 - two.atLast + 1;
        two.atLast = fast2;
        expect(conn.seq).toBe(two.seq);
      }
    }
    expect(two.seq).toBeGreaterThan(100);
  });

  it('a topic subscription keeps any epoch exactly in its two small integers; a client subscription its fields and views aside', () => {
    const r = rig();
    r.publish('ep.A', { bid: 1 });
    const c = r.connect();
    r.subscribe(c, ['ep.A']);
    const ts = c.conn.topics.get('ep.A')!;
    expect(ts.conn).toBe(c.conn);
    expect(ts.sentEpoch).toBe(r.store.get('ep.A')!.epoch);
    ts.dirty = true;
    for (const e of [0, 1, 2 ** 26 - 1, 2 ** 26, 2 ** 26 + 1, 1_765_000_000_000_123, 2 ** 53 - 1, 2 ** 57 - 2]) {
      ts.sentEpoch = e;
      expect(ts.sentEpoch).toBe(e);
      // The epoch's low half shares the flags' field: neither disturbs the other.
      expect(ts.dirty).toBe(true);
      expect(ts.fast).toBe(true);
    }
    ts.dirty = false;
    expect(ts.sentEpoch).toBe(2 ** 57 - 2);
    // Not an epoch: held as one that matches none.
    for (const e of [2 ** 60, 1_765_000_000_000_123.5, -1, NaN]) {
      ts.sentEpoch = e;
      expect(ts.sentEpoch).toBe(2 ** 57 - 1);
    }
    const cs = c.conn.subs.get([...c.conn.subs.keys()][0]!)!;
    expect(cs.fields).toBeNull();
    expect(cs.views).toBeNull();
    expect((cs as unknown as { extra: unknown }).extra).toBeNull();
    r.subscribe(c, ['ep.A'], { id: 77, fields: ['bid'] });
    expect([...c.conn.subs.get(77)!.fields!]).toEqual(['bid']);
  });

  it('a Session puts three properties on its socket and keeps the rest off its record until used; a WebSocket Conn is its own sink', () => {
    const s = new Session(1, '127.0.0.1', null);
    expect(Object.keys(s).sort()).toEqual(['conn', 'grants', 'rare']);
    expect(s.authWaiting).toBeNull();
    s.expiryTimer = null;
    s.responder = null;
    expect(s.rare).toBeNull();
    s.authWaiting = [];
    s.authWaiting.push({ type: 'ping', id: 1 } as never);
    expect(s.authWaiting).toHaveLength(1);
    s.authWaiting = null;
    expect(s.authWaiting).toBeNull();

    // What uWebSockets.js keeps on the socket: the own properties only (no accessors).
    const onSocket = { ...new Session(2, '127.0.0.1', null) } as Session;
    let ended = 0;
    const fanout = { end: () => void ended++ } as unknown as Fanout;
    const opts = { maxBadFrames: 3, maxPublishesPerSecond: 2 } as SessionOptions;
    const sessions = new Sessions({} as never, fanout, {} as never, opts, new ServerStats());
    sessions.goodFrame(onSocket);
    expect(onSocket.rare).toBeNull();
    sessions.badFrame(onSocket);
    sessions.badFrame(onSocket);
    sessions.goodFrame(onSocket);
    sessions.badFrame(onSocket);
    sessions.badFrame(onSocket);
    expect(ended).toBe(0);
    sessions.badFrame(onSocket);
    expect(ended).toBe(1);
    expect([sessions.takePublishToken(onSocket), sessions.takePublishToken(onSocket), sessions.takePublishToken(onSocket)]).toEqual([true, true, false]);
    expect(Object.keys(onSocket).sort()).toEqual(['conn', 'grants', 'rare']);

    const sent: unknown[] = [];
    const ws = { subscribe() {}, unsubscribe() {}, send: (...a: unknown[]) => (sent.push(a[2]), 0), getBufferedAmount: () => 7, end() {} };
    for (const conn of [new WsConn(1, 'x'), new DeflateWsConn(2, 'x')]) {
      // Socket and sink share one slot; compress is the class's.
      for (const k of ['ws', 'sink', 'compress']) expect(Object.keys(conn)).not.toContain(k);
      expect(conn.sink).toBeNull();
      conn.ws = ws as never;
      expect(conn.ws).toBe(ws);
      expect(conn.sink).toBe(conn);
      expect(conn.native).toBe(conn);
      expect(conn.buffered()).toBe(7);
      conn.send(1, [new Uint8Array(1)], 2);
    }
    expect(sent).toEqual([false, true]);
    const closing = new WsConn(3, 'x');
    closing.ws = ws as never;
    closing.sink = null;
    expect(closing.ws).toBeNull();
    expect(() => (closing.sink = new WsConn(4, 'x'))).toThrow(TypeError);
  });
});
