// The SharedArrayBuffer ring: order, wrap-around, overrun detection, wake-ups,
// and a property test over random interleavings of writes and reads.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { RingReader, RingWriter, createRing } from '../../src/workers/shared-ring.js';

function rec(n: number, size = 8): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, n, true);
  for (let i = 4; i < size; i++) b[i] = (n + i) & 0xff;
  return b;
}
const num = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

describe('shared ring', () => {
  it('rejects capacities that are not a power of two in range', () => {
    expect(() => createRing(1000)).toThrow(RangeError);
    expect(() => createRing(512)).toThrow(RangeError);
    expect(() => createRing(1024)).not.toThrow();
  });

  it('delivers committed records in order, and nothing before commit', () => {
    const sab = createRing(1024);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    w.write(rec(1));
    w.write(rec(2));
    const got: number[] = [];
    expect(r.read((b) => got.push(num(b)))).toEqual({ overrun: false, count: 0 });
    w.commit();
    expect(r.read((b) => got.push(num(b)))).toEqual({ overrun: false, count: 2 });
    expect(got).toEqual([1, 2]);
  });

  it('wraps around the end many times with records of varied sizes, byte-exact', () => {
    const sab = createRing(1024);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    let next = 0;
    for (let round = 0; round < 500; round++) {
      const size = 4 + ((round * 37) % 120);
      w.write(rec(round, size));
      w.commit();
      r.read((b) => {
        expect(num(b)).toBe(next);
        expect(b).toEqual(rec(next, b.byteLength));
        next++;
      });
    }
    expect(next).toBe(500);
    expect(w.position).toBeGreaterThan(1024 * 20);
  });

  it('each reader has its own cursor', () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const a = new RingReader(sab);
    const b = new RingReader(sab);
    for (let i = 0; i < 10; i++) w.write(rec(i));
    w.commit();
    const ga: number[] = [];
    const gb: number[] = [];
    a.read((x) => ga.push(num(x)), 3);
    b.read((x) => gb.push(num(x)));
    a.read((x) => ga.push(num(x)));
    expect(ga).toEqual([...Array(10).keys()]);
    expect(gb).toEqual(ga);
  });

  it('a reader lapped by the writer reports overrun instead of reading overwritten slots', () => {
    const sab = createRing(1024);
    const w = new RingWriter(sab);
    const slow = new RingReader(sab);
    for (let i = 0; i < 200; i++) w.write(rec(i, 32)), w.commit();
    const got: number[] = [];
    const res = slow.read((b) => got.push(num(b)));
    expect(res.overrun).toBe(true);
    expect(got).toEqual([]);
    // Resynchronise: seek to the current position and carry on exactly.
    slow.seek(w.position);
    w.write(rec(999));
    w.commit();
    expect(slow.read((b) => got.push(num(b)))).toEqual({ overrun: false, count: 1 });
    expect(got).toEqual([999]);
  });

  it('a reader exactly one capacity behind is still exact; overwriting its next record overruns it', () => {
    const sab = createRing(1024);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    // 32 records of 32 bytes (28 payload + 4 length) fill exactly 1024 bytes.
    for (let i = 0; i < 32; i++) w.write(rec(i, 28));
    w.commit();
    const got: number[] = [];
    expect(r.read((b) => got.push(num(b)), 1)).toEqual({ overrun: false, count: 1 });
    w.write(rec(32, 28)); // overwrites record 0's slot, already read: record 1 is still whole
    w.commit();
    expect(r.read((b) => got.push(num(b)), 1)).toEqual({ overrun: false, count: 1 });
    w.write(rec(33, 28));
    w.write(rec(34, 28)); // overwrites record 2's slot, not yet read
    w.commit();
    expect(r.read((b) => got.push(num(b))).overrun).toBe(true);
    expect(got).toEqual([0, 1]);
  });

  it('property: any interleaving of writes and reads gives each reader an exact prefix or an overrun', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ w: fc.integer({ min: 0, max: 200 }) }), fc.record({ r: fc.integer({ min: 0, max: 2 }) })), { maxLength: 300 }),
        (ops) => {
          const sab = createRing(1024);
          const w = new RingWriter(sab);
          const readers = [new RingReader(sab), new RingReader(sab), new RingReader(sab)];
          const expected = readers.map(() => 0);
          let written = 0;
          for (const op of ops) {
            if ('w' in op) {
              w.write(rec(written++, 4 + op.w));
              w.commit();
            } else {
              const i = op.r;
              const res = readers[i]!.read((b) => {
                // Exactness: the next record in order, byte for byte.
                expect(num(b)).toBe(expected[i]);
                expect(b).toEqual(rec(expected[i]!, b.byteLength));
                expected[i]!++;
              });
              if (res.overrun) {
                // Only when the writer really is more than a ring ahead of what it read.
                readers[i]!.seek(w.position);
                expected[i] = written;
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('wakes a reader in another thread with Atomics and carries records across threads', async () => {
    const sab = createRing(64 * 1024);
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      const HEADER = 64, sab = workerData.sab, h = new Int32Array(sab, 0, 16);
      const view = new DataView(sab, HEADER), cap = sab.byteLength - HEADER;
      let pos = 0, sum = 0, n = 0;
      // A pending Atomics.waitAsync does not keep a thread's event loop alive: hold it open.
      const keepAlive = setInterval(() => {}, 1000);
      (async () => {
        while (n < 1000) {
          const r = Atomics.waitAsync(h, 1, pos | 0, 5000);
          if (r.async) await r.value;
          const commit = Atomics.load(h, 1) >>> 0;
          while (pos !== commit) {
            const off = pos & (cap - 1), len = view.getUint32(off, true);
            if (len === 0xffffffff) { pos = (pos + cap - off) >>> 0; continue; }
            sum += view.getUint32(off + 4, true); n++;
            pos = (pos + 4 + ((len + 3) & ~3)) >>> 0;
          }
        }
        clearInterval(keepAlive);
        parentPort.postMessage({ n, sum });
      })();`;
    const worker = new Worker(src, { eval: true, workerData: { sab } });
    const done = new Promise<{ n: number; sum: number }>((res, rej) => {
      worker.once('message', res);
      worker.once('error', rej);
      worker.once('exit', (code) => rej(new Error(`the reader thread exited (${code}) before reading everything`)));
    });
    const w = new RingWriter(sab);
    for (let i = 0; i < 1000; i++) {
      w.write(rec(i, 12));
      if (i % 50 === 49) {
        w.commit();
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    w.commit();
    const res = await done;
    await worker.terminate();
    expect(res).toEqual({ n: 1000, sum: (999 * 1000) / 2 });
  });
});
