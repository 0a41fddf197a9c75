// Topic names and NATS-style subscription patterns: what parses, what
// matches what, and which code a malformed one gets.

import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_TOPIC_LENGTH, ErrorCode, TickfanError, TopicPattern, isPattern, validateTopic } from '../../src/protocol/index.js';

function codeOf(fn: () => unknown): number | string {
  try {
    fn();
  } catch (err) {
    return err instanceof TickfanError ? err.errorCode : `untyped ${String(err)}`;
  }
  return 'no error';
}

const TOPICS = ['px', 'px.AAPL', 'px.MSFT', 'px.AAPL.bid', 'px.AAPL.bid.1', 'fx.EURUSD', 'a.b.c', 'a.x.c', 'a.b.d', 'a.c', 'a.b.c.d', 'pxx.AAPL', 'book.BTC-USD'];

describe('TopicPattern.match', () => {
  it.each<[string, string[]]>([
    ['px.*', ['px.AAPL', 'px.MSFT']],
    ['px.>', ['px.AAPL', 'px.MSFT', 'px.AAPL.bid', 'px.AAPL.bid.1']],
    ['>', TOPICS],
    ['*', ['px']],
    ['a.*.c', ['a.b.c', 'a.x.c']],
    ['*.*', ['px.AAPL', 'px.MSFT', 'fx.EURUSD', 'a.c', 'pxx.AAPL', 'book.BTC-USD']],
    ['*.AAPL', ['px.AAPL', 'pxx.AAPL']],
    ['*.>', TOPICS.filter((t) => t.includes('.'))],
    ['px.*.>', ['px.AAPL.bid', 'px.AAPL.bid.1']],
    ['a.*.*.>', ['a.b.c.d']],
    ['a.*.*.*.>', []],
    ['px.AAPL', ['px.AAPL']],
    ['book.BTC-USD', ['book.BTC-USD']],
  ])('%s', (pattern, expected) => {
    const p = TopicPattern.parse(pattern);
    expect(p.source).toBe(pattern);
    expect(TOPICS.filter((t) => p.matches(t))).toEqual(expected);
  });

  it('`>` needs at least one level to match', () => {
    expect(TopicPattern.parse('px.>').matches('px')).toBe(false);
    expect(TopicPattern.parse('a.b.>').matches('a.b.c.d.e.f')).toBe(true);
  });

  it('levels match whole, never by prefix', () => {
    expect(TopicPattern.parse('px.AAP').matches('px.AAPL')).toBe(false);
    expect(TopicPattern.parse('px.*').matches('pxx.AAPL')).toBe(false);
    expect(TopicPattern.parse('px.>').matches('px2.A')).toBe(false);
  });
});

describe('TopicPattern.parse refuses malformed patterns with BAD_PATTERN', () => {
  it.each([
    ['`>` not last', 'px.>.x'],
    ['`>` first of several', '>.x'],
    ['`*` inside a level', 'px*'],
    ['`*` inside a later level', 'px.A*'],
    ['`>` inside a level', 'px.a>'],
    ['`>>`', 'px.>>'],
    ['`**`', 'px.**'],
    ['empty levels', '..'],
    ['single dot', '.'],
    ['leading dot', '.px'],
    ['trailing dot', 'px.'],
    ['double dot', 'px..AAPL'],
    ['empty', ''],
    ['space', 'px.AA PL'],
    ['slash', 'px/AAPL'],
    ['non-ASCII', 'px.€'],
    ['too long', 'a'.repeat(DEFAULT_MAX_TOPIC_LENGTH + 1)],
  ])('%s: %j', (_what, pattern) => {
    expect(codeOf(() => TopicPattern.parse(pattern))).toBe(ErrorCode.BAD_PATTERN);
  });

  it('honours a custom length limit', () => {
    expect(codeOf(() => TopicPattern.parse('px.AAPL', 6))).toBe(ErrorCode.BAD_PATTERN);
    expect(TopicPattern.parse('px.AAPL', 7).matches('px.AAPL')).toBe(true);
  });

  it('rejects non-strings with a typed error', () => {
    expect(codeOf(() => TopicPattern.parse(undefined as unknown as string))).toBe(ErrorCode.BAD_PATTERN);
    expect(codeOf(() => TopicPattern.parse(42 as unknown as string))).toBe(ErrorCode.BAD_PATTERN);
  });
});

describe('validateTopic', () => {
  it.each(['px', 'px.AAPL', 'book.BTC-USD', 'a_b.c-d.e:f.g@h', 'A.b.0.9', 'a'.repeat(DEFAULT_MAX_TOPIC_LENGTH)])('accepts %s', (t) => {
    expect(() => validateTopic(t)).not.toThrow();
  });

  it.each(['', '.', '..', 'px.', '.px', 'px..A', 'px.*', 'px.>', '>', '*', 'px*', 'px A', 'px.é', 'px\n', 'a'.repeat(DEFAULT_MAX_TOPIC_LENGTH + 1)])(
    'refuses %j with BAD_TOPIC',
    (t) => {
      expect(codeOf(() => validateTopic(t))).toBe(ErrorCode.BAD_TOPIC);
    },
  );
});

describe('isPattern', () => {
  it.each(['px.*', 'px.>', '>', '*', 'a.*.c', '*.b', '*.>', 'a.*.*.>'])('%s is a pattern', (s) => {
    expect(isPattern(s)).toBe(true);
  });

  // Wildcard levels in the wrong place still make it a pattern, so that parsing
  // it reports BAD_PATTERN rather than BAD_TOPIC.
  it.each(['px.>.x', '>.x', 'a.>.b'])('%s is a (malformed) pattern', (s) => {
    expect(isPattern(s)).toBe(true);
    expect(codeOf(() => TopicPattern.parse(s))).toBe(ErrorCode.BAD_PATTERN);
  });

  it.each(['px', 'px.AAPL', 'px*', 'px.A*', 'px.a>', 'px>', '**', '>>', '', '..', 'book.BTC-USD'])('%j is not a pattern', (s) => {
    expect(isPattern(s)).toBe(false);
  });
});
