// Channels: all subscribers of one topic at one rate tier with one field
// subset. Each update is encoded once per channel (never per subscriber), and
// each channel is one uWebSockets.js topic on the native fast path.

import type { Topic } from '../../engine/index.js';
import type { Changes } from '../../protocol/index.js';
import type { TopicSub } from './conn.js';

/** Rate tier 0 is "every update"; others are updates per second. */
export type Tier = number;

export class Channel {
  readonly subs = new Set<TopicSub>();
  /** Subscribers not on the fast path (served one by one). */
  readonly outside = new Set<TopicSub>();
  /** Subscribers on the fast path. */
  fast = 0;
  /** Throttled tiers: changes merged since the last flush. */
  pending: Changes = new Map();
  pendingUpdates = 0;
  /** The version the channel's stream has reached (queued or published). */
  flushedVersion: number;
  /** The version its published frames have reached. */
  publishedVersion: number;
  /** Messages for the fast path, published at the end of this turn. */
  readonly queue: Uint8Array[] = [];
  queued = false;
  /** Frames published on the uWS topic so far. */
  frames = 0;
  readonly uwsTopic: string;
  /** Clock time of its last flush (-Infinity: never, so the first goes out at once). */
  lastFlushAt = -Infinity;
  /** Waiting in its tier's queue for a flush. */
  due = false;
  constructor(
    readonly key: string,
    readonly topic: Topic,
    readonly tier: Tier,
    readonly fields: ReadonlySet<string> | null,
    id: number,
  ) {
    this.flushedVersion = this.publishedVersion = topic.version;
    this.uwsTopic = `c${id}`;
  }

  /** Forgets changes merged for a flush (the stream continues from `version`). */
  resetPending(version: number): void {
    this.pending = new Map();
    this.pendingUpdates = 0;
    this.flushedVersion = version;
  }
}

export function fieldsKey(fields: ReadonlySet<string> | null): string {
  return fields ? [...fields].sort().join(',') : '*';
}

/** The channels of every topic, created on first subscriber and dropped with the last. */
export class Channels {
  private readonly byTopic = new Map<Topic, Map<string, Channel>>();
  private nextId = 1;

  of(topic: Topic): Iterable<Channel> | undefined {
    return this.byTopic.get(topic)?.values();
  }

  /** The channel for (topic, tier, fields), created when missing. */
  get(topic: Topic, tier: Tier, fields: ReadonlySet<string> | null): Channel {
    let chans = this.byTopic.get(topic);
    if (!chans) this.byTopic.set(topic, (chans = new Map()));
    const key = `${tier}|${fieldsKey(fields)}`;
    let ch = chans.get(key);
    if (!ch) chans.set(key, (ch = new Channel(key, topic, tier, fields, this.nextId++)));
    return ch;
  }

  /** Drops a channel that has no subscriber left. */
  drop(ch: Channel): void {
    const chans = this.byTopic.get(ch.topic);
    chans?.delete(ch.key);
    if (chans && chans.size === 0) this.byTopic.delete(ch.topic);
  }
}
