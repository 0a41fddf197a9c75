// The sequencer: the one owner of versions and state when tickfan runs with
// fan-out workers. It drains the workers' publish rings, applies each publish
// to the topic store, and writes the sequenced update (the Delta message
// clients receive) once into the broadcast ring every worker reads.

import type { Accepted, TopicBatch, TopicStore } from '../engine/index.js';
import { Encoder, ErrorCode, TickfanError, decodeMessage, type Changes } from '../protocol/index.js';
import { imageOf, type TopicImage } from '../server/replication.js';
import { bigintMarks } from '../server/replication-bigints.js';
import { KeyedPartWriter, refusalOf, type KeyedRefusal } from '../server/replication-keyed.js';
import { NO_ORIGIN, readPublish, rejectRecord, statusRecord, updateRecord } from './records.js';
import { RingReader, RingWriter } from './shared-ring.js';

/** What became of one worker publish, kept a while for a worker that resyncs past its answer. */
export type PublishOutcome = { requestId: number; epoch: number; version: number } | { requestId: number; code: number; message: string; refusal?: KeyedRefusal };

const RECENT_OUTCOMES = 65_536;

export interface SequencerStats {
  publishes: number;
  rejected: number;
  commits: number;
}

export class Sequencer {
  private readonly enc = new Encoder();
  private readonly keyedParts = new KeyedPartWriter();
  private commitScheduled = false;
  private running = false;
  readonly stats: SequencerStats = { publishes: 0, rejected: 0, commits: 0 };
  /** Per worker: request id → outcome, oldest first, bounded. */
  private readonly outcomes: Map<number, PublishOutcome>[];

  constructor(
    readonly store: TopicStore,
    private readonly broadcast: RingWriter,
    private readonly publishRings: RingReader[],
    private readonly doorbell: Int32Array,
  ) {
    this.outcomes = publishRings.map(() => new Map());
  }

  private remember(origin: number, o: PublishOutcome): void {
    const m = this.outcomes[origin];
    if (!m) return;
    m.set(o.requestId, o);
    if (m.size > RECENT_OUTCOMES) m.delete(m.keys().next().value!);
  }

  /** Outcomes of a worker's requests that the sequencer already handled. */
  outcomesFor(origin: number, requestIds: readonly number[]): PublishOutcome[] {
    const m = this.outcomes[origin];
    if (!m) return [];
    return requestIds.map((id) => m.get(id)).filter((o): o is PublishOutcome => o !== undefined);
  }

  /** Applies one publish and queues its sequenced update for the workers. Throws TickfanError when refused. */
  publish(topic: string, changes: Changes, origin = NO_ORIGIN, requestId = 0): { epoch: number; version: number } {
    return this.sequenced(this.store.publish(topic, changes, Date.now()), origin, requestId);
  }

  /** Applies one keyed batch (summary and row ops, one version); throws KeyedBatchError / TickfanError when refused. */
  publishBatch(topic: string, batch: TopicBatch, origin = NO_ORIGIN, requestId = 0): { epoch: number; version: number } {
    return this.sequenced(this.store.publishBatch(topic, batch, Date.now()), origin, requestId);
  }

  private sequenced(a: Accepted, origin: number, requestId: number): { epoch: number; version: number } {
    const t = a.topic;
    // The very Delta2 full-rate protocol-2 subscribers get: new fields named, no timestamp.
    const delta2 = this.enc.delta2(t, a.base, a.version, a.changes, { namesFrom: a.namesFrom, bind: false });
    const keyed = a.keyed === undefined ? undefined : this.keyedParts.encode(a.keyed, t.tables!);
    this.broadcast.write(updateRecord(origin, requestId, { ts: t.ts, epoch: t.epoch, topicId: t.id, topic: t.name }, delta2, keyed, bigintMarks(a.changes, a.keyed)));
    this.stats.publishes++;
    this.scheduleCommit();
    return { epoch: t.epoch, version: a.version };
  }

  setStale(topic: string, stale: boolean): void {
    const t = this.store.get(topic);
    if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${topic}`);
    t.stale = stale;
    this.broadcast.write(statusRecord(topic, stale));
    this.scheduleCommit();
  }

  /** Every topic's image, and the ring position that image is exact at. */
  images(): { position: number; topics: TopicImage[] } {
    this.commitNow();
    const topics: TopicImage[] = [];
    for (const t of this.store.all()) {
      topics.push(imageOf(t));
    }
    return { position: this.broadcast.position, topics };
  }

  private scheduleCommit(): void {
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    setImmediate(() => this.commitNow());
  }

  private commitNow(): void {
    this.commitScheduled = false;
    this.broadcast.commit();
    this.stats.commits++;
  }

  /** Drains every publish ring once; returns how many publishes it handled. */
  drain(): number {
    let n = 0;
    this.publishRings.forEach((ring, origin) => {
      const res = ring.read((rec) => {
        n++;
        const { requestId, message, declare } = readPublish(rec);
        try {
          const m = decodeMessage(message.subarray(4));
          if (m.type !== 'publish') throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `expected a publish, got ${m.type}`);
          // The declarations as published (the Publish's bindings leave maxRows out).
          const tables = m.keyed && (declare ? { declare, ops: m.keyed.ops } : m.keyed);
          const r = tables ? this.publishBatch(m.topic, { fields: m.changes, tables }, origin, requestId) : this.publish(m.topic, m.changes, origin, requestId);
          this.remember(origin, { requestId, ...r });
        } catch (err) {
          this.stats.rejected++;
          const e = err instanceof TickfanError ? err : new TickfanError(ErrorCode.INTERNAL, 'internal error');
          const refusal = refusalOf(e);
          this.remember(origin, { requestId, code: e.errorCode, message: e.message, ...(refusal ? { refusal } : {}) });
          this.broadcast.write(rejectRecord(origin, requestId, e.errorCode, e.message, refusal));
          this.scheduleCommit();
        }
      });
      // A worker's publish ring is sized so this cannot happen unless the
      // sequencer stalls for a long time; its publishers then time out.
      if (res.overrun) ring.seek(ring.committed());
    });
    if (n) this.commitNow();
    return n;
  }

  /** Runs the drain loop until stop(): woken by the workers' doorbell. */
  async run(): Promise<void> {
    this.running = true;
    let seen = Atomics.load(this.doorbell, 0);
    while (this.running) {
      this.drain();
      const r = Atomics.waitAsync(this.doorbell, 0, seen, 1000);
      if (r.async) await r.value;
      seen = Atomics.load(this.doorbell, 0);
    }
  }

  stop(): void {
    this.running = false;
    Atomics.add(this.doorbell, 0, 1);
    Atomics.notify(this.doorbell, 0);
  }
}
