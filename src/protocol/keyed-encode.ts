// Encodes keyed topics' protocol-2 messages: KeyedSnapshot2 (kind 3, cut in
// parts at one version when large) and KeyedDelta2 (kind 4) from net changes,
// plus the keyed parts of Subscribe (table views) and Publish (a batch as an
// op stream). Pure; one reused Builder. Layout: keyed-ops.ts and
// docs/protocol.md "Keyed topics".

import type { Builder, Offset } from 'flatbuffers';
import { finishBare, ReusingBuilder } from './builder.js';
import { ErrorCode, TickfanError } from './codes.js';
import * as fb from './generated/tickfan.js';
import { compareKeys, type Key, type TableSpec } from './keyed/table-spec.js';
import type { KeyedChange, RowChange } from './keyed/row-change.js';
import { GuardCode, OpCode, OpWriter, RangeFlag } from './keyed-ops.js';
import { MessageKind } from './kinds.js';
import type { KeyedBatchMsg, KeyedDelta2Msg, KeyedSnapshot2Msg, KeyedTableBinding, TableViewRequest, TopicRef } from './messages.js';
import { PackWriter, type PackedEntry } from './packed.js';
import type { FieldValue, State } from './values.js';

type FieldEntries = Iterable<readonly [string, FieldValue | null]>;
const TWO_32 = 2 ** 32;

/** A subscriber's table views as a Subscribe.tables vector (0 when none). */
export function tableViewsVector(b: Builder, views: readonly TableViewRequest[] | undefined): Offset {
  if (!views || views.length === 0) return 0;
  const offs = views.map((v) => {
    const name = b.createString(v.table);
    const f = v.fields.length ? fb.TableView.createFieldsVector(b, v.fields.map((x) => b.createString(x))) : 0;
    return fb.TableView.createTableView(b, name, v.depth, f);
  });
  return fb.Subscribe.createTablesVector(b, offs);
}

/** One TableBinding table. */
export function bindingOffset(b: Builder, t: KeyedTableBinding, declare = false): Offset {
  const name = b.createString(t.spec.name);
  const sf = t.spec.order.fields ?? [];
  const of = sf.length ? fb.TableBinding.createOrderFieldsVector(b, sf.map((f) => fb.SortField.createSortField(b, b.createString(f.field), f.dir === 'desc' ? fb.SortDir.Desc : fb.SortDir.Asc))) : 0;
  const fields = t.fields.length ? fb.TableBinding.createFieldsVector(b, t.fields.map((x) => b.createString(x))) : 0;
  const key = t.spec.key === 'string' ? fb.KeyType.String : fb.KeyType.Int;
  const dir = t.spec.order.key === 'desc' ? fb.SortDir.Desc : fb.SortDir.Asc;
  return fb.TableBinding.createTableBinding(b, t.id, name, key, dir, of, t.depth, fields, declare);
}

function bindingsVector(b: Builder, tables: readonly KeyedTableBinding[]): Offset {
  if (tables.length === 0) return 0;
  return fb.KeyedDelta2.createTablesVector(b, tables.map((t) => bindingOffset(b, t)));
}

const GUARD = { ifNew: GuardCode.IF_NEW, ifExists: GuardCode.IF_EXISTS } as const;

/**
 * A publish's keyed batch as Publish.tables + Publish.ops: tables bound to
 * ids in order of first mention (declared ones first, `declare` set); row
 * fields with their names (id 0). Key types come from the batch's
 * declarations or `keyTypes` (tables declared by an earlier batch); without
 * either, a number key means an int table.
 */
export function publishKeyed(b: Builder, pack: PackWriter, batch: KeyedBatchMsg): [Offset, Offset] {
  const ids = new Map<string, { id: number; spec: TableSpec; declare: boolean }>();
  for (const s of batch.declare ?? []) if (!ids.has(s.name)) ids.set(s.name, { id: ids.size, spec: s, declare: true });
  for (const op of batch.ops) {
    if (ids.has(op.table)) continue;
    const sample = 'key' in op ? op.key : (op as { from?: Key; to?: Key }).from ?? (op as { to?: Key }).to;
    ids.set(op.table, { id: ids.size, spec: { name: op.table, key: typeof sample === 'string' ? 'string' : 'int', order: { key: 'asc' } }, declare: false });
  }
  const w = new OpWriter(pack);
  w.reset();
  for (const op of batch.ops) {
    const t = ids.get(op.table)!;
    const s = t.spec.key === 'string';
    switch (op.op) {
      case 'clear':
        w.head(t.id, s, OpCode.CLEAR);
        break;
      case 'deleteRange': {
        w.head(t.id, s, OpCode.DELETE_RANGE);
        const flags = (op.from !== undefined ? RangeFlag.FROM : 0) | (op.to !== undefined ? RangeFlag.TO : 0) | (op.fromExclusive ? RangeFlag.FROM_EXCLUSIVE : 0) | (op.toExclusive ? RangeFlag.TO_EXCLUSIVE : 0);
        pack.byte(flags);
        if (op.from !== undefined) w.plainKey(op.from);
        if (op.to !== undefined) w.plainKey(op.to);
        break;
      }
      default: {
        checkKey(t.spec, op.key);
        w.head(t.id, s, op.op === 'upsert' ? OpCode.UPSERT : op.op === 'replace' ? OpCode.REPLACE : OpCode.DELETE);
        pack.byte(op.guard ? GUARD[op.guard] ?? 0 : 0);
        w.key(op.key);
        if (op.op !== 'delete') {
          pack.varint(op.fields.size);
          for (const [f, v] of op.fields) pack.entry(0, f, true, v);
        }
      }
    }
  }
  const ops = b.createByteVector(pack.take());
  const tables = fb.Publish.createTablesVector(b, [...ids.values()].map((t) => bindingOffset(b, { id: t.id, spec: t.spec, depth: 0, fields: [] }, t.declare)));
  return [tables, ops];
}

function checkKey(spec: TableSpec, k: Key): void {
  if (spec.key === 'int' ? typeof k !== 'number' || !Number.isSafeInteger(k) : typeof k !== 'string') {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `table ${spec.name}: key ${String(k)} is not a ${spec.key} key`);
  }
}

/** One table of a snapshot: its binding and its rows (any order; sent in key order). */
export interface SnapshotTable {
  readonly binding: KeyedTableBinding;
  readonly rows: Iterable<readonly [Key, State]>;
}

/** How a keyed delta is written (as Delta2Options, plus bindings and checksum). */
export interface KeyedDeltaOptions {
  /** Entries whose field id is at least this carry their names (1: every name, as catch-ups do). */
  namesFrom: number;
  /** Carry the topic's name and epoch (binding topic_id): catch-ups do; `bind` then lists every table of the view. */
  bind: boolean;
  /** Tables to bind in this message (catch-ups: all of the view's; else tables new to it). */
  bindTables?: readonly KeyedTableBinding[];
  /** The view's checksum at `version`, when the subscriber asked for checksums. */
  checksum?: number;
  ts?: number;
}

export class KeyedEncoder {
  private readonly b = new ReusingBuilder(4096);
  private readonly summaryPack = new PackWriter();
  private readonly ops = new OpWriter(new PackWriter());

  /**
   * Protocol 2: a keyed delta from base to version. `tables` binds every
   * table of the view by name (ids and key types); rows of `change` are
   * written per table in id order, clear first, keys ascending.
   */
  keyedDelta2(t: TopicRef, base: number, version: number, summary: FieldEntries, change: KeyedChange, tables: ReadonlyMap<string, KeyedTableBinding>, o: KeyedDeltaOptions): Uint8Array {
    const sum = this.packSummary(t, summary, o.namesFrom);
    const w = this.ops;
    w.reset();
    const named = [...change.tables.keys()].map((name) => {
      const bound = tables.get(name);
      if (!bound) throw new TickfanError(ErrorCode.INTERNAL, `keyed delta: table ${name} has no binding`);
      return bound;
    });
    named.sort((x, y) => x.id - y.id);
    for (const bound of named) {
      const tc = change.tables.get(bound.spec.name)!;
      const s = bound.spec.key === 'string';
      if (tc.clear) w.head(bound.id, s, OpCode.CLEAR);
      const keys = [...tc.rows.keys()].sort(compareKeys);
      for (const k of keys) this.row(t, bound.id, s, k, tc.rows.get(k)!, o.namesFrom);
    }
    return this.finishDelta(t.id, o.bind ? t.name : null, t.epoch, version - base, version, sum, o.bindTables ?? [], o.checksum ?? null, o.ts);
  }

  private row(t: TopicRef, id: number, s: boolean, k: Key, c: RowChange, namesFrom: number): void {
    const w = this.ops;
    const code = c.op === 'upsert' ? OpCode.UPSERT : c.op === 'delete' ? OpCode.DELETE : c.existed ? OpCode.REPLACE : OpCode.INSERT;
    w.head(id, s, code);
    w.key(k);
    if (c.op === 'delete') return;
    const p = w.w;
    p.varint(c.fields.size);
    for (const f of c.fields.keys()) {
      const fid = t.fieldId(f);
      p.entry(fid, f, fid >= namesFrom, c.fields.get(f)!);
    }
  }

  /**
   * Protocol 2: the view at `version` as one or more KeyedSnapshot2 parts
   * (a new part once a part's ops pass `partBytes`); every entry named, every
   * table bound in every part, summary in part 0, checksum in the last.
   */
  keyedSnapshot2(t: TopicRef, version: number, summary: FieldEntries, tables: readonly SnapshotTable[], ts: number, checksum?: number, partBytes = 256 * 1024): Uint8Array[] {
    const parts: Uint8Array[] = [];
    const bindings = [...tables].sort((x, y) => x.binding.id - y.binding.id);
    const w = this.ops;
    w.reset();
    let sum = this.packSummary(t, summary, 1);
    const flush = (last: boolean) => {
      parts.push(this.finishSnapshot(t, version, parts.length, last, sum, bindings.map((x) => x.binding), last ? checksum ?? null : null, ts));
      sum = EMPTY;
      w.reset();
    };
    for (const tb of bindings) {
      const s = tb.binding.spec.key === 'string';
      const rows = [...tb.rows].sort((x, y) => compareKeys(x[0], y[0]));
      for (const [k, fields] of rows) {
        if (w.w.length >= partBytes) flush(false);
        this.row(t, tb.binding.id, s, k, { op: 'replace', fields, existed: false }, 1);
      }
    }
    flush(true);
    return parts;
  }

  private packSummary(t: TopicRef, entries: FieldEntries, namesFrom: number): Uint8Array {
    const p = this.summaryPack;
    p.reset();
    for (const [name, v] of entries) {
      const id = t.fieldId(name);
      p.entry(id, name, id >= namesFrom, v);
    }
    return p.length ? p.take() : EMPTY;
  }

  private finishSnapshot(t: { id: number; name: string; epoch: number }, version: number, part: number, last: boolean, summary: Uint8Array, tables: readonly KeyedTableBinding[], checksum: number | null, ts: number): Uint8Array {
    const b = this.b;
    const ops = b.createByteVector(this.ops.w.take());
    const sum = summary.length ? b.createByteVector(summary) : 0;
    const tv = bindingsVector(b, tables);
    const name = b.createString(t.name);
    fb.KeyedSnapshot2.startKeyedSnapshot2(b);
    fb.KeyedSnapshot2.addTs(b, ts);
    fb.KeyedSnapshot2.addEpoch(b, BigInt(t.epoch));
    fb.KeyedSnapshot2.addTopicId(b, t.id);
    fb.KeyedSnapshot2.addVersion(b, version % TWO_32);
    fb.KeyedSnapshot2.addOps(b, ops);
    fb.KeyedSnapshot2.addTopic(b, name);
    const hi = Math.floor(version / TWO_32);
    if (hi) fb.KeyedSnapshot2.addVersionHi(b, hi);
    if (sum) fb.KeyedSnapshot2.addSummary(b, sum);
    if (tv) fb.KeyedSnapshot2.addTables(b, tv);
    if (part) fb.KeyedSnapshot2.addPart(b, part);
    if (!last) fb.KeyedSnapshot2.addLast(b, false);
    if (checksum !== null) this.forced(() => fb.KeyedSnapshot2.addChecksum(b, checksum));
    return finishBare(b, MessageKind.KEYED_SNAPSHOT2, fb.KeyedSnapshot2.endKeyedSnapshot2(b));
  }

  private finishDelta(topicId: number, topic: string | null, epoch: number, span: number, version: number, summary: Uint8Array, tables: readonly KeyedTableBinding[], checksum: number | null, ts: number | undefined): Uint8Array {
    const b = this.b;
    const ops = b.createByteVector(this.ops.w.take());
    const sum = summary.length ? b.createByteVector(summary) : 0;
    const tv = bindingsVector(b, tables);
    const name = topic !== null ? b.createString(topic) : 0;
    const hi = Math.floor(version / TWO_32);
    fb.KeyedDelta2.startKeyedDelta2(b);
    // Scalars by size, as Encoder.delta2 does: the table stays small.
    if (ts !== undefined && ts !== 0) fb.KeyedDelta2.addTs(b, ts);
    if (topic !== null) fb.KeyedDelta2.addEpoch(b, BigInt(epoch));
    fb.KeyedDelta2.addTopicId(b, topicId);
    fb.KeyedDelta2.addVersion(b, version % TWO_32);
    fb.KeyedDelta2.addOps(b, ops);
    if (span !== 1) this.forced(() => fb.KeyedDelta2.addSpan(b, span));
    if (hi) fb.KeyedDelta2.addVersionHi(b, hi);
    if (name) fb.KeyedDelta2.addTopic(b, name);
    if (sum) fb.KeyedDelta2.addSummary(b, sum);
    if (tv) fb.KeyedDelta2.addTables(b, tv);
    // flatc 2.0.8's TypeScript drops an optional scalar equal to 0: forced.
    if (checksum !== null) this.forced(() => fb.KeyedDelta2.addChecksum(b, checksum));
    return finishBare(b, MessageKind.KEYED_DELTA2, fb.KeyedDelta2.endKeyedDelta2(b));
  }

  private forced(add: () => void): void {
    this.b.forceDefaults(true);
    add();
    this.b.forceDefaults(false);
  }

  /** A decoded KeyedSnapshot2 / KeyedDelta2 encoded again as it is (ids and names kept): tests and tools. */
  message(m: KeyedSnapshot2Msg | KeyedDelta2Msg): Uint8Array {
    const w = this.ops;
    w.reset();
    const sp = this.summaryPack;
    sp.reset();
    for (const e of m.summary) sp.entry(e.id, e.name ?? '', e.name !== undefined, e.value);
    const summary = sp.length ? sp.take() : EMPTY;
    const keyType = new Map(m.tables.map((t) => [t.id, t.spec.key === 'string']));
    const ids = [...m.rows.keys()].sort((x, y) => x - y);
    for (const id of ids) {
      const rs = m.rows.get(id)!;
      const s = keyType.get(id) ?? ('stringKeys' in rs ? (rs.stringKeys as boolean) : typeof rs.keys().next().value === 'string');
      if (m.type === 'keyedSnapshot2') {
        const rows = m.rows.get(id)!;
        for (const k of [...rows.keys()].sort(compareKeys)) this.wireRow(id, s, OpCode.INSERT, k, rows.get(k)!);
        continue;
      }
      const tc = m.rows.get(id)!;
      if (tc.clear) w.head(id, s, OpCode.CLEAR);
      for (const k of [...tc.rows.keys()].sort(compareKeys)) {
        const c = tc.rows.get(k)!;
        this.wireRow(id, s, c.op === 'upsert' ? OpCode.UPSERT : c.op === 'delete' ? OpCode.DELETE : c.existed ? OpCode.REPLACE : OpCode.INSERT, k, c.op === 'delete' ? undefined : c.entries);
      }
    }
    const t = { id: m.topicId, name: m.topic ?? '', epoch: m.epoch };
    if (m.type === 'keyedSnapshot2') return this.finishSnapshot(t, m.version, m.part, m.last, summary, m.tables, m.checksum, m.ts);
    return this.finishDelta(m.topicId, m.topic, m.epoch, m.version - m.base, m.version, summary, m.tables, m.checksum, m.ts);
  }

  private wireRow(id: number, s: boolean, code: OpCode, k: Key, entries: readonly PackedEntry[] | undefined): void {
    const w = this.ops;
    w.head(id, s, code);
    w.key(k);
    if (!entries) return;
    w.w.varint(entries.length);
    for (const e of entries) w.w.entry(e.id, e.name ?? '', e.name !== undefined, e.value);
  }
}

const EMPTY = new Uint8Array(0);
