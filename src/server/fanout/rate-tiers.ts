// Rate tiers: a throttled channel merges changes between flushes (exact
// conflation) and flushes at most `rate` times per second, on the leading
// edge: a quiet channel goes out at once, a busy one at its rate.

import type { Channel, Tier } from './state.js';
import type { Clock, TimerHandle } from './clock.js';

/** Channels of one throttled tier that have pending changes. */
class TierQueue {
  readonly dirty = new Set<Channel>();
  timer: TimerHandle | null = null;
  constructor(readonly intervalMs: number) {}
}

export class RateTiers {
  private readonly tiers = new Map<number, TierQueue>();

  constructor(
    /** Updates per second of each throttled tier, fastest first. */
    private readonly rates: readonly number[],
    private readonly clock: Clock,
    /** Sends a channel's merged changes. */
    private readonly flushChannel: (ch: Channel) => void,
  ) {
    for (const r of rates) this.tiers.set(r, new TierQueue(1000 / r));
  }

  /** Fastest tier not above `maxRate` (0 or less: every update). */
  pick(maxRate: number): Tier {
    if (!(maxRate > 0)) return 0;
    for (const r of this.rates) if (r <= maxRate) return r;
    return this.rates[this.rates.length - 1] ?? 0;
  }

  /** The channel has pending changes: flush it when its tier allows. */
  schedule(ch: Channel): void {
    if (ch.due) return;
    ch.due = true;
    const q = this.tiers.get(ch.tier)!;
    q.dirty.add(ch);
    if (q.timer) return;
    const wait = Math.max(0, ch.lastFlushAt + q.intervalMs - this.clock.now());
    q.timer = this.clock.setTimeout(() => this.flush(q), Math.min(wait, q.intervalMs));
  }

  /** A channel that is going away no longer waits for a flush. */
  forget(ch: Channel): void {
    if (!ch.due) return;
    this.tiers.get(ch.tier)?.dirty.delete(ch);
    ch.due = false;
  }

  private flush(q: TierQueue): void {
    q.timer = null;
    const now = this.clock.now();
    let next = Infinity;
    for (const ch of q.dirty) {
      const dueAt = ch.lastFlushAt + q.intervalMs;
      if (dueAt > now + 1) {
        next = Math.min(next, dueAt);
        continue;
      }
      q.dirty.delete(ch);
      ch.due = false;
      ch.lastFlushAt = now;
      this.flushChannel(ch);
    }
    if (q.dirty.size) q.timer = this.clock.setTimeout(() => this.flush(q), Math.max(1, next - now));
  }

  stop(): void {
    for (const q of this.tiers.values()) if (q.timer) this.clock.clearTimeout(q.timer);
  }
}
