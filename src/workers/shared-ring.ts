// A byte ring buffer in a SharedArrayBuffer: one writer, any number of readers,
// each reader with its own cursor. No locks: the writer never waits for a
// reader, and a reader that falls more than the ring's capacity behind finds
// out (overrun) instead of reading overwritten bytes. Atomics carry wake-ups.
//
// Layout: Int32 header [reserve, commit, …] then `capacity` bytes of records.
// A record is u32le length + payload, padded to 4 bytes; a length of
// 0xFFFFFFFF marks "wrap to the start". Positions are u32 counters that wrap;
// a position's byte offset is `pos & (capacity - 1)`.

const RESERVE = 0; // end of the bytes the writer may be touching now
const COMMIT = 1; // end of the bytes readers may read
const HEADER_BYTES = 64;
const WRAP = 0xffffffff;

function align4(n: number): number {
  return (n + 3) & ~3;
}

function dist(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** Allocates a ring of `capacity` bytes (a power of two, 1 KiB to 1 GiB). */
export function createRing(capacity: number): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < 1024 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two between 1 KiB and 1 GiB (got ${capacity})`);
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

class RingView {
  protected readonly header: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly view: DataView;
  readonly capacity: number;
  protected readonly mask: number;

  constructor(sab: SharedArrayBuffer) {
    this.header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.capacity = sab.byteLength - HEADER_BYTES;
    this.data = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.view = new DataView(sab, HEADER_BYTES, this.capacity);
    this.mask = this.capacity - 1;
  }

  /** Position up to which records are readable. */
  committed(): number {
    return Atomics.load(this.header, COMMIT) >>> 0;
  }
}

export class RingWriter extends RingView {
  private pos: number;

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.pos = this.committed();
  }

  /** Largest payload one record may carry. */
  get maxPayload(): number {
    return this.capacity / 4 - 4;
  }

  /** Position after the last record written (committed or not). */
  get position(): number {
    return this.pos;
  }

  /** Appends one record. Readers see it after commit(). Never blocks. */
  write(payload: Uint8Array): void {
    const len = payload.byteLength;
    if (len > this.maxPayload) throw new RangeError(`ring record of ${len} bytes exceeds ${this.maxPayload}`);
    const need = 4 + align4(len);
    let off = this.pos & this.mask;
    if (off + need > this.capacity) {
      // Not enough room before the end: mark a wrap and start again at 0.
      const skip = this.capacity - off;
      Atomics.store(this.header, RESERVE, (this.pos + skip + need) | 0);
      this.view.setUint32(off, WRAP, true);
      this.pos = (this.pos + skip) >>> 0;
      off = 0;
    } else {
      Atomics.store(this.header, RESERVE, (this.pos + need) | 0);
    }
    this.view.setUint32(off, len, true);
    this.data.set(payload, off + 4);
    this.pos = (this.pos + need) >>> 0;
  }

  /** Makes every record written so far visible and wakes waiting readers. */
  commit(): void {
    Atomics.store(this.header, COMMIT, this.pos | 0);
    Atomics.notify(this.header, COMMIT);
  }
}

/** What read() found: records delivered, or an overrun (the reader fell too far behind). */
export type ReadResult = { overrun: false; count: number } | { overrun: true; count: number };

export class RingReader extends RingView {
  private pos: number;

  /** Starts at `from` (default: the current commit, i.e. only new records). */
  constructor(sab: SharedArrayBuffer, from?: number) {
    super(sab);
    this.pos = from ?? this.committed();
  }

  get cursor(): number {
    return this.pos;
  }

  /** Moves the cursor (after a resync, to the position a snapshot was taken at). */
  seek(pos: number): void {
    this.pos = pos >>> 0;
  }

  /** Records committed but not yet read. */
  lag(): number {
    return dist(this.committed(), this.pos);
  }

  /**
   * Delivers committed records in order (each a copy), at most `max`. Stops
   * with `overrun: true`, delivering nothing more, if the writer has lapped
   * this reader: the caller must resynchronise and seek().
   */
  read(each: (record: Uint8Array) => void, max = Infinity): ReadResult {
    const commit = this.committed();
    let count = 0;
    while (this.pos !== commit && count < max) {
      if (dist(commit, this.pos) > this.capacity) return { overrun: true, count };
      const off = this.pos & this.mask;
      const len = this.view.getUint32(off, true);
      if (len === WRAP) {
        this.pos = (this.pos + (this.capacity - off)) >>> 0;
        continue;
      }
      const copy = len <= this.capacity - off - 4 ? this.data.slice(off + 4, off + 4 + len) : null;
      // Valid only if the writer cannot have started overwriting it meanwhile.
      const reserve = Atomics.load(this.header, RESERVE) >>> 0;
      if (!copy || dist(reserve, this.pos) > this.capacity) return { overrun: true, count };
      this.pos = (this.pos + 4 + align4(len)) >>> 0;
      count++;
      each(copy);
    }
    return { overrun: false, count };
  }

  /**
   * Resolves when the commit position moves past what this reader has seen.
   * A pending Atomics.waitAsync does not keep a Node.js event loop alive: the
   * thread must hold some other handle (a listening app, a MessagePort).
   */
  waitAsync(timeoutMs?: number): Promise<unknown> {
    const seen = this.pos | 0;
    if ((Atomics.load(this.header, COMMIT) | 0) !== seen) return Promise.resolve('not-equal');
    const r = Atomics.waitAsync(this.header, COMMIT, seen, timeoutMs);
    return r.async ? r.value : Promise.resolve(r.value);
  }
}
