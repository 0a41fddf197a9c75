// Helpers of the keyed acceptance tests (issue 19, "What must be shown"): a
// seeded generator, a reference that records the top rows of each side of a
// book from the sequencer's store after every accepted batch (the truth at
// each version), and a watcher that compares an SDK subscription's view with
// that reference after every delivered update.

import type { TickfanServer } from '../../src/index.js';
import type { Subscription, TableRow, Update } from '../../src/client/index.js';
import { rng } from '../../src/demo/market-sim.js';

/** mulberry32, the project's seeded generator (the demo feed's): a failure replays. */
export { rng };

export const SIDES = [
  { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } },
  { name: 'asks', key: 'int' as const, order: { key: 'asc' as const } },
];
export type Rows = [number, Record<string, unknown>][];


/** Something with a TopicStore: a server, an origin. */
export interface HasStore {
  store: TickfanServer['store'];
}

/** Top `depth` rows of each side per version, read from the sequencer's store right after each batch. */
export class TopReference {
  readonly at = new Map<number, string>();
  constructor(
    private readonly server: HasStore,
    readonly topic: string,
    readonly depth: number,
  ) {}

  /** The JSON of both sides' top rows at the topic's current version. */
  now(): string {
    const t = this.server.store.get(this.topic)!;
    const sides: Record<string, Rows> = {};
    for (const s of SIDES) sides[s.name] = (t.tables?.table(s.name)?.top(this.depth) ?? []).map((r) => [r.key as number, Object.fromEntries(r.fields)]);
    return JSON.stringify(sides);
  }

  record(): number {
    const v = this.server.store.get(this.topic)!.version;
    this.at.set(v, this.now());
    return v;
  }

  /** publishBatch + record; false when the batch was refused. */
  publish(server: { publishBatch: TickfanServer['publishBatch'] }, batch: unknown): boolean {
    try {
      server.publishBatch(this.topic, batch as never);
    } catch {
      return false;
    }
    this.record();
    return true;
  }
}

/** A subscription's view of both sides, in the reference's JSON form. */
export function viewJson(sub: Subscription, topic?: string): string {
  const sides: Record<string, Rows> = {};
  for (const s of SIDES) sides[s.name] = sub.table(s.name, topic ?? sub.pattern).rows().map((r: TableRow) => [r.key as number, { ...r.fields }]);
  return JSON.stringify(sides);
}

/** Compares the view with the reference after every update; collects what went wrong. */
export function watch(sub: Subscription, ref: TopReference) {
  const w = { updates: [] as { version: number; snapshot: boolean; rows: number }[], failures: [] as string[], last: 0 };
  sub.on('update', (u: Update) => {
    w.updates.push({ version: u.version, snapshot: u.snapshot, rows: u.rows?.length ?? 0 });
    w.last = u.version;
    const want = ref.at.get(u.version);
    const got = viewJson(sub);
    if (want === undefined) w.failures.push(`no reference at v${u.version}`);
    else if (got !== want) w.failures.push(`v${u.version}: view ${got.slice(0, 200)} != reference ${want.slice(0, 200)}`);
  });
  sub.on('error', (e: unknown) => w.failures.push(`error ${String(e)}`));
  return w;
}

/** A seed batch: `levels` rows a side around 100_000, declaring both sides. */
export function seedBatch(levels: number, extra: Record<string, unknown> = {}) {
  const ops = [];
  for (let i = 0; i < levels; i++) {
    ops.push({ op: 'upsert', table: 'bids', key: 100_000 - i, fields: { qty: (i + 1) / 4, n: 1, ...extra } });
    ops.push({ op: 'upsert', table: 'asks', key: 100_001 + i, fields: { qty: (i + 1) / 4, n: 1, ...extra } });
  }
  return { fields: { last: 0 }, tables: { declare: SIDES, ops } };
}
