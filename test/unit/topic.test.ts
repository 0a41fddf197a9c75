// Topics, the store and epochs: the resume table (RELIABILITY.md item 18),
// exact catch-ups, publish validation and limits, strictly increasing epochs.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EpochClock, Topic, TopicPattern, TopicStore, applyChanges, type EngineLimits } from '../../src/engine/index.js';
import { ErrorCode, TickfanError, sameValue, type Changes, type FieldValue, type State } from '../../src/protocol/index.js';

function sameState(a: ReadonlyMap<string, FieldValue>, b: ReadonlyMap<string, FieldValue>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
  return true;
}

/** A clock whose `now()` returns the given times, then keeps returning the last. */
function fakeNow(times: number[]): () => number {
  let i = 0;
  return () => times[Math.min(i++, times.length - 1)]!;
}

describe('Topic.plan: the resume table', () => {
  // History of 4: after 10 publishes it holds versions 7..10, so bases 6..10.
  const EPOCH = 1_700_000_000_000_000;
  const topic = new Topic('px.AAPL', EPOCH, 4);
  const states: State[] = [new Map()];
  for (let v = 1; v <= 10; v++) {
    const ch: Changes = new Map<string, FieldValue | null>([['bid', 100 + v], [`f${v}`, v]]);
    if (v > 1) ch.set(`f${v - 1}`, null); // delete the previous one
    topic.apply(ch, 1000 + v);
    states.push(new Map(topic.state));
  }

  it('is at version 10 with the last publish time', () => {
    expect(topic.version).toBe(10);
    expect(topic.ts).toBe(1010);
    expect(new Map(topic.state)).toEqual(new Map([['bid', 110], ['f10', 10]]));
  });

  it('current version → current', () => {
    expect(topic.plan(EPOCH, 10)).toEqual({ kind: 'current' });
  });

  it.each([9, 8, 7, 6])('version %d, still in history → one merged delta', (held) => {
    const p = topic.plan(EPOCH, held);
    expect(p).toMatchObject({ kind: 'delta', base: held, version: 10, updates: 10 - held });
    if (p.kind !== 'delta') return;
    // Exact: applied to the state at `held`, it gives the state at 10.
    expect(applyChanges(new Map(states[held]!), p.changes)).toEqual(new Map(topic.state));
    // Deletes travel: f{held} existed at `held` and is gone at 10.
    if (held >= 1) expect(p.changes.get(`f${held}`)).toBeNull();
  });

  it.each([5, 1, 0])('version %d, older than the history → snapshot', (held) => {
    expect(topic.plan(EPOCH, held)).toEqual({ kind: 'snapshot' });
  });

  it.each([11, 1000, Number.MAX_SAFE_INTEGER])('future version %d → snapshot', (held) => {
    expect(topic.plan(EPOCH, held)).toEqual({ kind: 'snapshot' });
  });

  it.each([
    ['older epoch', EPOCH - 1, 10],
    ['newer epoch', EPOCH + 1, 10],
    ['other epoch, version in history', EPOCH - 1, 8],
    ['epoch 0 (holds nothing)', 0, 0],
  ])('%s → snapshot', (_what, epoch, held) => {
    expect(topic.plan(epoch, held)).toEqual({ kind: 'snapshot' });
  });

  it.each([-1, 8.5, NaN])('a version that is not one (%s) → snapshot, never a crash', (held) => {
    expect(topic.plan(EPOCH, held)).toEqual({ kind: 'snapshot' });
  });

  it('from version 0 when the history still reaches back to the start → delta from empty', () => {
    const t = new Topic('t', 5, 8);
    t.apply(new Map([['a', 1]]), 1);
    t.apply(new Map<string, FieldValue | null>([['a', null], ['b', 2]]), 2);
    expect(t.plan(5, 0)).toEqual({ kind: 'delta', base: 0, version: 2, updates: 2, changes: new Map<string, FieldValue | null>([['a', null], ['b', 2]]) });
  });

  it('without history everything behind is a snapshot', () => {
    const t = new Topic('t', 5, 0);
    t.apply(new Map([['a', 1]]), 1);
    t.apply(new Map([['a', 2]]), 2);
    expect(t.plan(5, 1)).toEqual({ kind: 'snapshot' });
    expect(t.plan(5, 2)).toEqual({ kind: 'current' });
  });
});

describe('Topic.plan: exactness property', () => {
  const key = fc.constantFrom('bid', 'ask', 'last', 'b.1', 'b.2');
  const value = fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 4 }), fc.boolean());
  const publish = fc
    .array(fc.tuple(key, fc.option(value, { freq: 4, nil: null })), { minLength: 1, maxLength: 4 })
    .map((e) => new Map<string, FieldValue | null>(e));

  it('every (epoch, version) a subscriber may hold is brought exactly to the current state', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.array(publish, { minLength: 1, maxLength: 20 }), (historySize, pubs) => {
        const store = new TopicStore({ historySize });
        const states: State[] = [new Map()];
        for (const p of pubs) {
          const acc = store.publish('px.X', p, 1);
          expect(acc.base).toBe(states.length - 1);
          expect(acc.version).toBe(states.length);
          states.push(new Map(acc.topic.state));
        }
        const topic = store.get('px.X')!;
        const n = pubs.length;
        for (const epoch of [topic.epoch, topic.epoch - 1, topic.epoch + 1]) {
          for (let held = 0; held <= n + 1; held++) {
            const plan = topic.plan(epoch, held);
            const sameEpoch = epoch === topic.epoch;
            if (sameEpoch && held === n) {
              expect(plan.kind).toBe('current');
            } else if (sameEpoch && held < n && held >= n - historySize) {
              // The smallest correct catch-up: a delta whenever history allows.
              expect(plan.kind).toBe('delta');
              if (plan.kind !== 'delta') continue;
              expect([plan.base, plan.version, plan.updates]).toEqual([held, n, n - held]);
              expect(sameState(applyChanges(new Map(states[held]!), plan.changes), topic.state)).toBe(true);
            } else {
              expect(plan.kind).toBe('snapshot');
            }
          }
        }
        expect(sameState(topic.state, states[n]!)).toBe(true);
      }),
      { numRuns: 500, seed: 18 },
    );
  });
});

describe('TopicStore.publish', () => {
  it('creates a topic on first publish, then versions every publish', () => {
    const store = new TopicStore({}, new EpochClock(fakeNow([5])));
    const a = store.publish('px.AAPL', new Map([['bid', 1]]), 111);
    expect(a).toMatchObject({ base: 0, version: 1, created: true });
    expect(a.topic.name).toBe('px.AAPL');
    expect(a.topic.epoch).toBe(5000);
    const b = store.publish('px.AAPL', new Map<string, FieldValue | null>([['bid', null], ['ask', 2]]), 222);
    expect(b).toMatchObject({ base: 1, version: 2, created: false });
    expect(b.topic).toBe(a.topic);
    expect(new Map(b.topic.state)).toEqual(new Map([['ask', 2]]));
    expect(b.topic.ts).toBe(222);
    expect(b.topic.history.newestVersion()).toBe(2);
    expect(store.size).toBe(1);
    expect(store.get('px.AAPL')).toBe(a.topic);
    expect(store.get('px.MSFT')).toBeUndefined();
  });

  it('gives each new topic its own, later epoch', () => {
    const store = new TopicStore();
    const e1 = store.publish('a', new Map([['x', 1]])).topic.epoch;
    const e2 = store.publish('b', new Map([['x', 1]])).topic.epoch;
    expect(e2).toBeGreaterThan(e1);
  });

  it('finds topics by pattern and by exact name', () => {
    const store = new TopicStore();
    for (const t of ['px.AAPL', 'px.MSFT', 'px.AAPL.bid', 'fx.EURUSD']) store.publish(t, new Map([['x', 1]]));
    const names = (p: string) => [...store.matching(TopicPattern.parse(p))].map((t) => t.name).sort();
    expect(names('px.*')).toEqual(['px.AAPL', 'px.MSFT']);
    expect(names('px.>')).toEqual(['px.AAPL', 'px.AAPL.bid', 'px.MSFT']);
    expect(names('>')).toHaveLength(4);
    expect(names('fx.EURUSD')).toEqual(['fx.EURUSD']);
    expect(names('fx.GBPUSD')).toEqual([]);
    expect([...store.all()]).toHaveLength(4);
  });
});

describe('TopicStore.publish refuses, with the right code and no change of state', () => {
  const LIMITS: Partial<EngineLimits> = {
    maxTopics: 3,
    maxFieldsPerTopic: 3,
    maxFieldNameLength: 8,
    maxValueBytes: 16,
    maxTopicLength: 12,
    historySize: 4,
  };

  /** A store holding px.A = {a, b, c} at version 2 and px.B = {x} at version 1. */
  function seeded(): TopicStore {
    const s = new TopicStore(LIMITS);
    s.publish('px.A', new Map([['a', 1], ['b', 2]]), 1);
    s.publish('px.A', new Map([['c', 3]]), 2);
    s.publish('px.B', new Map([['x', 1]]), 3);
    return s;
  }

  function picture(s: TopicStore) {
    return [...s.all()].map((t) => ({
      name: t.name,
      epoch: t.epoch,
      version: t.version,
      ts: t.ts,
      state: new Map(t.state),
      history: [t.history.size, t.history.newestVersion(), t.history.oldestBase()],
    }));
  }

  function expectRefused(name: string, changes: Changes, code: ErrorCode, store = seeded()): void {
    const before = picture(store);
    let err: unknown;
    try {
      store.publish(name, changes, 999);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TickfanError);
    expect((err as TickfanError).errorCode, (err as Error).message).toBe(code);
    expect(picture(store)).toEqual(before);
    // And the store still works afterwards.
    expect(store.publish('px.A', new Map([['a', 42]]), 1000).version).toBe(before[0]!.version + 1);
  }

  const one = (k: string, v: unknown) => new Map([[k, v as FieldValue]]);

  it.each(['', '.', 'px.', '.px', 'px..A', 'px A', 'px/A', 'px.é', 'px.A\n', 'px.ABCDEFGHIJ'])('bad topic name %j → BAD_TOPIC', (name) => {
    expectRefused(name, one('a', 1), ErrorCode.BAD_TOPIC);
  });

  it.each(['px.*', 'px.>', '>', '*', 'a.*.c', 'px*', 'px.>.x'])('wildcard in a publish name %j → BAD_TOPIC', (name) => {
    expectRefused(name, one('a', 1), ErrorCode.BAD_TOPIC);
  });

  it('the bad name is reported before anything else', () => {
    expectRefused('px.*', new Map(), ErrorCode.BAD_TOPIC);
  });

  it('a new topic past maxTopics → TOO_MANY_TOPICS; existing topics still publish', () => {
    const s = seeded();
    s.publish('px.C', one('a', 1));
    expectRefused('px.D', one('a', 1), ErrorCode.TOO_MANY_TOPICS, s);
    expect(s.size).toBe(3);
    expect(s.get('px.D')).toBeUndefined();
    expect(s.publish('px.C', one('a', 2)).version).toBe(2);
  });

  it('a fourth field → TOO_MANY_FIELDS', () => {
    expectRefused('px.A', one('d', 4), ErrorCode.TOO_MANY_FIELDS);
    // Deleting a field the topic lacks does not make room.
    expectRefused('px.A', new Map<string, FieldValue | null>([['zz', null], ['d', 4]]), ErrorCode.TOO_MANY_FIELDS);
  });

  it('a new topic with too many fields → TOO_MANY_FIELDS and no topic', () => {
    const s = seeded();
    expectRefused('px.N', new Map([['a', 1], ['b', 2], ['c', 3], ['d', 4]]), ErrorCode.TOO_MANY_FIELDS, s);
    expect(s.get('px.N')).toBeUndefined();
  });

  it('replacing, or deleting one and adding one, stays within the limit', () => {
    const s = seeded();
    expect(s.publish('px.A', new Map([['a', 10], ['b', 20], ['c', 30]])).version).toBe(3);
    expect(s.publish('px.A', new Map<string, FieldValue | null>([['a', null], ['d', 4]])).version).toBe(4);
    expect(new Map(s.get('px.A')!.state)).toEqual(new Map([['b', 20], ['c', 30], ['d', 4]]));
  });

  it.each<[string, unknown]>([
    ['17 bytes', new Uint8Array(17)],
    ['a 6-character string (counted as up to 18 bytes of UTF-8)', 'abcdef'],
  ])('a value of %s → VALUE_TOO_LARGE', (_what, v) => {
    expectRefused('px.A', one('a', v), ErrorCode.VALUE_TOO_LARGE);
  });

  it('values at the size limit are accepted', () => {
    const s = seeded();
    expect(s.publish('px.A', new Map<string, FieldValue>([['a', new Uint8Array(16)], ['b', 'abcde']])).version).toBe(3);
  });

  it('an empty publish → BAD_REQUEST, on new and existing topics', () => {
    expectRefused('px.A', new Map(), ErrorCode.BAD_REQUEST);
    expectRefused('px.New', new Map(), ErrorCode.BAD_REQUEST);
  });

  it.each([
    ['empty', ''],
    ['too long', 'abcdefghi'],
  ])('a field name that is %s → BAD_FIELD', (_what, k) => {
    expectRefused('px.A', one(k, 1), ErrorCode.BAD_FIELD);
    expectRefused('px.A', new Map([['a', 1], [k, 1]]), ErrorCode.BAD_FIELD);
  });

  it('a field name at the length limit is accepted', () => {
    expect(seeded().publish('px.B', one('abcdefgh', 1)).version).toBe(2);
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['an object', { a: 1 }],
    ['an array', [1, 2]],
    ['a function', () => 1],
    ['a symbol', Symbol('x')],
    ['a Date', new Date(0)],
    ['a Uint16Array', new Uint16Array(2)],
  ])('a value that is %s → BAD_FIELD', (_what, v) => {
    expectRefused('px.A', one('a', v), ErrorCode.BAD_FIELD);
  });

  it.each([2n ** 63n, -(2n ** 63n) - 1n, 2n ** 100n])('an integer outside 64 bits (%s) → BAD_FIELD', (v) => {
    expectRefused('px.A', one('a', v), ErrorCode.BAD_FIELD);
  });

  it('64-bit integers at the edges are accepted', () => {
    const s = seeded();
    s.publish('px.A', new Map([['a', 2n ** 63n - 1n], ['b', -(2n ** 63n)]]));
    expect(s.get('px.A')!.state.get('a')).toBe(2n ** 63n - 1n);
  });

  it('one bad field refuses the whole publish (nothing half-applied)', () => {
    expectRefused('px.A', new Map<string, FieldValue | null>([['a', 100], ['b', null], ['', 1]]), ErrorCode.BAD_FIELD);
  });

  it('errors carry the TICKFAN_ERR_* name', () => {
    try {
      seeded().publish('px.*', one('a', 1));
      expect.unreachable();
    } catch (e) {
      expect((e as TickfanError).code).toBe('TICKFAN_ERR_BAD_TOPIC');
      expect((e as Error).message).toContain('px.*');
    }
  });
});

describe('EpochClock', () => {
  it('uses the wall clock in microseconds', () => {
    const c = new EpochClock(fakeNow([1_700_000_000_000]));
    expect(c.next()).toBe(1_700_000_000_000_000);
  });

  it('stays strictly increasing when the clock stands still or goes back', () => {
    const c = new EpochClock(fakeNow([1000, 1000, 999, 500, 1000.0004, 1002]));
    expect([c.next(), c.next(), c.next(), c.next(), c.next(), c.next()]).toEqual([1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_000_004, 1_002_000]);
  });

  it('the real clock: strictly increasing, near now, below 2^53', () => {
    const c = new EpochClock();
    const start = Date.now() * 1000;
    let last = 0;
    for (let i = 0; i < 20_000; i++) {
      const e = c.next();
      expect(e > last).toBe(true);
      last = e;
    }
    expect(last).toBeGreaterThanOrEqual(start);
    expect(last).toBeLessThan(Number.MAX_SAFE_INTEGER);
    expect(Number.isSafeInteger(last)).toBe(true);
  });

  it('a restarted store (new clock, later time) never reuses an epoch', () => {
    const before = new TopicStore({}, new EpochClock(fakeNow([1000])));
    const e1 = before.publish('px.A', new Map([['a', 1]])).topic.epoch;
    const after = new TopicStore({}, new EpochClock(fakeNow([1001])));
    const e2 = after.publish('px.A', new Map([['a', 1]])).topic.epoch;
    expect(e2).toBeGreaterThan(e1);
    // The resumer from before the restart gets a snapshot, not a delta.
    expect(after.get('px.A')!.plan(e1, 1)).toEqual({ kind: 'snapshot' });
  });
});
