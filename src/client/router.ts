// Which subscriptions an update goes to — exact topics by name, patterns
// through the protocol's TopicPattern (the matcher the server uses) — and the
// delivery of one applied update to each of them, cut to its field subset.

import { TopicPattern, type FieldValue } from '../protocol/index.js';
import type { TopicReplica } from './replica.js';
import type { Subscription, Update } from './subscription.js';

export class Router {
  private readonly byId = new Map<number, Subscription>();
  private readonly exact = new Map<string, Set<Subscription>>();
  /** Pattern subscriptions; null for a malformed pattern (the server refuses it, nothing matches). */
  private readonly patterns = new Map<Subscription, TopicPattern | null>();

  add(sub: Subscription): void {
    this.byId.set(sub.id, sub);
    if (sub.isPattern) this.patterns.set(sub, parse(sub.pattern));
    else {
      let set = this.exact.get(sub.pattern);
      if (!set) this.exact.set(sub.pattern, (set = new Set()));
      set.add(sub);
    }
  }

  remove(sub: Subscription): void {
    this.byId.delete(sub.id);
    this.patterns.delete(sub);
    const set = this.exact.get(sub.pattern);
    if (set?.delete(sub) && set.size === 0) this.exact.delete(sub.pattern);
  }

  get(id: number): Subscription | undefined {
    return this.byId.get(id);
  }

  /** Every subscription, oldest first. */
  all(): IterableIterator<Subscription> {
    return this.byId.values();
  }

  /** Subscriptions covering `topic`. */
  *subscribersOf(topic: string): Generator<Subscription> {
    const exact = this.exact.get(topic);
    if (exact) yield* exact;
    for (const [sub, p] of this.patterns) if (p?.matches(topic)) yield sub;
  }

  /** True when some subscription still covers `topic`. */
  covered(topic: string): boolean {
    return !this.subscribersOf(topic).next().done;
  }

  /** True when the server sends `topic` at full rate (some unpaused subscription has no maxRate). */
  fullRate(topic: string): boolean {
    for (const sub of this.subscribersOf(topic)) if (sub.active && !sub.paused && !((sub.options.maxRate ?? 0) > 0)) return true;
    return false;
  }

  /** Delivers one applied update of `r` to every active subscription covering it. */
  deliver(r: TopicReplica, head: Omit<Update, 'changes' | 'state'>, changes: Record<string, FieldValue | null>): void {
    for (const sub of this.subscribersOf(r.topic)) {
      if (!sub.active) continue;
      const fields = sub.fieldSet;
      let ch = changes;
      if (fields) {
        ch = Object.create(null);
        let any = false;
        for (const k in changes) if (fields.has(k)) (ch[k] = changes[k]!), (any = true);
        if (!any && !head.snapshot) {
          sub.topics.add(r.topic);
          continue;
        }
      }
      let state: Record<string, FieldValue> | undefined;
      sub.deliver({
        ...head,
        changes: ch,
        get state() {
          return (state ??= r.view(fields));
        },
      });
    }
  }

  /** Tells every subscription covering `topic` that it went stale or recovered. */
  status(topic: string, status: 'ok' | 'stale'): void {
    for (const sub of this.subscribersOf(topic)) sub.status({ topic, status });
  }
}

function parse(pattern: string): TopicPattern | null {
  try {
    // No length limit here: the server's (configurable) limit is the one that counts.
    return TopicPattern.parse(pattern, Infinity);
  } catch {
    return null;
  }
}
