// Bounds-checks a FlatBuffers message before any generated accessor reads it.
// FlatBuffers' TypeScript runtime has no verifier: a crafted buffer can point
// offsets anywhere or claim huge vector lengths. Every offset, length and
// required field of the tickfan schema is checked here against the buffer.

type Slot =
  | { k: 'scalar'; size: 1 | 2 | 4 | 8 }
  | { k: 'string'; required?: boolean }
  | { k: 'vector'; elem: 1 | 4 | 8 }
  | { k: 'strings' }
  | { k: 'tables'; table: () => TableSpec }
  | { k: 'union'; tables: () => readonly (TableSpec | null)[] };
export type TableSpec = readonly Slot[];

const u8 = { k: 'scalar', size: 1 } as const;
const u16 = { k: 'scalar', size: 2 } as const;
const u32 = { k: 'scalar', size: 4 } as const;
const u64 = { k: 'scalar', size: 8 } as const;
const str = { k: 'string' } as const;
const reqStr = { k: 'string', required: true } as const;

// Slot order follows schemas/tickfan.fbs field order.
const FIELD: TableSpec = [reqStr, u8, u64, u64, str, u8, { k: 'vector', elem: 1 }];
const fields = { k: 'tables', table: () => FIELD } as const;
const HELLO: TableSpec = [u16, str, str];
const WELCOME: TableSpec = [u16, str, u32, u32, { k: 'vector', elem: 4 }, u16];
const RESUME_POINT: TableSpec = [reqStr, u64, u64];
const TABLE_VIEW: TableSpec = [reqStr, u32, { k: 'strings' }];
const SORT_FIELD: TableSpec = [reqStr, u8];
const TABLE_BINDING: TableSpec = [u8, reqStr, u8, u8, { k: 'tables', table: () => SORT_FIELD }, u32, { k: 'strings' }, u8, u64];
const bindings = { k: 'tables', table: () => TABLE_BINDING } as const;
const SUBSCRIBE: TableSpec = [u32, { k: 'strings' }, u32, { k: 'strings' }, { k: 'tables', table: () => RESUME_POINT }, u8, { k: 'tables', table: () => TABLE_VIEW }, u8];
const ID_ONLY: TableSpec = [u32];
const PUBLISH: TableSpec = [u32, reqStr, fields, bindings, { k: 'vector', elem: 1 }];
const CATCH_UP: TableSpec = [reqStr, u64, u64];
const NONCE: TableSpec = [u64];
const SNAPSHOT: TableSpec = [reqStr, u64, u64, fields, u64];
const DELTA: TableSpec = [reqStr, u64, u64, u64, u32, fields, u64];
const TOPIC_STATUS: TableSpec = [reqStr, u8, u64, u64];
const ACK: TableSpec = [u32, str, u64, u64, u32];
const ERROR: TableSpec = [u16, u32, str, str];
const TOPIC_VERSION: TableSpec = [reqStr, u64, u64];
const HEARTBEAT: TableSpec = [u64, { k: 'tables', table: () => TOPIC_VERSION }];
const bytes = { k: 'vector', elem: 1 } as const;
/** Protocol 2's own roots (kinds 1 and 2), outside the Message union. */
export const SNAPSHOT2: TableSpec = [u32, u32, bytes, reqStr, u64, u32, u64];
export const DELTA2: TableSpec = [u32, u32, bytes, u32, u32, str, u64, u64];
/** Keyed topics' roots (kinds 3 and 4); their op streams are checked by keyed-ops.ts. */
export const KEYED_SNAPSHOT2: TableSpec = [u32, u32, bytes, reqStr, u64, u32, u64, bytes, bindings, u32, u8, u32];
export const KEYED_DELTA2: TableSpec = [bytes, u64, str, u64, bindings];
const SERVE: TableSpec = [u32, reqStr];
const REQUEST: TableSpec = [u32, reqStr, fields, bytes, u32];
const SERVICE_REQUEST: TableSpec = [u64, u32, reqStr, str, fields, bytes, u32];
const REPLY: TableSpec = [u64, fields, bytes, u8, str];
const RESPONSE: TableSpec = [u32, u16, str, fields, bytes, str];
// Index = Body union type (schema order, 0 = NONE).
const BODIES: readonly (TableSpec | null)[] = [
  null, HELLO, WELCOME, SUBSCRIBE, ID_ONLY, PUBLISH, CATCH_UP, ID_ONLY, ID_ONLY,
  NONCE, NONCE, SNAPSHOT, DELTA, TOPIC_STATUS, ACK, ERROR, HEARTBEAT,
  SERVE, ID_ONLY, REQUEST, SERVICE_REQUEST, REPLY, RESPONSE,
];
const MESSAGE: TableSpec = [u8, { k: 'union', tables: () => BODIES }];

const MAX_DEPTH = 8;

/** Thrown by verify(); decodeMessage (decode.ts) turns it into a BAD_FRAME protocol error. */
export class VerifyError extends Error {}
/** The buffer is well formed but names a message type this schema lacks. */
export class UnknownTypeError extends VerifyError {}

class Verifier {
  constructor(private readonly v: DataView) {}

  private need(pos: number, size: number, what: string): void {
    if (pos < 0 || size < 0 || pos + size > this.v.byteLength) {
      throw new VerifyError(`${what} out of bounds (at ${pos}, ${size} bytes, buffer ${this.v.byteLength})`);
    }
  }

  private u32(pos: number, what: string): number {
    this.need(pos, 4, what);
    return this.v.getUint32(pos, true);
  }

  /** Follows the uoffset at `pos`; returns the absolute position it names. */
  private deref(pos: number, what: string): number {
    const target = pos + this.u32(pos, what);
    this.need(target, 4, what);
    return target;
  }

  private vector(pos: number, elem: number, what: string): { start: number; len: number } {
    const at = this.deref(pos, what);
    const len = this.v.getUint32(at, true);
    this.need(at + 4, len * elem, `${what} (length ${len})`);
    return { start: at + 4, len };
  }

  table(pos: number, spec: TableSpec, depth: number): void {
    if (depth > MAX_DEPTH) throw new VerifyError('tables nested too deep');
    this.need(pos, 4, 'table');
    const vt = pos - this.v.getInt32(pos, true);
    this.need(vt, 4, 'vtable');
    const vtSize = this.v.getUint16(vt, true);
    const tableSize = this.v.getUint16(vt + 2, true);
    // The TypeScript runtime reads vtable entries as int16: ≥ 0x8000 would be
    // negative to it, so it would read fields this check never looked at.
    if (vtSize < 4 || vtSize & 1 || vtSize > 0x7fff) throw new VerifyError(`bad vtable size ${vtSize}`);
    this.need(vt, vtSize, 'vtable');
    this.need(pos, tableSize, 'table body');
    const slots = (vtSize - 4) >> 1;
    let unionType = 0;
    for (let i = 0; i < spec.length; i++) {
      const slot = spec[i]!;
      const off = i < slots ? this.v.getUint16(vt + 4 + 2 * i, true) : 0;
      if (off === 0) {
        if (slot.k === 'string' && slot.required) throw new VerifyError(`required field ${i} missing`);
        if (slot.k === 'scalar') unionType = 0;
        continue;
      }
      const size = slot.k === 'scalar' ? slot.size : 4;
      if (off > 0x7fff || off + size > tableSize) throw new VerifyError(`field ${i} outside its table`);
      const at = pos + off;
      switch (slot.k) {
        case 'scalar':
          unionType = slot.size === 1 ? this.v.getUint8(at) : 0;
          break;
        case 'string':
          this.vector(at, 1, 'string');
          break;
        case 'vector':
          this.vector(at, slot.elem, 'vector');
          break;
        case 'strings': {
          const { start, len } = this.vector(at, 4, 'string vector');
          for (let j = 0; j < len; j++) this.vector(start + 4 * j, 1, 'string');
          break;
        }
        case 'tables': {
          const { start, len } = this.vector(at, 4, 'table vector');
          const t = slot.table();
          for (let j = 0; j < len; j++) this.table(this.deref(start + 4 * j, 'table'), t, depth + 1);
          break;
        }
        case 'union': {
          const t = slot.tables()[unionType];
          if (!t) throw new UnknownTypeError(`unknown message type ${unionType}`);
          this.table(this.deref(at, 'union value'), t, depth + 1);
          break;
        }
      }
    }
  }
}

/**
 * Checks that `bytes` (one Message, without its size prefix) is safe for the
 * generated accessors. Throws VerifyError naming the first problem.
 */
export function verifyMessage(bytes: Uint8Array, spec: TableSpec = MESSAGE): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) throw new VerifyError(`message of ${bytes.byteLength} bytes is too short`);
  const root = v.getUint32(0, true);
  new Verifier(v).table(root, spec, 0);
}

/** Body union types the schema defines (1..N). */
export const BODY_TYPE_COUNT = BODIES.length - 1;
