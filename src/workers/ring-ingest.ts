// A worker's ingest: publishes go to the sequencer through this worker's
// publish ring; the answer (the version assigned, or a refusal) comes back
// through the broadcast ring as a record tagged with this worker's index.

import { Encoder, ErrorCode, TickfanError, type Changes } from '../protocol/index.js';
import type { Ingest, PublishResult } from '../server/ingest.js';
import { publishRecord } from './records.js';
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
    const id = this.nextId;
    this.nextId = (this.nextId % 0xfffffffe) + 1;
    let rec: Uint8Array;
    try {
      rec = publishRecord(id, this.enc.publish(0, topic, changes));
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

  rejected(id: number, code: number, message: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.reject(new TickfanError(code as ErrorCode, message));
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
