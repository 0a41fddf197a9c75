// The keyed part of a replicated update (replication.ts): a keyed batch's net
// row change (KeyedChange), compact and versioned, for replicas that follow
// a sequencer they do not share memory with (the workers' ring, NATS edges).
//
//   u8 form (1)
//   varint d, then d × (varint n, n bytes: a declared TableSpec as UTF-8 JSON)
//   op stream (protocol/keyed-ops.ts, server order: each table's ops
//   together, a clear first, keys ascending, key deltas and string prefixes)
//
// Table ids are the tables' places in the topic's declaration order (tables
// are only ever added, and images keep that order), so no table name travels
// with a row change. Row fields carry ids local to the message: a name goes
// with its first entry only (a book update of three levels names `qty` once).
// Declarations are rare (once per table per epoch) and carry maxRows, which
// the protocol's table bindings leave out: JSON there costs nothing per row.
//
// Also here: a refused keyed batch's details (KeyedBatchError: reason, table,
// key, op index) as plain data, so the refusal reaches a publisher on another
// thread or node as the same typed error.

import { KeyedBatchError, type BatchRefusal, type KeyedChange, type KeyedTables, type TableChange } from '../engine/index.js';
import { ErrorCode, OpCode, PackReader, PackWriter, TickfanError, compareKeys, readOps, type Changes, type Key, type RowChange, type State, type TableSpec } from '../protocol/index.js';
import { OpWriter } from '../protocol/keyed-ops.js';

export const KEYED_FORM = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_FRAME, `replicated keyed change: ${why}`);
}

/** Encodes keyed parts; one per sequencer (reuses its buffer). */
export class KeyedPartWriter {
  private readonly ops = new OpWriter(new PackWriter());

  /** `tables`: the topic's tables after the change (they give the ids). Returns a copy. */
  encode(change: KeyedChange, tables: KeyedTables): Uint8Array {
    const ids = new Map<string, number>();
    for (const t of tables.tables()) ids.set(t.spec.name, ids.size);
    const w = this.ops;
    const p = w.w;
    w.reset();
    p.byte(KEYED_FORM);
    p.varint(change.declared.length);
    for (const spec of change.declared) {
      const j = utf8.encode(JSON.stringify(spec));
      p.varint(j.byteLength);
      p.raw(j);
    }
    const names = new Map<string, number>();
    const touched = [...change.tables.keys()].map((name) => {
      const id = ids.get(name);
      if (id === undefined) throw new TickfanError(ErrorCode.INTERNAL, `keyed change for table ${name}, which the topic does not hold`);
      return [id, name] as const;
    });
    touched.sort((a, b) => a[0] - b[0]);
    for (const [id, name] of touched) {
      const tc = change.tables.get(name)!;
      const s = tables.table(name)!.spec.key === 'string';
      if (tc.clear) w.head(id, s, OpCode.CLEAR);
      const keys = [...tc.rows.keys()].sort(compareKeys);
      for (const k of keys) {
        const c = tc.rows.get(k)!;
        w.head(id, s, c.op === 'upsert' ? OpCode.UPSERT : c.op === 'delete' ? OpCode.DELETE : c.existed ? OpCode.REPLACE : OpCode.INSERT);
        w.key(k);
        if (c.op === 'delete') continue;
        w.fields(c.fields.size);
        for (const f of c.fields.keys()) {
          let fid = names.get(f);
          const first = fid === undefined;
          if (first) names.set(f, (fid = names.size + 1));
          w.entry(fid!, f, first, c.fields.get(f)!);
        }
      }
    }
    return p.take().slice();
  }
}

/**
 * Decodes a keyed part. `tableNames` are the replica's tables in declaration
 * order (before this change); null when the part names a table the replica
 * does not hold (or declares one it already holds): it must resynchronise.
 * Throws BAD_FRAME for malformed bytes.
 */
export function decodeKeyedPart(bytes: Uint8Array, tableNames: readonly string[]): KeyedChange | null {
  const r = new PackReader(bytes);
  const form = r.u8();
  if (form !== KEYED_FORM) throw bad(`form ${form} (this build reads ${KEYED_FORM})`);
  const declared: TableSpec[] = [];
  const names = [...tableNames];
  const keyTypes = new Map<string, boolean>();
  for (let n = r.varint(); n > 0; n--) {
    let spec: TableSpec;
    try {
      spec = JSON.parse(fromUtf8.decode(r.slice(r.varint()))) as TableSpec;
    } catch {
      throw bad('a declaration is not JSON');
    }
    if (names.includes(spec.name)) return null;
    names.push(spec.name);
    declared.push(spec);
    keyTypes.set(spec.name, spec.key === 'string');
  }
  const tables = new Map<string, TableChange>();
  const fieldNames: string[] = [''];
  for (const op of readOps(bytes.subarray(r.offset), 'delta')) {
    const name = names[op.table];
    if (name === undefined) return null;
    const known = keyTypes.get(name);
    if (known !== undefined && known !== op.stringKeys) return null;
    let tc = tables.get(name);
    if (!tc) tables.set(name, (tc = { clear: false, rows: new Map() }));
    if (op.code === OpCode.CLEAR) {
      (tc as { clear: boolean }).clear = true;
      continue;
    }
    const k = op.key as Key;
    if (op.code === OpCode.DELETE) {
      tc.rows.set(k, { op: 'delete' });
      continue;
    }
    const fields: Changes = new Map();
    for (const e of op.entries!) {
      if (e.name !== undefined) {
        if (e.id !== fieldNames.length) throw bad(`field id ${e.id} out of order`);
        fieldNames.push(e.name);
      }
      const f = fieldNames[e.id];
      if (f === undefined || e.id === 0) throw bad(`field id ${e.id} without a name`);
      fields.set(f, e.value);
    }
    const c: RowChange = op.code === OpCode.UPSERT ? { op: 'upsert', fields } : { op: 'replace', fields: fields as State, existed: op.code === OpCode.REPLACE };
    tc.rows.set(k, c);
  }
  return { declared, tables };
}

/** A refused keyed batch's details, as plain data (JSON-safe: keys are numbers or strings). */
export interface KeyedRefusal {
  reason: BatchRefusal;
  table?: string;
  key?: Key;
  opIndex?: number;
}

/** The details of a KeyedBatchError; undefined for any other error. */
export function refusalOf(err: unknown): KeyedRefusal | undefined {
  if (!(err instanceof KeyedBatchError)) return undefined;
  return { reason: err.reason, ...(err.table === undefined ? {} : { table: err.table }), ...(err.key === undefined ? {} : { key: err.key }), ...(err.opIndex === undefined ? {} : { opIndex: err.opIndex }) };
}

/** The error a publisher gets back: a KeyedBatchError with the very message when `refusal` is given, else a TickfanError. */
export function refusalError(code: number, message: string, refusal: KeyedRefusal | undefined): TickfanError {
  if (refusal === undefined) return new TickfanError(code as ErrorCode, message);
  const e = new KeyedBatchError(refusal.reason, code as ErrorCode, '', { table: refusal.table, key: refusal.key, opIndex: refusal.opIndex });
  e.message = message; // the origin's message, which already names table and row
  return e;
}
