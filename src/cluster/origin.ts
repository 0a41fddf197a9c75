// The origin role: the one sequencer of its shard's topics. Every accepted
// publish (its own clients', HTTP, edges' forwarded ones, the demo feed) goes
// out on `<prefix>.u.<topic>` as the encoded update the workers' ring carries
// (head + the protocol-2 Delta2, + a keyed batch's net row change); it answers forwarded publishes, image
// requests and layout requests, announces itself every 2 s, and sends its
// edges version heartbeats (version-beats.ts) every `clusterHeartbeatMs`.

import { headers, type Msg, type Subscription } from '@nats-io/transport-node';
import { TopicPattern, type Accepted, type Topic, type TopicBatch, type TopicStore } from '../engine/index.js';
import { Encoder, ErrorCode, TickfanError, type Changes } from '../protocol/index.js';
import type { Fanout } from '../server/fanout/index.js';
import type { PublishResult } from '../server/ingest.js';
import type { LogFn } from '../server/options.js';
import { batchFromJson, keyTypesIn } from '../server/keyed-json.js';
import { encodeUpdate, imageOf } from '../server/replication.js';
import { bigintMarks } from '../server/replication-bigints.js';
import { KeyedPartWriter } from '../server/replication-keyed.js';
import type { ServerStats } from '../server/stats.js';
import type { ClusterStats } from './cluster-stats.js';
import { ANNOUNCE_MS } from './layout.js';
import type { ShardLease } from './lease.js';
import { STATUS_HEADER, decodeJson, encodeJson, errorReply, imageToJson, readPublishRequest, type Announcement, type ImageRequest } from './messages.js';
import type { NatsLink } from './nats-link.js';
import { shardName, shardOf, type Shard } from './shard.js';
import type { Subjects } from './subjects.js';
import { BeatPlanner } from './version-beats.js';

export class Origin {
  private readonly enc = new Encoder();
  private readonly keyedParts = new KeyedPartWriter();
  private readonly subs: Subscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  private beatTimer: NodeJS.Timeout | null = null;
  private readonly beats = new BeatPlanner();
  private readonly since = Date.now();
  /** Diagnostics (loseUpdates): sequenced updates still to be kept off NATS, as if lost on the way. */
  private toLose = 0;

  constructor(
    private readonly id: string,
    readonly shard: Shard,
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly lease: ShardLease,
    private readonly store: TopicStore,
    private readonly fanout: Fanout,
    private readonly stats: ServerStats,
    private readonly cstats: ClusterStats,
    private readonly log: LogFn,
    private readonly beatMs: number,
  ) {}

  owns(topic: string): boolean {
    return shardOf(topic, this.shard.of) === this.shard.index;
  }

  /** Sequences one publish of this shard and sends it to the edges; throws TickfanError when refused. */
  sequence(topic: string, changes: Changes): PublishResult {
    this.mayPublish(topic);
    return this.send(this.store.publish(topic, changes, Date.now()));
  }

  /** Sequences one keyed batch (summary and row ops, one version); throws KeyedBatchError / TickfanError when refused. */
  sequenceBatch(topic: string, batch: TopicBatch): PublishResult {
    this.mayPublish(topic);
    return this.send(this.store.publishBatch(topic, batch, Date.now()));
  }

  private mayPublish(topic: string): void {
    if (!this.lease.held) {
      throw new TickfanError(ErrorCode.NO_RESPONDER, `this origin lost shard ${shardName(this.shard)} to another origin and no longer sequences ${topic}`);
    }
  }

  /** One accepted publish out to the edges (a keyed batch's net row change with it) and to this node's fan-out. */
  private send(a: Accepted): PublishResult {
    const t = a.topic;
    const topic = t.name;
    // The very Delta2 full-rate protocol-2 subscribers get: new fields named, no timestamp.
    const delta2 = this.enc.delta2(t, a.base, a.version, a.changes, { namesFrom: a.namesFrom, bind: false });
    const keyed = a.keyed === undefined ? undefined : this.keyedParts.encode(a.keyed, t.tables!);
    const body = encodeUpdate({ ts: t.ts, epoch: t.epoch, topicId: t.id, topic }, delta2, keyed, bigintMarks(a.changes, a.keyed));
    try {
      if (this.toLose > 0) {
        this.toLose--;
        throw new Error('lost on purpose (diagnostics)');
      }
      this.link.nc.publish(this.subjects.update(topic), body);
      this.cstats.sent(body.byteLength);
    } catch (err) {
      // Edges find the hole by version at the next update and heal it with an image.
      this.cstats.sendFailures++;
      this.log('warn', `NATS refused the update of ${topic} v${a.version} (${(err as Error).message}); edges heal at its next update`);
    }
    this.stats.publishes++;
    this.beats.touched(t);
    this.fanout.accepted(a, delta2);
    return { topic, epoch: t.epoch, version: a.version };
  }

  /** Diagnostics for tests and fault drills: the next `n` updates are not sent to the edges (they must notice by version). */
  loseUpdates(n: number): void {
    this.toLose = n;
  }

  /** Answers forwarded publishes, image, layout requests and edges' stale reports; announces itself. */
  start(): void {
    const nc = this.link.nc;
    const on = (subject: string, handle: (m: Msg) => void) => this.subs.push(nc.subscribe(subject, { callback: (err, m) => void (err || handle(m)) }));
    on(this.subjects.publish(this.shard.index), (m) => this.forwarded(m));
    on(this.subjects.images(this.shard.index), (m) => this.images(m));
    on(this.subjects.layout, (m) => m.respond(this.announcement('up')));
    on(this.subjects.stale(this.shard.index), (m) => this.staleAtEdge(m));
    this.announce();
    this.timer = setInterval(() => this.announce(), ANNOUNCE_MS);
    this.timer.unref();
    this.beatTimer = setInterval(() => this.beat(), this.beatMs);
    this.beatTimer.unref();
  }

  /** One version heartbeat: the versions of recently published topics and of a slice of all. */
  private beat(): void {
    if (this.link.state !== 'connected' || !this.lease.held) return;
    const limit = Math.max(1024, Math.floor((this.link.nc.info?.max_payload ?? 1024 * 1024) / 2));
    const mine = () => [...this.store.all()].filter((t) => this.owns(t.name));
    try {
      for (const body of this.beats.next(mine, limit)) this.link.nc.publish(this.subjects.beat(this.shard.index), body);
      this.cstats.beats++;
    } catch (err) {
      this.log('warn', `a version heartbeat was not sent (${(err as Error).message})`);
    }
  }

  private announcement(state: Announcement['state']): Uint8Array {
    return encodeJson({ id: this.id, shard: this.shard.index, of: this.shard.of, since: this.since, state } satisfies Announcement);
  }

  private announce(): void {
    if (this.link.state === 'connected' && this.lease.held) this.link.nc.publish(this.subjects.origins, this.announcement('up'));
  }

  private forwarded(m: Msg): void {
    let reply: Uint8Array;
    try {
      const req = readPublishRequest(m.data);
      const topic = req.topic;
      if (!this.owns(topic)) {
        throw new TickfanError(ErrorCode.BAD_REQUEST, `${topic} belongs to shard ${shardOf(topic, this.shard.of)}/${this.shard.of}, not to this origin's ${shardName(this.shard)}`);
      }
      // A keyed body from an edge that does not hold the topic's tables: read with this origin's.
      const b = req.json !== undefined ? batchFromJson(req.json, keyTypesIn(this.store, topic)) : { fields: req.changes, tables: req.tables };
      const r = b.tables === undefined ? this.sequence(topic, b.fields) : this.sequenceBatch(topic, { fields: b.fields, tables: b.tables });
      this.cstats.forwardedIn++;
      reply = encodeJson({ epoch: r.epoch, version: r.version });
    } catch (err) {
      if (!(err instanceof TickfanError)) this.log('error', `forwarded publish failed: ${(err as Error)?.stack ?? String(err)}`);
      reply = errorReply(err);
    }
    m.respond(reply);
  }

  /**
   * Images of the topics matching the request's patterns, taken in this one
   * turn (so exact at one point of the update stream), in replies that fit
   * NATS' max_payload, then an empty reply.
   */
  private images(m: Msg): void {
    let patterns: TopicPattern[] = [];
    try {
      const req = decodeJson<ImageRequest>(m.data, 'an image request');
      patterns = req.patterns.map((p) => TopicPattern.parse(p, this.store.limits.maxTopicLength));
    } catch (err) {
      this.log('warn', `bad image request: ${(err as Error).message}`);
    }
    const limit = Math.max(1024, Math.floor((this.link.nc.info?.max_payload ?? 1024 * 1024) / 2));
    const seen = new Set<Topic>();
    let parts: string[] = [];
    let size = 0;
    const flush = () => {
      try {
        if (parts.length) m.respond(`{"images":[${parts.join(',')}]}`);
      } catch (err) {
        // One topic larger than NATS' max_payload: its edges keep it stale.
        this.log('error', `an image reply did not fit NATS' max_payload: ${(err as Error).message}`);
      }
      parts = [];
      size = 0;
    };
    for (const p of patterns) {
      for (const t of this.store.matching(p)) {
        if (seen.has(t)) continue;
        seen.add(t);
        const json = JSON.stringify(imageToJson(imageOf(t)));
        const bytes = Buffer.byteLength(json);
        if (size + bytes > limit) flush();
        parts.push(json);
        size += bytes;
      }
    }
    flush();
    m.respond(new Uint8Array(0));
    this.cstats.imagesServed += seen.size;
  }

  /** An edge's publisher of a topic left: stale everywhere, if nothing newer came since. */
  private staleAtEdge(m: Msg): void {
    try {
      const at = decodeJson<{ topic: string; epoch: number; version: number }>(m.data, 'a stale report');
      const t = this.store.get(at.topic);
      if (t && this.owns(t.name) && !t.stale && t.epoch === at.epoch && t.version === at.version) this.fanout.setStale(t, true);
    } catch (err) {
      this.log('warn', `bad stale report: ${(err as Error).message}`);
    }
  }

  /** A topic of this shard went stale or ok here: the edges are told on its update subject. */
  statusChanged(topic: Topic, stale: boolean): void {
    if (!this.owns(topic.name) || this.link.state !== 'connected') return;
    const h = headers();
    h.set(STATUS_HEADER, stale ? 'stale' : 'ok');
    this.link.nc.publish(this.subjects.update(topic.name), encodeJson({ epoch: topic.epoch, version: topic.version }), { headers: h });
  }

  /** Tells the edges it leaves (they flag its topics stale at once) and stops answering. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.timer = this.beatTimer = null;
    if (this.link.state === 'connected') this.link.nc.publish(this.subjects.origins, this.announcement('leaving'));
    for (const s of this.subs) s.unsubscribe();
  }
}
