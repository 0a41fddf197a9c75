// What an edge keeps of a topic's updates while it waits for the topic's
// image: the updates themselves (a few, in arrival order, which is the
// origin's order) and the newest (epoch, version) it has heard of at all.
// The image can be older than updates that arrived before it was applied
// (the answer is read asynchronously, updates synchronously), so after the
// image the kept updates are replayed on it, and a replica that still sits
// below the newest version heard of is not current: it asks again. An edge
// never calls a replica current below a version it has seen.

/** One update that arrived while its topic was healing. */
export interface HeldUpdate {
  epoch: number;
  version: number;
  /** The encoded update (replication.ts), copied: NATS reuses its buffer. */
  body: Uint8Array;
}

/** Updates kept per healing topic; past it only the newest version heard of is kept (and the replica asks again). */
export const HELD_PER_TOPIC = 64;

interface Held {
  updates: HeldUpdate[];
  /** The newest update heard of (the last to arrive: one origin sends a topic's updates in order). */
  last: { epoch: number; version: number };
}

export class HealBuffer {
  private readonly held = new Map<string, Held>();
  /** Updates kept now, over every topic. */
  size = 0;

  /** Keeps an update of a healing topic (or only its version, past HELD_PER_TOPIC). */
  hold(name: string, epoch: number, version: number, body: Uint8Array): void {
    let h = this.held.get(name);
    if (!h) this.held.set(name, (h = { updates: [], last: { epoch, version } }));
    h.last = { epoch, version };
    // Another epoch: what was kept belongs to a history that has ended.
    if (h.updates.length && h.updates[0]!.epoch !== epoch) {
      this.size -= h.updates.length;
      h.updates = [];
    }
    if (h.updates.length < HELD_PER_TOPIC) {
      h.updates.push({ epoch, version, body: body.slice() });
      this.size++;
    }
  }

  /** The kept updates of `name` and the newest version heard of, forgotten here. */
  take(name: string): Held | undefined {
    const h = this.held.get(name);
    if (!h) return undefined;
    this.held.delete(name);
    this.size -= h.updates.length;
    return h;
  }

  /** Topics with kept updates. */
  names(): string[] {
    return [...this.held.keys()];
  }

  /** The topic no longer heals (nobody follows it, or its origin lacks it): nothing to replay. */
  forget(name: string): void {
    this.take(name);
  }

  clear(): void {
    this.held.clear();
    this.size = 0;
  }
}
