// The order service's blotter mirror against a fake server that fails
// publishes at random (some applied before the "connection" dropped, some
// not): the blotter still ends equal to the record, no row's rev ever goes
// backwards, and every rowWritten() resolves at a position holding that rev.
// Also the position waiters behind `sub.reached()`, and order validation.

import { describe, expect, it } from 'vitest';
import type { BatchPublish } from '../../src/client/index.js';
import { PositionWaiters } from '../../src/client/reached.js';
import { rng } from '../../src/demo/index.js';
import { BlotterMirror, OrderRejected, parseSubmit, rowOf, type Order, type RowPosition } from '../../src/demo/orders/index.js';

function order(id: string, desk: string, seq: number): Order {
  return { id, seq, desk, side: 'buy', symbol: 'AAPL', priceTicks: 19_000, lots: 100, clOrdId: '', submittedAt: 0, state: 'working', fills: [], filledLots: 0, notional: 0, rev: 1, updatedAt: 0 };
}

describe('BlotterMirror', () => {
  it('ends equal to the record through failed and half-applied publishes; revs never go backwards', async () => {
    const rand = rng(9);
    const blotters = new Map<string, Map<string, Record<string, unknown>>>();
    const versions = new Map<string, number>();
    const backwards: string[] = [];
    const publish = async (topic: string, batch: BatchPublish) => {
      await new Promise((r) => setTimeout(r, rand() * 3));
      const r = rand();
      const apply = r < 0.8; // 10%: applied but the ack is lost; 20%: never applied
      if (apply) {
        const t = blotters.get(topic) ?? new Map();
        blotters.set(topic, t);
        for (const op of batch.tables!.ops) {
          if (op.op === 'clear') t.clear();
          else if (op.op === 'replace') {
            const prev = t.get(String(op.key));
            if (prev && (prev.rev as number) > (op.fields.rev as number)) backwards.push(`${topic} ${String(op.key)}`);
            t.set(String(op.key), op.fields);
          }
        }
        versions.set(topic, (versions.get(topic) ?? 0) + 1);
      }
      if (r > 0.7) throw new Error('connection closed before the server acknowledged');
      return { epoch: 1, version: versions.get(topic)! };
    };
    const orders = new Map<string, Order>();
    const mirror = new BlotterMirror(publish, {
      ordersOf: (desk) => [...orders.values()].filter((o) => o.desk === desk),
      order: (id) => orders.get(id),
      rowOf,
      failed: () => {},
    });
    const written: Promise<[Order, number, RowPosition]>[] = [];
    for (let i = 0; i < 300; i++) {
      if (rand() < 0.3 || orders.size === 0) {
        const o = order(`O-${i}`, `d${i % 4}`, i);
        orders.set(o.id, o);
        mirror.touch(o);
        written.push(mirror.rowWritten(o).then((at) => [o, 1, at]));
      } else {
        const o = [...orders.values()][Math.floor(rand() * orders.size)]!;
        if (o.filledLots < o.lots) {
          o.fills.push({ id: `${o.id}-F${o.fills.length + 1}`, lots: 10, ticks: 19_000, at: 0 });
          o.filledLots += 10;
          o.notional += 10 * 19_000;
          o.state = o.filledLots === o.lots ? 'filled' : 'partiallyFilled';
          o.rev++;
          mirror.touch(o);
          const rev = o.rev;
          written.push(mirror.rowWritten(o).then((at) => [o, rev, at]));
        }
      }
      await new Promise((r) => setTimeout(r, rand() * 2));
    }
    for (const [o, rev, at] of await Promise.all(written)) {
      expect(at.topic).toBe(`blotter.${o.desk}`);
      expect(at.version).toBeGreaterThan(0);
      expect(rev).toBeLessThanOrEqual(o.rev);
    }
    for (let i = 0; i < 500 && !mirror.settled; i++) await new Promise((r) => setTimeout(r, 5));
    expect(mirror.settled).toBe(true);
    expect(mirror.failures).toBeGreaterThan(10);
    expect(backwards).toEqual([]);
    for (const desk of ['d0', 'd1', 'd2', 'd3']) {
      const truth = new Map([...orders.values()].filter((o) => o.desk === desk).map((o) => [o.id, rowOf(o)]));
      expect(blotters.get(`blotter.${desk}`)).toEqual(truth);
      expect(mirror.positionOf(desk)?.version).toBe(versions.get(`blotter.${desk}`));
    }
  });
});

describe('PositionWaiters (sub.reached)', () => {
  it('resolves at or past the position, rejects a newer epoch (POSITION_LOST) and bad positions', async () => {
    let held: { epoch: number; version: number } | undefined;
    const w = new PositionWaiters(() => held);
    const settled: string[] = [];
    const a = w.wait('t', { epoch: 5, version: 3 }, {}, () => settled.push('a'));
    const lost = w.wait('t', { epoch: 5, version: 9 }, {}, () => settled.push('lost'));
    held = { epoch: 4, version: 100 }; // an older epoch still held: keep waiting
    w.advanced('t');
    held = { epoch: 5, version: 4 };
    w.advanced('other');
    expect(settled).toEqual([]);
    w.advanced('t');
    await expect(a).resolves.toEqual({ topic: 't', epoch: 5, version: 4 });
    held = { epoch: 6, version: 1 };
    w.advanced('t');
    await expect(lost).rejects.toMatchObject({ code: 'TICKFAN_ERR_POSITION_LOST' });
    expect(w.size).toBe(0);
    await expect(w.wait('t', { epoch: 6, version: -1 }, {}, () => {})).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION' });
    await expect(w.wait('t', { epoch: '6', version: 1 }, {}, () => {})).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION' });
  });
});

describe('order validation', () => {
  it('turns prices and quantities into ticks and lots, or refuses them', () => {
    expect(parseSubmit({ desk: 'd', side: 'sell', symbol: 'SOL-USD', price: 150.07, qty: 12.5 }, 'anonymous')).toMatchObject({ priceTicks: 15_007, lots: 1_250 });
    expect(parseSubmit({ side: 'buy', symbol: 'AAPL', price: 190.1, qty: 3 }, 'desk-9')).toMatchObject({ desk: 'desk-9', priceTicks: 19_010, lots: 3 });
    const reason = (f: Record<string, unknown>, who = 'anonymous') => {
      try {
        parseSubmit(f, who);
        return 'accepted';
      } catch (err) {
        return (err as OrderRejected).reason;
      }
    };
    expect(reason({ desk: 'd', side: 'buy', symbol: 'AAPL', price: 190.1, qty: 2.5 })).toBe('BAD_QTY');
    expect(reason({ desk: 'd', side: 'buy', symbol: 'AAPL', price: Number.NaN, qty: 2 })).toBe('BAD_PRICE');
    expect(reason({ desk: 'd', side: 'buy', symbol: 'AAPL', price: 190.1, qty: Infinity })).toBe('BAD_QTY');
    expect(reason({ desk: 'x', side: 'buy', symbol: 'AAPL', price: 190.1, qty: 2 }, 'desk-1')).toBe('WRONG_DESK');
    expect(reason({ side: 'buy', symbol: 'AAPL', price: 190.1, qty: 2 }, 'not a desk')).toBe('BAD_DESK');
  });
});
