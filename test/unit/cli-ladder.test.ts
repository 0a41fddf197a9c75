// The ladder `tickfan sub --depth N` prints (src/cli/ladder.ts): asks above
// with the best nearest the middle, the spread, bids below best first, prices
// as key × tick; other tables as lists.

import { describe, expect, it } from 'vitest';
import { priceOf, renderLadder } from '../../src/cli/ladder.js';

describe('renderLadder', () => {
  it('an order book: asks reversed above the spread line, bids below, depth cut, prices from the tick', () => {
    const row = (key: number, qty: number, orders: number) => ({ key, fields: { qty, orders } });
    const lines = renderLadder({
      topic: 'book.T',
      version: 7,
      summary: { mid: 100.25, tick: 0.5, ts: 1 },
      tables: new Map([
        ['bids', [row(200, 1.5, 2), row(199, 10, 12), row(150, 3, 1)]],
        ['asks', [row(201, 0.25, 1), row(203, 4, 3)]],
      ]),
      depth: 2,
    });
    expect(lines).toEqual([
      'book.T v7 mid=100.25',
      '          price   qty  orders',
      'ask       101.5     4       3',
      'ask       100.5  0.25       1',
      '---  spread 0.5',
      'bid       100.0   1.5       2',
      'bid        99.5    10      12',
    ]);
  });

  it('without a tick, keys as they are; other tables as a list per table', () => {
    expect(priceOf(6500050, undefined)).toBe('6500050');
    expect(priceOf(6500050, 0.01)).toBe('65000.50');
    const lines = renderLadder({ topic: 'blotter.X', version: 2, summary: {}, tables: new Map([['orders', [{ key: 'A1', fields: { qty: 5, side: 'buy' } }]]]), depth: 0 });
    expect(lines).toEqual(['blotter.X v2', '[orders] 1 rows', '  key  qty  side', '  A1     5   buy']);
  });
});
