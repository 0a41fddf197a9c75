// Topic names and subscription patterns, NATS style: dot-separated levels,
// `*` matches exactly one level, `>` matches one or more trailing levels.
// Browser-safe: the engine validates with it and the client SDK matches with it.

import { ErrorCode, TickfanError } from './codes.js';

const LEVEL = /^[A-Za-z0-9_\-:@]+$/;
export const DEFAULT_MAX_TOPIC_LENGTH = 256;

function levelsOf(name: string, maxLength: number, what: string, code: ErrorCode): string[] {
  if (typeof name !== 'string' || name.length === 0) throw new TickfanError(code, `${what} must be a non-empty string`);
  if (name.length > maxLength) throw new TickfanError(code, `${what} "${name.slice(0, 40)}…" is ${name.length} characters; the limit is ${maxLength}`);
  return name.split('.');
}

/** Throws BAD_TOPIC unless `name` is a valid concrete topic name. */
export function validateTopic(name: string, maxLength = DEFAULT_MAX_TOPIC_LENGTH): void {
  for (const level of levelsOf(name, maxLength, 'topic', ErrorCode.BAD_TOPIC)) {
    if (!LEVEL.test(level)) {
      throw new TickfanError(
        ErrorCode.BAD_TOPIC,
        `topic "${name}": level "${level}" must be 1+ characters of A-Z a-z 0-9 _ - : @ (wildcards are for subscriptions only)`,
      );
    }
  }
}

/** True when `s` contains wildcard levels (validity is checked separately). */
export function isPattern(s: string): boolean {
  // Any `*` or `>` level counts, even a misplaced one (`px.>.x`), so that
  // parsing it reports BAD_PATTERN instead of the name passing as a topic.
  // Scanned in place (no split: every subscription of a reconnect storm asks).
  const last = s.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = s.charCodeAt(i);
    const wildcard = c === 42 || c === 62; // '*' or '>'
    if (wildcard && (i === 0 || s.charCodeAt(i - 1) === 46) && (i === last || s.charCodeAt(i + 1) === 46)) return true; // a whole level ('.' = 46)
  }
  return false;
}

/** A compiled subscription pattern (or a plain topic name). */
export class TopicPattern {
  readonly source: string;
  private readonly levels: readonly string[];
  private readonly tail: boolean;

  private constructor(source: string, levels: string[]) {
    this.source = source;
    this.tail = levels[levels.length - 1] === '>';
    this.levels = this.tail ? levels.slice(0, -1) : levels;
  }

  /** Parses and validates a pattern; throws BAD_PATTERN with the reason. */
  static parse(pattern: string, maxLength = DEFAULT_MAX_TOPIC_LENGTH): TopicPattern {
    const levels = levelsOf(pattern, maxLength, 'pattern', ErrorCode.BAD_PATTERN);
    levels.forEach((level, i) => {
      if (level === '*') return;
      if (level === '>') {
        if (i !== levels.length - 1) throw new TickfanError(ErrorCode.BAD_PATTERN, `pattern "${pattern}": ">" may only be the last level`);
        return;
      }
      if (!LEVEL.test(level)) {
        throw new TickfanError(
          ErrorCode.BAD_PATTERN,
          `pattern "${pattern}": level "${level}" must be "*", ">" or 1+ characters of A-Z a-z 0-9 _ - : @`,
        );
      }
    });
    return new TopicPattern(pattern, levels);
  }

  /** Its levels, without a trailing `>` (for routing tries). */
  get parts(): readonly string[] {
    return this.levels;
  }

  /** Ends in `>`: matches one or more further levels. */
  get trailing(): boolean {
    return this.tail;
  }

  /** True when the concrete topic name `topic` matches this pattern (level by level, without splitting it). */
  matches(topic: string): boolean {
    const levels = this.levels;
    const n = levels.length;
    const len = topic.length;
    let pos = 0;
    for (let i = 0; i < n; i++) {
      if (pos > len) return false; // fewer levels than the pattern
      let end = topic.indexOf('.', pos);
      if (end < 0) end = len;
      const l = levels[i]!;
      if (l !== '*' && (end - pos !== l.length || !topic.startsWith(l, pos))) return false;
      pos = end + 1;
    }
    // pos ≤ len: a dot followed the last matched level, so further levels remain.
    return this.tail ? pos <= len : pos === len + 1;
  }
}
