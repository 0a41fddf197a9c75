// Pattern containment (auth.ts patternWithin: may a grant's pattern cover a
// subscription's?) and isPattern, both rewritten to work without splitting
// strings (every subscription of a reconnect storm asks them): checked
// against the plain split-based definitions over random patterns, including
// `*`, `>` and malformed wildcard placements.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopicPattern, isPattern } from '../../src/protocol/index.js';
import { patternWithin } from '../../src/server/auth.js';

/** The definition: level by level over the split sources. */
function withinBySplit(inner: string, outer: string): boolean {
  const p = inner.split('.');
  const g = outer.split('.');
  for (let i = 0; i < g.length; i++) {
    if (g[i] === '>') return i < p.length;
    if (i >= p.length || p[i] === '>') return false;
    if (g[i] === '*') continue;
    if (p[i] !== g[i]) return false;
  }
  return p.length === g.length;
}

const isPatternBySplit = (s: string) => s.split('.').some((l) => l === '*' || l === '>');

const level = fc.constantFrom('a', 'b', 'px', 'AAPL', '*');
/** A valid pattern: 1–4 levels, optionally ending in `>` (or just `>`). */
const pattern = fc
  .tuple(fc.array(level, { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([levels, tail]) => levels.length > 0 || tail)
  .map(([levels, tail]) => [...levels, ...(tail ? ['>'] : [])].join('.'));

describe('patternWithin', () => {
  it('agrees with the split-based definition on 20,000 random pairs', () => {
    fc.assert(
      fc.property(pattern, pattern, (inner, outer) => {
        expect(patternWithin(TopicPattern.parse(inner), TopicPattern.parse(outer))).toBe(withinBySplit(inner, outer));
      }),
      { numRuns: 20_000 },
    );
  });

  it.each([
    ['px.AAPL', 'px.*', true],
    ['px.*', 'px.>', true],
    ['px.>', 'px.>', true],
    ['px', 'px.>', false],
    ['px.>', 'px.*', false],
    ['px.*', 'px.AAPL', false],
    ['>', '>', true],
    ['a.b', '>', true],
    ['*.b', 'a.b', false],
    ['a.b.c', 'a.*', false],
  ])('%s within %s: %s', (inner, outer, want) => {
    expect(patternWithin(TopicPattern.parse(inner), TopicPattern.parse(outer))).toBe(want);
  });
});

describe('isPattern (no split)', () => {
  it('agrees with the split-based definition on random strings of levels, wildcards and dots', () => {
    const piece = fc.constantFrom('a', 'px', '*', '>', '.', 'a*', '>b', '**', '');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const s = pieces.join('');
        expect(isPattern(s)).toBe(isPatternBySplit(s));
      }),
      { numRuns: 20_000 },
    );
  });
});
