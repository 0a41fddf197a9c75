// The STOMP frame parser on raw bytes: whole, byte by byte and split at every
// point; heart-beat EOLs; content-length bodies with NULs inside and
// NUL-terminated ones; header escaping per version; and every bad or
// oversized frame an error (never a crash, never a buffer that grows).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StompFrame, StompVersion } from '../../src/server/stomp/frame.js';
import { StompParser, StompSyntaxError, type ParserLimits } from '../../src/server/stomp/parser.js';

const LIMITS: ParserLimits = { maxFrameBytes: 4096, maxHeaders: 16, maxHeaderBytes: 1024 };

interface Parsed {
  command: string;
  headers: Record<string, string>;
  body: string;
}

/** A parser and what it produced. */
function parser(limits: Partial<ParserLimits> = {}, version: StompVersion | null = '1.2') {
  const frames: Parsed[] = [];
  const raw: StompFrame[] = [];
  let heartbeats = 0;
  const p = new StompParser(
    { ...LIMITS, ...limits },
    {
      frame: (f) => {
        raw.push(f);
        frames.push({ command: f.command, headers: Object.fromEntries(f.headers), body: Buffer.from(f.body).toString('latin1') });
      },
      heartbeat: () => heartbeats++,
    },
  );
  p.version = version;
  return { p, frames, raw, heartbeats: () => heartbeats };
}

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `s` in pieces cut at `cuts` (sorted offsets). */
function feedSplit(p: StompParser, s: Uint8Array, cuts: number[]): void {
  let at = 0;
  for (const c of [...cuts, s.length]) {
    p.feed(s.subarray(at, c));
    at = c;
  }
}

const TWO_FRAMES =
  'SEND\ndestination:/topic/a.b\ncontent-type:application/json\n\n{"x":1}\0' +
  '\n\r\n\n' +
  'SUBSCRIBE\r\nid:s1\r\ndestination:/topic/px.*\r\n\r\n\0';

const EXPECTED: Parsed[] = [
  { command: 'SEND', headers: { destination: '/topic/a.b', 'content-type': 'application/json' }, body: '{"x":1}' },
  { command: 'SUBSCRIBE', headers: { id: 's1', destination: '/topic/px.*' }, body: '' },
];

describe('STOMP parser: framing', () => {
  it('reads frames fed whole, byte by byte, and split at every single point alike', () => {
    const whole = parser();
    whole.p.feed(bytes(TWO_FRAMES));
    expect(whole.frames).toEqual(EXPECTED);
    expect(whole.heartbeats()).toBe(3);

    const byByte = parser();
    for (const b of bytes(TWO_FRAMES)) byByte.p.feed(Uint8Array.of(b));
    expect(byByte.frames).toEqual(EXPECTED);
    expect(byByte.heartbeats()).toBe(3);

    for (let cut = 0; cut <= TWO_FRAMES.length; cut++) {
      const split = parser();
      feedSplit(split.p, bytes(TWO_FRAMES), [cut]);
      expect(split.frames, `cut at ${cut}`).toEqual(EXPECTED);
    }
  });

  it('a content-length body may hold NULs; without content-length the first NUL ends the body', () => {
    const { p, frames } = parser();
    p.feed(bytes('SEND\ncontent-length:5\n\na\0b\0c\0SEND\n\nxy\0'));
    expect(frames.map((f) => f.body)).toEqual(['a\0b\0c', 'xy']);
    // The content-length header counts bytes, not characters.
    const utf = parser();
    const body = Buffer.from('{"n":"é€"}');
    utf.p.feed(Buffer.concat([bytes(`SEND\ncontent-length:${body.length}\n\n`), body, Uint8Array.of(0)]));
    expect(Buffer.from(utf.raw[0]!.body).toString('utf8')).toBe('{"n":"é€"}');
  });

  it('waits for a missing NUL (or the rest of a content-length body) without a frame or an error', () => {
    const { p, frames } = parser();
    p.feed(bytes('SEND\n\n{"x":1}'));
    p.feed(bytes(' still the body'));
    expect(frames).toEqual([]);
    p.feed(bytes('\0'));
    expect(frames.map((f) => f.body)).toEqual(['{"x":1} still the body']);
    const q = parser();
    q.p.feed(bytes('SEND\ncontent-length:3\n\nab'));
    expect(q.frames).toEqual([]);
    q.p.feed(bytes('c'));
    expect(q.frames).toEqual([]);
    q.p.feed(bytes('\0'));
    expect(q.frames).toEqual([{ command: 'SEND', headers: { 'content-length': '3' }, body: 'abc' }]);
  });

  it('many frames in one chunk, then a large one, then small ones again (the buffer is reused and let go)', () => {
    const { p, frames } = parser({ maxFrameBytes: 200_000 });
    p.feed(bytes('ACK\nid:1\n\n\0'.repeat(500)));
    expect(frames).toHaveLength(500);
    const big = 'y'.repeat(150_000);
    p.feed(bytes(`SEND\n\n${big.slice(0, 70_000)}`));
    p.feed(bytes(`${big.slice(70_000)}\0NACK\nid:2\n\n\0`));
    expect(frames).toHaveLength(502);
    expect(frames[500]!.body).toBe(big);
    expect(frames[501]).toEqual({ command: 'NACK', headers: { id: '2' }, body: '' });
    p.feed(bytes('ACK\nid:3\n\n\0'));
    expect(frames.at(-1)!.headers.id).toBe('3');
  });

  it('a repeated header keeps its first value (STOMP 1.2)', () => {
    const { p, frames } = parser();
    p.feed(bytes('SEND\nfoo:first\nfoo:second\n\n\0'));
    expect(frames[0]!.headers.foo).toBe('first');
  });

  it('a header named __proto__ is a header like any other (found by the split property)', () => {
    const { p, frames } = parser();
    p.feed(bytes('SEND\n__proto__:x\nconstructor:y\n\n\0'));
    expect(Object.keys(frames[0]!.headers)).toEqual(['__proto__', 'constructor']);
    expect(frames[0]!.headers['__proto__']).toBe('x');
  });

  it('header values may hold colons past the first and are not trimmed', () => {
    const { p, frames } = parser(undefined, '1.0');
    p.feed(bytes('SEND\ndestination:/topic/a:b\nx: spaced \n\n\0'));
    expect(frames[0]!.headers).toEqual({ destination: '/topic/a:b', x: ' spaced ' });
  });

  it('property: any sequence of frames, split anywhere, parses to the same frames', () => {
    const headerText = fc.string({ maxLength: 12 }).map((s) => s.replace(/[\r\n:\\\0]/g, '_'));
    const frame = fc.record({
      command: fc.constantFrom('SEND', 'SUBSCRIBE', 'ACK', 'UNSUBSCRIBE'),
      headers: fc.array(fc.tuple(headerText.filter((s) => s.length > 0), headerText), { maxLength: 5 }),
      body: fc.uint8Array({ maxLength: 40 }),
      withLength: fc.boolean(),
      eols: fc.constantFrom('', '\n', '\r\n', '\n\n'),
    });
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (fs, rawCuts) => {
        const chunks: Buffer[] = [];
        const want: Parsed[] = [];
        for (const f of fs) {
          const seen = new Set<string>();
          // Null prototype, as the parser's: a header named __proto__ is a header like any other.
          const headers: Record<string, string> = Object.create(null);
          let head = f.command + '\n';
          // A body without content-length ends at its first NUL.
          const body = f.withLength ? Buffer.from(f.body) : Buffer.from(f.body.filter((b) => b !== 0));
          const list = f.headers.filter(([k]) => k !== 'content-length');
          if (f.withLength) list.push(['content-length', String(body.length)]);
          for (const [k, v] of list) {
            head += `${k}:${v}\n`;
            if (!seen.has(k)) headers[k] = v;
            seen.add(k);
          }
          chunks.push(bytes(f.eols), Buffer.from(head + '\n'), body, Uint8Array.of(0) as Buffer);
          want.push({ command: f.command, headers, body: body.toString('latin1') });
        }
        const all = Buffer.concat(chunks);
        const cuts = [...new Set(rawCuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const got = parser({ maxHeaders: 64 });
        feedSplit(got.p, all, cuts);
        expect(got.frames).toEqual(want);
      }),
      { numRuns: 500, seed: 0x570 },
    );
  });
});

describe('STOMP parser: header escaping', () => {
  it('1.2 unescapes \\r \\n \\c \\\\ in names and values', () => {
    const { p, frames } = parser(undefined, '1.2');
    p.feed(bytes('SEND\na\\cb:x\\\\y\\nz\\rw\\c\n\n\0'));
    expect(frames[0]!.headers).toEqual({ 'a:b': 'x\\y\nz\rw:' });
  });

  it('1.1 has no \\r; 1.0 unescapes nothing; CONNECT is never unescaped', () => {
    const v11 = parser(undefined, '1.1');
    expect(() => v11.p.feed(bytes('SEND\nx:a\\rb\n\n\0'))).toThrow(StompSyntaxError);
    const v10 = parser(undefined, '1.0');
    v10.p.feed(bytes('SEND\nx:a\\cb\\q\n\n\0'));
    expect(v10.frames[0]!.headers.x).toBe('a\\cb\\q');
    const before = parser(undefined, null);
    before.p.feed(bytes('CONNECT\npasscode:se\\cret\n\n\0'));
    expect(before.frames[0]!.headers.passcode).toBe('se\\cret');
    const connect12 = parser(undefined, '1.2');
    connect12.p.feed(bytes('CONNECT\npasscode:a\\tb\n\n\0'));
    expect(connect12.frames[0]!.headers.passcode).toBe('a\\tb');
  });

  it.each(['\\t', '\\', '\\x41'])('an undefined escape sequence (%s) is a fatal error', (seq) => {
    const { p } = parser(undefined, '1.2');
    expect(() => p.feed(bytes(`SEND\nx:a${seq}\n\n\0`))).toThrow(/undefined escape sequence/);
  });
});

describe('STOMP parser: bad and oversized frames', () => {
  const cases: [string, string, Partial<ParserLimits>, RegExp][] = [
    ['a lowercase command', 'send\n\n\0', {}, /not a STOMP command/],
    ['a command with a space', 'SEND X\n\n\0', {}, /not a STOMP command/],
    ['binary garbage', '\x00\x01\x02\n', {}, /not a STOMP command/],
    ['a header line without a colon', 'SEND\nnocolon\n\n\0', {}, /not a header line/],
    ['a header with an empty name', 'SEND\n:value\n\n\0', {}, /not a header line/],
    ['a content-length that is not a number', 'SEND\ncontent-length:12a\n\n\0', {}, /content-length must be a number/],
    ['a negative content-length', 'SEND\ncontent-length:-1\n\n\0', {}, /content-length must be a number/],
    ['a body longer than its content-length', 'SEND\ncontent-length:2\n\nabc\0', {}, /NUL must follow/],
    ['a content-length past the frame limit', 'SEND\ncontent-length:5000\n\n', {}, /larger than the 4096/],
    ['a carriage return between frames without a line feed', '\rX', {}, /carriage return/],
    ['too many headers', 'SEND\n' + 'h:v\n'.repeat(17) + '\n\0', {}, /more than 16 headers/],
    ['headers past their byte limit, blank line missing', 'SEND\nh:' + 'v'.repeat(1100), {}, /more than 1024 bytes/],
    ['a long command line with no end', 'S'.repeat(2000), {}, /more than 1024 bytes|not a STOMP command/],
    ['a frame past the limit without its NUL', 'SEND\n\n' + 'x'.repeat(4100), {}, /larger than the 4096 bytes accepted \(or its NUL terminator is missing\)/],
    ['a frame past the limit with its NUL', 'SEND\n\n' + 'x'.repeat(4100) + '\0', {}, /larger than the 4096/],
  ];

  it.each(cases)('%s: a StompSyntaxError, fed whole or byte by byte', (_what, text, limits, message) => {
    const whole = parser(limits);
    expect(() => whole.p.feed(bytes(text))).toThrow(message);
    const byByte = parser(limits);
    let err: unknown = null;
    for (const b of bytes(text)) {
      try {
        byByte.p.feed(Uint8Array.of(b));
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toBeInstanceOf(StompSyntaxError);
    expect((err as Error).message).toMatch(message);
    expect(byByte.frames).toEqual([]);
  });

  it('the frames before a bad one count; after it nothing more is parsed', () => {
    const { p, frames } = parser();
    expect(() => p.feed(bytes('ACK\nid:1\n\n\0bad\n\n\0'))).toThrow(StompSyntaxError);
    expect(frames.map((f) => f.command)).toEqual(['ACK']);
    p.feed(bytes('ACK\nid:2\n\n\0'));
    expect(frames).toHaveLength(1);
  });

  it('a frame just under the limit passes; the limit counts command to NUL', () => {
    const head = 'SEND\n\n';
    const { p, frames } = parser();
    p.feed(bytes(head + 'x'.repeat(4096 - head.length - 1) + '\0'));
    expect(frames).toHaveLength(1);
    const over = parser();
    expect(() => over.p.feed(bytes(head + 'x'.repeat(4096 - head.length) + '\0'))).toThrow(/larger than the 4096/);
  });

  it('property: random bytes only ever end in frames or a StompSyntaxError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const { p } = parser({ maxFrameBytes: 256, maxHeaderBytes: 128 });
        try {
          for (const c of chunks) p.feed(c);
        } catch (err) {
          expect(err).toBeInstanceOf(StompSyntaxError);
        }
      }),
      { numRuns: 2_000, seed: 0x571 },
    );
    // Mostly valid frames with a few bytes changed reach deeper states.
    const valid = bytes(TWO_FRAMES);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(valid.length), (edits, cut) => {
        const b = Buffer.from(valid);
        for (const [at, v] of edits) b[at] = v;
        const { p } = parser();
        try {
          feedSplit(p, b, [cut]);
        } catch (err) {
          expect(err).toBeInstanceOf(StompSyntaxError);
        }
      }),
      { numRuns: 2_000, seed: 0x572 },
    );
  });
});
