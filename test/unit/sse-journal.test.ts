// The SSE resume journal and the SSE JSON form. The journal's answer for
// "which (epoch, version) did the client hold after event S" must equal the
// one replaying every event up to S gives, whenever it answers at all; it may
// only refuse (snapshot) once S is older than what its bounded memory holds.
// Field values survive the JSON form exactly, both ways (server and SDK halves).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SseJournal } from '../../src/server/sse/index.js';
import { commandToMessage, messageFromJson, messageToCommand, messageToJson, valueFromJson, valueToJson } from '../../src/protocol/index.js';
import { sameValue, type ClientMessage, type FieldValue } from '../../src/protocol/index.js';

const topic = fc.constantFrom('px.A', 'px.B', 'px.C', 'fx.EURUSD', 'book.BTC-USD');
/** Events: each a list of (topic, epoch, version) updates, numbered 1, 2, 3 … */
const events = fc.array(fc.array(fc.tuple(topic, fc.integer({ min: 1, max: 3 }), fc.nat({ max: 1000 })), { maxLength: 5 }), { maxLength: 60 });

describe('SseJournal', () => {
  it('answers exactly what replaying the events up to S gives, or refuses only when S is older than its memory', () => {
    fc.assert(
      fc.property(events, fc.integer({ min: 1, max: 40 }), (evs, cap) => {
        const j = new SseJournal(cap);
        evs.forEach((updates, i) => updates.forEach(([t, e, v]) => j.record(i + 1, t, e, v)));
        const last = evs.length;
        for (let s = 0; s <= last + 1; s++) {
          const got = j.pointsAt(s, last);
          if (s > last) {
            expect(got).toBeNull();
            continue;
          }
          // Replay events 1..s.
          const want = new Map<string, { topic: string; epoch: number; version: number }>();
          evs.slice(0, s).forEach((updates) => updates.forEach(([t, e, v]) => want.set(t, { topic: t, epoch: e, version: v })));
          // It answers exactly when it still holds every entry after event s (at most `cap` are kept).
          const after = evs.slice(s).reduce((n, u) => n + u.length, 0);
          expect(got === null, `S=${s}: ${after} entries after it, cap ${cap}`).toBe(after > cap);
          if (got) expect(got).toEqual(want);
        }
      }),
    );
  });
});

const value: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, NaN, Infinity, -Infinity, 2 ** 53 - 1),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 6 }),
);

describe('SSE JSON form', () => {
  it('carries every field value exactly through its JSON text (server and SDK share the one codec)', () => {
    fc.assert(
      fc.property(fc.option(value, { nil: null }), (v) => {
        const back = valueFromJson(JSON.parse(JSON.stringify(valueToJson(v))), 'f');
        for (const got of [back]) {
          if (v instanceof Uint8Array) expect([...(got as Uint8Array)]).toEqual([...v]);
          else expect(sameValue(got, v), `${String(got)} vs ${String(v)}`).toBe(true);
        }
      }),
    );
  });

  it('turns server messages into JSON and back, and SDK commands into protocol messages', () => {
    const delta = { type: 'delta', topic: 'px.A', epoch: 7, base: 3, version: 5, updates: 2, ts: 9, changes: new Map<string, FieldValue | null>([['bid', 1.5], ['gone', null], ['big', 2n ** 60n]]) } as const;
    expect(messageFromJson(JSON.parse(JSON.stringify(messageToJson(delta))))).toEqual(delta);
    const status = { type: 'topicStatus', topic: 'px.A', state: 1, epoch: 7, version: 5 } as const;
    expect(messageFromJson(JSON.parse(JSON.stringify(messageToJson(status))))).toEqual(status);
    expect(messageToJson(status).state).toBe('stale');
    const sub: ClientMessage = { type: 'subscribe', id: 4, topics: ['px.*'], maxRate: 4, fields: ['bid'], resume: [{ topic: 'px.A', epoch: 7, version: 5 }], timestamps: false };
    expect(commandToMessage(JSON.parse(JSON.stringify(messageToCommand(sub))))).toEqual(sub);
    const pub = { type: 'publish', id: 9, topic: 'px.A', changes: new Map<string, FieldValue | null>([['bid', -0], ['x', null], ['b', new Uint8Array([1, 2])]]) } as const;
    expect(commandToMessage(JSON.parse(JSON.stringify(messageToCommand(pub))))).toEqual(pub);
    expect(messageToCommand({ type: 'hello', protocol: 1, client: 'x', token: '' })).toBeNull();
    expect(messageFromJson({ type: 'from-the-future' })).toBeNull();
    expect(() => commandToMessage({ type: 'subscribe', id: 0, topics: ['a'] })).toThrow(/id must be an integer/);
    expect(() => commandToMessage({ type: 'publish', topic: 'a', fields: { x: [1] } })).toThrow(/field x/);
  });
});
