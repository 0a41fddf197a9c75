// JSON form of field values, shared by HTTP, the SSE stream and the SDK's SSE
// transport. Exact both ways: integers past 2^53 travel as {"$bigint": "…"},
// bytes as {"$bytes": base64}, and floats JSON cannot hold (NaN, ±Infinity,
// -0) as {"$float": "…"}. Runs in browsers and Node (atob/btoa).

import { ErrorCode, TickfanError } from './codes.js';
import type { Changes, FieldValue } from './values.js';

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(b: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function valueToJson(v: FieldValue | null): unknown {
  if (v === null) return null;
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0) ? v : { $float: Object.is(v, -0) ? '-0' : String(v) };
    case 'bigint':
      return { $bigint: v.toString() };
    case 'string':
    case 'boolean':
      return v;
    default:
      return { $bytes: toBase64(v) };
  }
}

/** A field value from its JSON form; throws BAD_FIELD naming the field otherwise. */
export function valueFromJson(v: unknown, field: string): FieldValue | null {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    try {
      if (typeof o.$bytes === 'string') return fromBase64(o.$bytes);
    } catch {
      // not base64: refused below
    }
    if (typeof o.$bigint === 'string' && /^-?\d{1,20}$/.test(o.$bigint)) return BigInt(o.$bigint);
    if (typeof o.$float === 'string' && ['NaN', 'Infinity', '-Infinity', '-0'].includes(o.$float)) return o.$float === '-0' ? -0 : Number(o.$float);
  }
  throw new TickfanError(
    ErrorCode.BAD_FIELD,
    `field ${field}: values must be numbers, strings, booleans, null (delete), {"$bytes": base64}, {"$bigint": "digits"} or {"$float": "NaN"}`,
  );
}

/** A JSON object of fields; no prototype, so a field named "__proto__" stays a field. */
export function fieldsToJson(fields: Iterable<readonly [string, FieldValue | null]>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of fields) out[k] = valueToJson(v);
  return out;
}

/** A change set from a JSON object of fields (null deletes). */
export function changesFromJson(body: unknown): Changes {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, 'the body must be a JSON object of fields, e.g. {"bid": 101.25, "ask": null}');
  }
  const out: Changes = new Map();
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) out.set(k, valueFromJson(v, k));
  return out;
}
