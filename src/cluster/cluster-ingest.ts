// Where a cluster node's publishes go: a topic of this origin's shard is
// sequenced here; any other is forwarded to its origin (NATS request on
// `<prefix>.pub.<shard>`) and acknowledged with the origin's version and
// epoch. Permissions were checked before, at this node, with its tokens.
// Without NATS, or with the shard's origin known gone, it fails at once
// (NO_RESPONDER); an origin that does not answer within publishTimeoutMs
// gives REQUEST_TIMEOUT (the publish may or may not have been applied).
// A keyed body over HTTP naming tables this node does not hold goes to the
// origin as JSON, typed there with the origin's tables.

import { validateTopic, type TopicBatch, type TopicStore } from '../engine/index.js';
import { ErrorCode, TickfanError, type Changes } from '../protocol/index.js';
import type { Ingest, PublishResult } from '../server/ingest.js';
import { batchFromJson, keyTypesIn, type KeyedBody } from '../server/keyed-json.js';
import type { ClusterStats } from './cluster-stats.js';
import type { Layout } from './layout.js';
import { publishJsonRequest, publishRequest, readPublishReply } from './messages.js';
import type { NatsLink } from './nats-link.js';
import type { Origin } from './origin.js';
import { shardOf } from './shard.js';
import type { Subjects } from './subjects.js';

export class ClusterIngest implements Ingest {
  constructor(
    private readonly origin: Origin | null,
    private readonly store: TopicStore,
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly layout: Layout,
    private readonly cstats: ClusterStats,
    private readonly timeoutMs: number,
  ) {}

  publish(topic: string, changes: Changes): PublishResult | Promise<PublishResult> {
    if (this.origin?.owns(topic)) return this.origin.sequence(topic, changes);
    // Refused here what the origin would refuse anyway, without a round trip.
    validateTopic(topic, this.store.limits.maxTopicLength);
    this.store.validateChanges(topic, changes);
    return this.forward(topic, () => publishRequest(topic, changes));
  }

  /** A keyed batch: sequenced here, or forwarded whole (the origin validates its rows; refusals come back typed). */
  publishBatch(topic: string, batch: TopicBatch): PublishResult | Promise<PublishResult> {
    if (this.origin?.owns(topic)) return this.origin.sequenceBatch(topic, batch);
    validateTopic(topic, this.store.limits.maxTopicLength);
    if (batch.fields.size > 0) this.store.validateChanges(topic, batch.fields);
    return this.forward(topic, () => publishRequest(topic, batch.fields, batch.tables));
  }

  /** A keyed body of POST /publish naming tables this node may not hold: read here when this origin sequences the topic, else by its origin. */
  publishJson(topic: string, body: KeyedBody): PublishResult | Promise<PublishResult> {
    if (this.origin?.owns(topic)) {
      const b = batchFromJson(body, keyTypesIn(this.store, topic));
      return b.tables === undefined ? this.origin.sequence(topic, b.fields) : this.origin.sequenceBatch(topic, b);
    }
    validateTopic(topic, this.store.limits.maxTopicLength);
    return this.forward(topic, () => publishJsonRequest(topic, body));
  }

  /** `request`: the NATS payload, made once the origin is known reachable. */
  private async forward(topic: string, request: () => Uint8Array): Promise<PublishResult> {
    const n = this.layout.of;
    if (!n) throw new TickfanError(ErrorCode.NO_RESPONDER, `no origin has announced itself on NATS yet: the publish to ${topic} was not applied`);
    const shard = shardOf(topic, n);
    if (this.link.state !== 'connected') {
      this.cstats.forwardFailures++;
      throw new TickfanError(ErrorCode.NO_RESPONDER, `this node has lost NATS for now (reconnecting): the publish to ${topic} was not applied`);
    }
    // Its origin left, or has not been heard of for a while (stopped, cut off): no point waiting for an answer.
    if (!this.layout.isLive(shard)) {
      this.cstats.forwardFailures++;
      throw new TickfanError(ErrorCode.NO_RESPONDER, `the origin of shard ${shard}/${n} has left or gone quiet: the publish to ${topic} was not applied (try again once it is back)`);
    }
    this.cstats.forwardedOut++;
    try {
      const reply = await this.link.nc.request(this.subjects.publish(shard), request(), { timeout: this.timeoutMs });
      return { topic, ...readPublishReply(reply.data) };
    } catch (err) {
      if (err instanceof TickfanError) throw err;
      this.cstats.forwardFailures++;
      const e = err as Error & { cause?: Error };
      if (e.name === 'NoRespondersError' || e.cause?.name === 'NoRespondersError') {
        throw new TickfanError(ErrorCode.NO_RESPONDER, `no origin holds shard ${shard}/${n} now: the publish to ${topic} was not applied`);
      }
      if (e.name === 'TimeoutError') {
        throw new TickfanError(ErrorCode.REQUEST_TIMEOUT, `the origin of shard ${shard}/${n} did not answer within ${this.timeoutMs} ms: the publish to ${topic} may or may not have been applied`);
      }
      throw new TickfanError(ErrorCode.NO_RESPONDER, `the publish to ${topic} could not reach its origin (${e.message}): it may not have been applied`, { cause: err });
    }
  }
}
