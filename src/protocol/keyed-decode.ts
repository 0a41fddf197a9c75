// Decodes keyed topics' protocol-2 messages (KeyedSnapshot2, KeyedDelta2 and
// its bare body, kind 5) and the keyed parts of Subscribe and Publish, after verify.ts has checked
// every offset; keyed-ops.ts checks the op streams. Anything malformed is a
// BAD_FRAME TickfanError, never another exception or a wrong value. Pure.

import { ByteBuffer } from 'flatbuffers';
import { ErrorCode, TickfanError } from './codes.js';
import * as fb from './generated/tickfan.js';
import type { Key, SortDir, TableSpec } from './keyed/table-spec.js';
import { OpCode, RangeFlag, readEntries, readOps, SUMMARY_CODE, type ReadOp } from './keyed-ops.js';
import type { KeyedBatchMsg, KeyedDelta2Msg, KeyedRowOp, KeyedSnapshot2Msg, KeyedTableBinding, TableViewRequest, WireRowChange, WireTableChange } from './messages.js';
import { PackReader, readPacked, type PackedEntry } from './packed.js';
import type { Changes } from './values.js';

const TWO_32 = 2 ** 32;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const EMPTY = new Uint8Array(0);

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_FRAME, why);
}

function u64(t: { bb: ByteBuffer | null; bb_pos: number }, slot: number): number {
  const bb = t.bb!;
  const o = bb.__offset(t.bb_pos, slot);
  if (!o) return 0;
  const hi = bb.readUint32(t.bb_pos + o + 4);
  return hi < 0x200000 ? hi * TWO_32 + bb.readUint32(t.bb_pos + o) : Number.MAX_SAFE_INTEGER;
}

function version2(hi: number, lo: number): number {
  const v = hi * TWO_32 + lo;
  if (v > Number.MAX_SAFE_INTEGER) throw bad(`version ${hi} * 2^32 + ${lo} is past 2^53`);
  return v;
}

const dirOf = (d: number): SortDir => (d === fb.SortDir.Desc ? 'desc' : 'asc');

/** One TableBinding; BAD_FRAME for an unknown key type or sort direction. */
function binding(t: fb.TableBinding): KeyedTableBinding & { declare: boolean } {
  const key = t.key();
  if (key !== fb.KeyType.Int && key !== fb.KeyType.String) throw bad(`table ${t.name()}: key type ${key}`);
  const fields: { field: string; dir: SortDir }[] = [];
  for (let i = 0; i < t.orderFieldsLength(); i++) {
    const f = t.orderFields(i)!;
    if (f.dir() > 1) throw bad(`table ${t.name()}: sort direction ${f.dir()}`);
    fields.push({ field: f.field()!, dir: dirOf(f.dir()) });
  }
  if (t.orderKey() > 1) throw bad(`table ${t.name()}: sort direction ${t.orderKey()}`);
  const spec: TableSpec = { name: t.name()!, key: key === fb.KeyType.String ? 'string' : 'int', order: fields.length ? { fields, key: dirOf(t.orderKey()) } : { key: dirOf(t.orderKey()) } };
  const names: string[] = [];
  for (let i = 0; i < t.fieldsLength(); i++) names.push(t.fields(i));
  const kb = t.keyBase();
  if (kb < -MAX_SAFE || kb > MAX_SAFE) throw bad(`table ${t.name()}: key base ${kb} past 2^53`);
  const out: KeyedTableBinding & { declare: boolean } = { id: t.id(), spec, depth: t.depth(), fields: names, declare: t.declare() };
  if (kb !== 0n && spec.key === 'int') out.keyBase = Number(kb);
  return out;
}

function bindings(len: number, at: (i: number) => fb.TableBinding): KeyedTableBinding[] {
  const out: KeyedTableBinding[] = [];
  const ids = new Set<number>();
  const names = new Set<string>();
  for (let i = 0; i < len; i++) {
    const { declare: _, ...b } = binding(at(i));
    if (ids.has(b.id) || names.has(b.spec.name)) throw bad(`table ${b.spec.name} (id ${b.id}) bound twice`);
    ids.add(b.id);
    names.add(b.spec.name);
    out.push(b);
  }
  return out;
}

/** Key bases of the tables a message binds (others: unknown, their keys read as offsets). */
function baseOf(bound: ReadonlyMap<number, KeyedTableBinding>): (id: number) => number | undefined {
  return (id) => {
    const b = bound.get(id);
    return b ? b.keyBase ?? 0 : undefined;
  };
}

/** Checks an op's key-type bit against the table's binding in the same message, when there is one. */
function checkBound(op: ReadOp, bound: ReadonlyMap<number, KeyedTableBinding>): void {
  const b = bound.get(op.table);
  if (b && (b.spec.key === 'string') !== op.stringKeys) throw bad(`keyed ops: table ${op.table} is bound with ${b.spec.key} keys`);
}

export function decodeKeyedSnapshot2(bytes: Uint8Array): KeyedSnapshot2Msg {
  const s = fb.KeyedSnapshot2.getRootAsKeyedSnapshot2(new ByteBuffer(bytes));
  const tables = bindings(s.tablesLength(), (i) => s.tables(i)!);
  const bound = new Map(tables.map((t) => [t.id, t]));
  const rows = new Map<number, Map<Key, PackedEntry[]>>();
  for (const t of tables) rows.set(t.id, new Map());
  for (const op of readOps(s.opsArray() ?? EMPTY, 'snapshot', baseOf(bound))) {
    checkBound(op, bound);
    const m = rows.get(op.table);
    if (!m) throw bad(`keyed ops: table ${op.table} is not bound by the snapshot`);
    m.set(op.key!, op.entries!);
  }
  const summary = readPacked(s.summaryArray() ?? EMPTY);
  for (const e of summary) {
    if (e.name === undefined) throw bad('a keyed snapshot entry without its name');
    if (e.value === null) throw bad('a keyed snapshot entry deletes a field');
  }
  return {
    type: 'keyedSnapshot2',
    topicId: s.topicId(),
    topic: s.topic()!,
    epoch: u64(s, 12),
    version: version2(s.versionHi(), s.version()),
    summary,
    tables,
    rows,
    part: s.part(),
    last: s.last(),
    checksum: s.checksum(),
    ts: s.ts(),
  };
}

export function decodeKeyedDelta2(bytes: Uint8Array): KeyedDelta2Msg {
  const d = fb.KeyedDelta2.getRootAsKeyedDelta2(new ByteBuffer(bytes));
  const body = d.bodyArray();
  if (!body) throw bad('a keyed delta without its body');
  return fromBody(body, d.topic(), u64(d, 10), bindings(d.tablesLength(), (i) => d.tables(i)!), d.ts());
}

/** Kind 5: a KeyedDelta2 that had nothing but its body, sent as the body alone. */
export function decodeKeyedBody2(body: Uint8Array): KeyedDelta2Msg {
  return fromBody(body, null, 0, [], 0);
}

function fromBody(body: Uint8Array, topic: string | null, epoch: number, tables: KeyedTableBinding[], ts: number): KeyedDelta2Msg {
  // body := varint topic_id << 2 | c << 1 | s, varint version, [varint span], [u32le checksum], [07 summary entries], ops
  const r = new PackReader(body);
  const h = r.varint();
  const topicId = Math.floor(h / 4);
  if (topicId > 0xffffffff) throw bad(`topic id ${topicId}`);
  const version = r.varint();
  const span = h % 2 === 1 ? r.varint() : 1;
  if (span > version) throw bad(`keyed delta span ${span} is larger than its version ${version}`);
  let checksum: number | null = null;
  if (h % 4 >= 2) {
    const c = r.slice(4);
    checksum = (c[0]! | (c[1]! << 8) | (c[2]! << 16) | (c[3]! << 24)) >>> 0;
  }
  let summary: PackedEntry[] = [];
  if (!r.done && body[r.offset] === SUMMARY_CODE) {
    r.u8();
    summary = readEntries(r, body);
  }
  const bound = new Map(tables.map((t) => [t.id, t]));
  const rows = new Map<number, WireTableChange>();
  for (const op of readOps(body.subarray(r.offset), 'delta', baseOf(bound))) {
    checkBound(op, bound);
    let tc = rows.get(op.table);
    if (!tc) rows.set(op.table, (tc = { clear: false, stringKeys: op.stringKeys, rows: new Map() }));
    if (op.relative) tc.relative = true;
    if (op.code === OpCode.CLEAR) {
      tc.clear = true;
      continue;
    }
    let c: WireRowChange;
    if (op.code === OpCode.DELETE) c = { op: 'delete' };
    else if (op.code === OpCode.UPSERT) c = { op: 'upsert', entries: op.entries! };
    else c = { op: 'replace', entries: op.entries!, existed: op.code === OpCode.REPLACE };
    tc.rows.set(op.key!, c);
  }
  return { type: 'keyedDelta2', topicId, topic, epoch, base: version - span, version, updates: span, summary, tables, rows, checksum, ts };
}

/** Subscribe.tables as views; depth and fields as sent. */
export function tableViewsOf(s: fb.Subscribe): TableViewRequest[] | undefined {
  const n = s.tablesLength();
  if (n === 0) return undefined;
  const out: TableViewRequest[] = [];
  for (let i = 0; i < n; i++) {
    const v = s.tables(i)!;
    const fields: string[] = [];
    for (let j = 0; j < v.fieldsLength(); j++) fields.push(v.fields(j));
    out.push({ table: v.table()!, depth: v.depth(), fields });
  }
  return out;
}

const GUARDS = [undefined, 'ifNew', 'ifExists'] as const;

/** Publish.tables + Publish.ops as a keyed batch; undefined when the publish has none. */
export function keyedBatchOf(p: fb.Publish): KeyedBatchMsg | undefined {
  const ops = p.opsArray();
  const n = p.tablesLength();
  if (!ops && n === 0) return undefined;
  const tables = new Map<number, KeyedTableBinding & { declare: boolean }>();
  const declare: TableSpec[] = [];
  for (let i = 0; i < n; i++) {
    const b = binding(p.tables(i)!);
    if (tables.has(b.id)) throw bad(`table id ${b.id} bound twice`);
    tables.set(b.id, b);
    if (b.declare) declare.push(b.spec);
  }
  const out: KeyedRowOp[] = [];
  for (const op of readOps(ops ?? EMPTY, 'publish')) {
    const b = tables.get(op.table);
    if (!b) throw bad(`keyed ops: table ${op.table} is not bound by the publish`);
    checkBound(op, tables);
    const table = b.spec.name;
    const guard = GUARDS[op.guard as 0 | 1 | 2];
    const g = guard ? { guard } : {};
    switch (op.code) {
      case OpCode.CLEAR:
        out.push({ op: 'clear', table });
        break;
      case OpCode.DELETE_RANGE: {
        const r = op.range!;
        out.push({
          op: 'deleteRange',
          table,
          ...(r.from !== undefined ? { from: r.from } : {}),
          ...(r.to !== undefined ? { to: r.to } : {}),
          ...(r.flags & RangeFlag.FROM_EXCLUSIVE ? { fromExclusive: true } : {}),
          ...(r.flags & RangeFlag.TO_EXCLUSIVE ? { toExclusive: true } : {}),
        });
        break;
      }
      case OpCode.DELETE:
        out.push({ op: 'delete', table, key: op.key!, ...g });
        break;
      case OpCode.INSERT:
        throw bad('keyed ops: insert is not a publish op (replace with guard ifNew)');
      default: {
        const fields: Changes = new Map();
        for (const e of op.entries!) fields.set(e.name ?? '', e.value);
        if (fields.has('')) throw bad('keyed ops: a published row field without its name');
        out.push({ op: op.code === OpCode.UPSERT ? 'upsert' : 'replace', table, key: op.key!, fields, ...g });
      }
    }
  }
  return declare.length ? { declare, ops: out } : { ops: out };
}
