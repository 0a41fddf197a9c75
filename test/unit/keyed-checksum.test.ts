// View checksums (issue 19, "verifiable views"): CRC-32 test vectors, the
// canonical form byte by byte (these vectors go into the protocol reference),
// and what the checksum does and does not depend on.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import zlib from 'node:zlib';
import { canonicalView, compareStrings, crc32, viewChecksum, type ChecksumTable } from '../../src/engine/tables/index.js';
import type { FieldValue, State } from '../../src/protocol/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const book = (rows: [number, [string, FieldValue][]][]): ChecksumTable[] => [{ name: 'bids', keyType: 'int', rows: rows.map(([k, f]) => [k, new Map(f)] as const) }];

describe('crc32', () => {
  it('is CRC-32/IEEE (zlib)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => crc32(b) === zlib.crc32(b)));
    // Continuable over chunks.
    const all = new TextEncoder().encode('tickfan keyed view');
    expect(crc32(all.subarray(7), crc32(all.subarray(0, 7)))).toBe(crc32(all));
  });
});

describe('canonical view and checksum vectors', () => {
  it('vector 1: an int-keyed book, two rows, no summary', () => {
    const view = book([
      [6500050, [['qty', 3.5], ['n', 2]]],
      [6500000, [['qty', 1]]],
    ]);
    expect(hex(canonicalView(view))).toBe(
      [
        '00000000', // no summary fields
        '01000000', // one table
        '04000000' + '62696473', // "bids"
        '01', // int keys
        '02000000', // two rows, best first
        'd22e630000000000', // key 6500050
        '02000000', // two fields, by name
        '01000000' + '6e' + '01' + '0200000000000000', // n: int 2
        '03000000' + '717479' + '02' + '0000000000000c40', // qty: float 3.5
        'a02e630000000000', // key 6500000
        '01000000',
        '03000000' + '717479' + '01' + '0100000000000000', // qty: int 1 (a whole number is an integer)
      ].join(''),
    );
    expect(viewChecksum(view)).toBe(0x5b076054);
  });

  it('vector 2: a summary field and a string-keyed table with every other kind', () => {
    const view: ChecksumTable[] = [
      {
        name: 'orders',
        keyType: 'string',
        rows: [['o-1', new Map<string, FieldValue>([['side', 'B'], ['live', true], ['id', 3122306864379792082n], ['raw', new Uint8Array([1, 2])]])]],
      },
    ];
    const summary: State = new Map([['last', 65000.5]]);
    expect(hex(canonicalView(view, summary))).toBe(
      [
        '01000000' + '04000000' + '6c617374' + '02' + '000000001' + '0bdef40', // summary: last = float 65000.5
        '01000000' + '06000000' + '6f7264657273' + '02' + '01000000', // "orders", string keys, one row
        '03000000' + '6f2d31', // key "o-1"
        '04000000',
        '02000000' + '6964' + '01' + 'd20a1feb8ca9542b', // id: int 3122306864379792082
        '04000000' + '6c697665' + '05', // live: true
        '03000000' + '726177' + '06' + '02000000' + '0102', // raw: bytes 01 02
        '04000000' + '73696465' + '03' + '01000000' + '42', // side: "B"
      ].join(''),
    );
    expect(viewChecksum(view, summary)).toBe(0x3db285f4);
  });

  it('integers are one kind (5 and 5n alike), floats by their bits (-0 is not 0), every NaN alike', () => {
    const c = (v: FieldValue) => viewChecksum(book([[1, [['x', v]]]]));
    expect(c(5)).toBe(c(5n));
    expect(c(-0)).not.toBe(c(0));
    expect(c(0.1 + 0.2)).not.toBe(c(0.3)); // one ulp apart
    const otherNaN = new Float64Array(new BigUint64Array([0x7ff8000000000123n]).buffer)[0]!;
    expect(c(otherNaN)).toBe(c(NaN));
    expect(c('5')).not.toBe(c(5));
    expect(c(true)).not.toBe(c(1));
    expect(c(new Uint8Array([5]))).not.toBe(c('\u0005'));
  });

  it('field order in the maps does not matter; row order, keys, values and table names do', () => {
    const a = viewChecksum(book([[2, [['a', 1], ['b', 2]]], [1, [['a', 1]]]]));
    expect(viewChecksum(book([[2, [['b', 2], ['a', 1]]], [1, [['a', 1]]]]))).toBe(a);
    expect(viewChecksum(book([[1, [['a', 1]]], [2, [['a', 1], ['b', 2]]]]))).not.toBe(a);
    expect(viewChecksum(book([[2, [['a', 1], ['b', 3]]], [1, [['a', 1]]]]))).not.toBe(a);
    expect(viewChecksum(book([[3, [['a', 1], ['b', 2]]], [1, [['a', 1]]]]))).not.toBe(a);
    expect(viewChecksum([{ ...book([])[0]!, name: 'asks' }])).not.toBe(viewChecksum(book([])));
    // Tables are listed by name whatever order they are given in.
    const two = [book([[1, []]])[0]!, { name: 'asks', keyType: 'int' as const, rows: [[9, new Map()] as const] }];
    expect(viewChecksum(two)).toBe(viewChecksum([...two].reverse()));
  });

  it('names sort by code point (UTF-8 byte order), not UTF-16 code units', () => {
    const names = ['😀', 'ﬀ', 'é', 'z', 'Z'];
    expect([...names].sort(compareStrings)).toEqual(['Z', 'z', 'é', 'ﬀ', '😀']);
    // JS's default sort puts the surrogate pair (D83D) before U+FB00.
    expect([...names].sort()).toEqual(['Z', 'z', 'é', '😀', 'ﬀ']);
    const bytes = canonicalView(book([[1, names.map((n) => [n, 1] as [string, FieldValue])]]));
    const order = names.map((n) => ({ n, at: Buffer.from(bytes).indexOf(Buffer.from(n)) })).sort((x, y) => x.at - y.at).map((x) => x.n);
    expect(order).toEqual(['Z', 'z', 'é', 'ﬀ', '😀']);
  });
});
