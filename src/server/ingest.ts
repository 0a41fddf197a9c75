// Where publishes go. In one thread: straight into the topic store and on to
// fan-out. With workers: through a ring to the sequencer, acknowledged later.

import type { TopicStore } from '../engine/index.js';
import type { Changes } from '../protocol/index.js';
import type { Fanout } from './fanout/index.js';
import type { ServerStats } from './stats.js';

/** A publish as sequenced: the topic's epoch and the version it got. */
export interface PublishResult {
  topic: string;
  epoch: number;
  version: number;
}

export interface Ingest {
  /** Applies (or forwards) a publish. Throws / rejects with a TickfanError when refused. */
  publish(topic: string, changes: Changes): PublishResult | Promise<PublishResult>;
  /** Fails what is still waiting and stops (called when the node closes). */
  close?(): void;
}

/** Single-thread ingest: this thread is the sequencer. */
export class LocalIngest implements Ingest {
  constructor(
    private readonly store: TopicStore,
    private readonly fanout: Fanout,
    private readonly stats: ServerStats,
  ) {}

  publish(topic: string, changes: Changes): PublishResult {
    const a = this.store.publish(topic, changes, Date.now());
    this.stats.publishes++;
    this.fanout.accepted(a);
    return { topic, epoch: a.topic.epoch, version: a.version };
  }
}
