// Where publishes go. In one thread: straight into the topic store and on to
// fan-out. With workers: through a ring to the sequencer, acknowledged later.

import type { TopicBatch, TopicStore } from '../engine/index.js';
import { ErrorCode, TickfanError, type Changes } from '../protocol/index.js';
import type { Fanout } from './fanout/index.js';
import type { KeyedBody } from './keyed-json.js';
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
  /**
   * Applies (or forwards) a keyed batch (summary and row ops, one version);
   * refused with KeyedBatchError naming table and row. Every layout has it
   * (workers and cluster edges replicate row changes: replication.ts); an
   * ingest without it makes callers refuse keyed batches with NOT_SUPPORTED.
   */
  publishBatch?(topic: string, batch: TopicBatch): PublishResult | Promise<PublishResult>;
  /**
   * A keyed batch in its POST /publish JSON form, for a node that does not
   * hold a table the body names (a cluster edge not following the topic):
   * read with the tables of the node that sequences the topic, refused there
   * as a single node would (KeyedBatchError naming table and row).
   */
  publishJson?(topic: string, body: KeyedBody): PublishResult | Promise<PublishResult>;
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

  publishBatch(topic: string, batch: TopicBatch): PublishResult {
    const a = this.store.publishBatch(topic, batch, Date.now());
    this.stats.publishes++;
    this.fanout.accepted(a);
    return { topic, epoch: a.topic.epoch, version: a.version };
  }
}

/** The refusal of a keyed batch where the ingest cannot take one (see Ingest.publishBatch). */
export function keyedNotSupported(topic: string): TickfanError {
  return new TickfanError(
    ErrorCode.NOT_SUPPORTED,
    `publish to ${topic}: this server's ingest takes no keyed batches (an Ingest without publishBatch); nothing was applied`,
  );
}
