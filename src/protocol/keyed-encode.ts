// Encodes keyed topics' protocol-2 messages: KeyedSnapshot2 (kind 3, cut in
// parts at one version when large) and KeyedDelta2 (kind 4; kind 5, its body
// alone, when nothing else travels) from net changes,
// plus the keyed parts of Subscribe (table views) and Publish (a batch as an
// op stream). Pure; one reused Builder. Layout: keyed-ops.ts and
// docs/protocol.md "Keyed topics".

import type { Builder, Offset } from 'flatbuffers';
import { finishBare, ReusingBuilder } from './builder.js';
import { ErrorCode, TickfanError } from './codes.js';
import * as fb from './generated/tickfan.js';
import { compareKeys, type Key, type TableSpec } from './keyed/table-spec.js';
import type { KeyedChange, RowChange } from './keyed/row-change.js';
import { baseFor, GuardCode, OpCode, OpWriter, RangeFlag, SUMMARY_CODE } from './keyed-ops.js';
import { BARE_FLAG, MessageKind } from './kinds.js';
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
  return fb.TableBinding.createTableBinding(b, t.id, name, key, dir, of, t.depth, fields, declare, BigInt(t.spec.key === 'int' ? t.keyBase ?? 0 : 0));
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
  const w = new OpWriter(pack, false);
  w.reset();
  for (const op of batch.ops) {
    const t = ids.get(op.table)!;
    w.select(t.id, t.spec.key === 'string');
    switch (op.op) {
      case 'clear':
        w.clear();
        break;
      case 'deleteRange': {
        const flags = (op.from !== undefined ? RangeFlag.FROM : 0) | (op.to !== undefined ? RangeFlag.TO : 0) | (op.fromExclusive ? RangeFlag.FROM_EXCLUSIVE : 0) | (op.toExclusive ? RangeFlag.TO_EXCLUSIVE : 0);
        w.range(flags, op.from, op.to);
        break;
      }
      default: {
        checkKey(t.spec, op.key);
        w.row(op.op === 'upsert' ? OpCode.UPSERT : op.op === 'replace' ? OpCode.REPLACE : OpCode.DELETE, op.key, op.guard ? GUARD[op.guard] ?? 0 : 0);
        if (op.op !== 'delete') {
          w.fields(op.fields.size);
          for (const [f, v] of op.fields) w.entry(0, f, true, v);
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
  private readonly body = new PackWriter();
  private readonly ops = new OpWriter(new PackWriter());
  private readonly summary: [number, string, boolean, FieldValue | null][] = [];

  /**
   * Protocol 2: a keyed delta from base to version. `tables` binds every
   * table of the view by name (ids, key types and key bases); rows of
   * `change` are written per table in id order, clear first, keys ascending.
   */
  keyedDelta2(t: TopicRef, base: number, version: number, summary: FieldEntries, change: KeyedChange, tables: ReadonlyMap<string, KeyedTableBinding>, o: KeyedDeltaOptions): Uint8Array {
    const sum = this.summary;
    sum.length = 0;
    for (const [name, v] of summary) {
      const id = t.fieldId(name);
      sum.push([id, name, id >= o.namesFrom, v]);
    }
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
      const keys = [...tc.rows.keys()].sort(compareKeys);
      if (!tc.clear && keys.length === 0) continue;
      this.group(bound, keys);
      if (tc.clear) w.clear();
      for (const k of keys) this.row(t, k, tc.rows.get(k)!, o.namesFrom);
    }
    return this.finishDelta(t.id, o.bind ? t.name : null, t.epoch, version - base, version, o.bindTables ?? [], o.checksum ?? null, o.ts);
  }

  /** Starts a table's ops: against its key base when every key lies within 2^53 of it. */
  private group(bound: KeyedTableBinding, keys: readonly Key[]): void {
    if (bound.spec.key === 'string') return this.ops.group(bound.id, true, 0);
    const kb = bound.keyBase ?? 0;
    this.ops.group(bound.id, false, keys.length ? baseFor(kb, keys[0] as number, keys[keys.length - 1] as number) : kb);
  }

  private row(t: TopicRef, k: Key, c: RowChange, namesFrom: number): void {
    const w = this.ops;
    w.row(c.op === 'upsert' ? OpCode.UPSERT : c.op === 'delete' ? OpCode.DELETE : c.existed ? OpCode.REPLACE : OpCode.INSERT, k);
    if (c.op === 'delete') return;
    w.fields(c.fields.size);
    for (const f of c.fields.keys()) {
      const fid = t.fieldId(f);
      w.entry(fid, f, fid >= namesFrom, c.fields.get(f)!);
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
      const rows = [...tb.rows].sort((x, y) => compareKeys(x[0], y[0]));
      let open = false;
      for (let i = 0; i < rows.length; i++) {
        if (w.w.length >= partBytes) {
          flush(false);
          open = false;
        }
        // A group per part: its keys from this row to the table's last.
        if (!open) this.group(tb.binding, [rows[i]![0], rows[rows.length - 1]![0]]);
        open = true;
        this.row(t, rows[i]![0], { op: 'replace', fields: rows[i]![1], existed: false }, 1);
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

  /** KeyedDelta2: `body` = topic id, version, span, checksum, the summary entries in `this.summary`, the ops written; the rest only when present. */
  private finishDelta(topicId: number, topic: string | null, epoch: number, span: number, version: number, tables: readonly KeyedTableBinding[], checksum: number | null, ts: number | undefined): Uint8Array {
    const p = this.body;
    p.reset();
    p.varint(topicId * 4 + (checksum !== null ? 2 : 0) + (span !== 1 ? 1 : 0));
    p.varint(version);
    if (span !== 1) p.varint(span);
    if (checksum !== null) for (let i = 0; i < 4; i++) p.byte((checksum >>> (8 * i)) & 0xff);
    const sum = this.summary;
    if (sum.length) {
      p.varint(SUMMARY_CODE);
      for (let i = 0; i < sum.length; i++) {
        const [id, name, named, v] = sum[i]!;
        p.entry(id, name, named, v, i < sum.length - 1);
      }
    }
    p.raw(this.ops.w.take());
    // Nothing but the body (a live delta without ts): kind 5, the body alone.
    if (topic === null && tables.length === 0 && !ts) return bareBody(p.take());
    const b = this.b;
    const body = b.createByteVector(p.take());
    const tv = bindingsVector(b, tables);
    const name = topic !== null ? b.createString(topic) : 0;
    fb.KeyedDelta2.startKeyedDelta2(b);
    // The body first and alone in a live delta: a 6-byte vtable, an 8-byte table.
    if (ts !== undefined && ts !== 0) fb.KeyedDelta2.addTs(b, ts);
    if (topic !== null) fb.KeyedDelta2.addEpoch(b, BigInt(epoch));
    fb.KeyedDelta2.addBody(b, body);
    if (name) fb.KeyedDelta2.addTopic(b, name);
    if (tv) fb.KeyedDelta2.addTables(b, tv);
    return finishBare(b, MessageKind.KEYED_DELTA2, fb.KeyedDelta2.endKeyedDelta2(b));
  }

  private forced(add: () => void): void {
    this.b.forceDefaults(true);
    add();
    this.b.forceDefaults(false);
  }

  /** A decoded KeyedSnapshot2 / KeyedDelta2 encoded again as it is (ids, names and key offsets kept): tests and tools. */
  message(m: KeyedSnapshot2Msg | KeyedDelta2Msg): Uint8Array {
    const w = this.ops;
    w.reset();
    const bound = new Map(m.tables.map((t) => [t.id, t]));
    const ids = [...m.rows.keys()].sort((x, y) => x - y);
    for (const id of ids) {
      const b = bound.get(id);
      if (m.type === 'keyedSnapshot2') {
        const rows = m.rows.get(id)!;
        const keys = [...rows.keys()].sort(compareKeys);
        this.group(b ?? { id, spec: { name: '', key: typeof keys[0] === 'string' ? 'string' : 'int', order: { key: 'asc' } }, depth: 0, fields: [] }, keys);
        for (const k of keys) this.wireRow(OpCode.INSERT, k, rows.get(k)!);
        continue;
      }
      const tc = m.rows.get(id)!;
      const keys = [...tc.rows.keys()].sort(compareKeys);
      // Offsets from a key base the message does not bind are written against base 0: the same bytes;
      // int keys of a table it does not bind, read whole, were an absolute group.
      if (tc.stringKeys) w.group(id, true, 0);
      else if (tc.relative) w.group(id, false, 0);
      else if (b) this.group(b, keys);
      else w.group(id, false, null);
      if (tc.clear) w.clear();
      for (const k of keys) {
        const c = tc.rows.get(k)!;
        this.wireRow(c.op === 'upsert' ? OpCode.UPSERT : c.op === 'delete' ? OpCode.DELETE : c.existed ? OpCode.REPLACE : OpCode.INSERT, k, c.op === 'delete' ? undefined : c.entries);
      }
    }
    const t = { id: m.topicId, name: m.topic ?? '', epoch: m.epoch };
    if (m.type === 'keyedSnapshot2') {
      const sp = this.summaryPack;
      sp.reset();
      for (const e of m.summary) sp.entry(e.id, e.name ?? '', e.name !== undefined, e.value);
      return this.finishSnapshot(t, m.version, m.part, m.last, sp.length ? sp.take() : EMPTY, m.tables, m.checksum, m.ts);
    }
    this.summary.length = 0;
    for (const e of m.summary) this.summary.push([e.id, e.name ?? '', e.name !== undefined, e.value]);
    return this.finishDelta(m.topicId, m.topic, m.epoch, m.version - m.base, m.version, m.tables, m.checksum, m.ts);
  }

  private wireRow(code: OpCode, k: Key, entries: readonly PackedEntry[] | undefined): void {
    const w = this.ops;
    w.row(code, k);
    if (!entries) return;
    w.fields(entries.length);
    for (const e of entries) w.entry(e.id, e.name ?? '', e.name !== undefined, e.value);
  }
}

const EMPTY = new Uint8Array(0);

/** A KeyedDelta2 body as a kind-5 message in memory: u32 size with BARE_FLAG, the kind byte, the body. */
function bareBody(body: Uint8Array): Uint8Array {
  const n = body.byteLength;
  const out = new Uint8Array(5 + n);
  new DataView(out.buffer).setUint32(0, (1 + n + BARE_FLAG) >>> 0, true);
  out[4] = MessageKind.KEYED_BODY2;
  out.set(body, 5);
  return out;
}
