// A client-side subscription: one topic or pattern, a rate and a field subset.
// It emits typed updates carrying the whole state and the changes, and holds
// the (epoch, version) of every topic it covers.

import type { FieldValue, TickfanError } from '../protocol/index.js';
import { Emitter } from './emitter.js';
import type { TableOptions } from './table-options.js';
import type { KeyedReplica } from './keyed-replica.js';
import { KeyedViews } from './keyed-view.js';
import { TableView, type RowUpdate } from './keyed-table.js';
import type { TopicReplica } from './replica.js';
import { PositionWaiters, type HeldPosition, type PositionLike, type ReachedOptions } from './reached.js';
import { ClientError, ClientErrorCode } from './errors.js';

/** Options of `client.subscribe()`. */
export interface SubscribeOptions {
  /** At most this many updates per second per topic (conflated in between). 0 / absent: every update. */
  maxRate?: number;
  /** Only these fields (absent: all). */
  fields?: string[];
  /** Protocol 2: have each update carry its publish time in `ts` (protocol 1 always does). Default false. */
  timestamps?: boolean;
  /** Keyed topics: the view of each table by name, e.g. `{ bids: { depth: 10, fields: ['qty'] } }`; a table not listed: every row, every field. */
  tables?: Record<string, TableOptions>;
  /** Keyed topics: each update carries a checksum of the view, which the SDK verifies (a mismatch is healed by a snapshot; `stats.checksumMismatches`). */
  checksums?: boolean;
}

/** One applied snapshot or delta, as a subscriber sees it. */
export interface Update {
  topic: string;
  epoch: number;
  version: number;
  /** True when this update is a snapshot (first image, or a catch-up by snapshot). */
  snapshot: boolean;
  /** Fields set (or `null`: deleted) by this update; for a snapshot, every field. */
  changes: Record<string, FieldValue | null>;
  /** The topic's whole state after this update (restricted to the subscription's fields). */
  state: Record<string, FieldValue>;
  /** Publishes merged into this update (1 unless conflated). */
  updates: number;
  /** Server time (ms since 1970) of the last publish included; 0 for protocol-2 deltas unless `timestamps` was asked for. */
  ts: number;
  /**
   * Keyed topics: what this version did to each row of the view, all in this
   * one update (for a snapshot: every row, as `replace`, in sort order). Absent for flat topics.
   */
  rows?: readonly RowUpdate[];
}

/** A topic's status changed: `stale` (its publisher is gone, or it is quiet past its time-to-live) or `ok`. */
export interface StatusEvent {
  topic: string;
  status: 'ok' | 'stale';
}

/** The events of a Subscription: `update`, `status`, `error`. */
export interface SubscriptionEvents {
  update: Update;
  status: StatusEvent;
  error: TickfanError;
}

/** How a Subscription talks back to its client (kept narrow on purpose). */
export interface SubscriptionHost {
  sendPause(sub: Subscription, paused: boolean): void;
  unsubscribe(sub: Subscription): void;
  replica(topic: string): TopicReplica | undefined;
  /** A keyed topic's replica, also while its first image is being delivered. */
  keyed?(topic: string): KeyedReplica | undefined;
  /** The subscription waits for positions (`reached()`): tell it when its topics advance. */
  watch?(sub: Subscription, on: boolean): void;
}

/**
 * One subscription (a topic or a pattern), from `client.subscribe()`. It holds
 * the exact state of each topic it covers and emits `update` for every
 * snapshot and delta applied, `status` for stale/ok, `error` when refused.
 *
 * @example
 * const sub = client.subscribe('px.AAPL', { maxRate: 4 });
 * sub.on('update', (u) => console.log(u.version, u.state));
 * await sub.ready;
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private isReady = false;
  /** Topics this subscription covers (for patterns: those seen so far). */
  readonly topics = new Set<string>();
  paused = false;
  active = true;
  readonly fieldSet: ReadonlySet<string> | null;
  /** @internal Keyed topics: its own view of each (its tables, depths and fields), cut from the connection's. */
  readonly keyedViews: KeyedViews;
  private waiters: PositionWaiters | null = null;

  constructor(
    private readonly host: SubscriptionHost,
    readonly id: number,
    readonly pattern: string,
    readonly isPattern: boolean,
    readonly options: SubscribeOptions,
  ) {
    super();
    this.fieldSet = options.fields?.length ? new Set(options.fields) : null;
    this.keyedViews = new KeyedViews(options.tables); // a bad depth throws BAD_OPTION here, before anything is sent
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // A rejected `ready` nobody awaits must not crash the process.
    this.ready.catch(() => {});
  }

  /** For a single-topic subscription: the held state (fields subset applied). */
  get state(): Record<string, FieldValue> {
    const r = this.host.replica(this.pattern);
    return r ? r.view(this.fieldSet) : {};
  }

  /** For a single-topic subscription: the held version (-1 before the first snapshot). */
  get version(): number {
    return this.host.replica(this.pattern)?.version ?? -1;
  }

  get epoch(): number {
    return this.host.replica(this.pattern)?.epoch ?? 0;
  }

  /** Held state of one covered topic (useful for patterns). */
  stateOf(topic: string): Record<string, FieldValue> | undefined {
    return this.host.replica(topic)?.view(this.fieldSet);
  }

  /**
   * Keyed topics: one table of *this subscription's* view (of `topic`, for a
   * pattern), a live handle: `rows()` in the table's sort order, `get(key)`,
   * `size` — its depth and fields, whatever other subscriptions of the topic
   * on this client asked for.
   */
  table(name: string, topic: string = this.pattern): TableView {
    return new TableView(name, () => {
      const r = this.host.keyed?.(topic);
      return r === undefined ? undefined : this.keyedViews.table(r, name);
    });
  }

  /**
   * Resolves once this subscription holds the topic at `at.epoch` and
   * `at.version` or later (the held version advances after the `update`
   * callbacks of that version returned). `at` may be a reply carrying
   * `epoch` and `version` (and `topic`, which a pattern subscription needs).
   * Rejects with TICKFAN_ERR_TIMEOUT after `options.timeout` ms,
   * TICKFAN_ERR_POSITION_LOST when the topic began a newer epoch first (a
   * server restart), or the subscription's error when it ends.
   * @example
   * const reply = await client.request('orders.submit', order);
   * await blotter.reached(reply); // blotter.table('orders') now shows the order as the reply saw it, or later
   */
  reached(at: PositionLike, options: ReachedOptions = {}): Promise<HeldPosition> {
    const topic = typeof at?.topic === 'string' ? at.topic : this.isPattern ? undefined : this.pattern;
    if (topic === undefined) return Promise.reject(new ClientError(ClientErrorCode.BAD_OPTION, `reached() on the pattern subscription ${this.pattern} needs the position's topic`));
    if (!this.isPattern && topic !== this.pattern) return Promise.reject(new ClientError(ClientErrorCode.BAD_OPTION, `reached(): this subscription holds ${this.pattern}, not ${topic}`));
    if (!this.active) return Promise.reject(new ClientError(ClientErrorCode.CLOSED, `reached(): the subscription to ${this.pattern} has ended`));
    const waiters = (this.waiters ??= new PositionWaiters((t) => {
      const r = this.host.replica(t);
      return r && r.version >= 0 ? { epoch: r.epoch, version: r.version } : undefined;
    }));
    if (waiters.size === 0) this.host.watch?.(this, true);
    return waiters.wait(topic, at, options, () => {
      if (waiters.size === 0) this.host.watch?.(this, false);
    });
  }

  /** @internal One of the topics it covers advanced (its held version moved). */
  advanced(topic: string): void {
    this.waiters?.advanced(topic);
  }

  /** @internal The client closed: pending `reached()` calls fail with `err`. */
  endWaits(err: Error): void {
    this.waiters?.failAll(err);
  }

  /** Stop delivery; the server keeps conflating. */
  pause(): void {
    if (this.paused || !this.active) return;
    this.paused = true;
    this.host.sendPause(this, true);
  }

  /** Start again: the server sends one exact catch-up per topic. */
  resume(): void {
    if (!this.paused || !this.active) return;
    this.paused = false;
    this.host.sendPause(this, false);
  }

  /** Ends the subscription (the server stops sending its topics). */
  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.host.unsubscribe(this);
    this.waiters?.failAll(new ClientError(ClientErrorCode.CLOSED, `the subscription to ${this.pattern} was ended (unsubscribe)`));
  }

  /**
   * @internal For a single-topic subscription: the connection's state of its
   * topic shows what it asked for — for a keyed topic, a view at least as
   * deep and wide as its own (a wider subscription added to a topic already
   * held waits for the server's image of the widened view).
   */
  viewHeld(): boolean {
    const r = this.host.keyed?.(this.pattern);
    return r === undefined || this.keyedViews.covered(r);
  }

  /** Called by the client when the server acknowledged the subscription and sent its images. */
  markReady(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.resolveReady();
  }

  /** @internal The server refused the subscription. */
  fail(err: TickfanError): void {
    this.active = false;
    this.rejectReady(err);
    this.waiters?.failAll(err);
    this.emit('error', err);
  }

  /** @internal An update for one of its topics. */
  deliver(u: Update): void {
    this.topics.add(u.topic);
    if (!this.paused) this.emit('update', u);
    if (!this.isPattern) this.markReady();
  }

  /** @internal A status for one of its topics. */
  status(e: StatusEvent): void {
    this.emit('status', e);
  }
}
