// Mirrors the order service's record (the truth) into the desks' blotter
// topics: every change marks its order dirty; one keyed batch per desk at a
// time carries the latest full row of each dirty order (`replace`), so rows
// only move forward. A failed publish marks its orders dirty again and is
// retried; a new epoch (the server restarted) or the first publish of a run
// restates the whole blotter (clear, then every order of the desk).

import type { BatchPublish, BatchRowOp } from '../../client/index.js';
import type { FieldValue } from '../../protocol/index.js';
import { ORDERS_TABLE, blotterTopic, type Order, type RowPosition } from './order-types.js';

/** Publishes one keyed batch and resolves with the version it got (the SDK's `client.publishBatch`, or in-process). */
export type PublishBatchFn = (topic: string, batch: BatchPublish) => Promise<{ epoch: number; version: number }>;

interface DeskState {
  readonly topic: string;
  readonly dirty: Set<string>;
  inFlight: boolean;
  /** Restate every row with the next batch (first publish of this run, or a new epoch). */
  image: boolean;
  epoch: number | null;
  last: RowPosition | null;
  retryMs: number;
  scheduled: boolean;
}

interface Waiter {
  readonly rev: number;
  readonly resolve: (p: RowPosition) => void;
}

export interface MirrorHooks {
  /** The desk's orders, as recorded now. */
  ordersOf(desk: string): Iterable<Order>;
  order(id: string): Order | undefined;
  rowOf(o: Order): Record<string, FieldValue>;
  /** A publish failed (it is retried). */
  failed(topic: string, err: unknown): void;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

export class BlotterMirror {
  private readonly desks = new Map<string, DeskState>();
  /** Per order: the latest rev acknowledged in a blotter, and where. */
  private readonly written = new Map<string, { rev: number; at: RowPosition }>();
  private readonly waiters = new Map<string, Waiter[]>();
  private closed = false;
  /** Batches acknowledged, and failed (then retried). */
  batches = 0;
  failures = 0;

  constructor(
    private readonly publish: PublishBatchFn,
    private readonly hooks: MirrorHooks,
  ) {}

  /** `o` changed in the record: its row goes out with the desk's next batch. */
  touch(o: Order): void {
    const d = this.desk(o.desk);
    d.dirty.add(o.id);
    this.schedule(o.desk, d, 0);
  }

  /** Resolves once a blotter batch carrying `o` at its current rev (or later) was acknowledged: where it was written. */
  rowWritten(o: Order): Promise<RowPosition> {
    const w = this.written.get(o.id);
    if (w && w.rev >= o.rev) return Promise.resolve(w.at);
    return new Promise((resolve) => {
      const list = this.waiters.get(o.id) ?? [];
      list.push({ rev: o.rev, resolve });
      this.waiters.set(o.id, list);
    });
  }

  /** True when every change is published and acknowledged (nothing dirty, nothing in flight). */
  get settled(): boolean {
    for (const d of this.desks.values()) if (d.dirty.size > 0 || d.inFlight || d.image) return false;
    return true;
  }

  /** The last position acknowledged for a desk's blotter (null before its first batch). */
  positionOf(desk: string): RowPosition | null {
    return this.desks.get(desk)?.last ?? null;
  }

  close(): void {
    this.closed = true;
  }

  private desk(desk: string): DeskState {
    let d = this.desks.get(desk);
    if (!d) this.desks.set(desk, (d = { topic: blotterTopic(desk), dirty: new Set(), inFlight: false, image: true, epoch: null, last: null, retryMs: RETRY_MIN_MS, scheduled: false }));
    return d;
  }

  /** Flushes soon: changes made in the same turn go out in one batch. */
  private schedule(desk: string, d: DeskState, delayMs: number): void {
    if (d.scheduled || this.closed) return;
    d.scheduled = true;
    const run = () => {
      d.scheduled = false;
      this.flush(desk, d);
    };
    if (delayMs > 0) setTimeout(run, delayMs).unref?.();
    else queueMicrotask(run);
  }

  private flush(desk: string, d: DeskState): void {
    if (d.inFlight || this.closed || (d.dirty.size === 0 && !d.image)) return;
    const image = d.image;
    const ids = image ? [...this.hooks.ordersOf(desk)].map((o) => o.id) : [...d.dirty];
    d.dirty.clear();
    d.image = false;
    const ops: BatchRowOp[] = image ? [{ op: 'clear', table: ORDERS_TABLE.name }] : [];
    const revs = new Map<string, number>();
    for (const id of ids) {
      const o = this.hooks.order(id)!;
      revs.set(id, o.rev);
      ops.push({ op: 'replace', table: ORDERS_TABLE.name, key: id, fields: this.hooks.rowOf(o) });
    }
    d.inFlight = true;
    // Declared with every batch (a no-op once declared), so a restarted server takes the first batch as is.
    this.publish(d.topic, { tables: { declare: [ORDERS_TABLE], ops } }).then(
      (ack) => {
        d.inFlight = false;
        d.retryMs = RETRY_MIN_MS;
        this.batches++;
        // Another epoch: the server lost the topic (a restart); this batch landed on an empty blotter.
        if (d.epoch !== null && ack.epoch !== d.epoch && !image) d.image = true;
        d.epoch = ack.epoch;
        const at: RowPosition = { topic: d.topic, epoch: ack.epoch, version: ack.version };
        d.last = at;
        for (const [id, rev] of revs) this.acknowledged(id, rev, at);
        this.schedule(desk, d, 0);
      },
      (err: unknown) => {
        d.inFlight = false;
        this.failures++;
        // Not known to be applied: the latest rows go out again (replace is idempotent, so a batch applied twice is harmless).
        if (image) d.image = true;
        for (const id of ids) d.dirty.add(id);
        this.hooks.failed(d.topic, err);
        const wait = d.retryMs;
        d.retryMs = Math.min(RETRY_MAX_MS, d.retryMs * 2);
        this.schedule(desk, d, wait);
      },
    );
  }

  private acknowledged(id: string, rev: number, at: RowPosition): void {
    const w = this.written.get(id);
    if (!w || w.rev <= rev) this.written.set(id, { rev, at });
    const list = this.waiters.get(id);
    if (!list) return;
    const still = list.filter((x) => {
      if (x.rev > rev) return true;
      x.resolve(at);
      return false;
    });
    if (still.length) this.waiters.set(id, still);
    else this.waiters.delete(id);
  }
}
