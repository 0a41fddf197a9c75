// A keyed body forwarded in its JSON form (an edge that does not hold the
// topic's tables lets the origin type it): which bodies need it
// (namesUnknownTable), and the forwarded message both ways — the body comes
// back as given, without `fields` (so an origin that predates it refuses it
// instead of applying an empty publish), and a malformed one is BAD_REQUEST.

import { describe, expect, it } from 'vitest';
import { publishJsonRequest, readPublishRequest } from '../../src/cluster/messages.js';
import { ErrorCode, TickfanError } from '../../src/protocol/index.js';
import { namesUnknownTable, type KeyedBody } from '../../src/server/keyed-json.js';

const known = (t: string) => (t === 'bids' ? ('int' as const) : undefined);

describe('keyed bodies an edge cannot type', () => {
  it('names an unknown table unless every table it names is held or declared in the body', () => {
    expect(namesUnknownTable({ tables: { bids: { upsert: { '1': { q: 1 } } } } }, known)).toBe(false);
    expect(namesUnknownTable({ fields: { last: 1 } }, known)).toBe(false);
    expect(namesUnknownTable({ tables: { asks: { declare: { key: 'int', order: { key: 'asc' } }, upsert: {} } } }, known)).toBe(false);
    expect(namesUnknownTable({ tables: { bids: {}, asks: { upsert: {} } } }, known)).toBe(true);
    expect(namesUnknownTable({ tables: { asks: { declare: 5 } } }, known)).toBe(true);
    expect(namesUnknownTable({ tables: { asks: 5 } }, known)).toBe(true);
  });

  it('travels to the origin as given, values in their JSON form, without "fields"', () => {
    const body: KeyedBody = { fields: { n: { $bigint: '5' } }, tables: { bids: { upsert: { '6500050': { qty: 3 } }, ifNew: ['6500050'] } } };
    const bytes = publishJsonRequest('kh.book', body);
    expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual({ topic: 'kh.book', json: body });
    const back = readPublishRequest(bytes);
    expect(back.json).toEqual(body);
    expect(back.topic).toBe('kh.book');
    expect(back.changes.size).toBe(0);
    expect(back.tables).toBeUndefined();
  });

  it('a forwarded body that is not a keyed body is refused as BAD_REQUEST', () => {
    for (const json of [5, { other: {} }, { tables: 5 }, null]) {
      const bytes = new TextEncoder().encode(JSON.stringify({ topic: 'kh.book', json }));
      expect(() => readPublishRequest(bytes), JSON.stringify(json)).toThrow(TickfanError);
      try {
        readPublishRequest(bytes);
      } catch (e) {
        expect((e as TickfanError).errorCode).toBe(ErrorCode.BAD_REQUEST);
      }
    }
  });
});
