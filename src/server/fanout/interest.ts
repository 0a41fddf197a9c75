// Interest routing: which client subscriptions want a topic, by exact name
// (including topics that do not exist yet) or by pattern. Parsed patterns are
// shared, since thousands of clients subscribe to the same names.

import { TopicPattern, isPattern, validateTopic } from '../../engine/index.js';
import { ErrorCode, TickfanError } from '../../protocol/index.js';
import type { ClientSub } from './state.js';

const MAX_CACHED_PATTERNS = 100_000;

export class Interest {
  private readonly exact = new Map<string, Set<ClientSub>>();
  private readonly byPattern = new Set<ClientSub>();
  private readonly parsed = new Map<string, TopicPattern>();
  /** Subscriptions per name or pattern, for `onChange` (a cluster edge follows what its clients want). */
  private readonly counts = new Map<string, number>();
  private readonly counted = new WeakSet<ClientSub>();
  /** Told when a name or pattern gains its first subscription (true) or loses its last (false). */
  onChange: ((source: string, wanted: boolean) => void) | null = null;

  constructor(private readonly maxTopicLength: number) {}

  /** Validates and parses subscription names (topics or patterns); throws TickfanError. */
  parse(names: readonly string[]): TopicPattern[] {
    if (names.length === 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'subscribe needs at least one topic or pattern');
    return names.map((n) => this.pattern(n));
  }

  private pattern(name: string): TopicPattern {
    const known = this.parsed.get(name);
    if (known) return known;
    if (!isPattern(name)) validateTopic(name, this.maxTopicLength);
    const p = TopicPattern.parse(name, this.maxTopicLength);
    if (this.parsed.size >= MAX_CACHED_PATTERNS) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.set(name, p);
    return p;
  }

  add(cs: ClientSub): void {
    this.count(cs, 1);
    for (const p of cs.patterns) {
      if (isPattern(p.source)) this.byPattern.add(cs);
      else {
        let set = this.exact.get(p.source);
        if (!set) this.exact.set(p.source, (set = new Set()));
        set.add(cs);
      }
    }
  }

  drop(cs: ClientSub): void {
    this.count(cs, -1);
    this.byPattern.delete(cs);
    for (const p of cs.patterns) {
      const set = this.exact.get(p.source);
      if (set && set.delete(cs) && set.size === 0) this.exact.delete(p.source);
    }
  }

  private count(cs: ClientSub, by: 1 | -1): void {
    if ((by === 1) === this.counted.has(cs)) return;
    if (by === 1) this.counted.add(cs);
    else this.counted.delete(cs);
    for (const source of new Set(cs.patterns.map((p) => p.source))) {
      const n = (this.counts.get(source) ?? 0) + by;
      if (n > 0) this.counts.set(source, n);
      else this.counts.delete(source);
      if (n === (by === 1 ? 1 : 0)) this.onChange?.(source, by === 1);
    }
  }

  /** Every client subscription that wants `name` (each once). */
  wanting(name: string): Set<ClientSub> {
    const want = new Set<ClientSub>(this.exact.get(name));
    for (const cs of this.byPattern) if (cs.patterns.some((p) => p.matches(name))) want.add(cs);
    return want;
  }
}
