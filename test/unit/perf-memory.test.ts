// Issue 13, memory: a connection with one subscription of one topic keeps its
// record slim — no Map of its own for its subscriptions or topics, a
// one-slot ClientSub list per topic, one shared pattern list, a sink without
// closures, a Session without its rarely used fields. Structural checks, not
// timed or heap-measured ones (those would be flaky).

import { describe, expect, it } from 'vitest';
import { SmallMap } from '../../src/server/fanout/state.js';
import { Session } from '../../src/server/session.js';
import { WsSink } from '../../src/server/sink.js';
import { rig } from './fanout-fakes.js';

describe('per-connection memory', () => {
  it('one subscription of one topic allocates no Map per connection', () => {
    const r = rig();
    for (let i = 0; i < 10; i++) r.publish(`mm.T${i}`, { bid: i });
    const clients = Array.from({ length: 200 }, () => r.connect());
    clients.forEach((c, i) => r.subscribe(c, [`mm.T${i % 10}`]));
    for (const { conn } of clients) {
      expect(conn.subs).toBeInstanceOf(SmallMap);
      expect(conn.subs.size).toBe(1);
      expect(conn.subs.spilled).toBe(false);
      expect(conn.topics.size).toBe(1);
      expect(conn.topics.spilled).toBe(false);
      const ts = [...conn.topics.values()][0]!;
      expect(ts.sids).toHaveLength(1);
      expect(conn.dirtySubs).toBeNull();
      expect(conn.published).toBeNull();
    }
    // The same pattern: one list shared by every subscription to it.
    const lists = new Set(clients.map((c) => [...c.conn.subs.values()][0]!.patterns));
    expect(lists.size).toBe(10);
    // Still a map when it must be: a second subscription spills, and going back to one works.
    const c = clients[0]!;
    r.subscribe(c, ['mm.T1'], { id: 9001 });
    expect(c.conn.subs.spilled).toBe(true);
    expect(c.conn.topics.size).toBe(2);
    r.fanout.unsubscribe(c.conn, 9001);
    expect(c.conn.topics.size).toBe(1);
    expect([...c.conn.topics.keys()]).toEqual(['mm.T0']);
    r.fanout.closed(c.conn);
    expect(c.conn.subs.size).toBe(0);
    expect(c.conn.topics.spilled).toBe(false);
  });

  it('SmallMap behaves as a Map through one, two and back to none', () => {
    const m = new SmallMap<string, number>();
    const ref = new Map<string, number>();
    const ops: [string, string, number][] = [
      ['set', 'a', 1], ['set', 'a', 2], ['delete', 'b', 0], ['set', 'b', 3], ['delete', 'a', 0], ['set', 'c', 4],
      ['delete', 'b', 0], ['delete', 'c', 0], ['delete', 'c', 0], ['set', 'd', 5], ['delete', 'd', 0], ['set', 'e', 6],
    ];
    for (const [op, k, v] of ops) {
      if (op === 'set') {
        m.set(k, v);
        ref.set(k, v);
      } else expect(m.delete(k)).toBe(ref.delete(k));
      expect(m.size).toBe(ref.size);
      expect([...m]).toEqual([...ref]);
      expect([...m.keys()]).toEqual([...ref.keys()]);
      expect([...m.values()]).toEqual([...ref.values()]);
      for (const key of 'abcde') {
        expect(m.has(key)).toBe(ref.has(key));
        expect(m.get(key)).toBe(ref.get(key));
      }
    }
    m.clear();
    expect(m.size).toBe(0);
    expect([...m]).toEqual([]);
  });

  it('a Session keeps authWaiting, expiryTimer and responder off its record until one is set; a WsSink holds two fields', () => {
    const s = new Session(1, '127.0.0.1:1', null);
    expect(Object.keys(s).sort()).toEqual(['badFrames', 'conn', 'grants', 'publishRefillAt', 'publishTokens', 'rare']);
    expect(s.authWaiting).toBeNull();
    s.expiryTimer = null;
    s.responder = null;
    expect((s as unknown as { rare: unknown }).rare).toBeNull();
    s.authWaiting = [];
    s.authWaiting.push({ type: 'ping', id: 1 } as never);
    expect(s.authWaiting).toHaveLength(1);
    s.authWaiting = null;
    expect(s.authWaiting).toBeNull();

    const ws = { subscribe() {}, unsubscribe() {}, send: () => 0, getBufferedAmount: () => 0, end() {} };
    const sink = new WsSink(ws as never, false);
    expect(Object.keys(sink).sort()).toEqual(['compress', 'ws']);
    expect(sink.native).toBe(sink);
  });
});
