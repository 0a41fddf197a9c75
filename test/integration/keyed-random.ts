// Seeded random keyed batches for the replication tests (workers, cluster):
// two int tables (bids desc, asks asc) and a string table (orders), every op
// (upsert with field deletes, replace, delete, deleteRange, clear) and both
// guards, plus summary changes. Each batch comes in two forms: the HTTP JSON
// body (per-table "ops" lists) and the in-process BatchInput (the same ops in
// the same order).

import type { BatchInput } from '../../src/server/batch-input.js';
import { rng } from '../../src/demo/market-sim.js';

/** mulberry32, the project's seeded generator (the demo feed's): a failure replays. */
export { rng };

export const SPECS = [
  { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } },
  { name: 'asks', key: 'int' as const, order: { key: 'asc' as const } },
  { name: 'orders', key: 'string' as const, order: { fields: [{ field: 'px', dir: 'desc' as const }], key: 'asc' as const } },
];


type JsonOp = Record<string, unknown> & { op: string };

/** The JSON body (declarations with every batch: a no-op once declared) and the BatchInput of one random batch. */
export function randomBatch(r: () => number, pad = ''): { json: Record<string, unknown>; input: BatchInput } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (n: number) => Math.floor(r() * n);
  const fields: Record<string, unknown> = {};
  if (r() < 0.5) fields.last = int(100_000) / 100;
  if (r() < 0.1) fields.note = r() < 0.5 ? null : `n${int(100)}`;
  const tables: Record<string, { declare: unknown; ops: JsonOp[] }> = {};
  const inputOps: NonNullable<BatchInput['tables']>['ops'][number][] = [];
  for (const spec of SPECS) {
    if (r() < 0.4) continue;
    const ops: JsonOp[] = [];
    const key = () => (spec.key === 'int' ? 1000 + int(60) : `o${int(40)}`);
    for (let i = 1 + int(4); i > 0; i--) {
      const x = r();
      const guard = r() < 0.04 ? { guard: pick(['ifNew', 'ifExists'] as const) } : {};
      if (x < 0.5) {
        const f: Record<string, unknown> = { qty: int(10_000) / 100 };
        if (r() < 0.3) f.n = int(50);
        if (r() < 0.1) f.flag = r() < 0.5;
        if (r() < 0.1) f.src = null;
        if (spec.name === 'orders') f.px = int(20);
        if (pad) f.pad = pad;
        ops.push({ op: 'upsert', key: key(), fields: f, ...guard });
      } else if (x < 0.65) {
        const f: Record<string, unknown> = { qty: int(100), src: pick(['a', 'b', 'ü']) };
        if (spec.name === 'orders') f.px = int(20);
        ops.push({ op: 'replace', key: key(), fields: f, ...guard });
      } else if (x < 0.9) {
        ops.push({ op: 'delete', key: key(), ...guard });
      } else if (x < 0.98) {
        const a = key();
        const b = key();
        const [from, to] = (typeof a === 'number' ? (a as number) <= (b as number) : a <= b) ? [a, b] : [b, a];
        ops.push({ op: 'deleteRange', from, to, ...(r() < 0.3 ? { toExclusive: true } : {}) });
      } else ops.push({ op: 'clear' });
    }
    tables[spec.name] = { declare: { key: spec.key, order: spec.order }, ops };
    for (const o of ops) inputOps.push({ ...o, table: spec.name } as never);
  }
  if (Object.keys(tables).length === 0 && Object.keys(fields).length === 0) fields.last = 1;
  return { json: { fields, tables }, input: { fields: fields as never, tables: { declare: SPECS, ops: inputOps } } };
}
