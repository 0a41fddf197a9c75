// A STOMP connection's subscriptions: the client's string ids, the numeric
// ids dispatch knows them by, and which of them a topic's MESSAGE goes to.
// Fan-out sends one stream per topic per connection; STOMP wants one MESSAGE per subscription.

import type { TopicPattern } from '../../engine/index.js';

export const ACK_MODES = ['auto', 'client', 'client-individual'] as const;
export type AckMode = (typeof ACK_MODES)[number];

export interface StompSub {
  /** The client's id (the SUBSCRIBE id header). */
  readonly id: string;
  /** The id dispatch and fan-out know it by (0 for a reply destination). */
  readonly num: number;
  readonly destination: string;
  /** A topic or pattern (through fan-out), or a reply destination (answers to this connection's requests). */
  readonly kind: 'topic' | 'reply';
  readonly ack: AckMode;
  /** Its field subset (null: every field); the body of a shared stream is cut down to it. */
  readonly fields: ReadonlySet<string> | null;
  /** What it matches (none for a reply destination). */
  readonly patterns: readonly TopicPattern[];
  /**
   * Topics this connection already received through another subscription when
   * this one began: it gets nothing of them until its own snapshot arrives.
   */
  waiting: Set<string> | null;
}

/** Receiver lists cached per topic are dropped past this many topics. */
const MAX_CACHED_TOPICS = 10_000;

export class StompSubscriptions {
  private readonly byId = new Map<string, StompSub>();
  private readonly byNum = new Map<number, StompSub>();
  private readonly topicSubs: StompSub[] = [];
  private readonly receiverCache = new Map<string, StompSub[]>();

  get(id: string): StompSub | undefined {
    return this.byId.get(id);
  }

  hasNum(num: number): boolean {
    return this.byNum.has(num);
  }

  get size(): number {
    return this.byId.size;
  }

  add(sub: StompSub): void {
    this.byId.set(sub.id, sub);
    if (sub.kind === 'topic') {
      this.byNum.set(sub.num, sub);
      this.topicSubs.push(sub);
    }
    this.receiverCache.clear();
  }

  remove(id: string): StompSub | undefined {
    const sub = this.byId.get(id);
    if (!sub) return undefined;
    this.byId.delete(id);
    if (sub.kind === 'topic') {
      this.byNum.delete(sub.num);
      this.topicSubs.splice(this.topicSubs.indexOf(sub), 1);
    }
    this.receiverCache.clear();
    return sub;
  }

  /** The topic subscriptions a message of `topic` goes to, in the order they were made. */
  receivers(topic: string): readonly StompSub[] {
    let hit = this.receiverCache.get(topic);
    if (hit) return hit;
    hit = this.topicSubs.filter((s) => s.patterns.some((p) => p.matches(topic)));
    if (this.receiverCache.size >= MAX_CACHED_TOPICS) this.receiverCache.clear();
    this.receiverCache.set(topic, hit);
    return hit;
  }

  /**
   * Whether `sub` takes an update of `topic`: one waiting for its own snapshot
   * skips deltas until that snapshot comes (statuses it takes at any time).
   */
  takes(sub: StompSub, kind: 'snapshot' | 'delta' | 'status', topic: string): boolean {
    if (!sub.waiting?.has(topic)) return true;
    if (kind === 'delta') return false;
    if (kind === 'snapshot') {
      sub.waiting.delete(topic);
      if (sub.waiting.size === 0) sub.waiting = null;
    }
    return true;
  }

  /** The first subscription to a reply destination, if the client made one. */
  replySub(destination: string): StompSub | undefined {
    for (const s of this.byId.values()) if (s.kind === 'reply' && s.destination === destination) return s;
    return undefined;
  }
}
