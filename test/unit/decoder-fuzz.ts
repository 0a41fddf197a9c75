// Shared by the decoder fuzz runs of protocol 1 (verify.test.ts) and protocol 2
// (verify-protocol2.test.ts): which errors a decoder may throw, what a decoded
// message must look like, the byte mutations, and the outcome tally with the
// slowest single decode.

import { expect } from 'vitest';
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { ErrorCode, TickfanError, type AnyMessage, type PackedEntry } from '../../src/protocol/index.js';

export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

export function expectCode(fn: () => unknown, code: number, what = ''): void {
  const err = caught(fn);
  expect(err, `${what}: expected TickfanError ${code}`).toBeInstanceOf(TickfanError);
  expect((err as TickfanError).errorCode, `${what}: ${(err as Error).message}`).toBe(code);
}

/** The only errors a decoder may throw on bad input. */
export const ALLOWED = new Set<number>([ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_MESSAGE, ErrorCode.BAD_FIELD]);

export const isFieldValue = (v: unknown) =>
  v === null || ['number', 'bigint', 'string', 'boolean'].includes(typeof v) || v instanceof Uint8Array;

/** A packed entry as protocol 2 defines it: an id, a name with id 0 always, a field value (null: delete). */
export function wellTypedEntry(e: PackedEntry): boolean {
  const idOk = Number.isSafeInteger(e.id) && e.id >= 0;
  const nameOk = e.name === undefined ? e.id > 0 : typeof e.name === 'string' && e.name.length > 0;
  return idOk && nameOk && isFieldValue(e.value) && Object.keys(e).length === 3;
}

/** A decoded message must be exactly what its type says (no nulls where strings go). */
export function wellTyped(m: AnyMessage): boolean {
  const str = (s: unknown) => typeof s === 'string';
  const n = (x: unknown) => typeof x === 'number' && !Number.isNaN(x);
  /** Versions and epochs: exact integers (the server keeps them below 2^53). */
  const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  const u32 = (x: unknown) => whole(x) && (x as number) <= 0xffffffff;
  const fields = (f: Map<unknown, unknown>) => [...f].every(([k, v]) => str(k) && isFieldValue(v));
  const points = (ps: { topic: unknown; epoch: unknown; version: unknown }[]) => ps.every((p) => str(p.topic) && n(p.epoch) && n(p.version));
  switch (m.type) {
    case 'hello':
      return n(m.protocol) && str(m.client) && str(m.token);
    case 'welcome':
      return str(m.server) && n(m.heartbeatMs) && n(m.maxFrame) && m.rateTiers.every((x) => typeof x === 'number') && whole(m.maxProtocol) && m.maxProtocol >= 1;
    case 'subscribe':
      return n(m.id) && m.topics.every(str) && m.fields.every(str) && points(m.resume) && typeof m.timestamps === 'boolean';
    case 'unsubscribe':
    case 'pause':
    case 'resume':
      return n(m.id);
    case 'publish':
      return n(m.id) && str(m.topic) && fields(m.changes);
    case 'catchUp':
      return str(m.topic) && n(m.epoch) && n(m.version);
    case 'ping':
    case 'pong':
      return typeof m.nonce === 'bigint';
    case 'snapshot':
      return str(m.topic) && n(m.epoch) && n(m.version) && fields(m.fields) && [...m.fields.values()].every((v) => v !== null);
    case 'delta':
      return str(m.topic) && n(m.epoch) && n(m.base) && n(m.version) && n(m.updates) && fields(m.changes);
    case 'topicStatus':
      return str(m.topic) && n(m.state) && n(m.epoch) && n(m.version);
    case 'ack':
      return n(m.id) && str(m.topic) && n(m.epoch) && n(m.version) && n(m.count);
    case 'error':
      return n(m.code) && n(m.id) && str(m.topic) && str(m.message);
    case 'heartbeat':
      return typeof m.time === 'number' && points(m.versions);
    case 'snapshot2':
      return u32(m.topicId) && str(m.topic) && whole(m.epoch) && whole(m.version) && typeof m.ts === 'number' && Array.isArray(m.entries) && m.entries.every(wellTypedEntry);
    case 'delta2':
      return (
        u32(m.topicId) &&
        (m.topic === null || str(m.topic)) &&
        whole(m.epoch) &&
        whole(m.version) &&
        whole(m.base) &&
        u32(m.updates) &&
        m.base + m.updates === m.version &&
        typeof m.ts === 'number' &&
        Array.isArray(m.entries) &&
        m.entries.every(wellTypedEntry)
      );
    case 'keyedSnapshot2':
    case 'keyedDelta2': {
      const key = (k: unknown) => (typeof k === 'number' && Number.isSafeInteger(k) && !Object.is(k, -0)) || (typeof k === 'string' && k.length > 0);
      const binding = (b: { id: unknown; spec: { name: unknown; key: unknown }; depth: unknown; fields: unknown[] }) =>
        u32(b.id) && str(b.spec.name) && (b.spec.key === 'int' || b.spec.key === 'string') && u32(b.depth) && b.fields.every(str);
      const head = u32(m.topicId) && whole(m.epoch) && whole(m.version) && typeof m.ts === 'number' && m.summary.every(wellTypedEntry) && m.tables.every(binding) && (m.checksum === null || u32(m.checksum));
      if (m.type === 'keyedSnapshot2') {
        return head && str(m.topic) && u32(m.part) && typeof m.last === 'boolean' && [...m.rows].every(([id, rs]) => u32(id) && [...rs].every(([k, es]) => key(k) && es.every((e) => wellTypedEntry(e) && e.value !== null)));
      }
      return (
        head &&
        (m.topic === null || str(m.topic)) &&
        m.base + m.updates === m.version &&
        [...m.rows].every(([id, tc]) => u32(id) && typeof tc.clear === 'boolean' && [...tc.rows].every(([k, c]) => key(k) && (typeof k === 'string') === tc.stringKeys && (c.op === 'delete' || c.entries.every(wellTypedEntry))))
      );
    }
    default:
      // A message type added after this list: give it its own case. Meanwhile, at least no
      // undefined, NaN or foreign object where a value should be.
      return Object.values(m as Record<string, unknown>).every(plain);
  }
}

/** A value a decoded message may hold: no undefined, NaN, or object other than arrays, Maps and bytes of such values. */
function plain(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return true;
  if (typeof v === 'number') return true; // floats may be NaN (field values, times)
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every(plain);
  if (v instanceof Map) return [...v].every(([k, x]) => typeof k === 'string' && plain(x));
  if (typeof v === 'object') return Object.values(v as Record<string, unknown>).every(plain);
  return false;
}

/** Fuzz bookkeeping: outcomes and the slowest single decode. */
export class Tally {
  cases = 0;
  decoded = 0;
  byCode = new Map<number, number>();
  worstMs = 0;
  worstLen = 0;
  /** Worst after the first 1000 cases, once the JIT has warmed up. */
  warmWorstMs = 0;
  /** Decoded messages by type (what the fuzz reached). */
  readonly types = new Map<string, number>();
  /** Every decode time (ms), for percentiles: the single worst is often a GC pause. */
  private readonly times: number[] = [];

  run(input: Uint8Array, decode: (b: Uint8Array) => AnyMessage[]): boolean {
    this.cases++;
    const t0 = performance.now();
    let msgs: AnyMessage[] | undefined;
    let err: unknown;
    try {
      msgs = decode(input);
    } catch (e) {
      err = e;
    }
    const ms = performance.now() - t0;
    this.times.push(ms);
    if (ms > this.worstMs) (this.worstMs = ms), (this.worstLen = input.byteLength);
    if (this.cases > 1000 && ms > this.warmWorstMs) this.warmWorstMs = ms;
    if (msgs) {
      this.decoded++;
      for (const m of msgs) this.types.set(m.type, (this.types.get(m.type) ?? 0) + 1);
      const bad = msgs.find((m) => !wellTyped(m));
      if (bad) throw new Error(`ill-typed message decoded from ${Buffer.from(input).toString('hex')}: ${describe(bad)}`);
      return true;
    }
    if (!(err instanceof TickfanError) || !ALLOWED.has(err.errorCode)) {
      // Surface the untyped exception with the input that caused it.
      throw new Error(`untyped decoder exception on ${Buffer.from(input).toString('hex')}: ${String(err)}`, { cause: err });
    }
    this.byCode.set(err.errorCode, (this.byCode.get(err.errorCode) ?? 0) + 1);
    return true;
  }

  /** One line for the test log. */
  report(what: string): string {
    const codes = Object.fromEntries(this.byCode);
    return (
      `${what}: ${this.cases} cases, ${this.decoded} decoded, errors by code ${JSON.stringify(codes)}, ` +
      `0 untyped exceptions, worst single decode ${this.worstMs.toFixed(3)} ms (${this.worstLen} bytes), ` +
      `worst after warm-up ${this.warmWorstMs.toFixed(3)} ms, 99.9th percentile ${this.percentile(0.999).toFixed(3)} ms`
    );
  }

  percentile(p: number): number {
    const sorted = Float64Array.from(this.times).sort();
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  }
}

function describe(m: AnyMessage): string {
  return JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? [...v] : v));
}

export type Mutation =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'byte'; at: number; value: number }
  | { k: 'u16'; at: number; value: number }
  | { k: 'u32'; at: number; value: number }
  | { k: 'truncate'; at: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number };

// Values that hit the edges of offsets, lengths and vtable sizes.
export const interesting32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 0xff, 0x7fff, 0x8000, 0xffff, 0x10000, 0x1fffff, 0x200000, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff),
  fc.integer({ min: -64, max: 256 }).map((x) => x >>> 0),
  fc.nat(),
);
export const interesting16 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 0x7ffe, 0x7fff, 0x8000, 0x8004, 0xfffe, 0xffff), fc.nat({ max: 0xffff }));

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('byte' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('u16' as const), at: fc.nat(), value: interesting16 }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('u32' as const), at: fc.nat(), value: interesting32 }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }) },
);

export function mutate(src: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let b = src.slice();
  for (const m of muts) {
    if (b.byteLength === 0) break;
    const at = m.at % b.byteLength;
    const v = new DataView(b.buffer);
    switch (m.k) {
      case 'flip':
        b[at]! ^= 1 << m.bit;
        break;
      case 'byte':
        b[at] = m.value;
        break;
      case 'u16':
        if (at + 2 <= b.byteLength) v.setUint16(at & ~1, m.value, true);
        break;
      case 'u32':
        if ((at & ~3) + 4 <= b.byteLength) v.setUint32(at & ~3, m.value >>> 0, true);
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'insert': {
        const out = new Uint8Array(b.byteLength + m.bytes.byteLength);
        out.set(b.subarray(0, at));
        out.set(m.bytes, at);
        out.set(b.subarray(at), at + m.bytes.byteLength);
        b = out;
        break;
      }
      case 'delete':
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + m.n)]);
        break;
    }
  }
  return b;
}
