// Keyed topics on JSON sinks (SSE, STOMP): the views of views.ts encoded in
// the keyed JSON form (protocol/keyed-json.ts) rather than as KeyedSnapshot2 /
// KeyedDelta2 — once per channel per flush, like the binary form, and cached
// the same way. What fan-out hands the sinks is the JSON's UTF-8 bytes; a
// sink finds the JSON and what it leaves the client holding by that very
// buffer (keyedJsonOf), never parsing it, so each message is made once
// however many streams carry it.

import type { Topic } from '../../engine/index.js';
import type { Changes, FieldValue, Key, KeyedTableBinding, KeyedTableView, SnapshotTable, State, TableChange, TableSpec } from '../../protocol/index.js';
import { keyedToJson } from '../../protocol/keyed-json.js';

/** One keyed message in its JSON form, as the sinks need it. */
export interface KeyedJson {
  readonly kind: 'keyedSnapshot' | 'keyedDelta';
  /** The JSON event object, serialised. */
  readonly json: string;
  readonly topic: string;
  readonly epoch: number;
  /** Deltas: the version they apply to (snapshots: -1). */
  readonly base: number;
  readonly version: number;
  /** Snapshots: which part, and whether the last (the client holds `version` only after it). */
  readonly part: number;
  readonly last: boolean;
}

const made = new WeakMap<Uint8Array, KeyedJson>();

/** The keyed JSON message fan-out made as `buf`; undefined for any other message. */
export function keyedJsonOf(buf: Uint8Array): KeyedJson | undefined {
  return made.get(buf);
}

/** Rows per snapshot part (a part is one SSE event or one STOMP MESSAGE). */
export const JSON_PART_ROWS = 2_000;

type Summary = ReadonlyMap<string, FieldValue | null>;

function views(bindings: Iterable<KeyedTableBinding>): Map<string, KeyedTableView> {
  const out = new Map<string, KeyedTableView>();
  for (const b of bindings) out.set(b.spec.name, { spec: b.spec, depth: b.depth, fields: b.fields });
  return out;
}

function wrap(k: KeyedJson): Uint8Array {
  const buf = new Uint8Array(Buffer.from(k.json, 'utf8'));
  made.set(buf, k);
  return buf;
}

export class KeyedJsonEncoder {
  /**
   * A view delta from `base` to `version`: summary changes and the view's row
   * changes; `bindTables` are the tables it (re)binds (`views` in the JSON:
   * every table of the view for a catch-up, else tables new to the view).
   */
  keyedDelta(topic: Topic, base: number, version: number, summary: Summary, tables: ReadonlyMap<string, TableChange>, bindings: ReadonlyMap<string, KeyedTableBinding>, bindTables: readonly KeyedTableBinding[] | undefined, checksum: number | undefined): Uint8Array {
    const bound = views(bindTables ?? []);
    // A table's key type comes with its binding: the ones not bound here name theirs too (keyedToJson reads `tables`).
    const keyed = new Map(bound);
    for (const name of tables.keys()) {
      const b = bindings.get(name);
      if (b && !keyed.has(name)) keyed.set(name, { spec: b.spec, depth: b.depth, fields: b.fields });
    }
    const o = keyedToJson({
      type: 'keyedDelta',
      topic: topic.name,
      epoch: topic.epoch,
      base,
      version,
      updates: version - base,
      summary: summary as Changes,
      tables: keyed,
      change: { declared: [...bound.values()].map((v) => v.spec as TableSpec), tables: tables as Map<string, TableChange> },
      checksum: checksum ?? null,
      ts: topic.ts,
    });
    if (bound.size) o.views = Object.fromEntries(Object.entries(o.views as Record<string, unknown>).filter(([n]) => bound.has(n)));
    else delete o.views;
    return wrap({ kind: 'keyedDelta', json: JSON.stringify(o), topic: topic.name, epoch: topic.epoch, base, version, part: 0, last: true });
  }

  /** The view at `version` in parts of at most JSON_PART_ROWS rows: every table in every part, the summary in the first, the checksum in the last. */
  keyedSnapshot(topic: Topic, version: number, summary: Summary, tables: readonly SnapshotTable[], checksum: number | undefined): Uint8Array[] {
    const all = views([...tables].sort((x, y) => x.binding.id - y.binding.id).map((t) => t.binding));
    const chunks: Map<string, Map<Key, State>>[] = [];
    let cur = new Map<string, Map<Key, State>>();
    let n = 0;
    for (const t of tables) {
      for (const [k, f] of t.rows) {
        if (n === JSON_PART_ROWS) {
          chunks.push(cur);
          cur = new Map();
          n = 0;
        }
        let rows = cur.get(t.binding.spec.name);
        if (!rows) cur.set(t.binding.spec.name, (rows = new Map()));
        rows.set(k, f);
        n++;
      }
    }
    chunks.push(cur);
    return chunks.map((rows, part) => {
      const last = part === chunks.length - 1;
      const o = keyedToJson({
        type: 'keyedSnapshot',
        topic: topic.name,
        epoch: topic.epoch,
        version,
        summary: (part === 0 ? summary : EMPTY) as State,
        tables: all,
        rows,
        part,
        last,
        checksum: last && checksum !== undefined ? checksum : null,
        ts: topic.ts,
      });
      return wrap({ kind: 'keyedSnapshot', json: JSON.stringify(o), topic: topic.name, epoch: topic.epoch, base: -1, version, part, last });
    });
  }
}

const EMPTY: Summary = new Map();
