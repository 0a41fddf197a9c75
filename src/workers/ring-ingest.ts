// A worker's ingest: publishes go to the sequencer through this worker's
// publish ring; the answer (the version assigned, or a refusal) comes back
// through the broadcast ring as a record tagged with this worker's index.

import { KeyedBatchError, type TopicBatch } from '../engine/index.js';
import { Encoder, ErrorCode, TickfanError, keyProblem, type Changes, type KeyType, type KeyedBatchMsg } from '../protocol/index.js';
import type { Ingest, PublishResult } from '../server/ingest.js';
import { refusalError, type KeyedRefusal } from '../server/replication-keyed.js';
import { MAX_REQUEST_ID, publishRecord } from './records.js';
import type { RingWriter } from './shared-ring.js';

interface Waiting {
  topic: string;
  resolve: (r: PublishResult) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class RingIngest implements Ingest {
  private readonly enc = new Encoder();
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private commitQueued = false;

  constructor(
    private readonly ring: RingWriter,
    private readonly doorbell: Int32Array,
    private readonly timeoutMs = 10_000,
  ) {}

  publish(topic: string, changes: Changes): Promise<PublishResult> {
    return this.send(topic, changes);
  }

  /**
   * A keyed batch travels to the sequencer as the protocol's Publish (its
   * summary fields, declarations and row ops); the sequencer applies it as
   * one version or refuses it, and a refusal comes back as the same typed
   * KeyedBatchError (table, row, reason).
   */
  publishBatch(topic: string, batch: TopicBatch): Promise<PublishResult> {
    if (batch.tables === undefined) return this.send(topic, batch.fields);
    try {
      checkKeys(batch.tables as KeyedBatchMsg);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.send(topic, batch.fields, batch.tables as KeyedBatchMsg);
  }

  private send(topic: string, changes: Changes, keyed?: KeyedBatchMsg): Promise<PublishResult> {
    const id = this.nextId;
    this.nextId = (this.nextId % MAX_REQUEST_ID) + 1;
    let rec: Uint8Array;
    try {
      rec = publishRecord(id, this.enc.publish(0, topic, changes, keyed), keyed?.declare);
      this.ring.write(rec);
    } catch (err) {
      return Promise.reject(err instanceof TickfanError ? err : new TickfanError(ErrorCode.VALUE_TOO_LARGE, (err as Error).message));
    }
    this.queueCommit();
    return new Promise<PublishResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new TickfanError(ErrorCode.INTERNAL, `the sequencer did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { topic, resolve, reject, timer });
    });
  }

  /** Publishes written in one turn of the event loop share one commit and one doorbell. */
  private queueCommit(): void {
    if (this.commitQueued) return;
    this.commitQueued = true;
    queueMicrotask(() => {
      this.commitQueued = false;
      this.ring.commit();
      Atomics.add(this.doorbell, 0, 1);
      Atomics.notify(this.doorbell, 0);
    });
  }

  accepted(id: number, epoch: number, version: number): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve({ topic: w.topic, epoch, version });
  }

  rejected(id: number, code: number, message: string, refusal?: KeyedRefusal): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.reject(refusalError(code, message, refusal));
  }

  /** Request ids still waiting for the sequencer's answer. */
  pendingIds(): number[] {
    return [...this.waiting.keys()];
  }

  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new TickfanError(ErrorCode.INTERNAL, 'the server is shutting down'));
    }
    this.waiting.clear();
  }
}

/**
 * Keys the Publish op stream cannot carry (keyProblem's: a float, an unsafe
 * integer, an empty or overlong string; or a table's keys of two types),
 * refused here as the sequencer's engine would: BAD_KEY naming table, row
 * and op. A table's key type is its declaration's in this batch, else its
 * first key's (the sequencer checks that against the table).
 */
function checkKeys(batch: KeyedBatchMsg): void {
  const types = new Map<string, KeyType>();
  for (const s of batch.declare ?? []) if (!types.has(s.name)) types.set(s.name, s.key);
  batch.ops.forEach((op, opIndex) => {
    const keys = 'key' in op ? [op.key] : op.op === 'deleteRange' ? [op.from, op.to].filter((k) => k !== undefined) : [];
    for (const key of keys) {
      const type = types.get(op.table) ?? (typeof key === 'string' ? 'string' : 'int');
      types.set(op.table, type);
      const why = keyProblem(type, key);
      if (why !== undefined) {
        const shown = JSON.stringify(typeof key === 'bigint' ? String(key) : key);
        throw new KeyedBatchError('badKey', ErrorCode.BAD_KEY, `${op.op === 'deleteRange' ? 'deleteRange bound' : 'key'} ${shown}: ${why}`, { table: op.table, opIndex });
      }
    }
  });
}
