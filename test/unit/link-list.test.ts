// fanout/link-list.ts: a channel's subscribers as a list through the records
// (issue 21, memory) must behave as the Set it replaced.

import { describe, expect, it } from 'vitest';
import { LinkList, type Linked } from '../../src/server/fanout/link-list.js';

class Rec implements Linked<Rec> {
  prevLink: Rec | null = null;
  nextLink: Rec | null = null;
  constructor(readonly n: number) {}
}

describe('LinkList', () => {
  it('behaves as a Set through random adds and deletes (order, size, has, idempotence)', () => {
    const recs = Array.from({ length: 12 }, (_, i) => new Rec(i));
    const list = new LinkList<Rec>();
    const ref = new Set<Rec>();
    let seed = 3;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let step = 0; step < 2000; step++) {
      const r = recs[rnd(recs.length)]!;
      if (rnd(2)) {
        list.add(r);
        ref.add(r);
      } else expect(list.delete(r)).toBe(ref.delete(r));
      expect(list.size).toBe(ref.size);
      expect([...list].map((x) => x.n)).toEqual([...ref].map((x) => x.n));
      for (const x of recs) expect(list.has(x)).toBe(ref.has(x));
    }
  });

  it('lets the record just yielded be deleted while iterating', () => {
    const recs = Array.from({ length: 5 }, (_, i) => new Rec(i));
    const list = new LinkList<Rec>();
    for (const r of recs) list.add(r);
    const seen: number[] = [];
    for (const r of list) {
      seen.push(r.n);
      if (r.n % 2 === 0) list.delete(r);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect([...list.values()].map((r) => r.n)).toEqual([1, 3]);
    for (const r of recs) list.delete(r);
    expect(list.size).toBe(0);
    expect([...list]).toEqual([]);
    list.add(recs[4]!);
    expect([...list].map((r) => r.n)).toEqual([4]);
  });
});
