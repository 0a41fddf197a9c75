// `sub.reached(position)`: waiting until a subscription holds a topic at an
// (epoch, version) or later — e.g. the version a service's reply says it wrote,
// so a desk knows its blotter has caught up with the answer it got.

import { ClientError, ClientErrorCode } from './errors.js';

/**
 * A position to wait for: `epoch` and `version` (numbers), and for a pattern
 * subscription the `topic`. A reply carrying these fields can be passed as is.
 */
export interface PositionLike {
  readonly topic?: unknown;
  readonly epoch?: unknown;
  readonly version?: unknown;
}

/** Options of `sub.reached()`. */
export interface ReachedOptions {
  /** Give up after this many milliseconds (TICKFAN_ERR_TIMEOUT). Default: wait as long as the subscription lives. */
  timeout?: number;
}

/** What `sub.reached()` resolves with: the position held when it was reached (at or past the one asked for). */
export interface HeldPosition {
  topic: string;
  epoch: number;
  version: number;
}

interface Waiter {
  readonly topic: string;
  readonly epoch: number;
  readonly version: number;
  resolve(p: HeldPosition): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The pending `reached()` calls of one subscription. */
export class PositionWaiters {
  private readonly waiting = new Set<Waiter>();

  constructor(private readonly held: (topic: string) => { epoch: number; version: number } | undefined) {}

  get size(): number {
    return this.waiting.size;
  }

  /** A waiter for `at` on `topic`, settled at once when it is already held (or lost). */
  wait(topic: string, at: PositionLike, options: ReachedOptions, onSettled: () => void): Promise<HeldPosition> {
    const epoch = at?.epoch;
    const version = at?.version;
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
      return Promise.reject(new ClientError(ClientErrorCode.BAD_OPTION, `reached() needs a position { epoch, version } of whole numbers (got epoch ${String(epoch)}, version ${String(version)})`));
    }
    const timeout = options.timeout;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) return Promise.reject(new ClientError(ClientErrorCode.BAD_OPTION, 'reached(): timeout must be a number of milliseconds ≥ 0'));
    return new Promise<HeldPosition>((resolve, reject) => {
      const w: Waiter = {
        topic,
        epoch,
        version,
        resolve: (p) => (this.drop(w), onSettled(), resolve(p)),
        reject: (err) => (this.drop(w), onSettled(), reject(err)),
        timer: undefined,
      };
      this.waiting.add(w);
      if (this.settle(w)) return;
      if (timeout !== undefined) {
        w.timer = setTimeout(() => w.reject(new ClientError(ClientErrorCode.TIMEOUT, `${topic} did not reach ${epoch}:${version} within ${timeout} ms (held: ${this.describe(topic)})`)), timeout);
        (w.timer as { unref?: () => void }).unref?.();
      }
    });
  }

  /** `topic` advanced: settle whoever waited for it. */
  advanced(topic: string): void {
    for (const w of [...this.waiting]) if (w.topic === topic) this.settle(w);
  }

  /** The subscription ended: every waiter fails with `err`. */
  failAll(err: Error): void {
    for (const w of [...this.waiting]) w.reject(err);
  }

  private settle(w: Waiter): boolean {
    const h = this.held(w.topic);
    if (!h) return false;
    if (h.epoch === w.epoch && h.version >= w.version) return w.resolve({ topic: w.topic, epoch: h.epoch, version: h.version }), true;
    // Epochs only grow (they come from the server's clock): a newer one means the awaited history ended.
    if (h.epoch > w.epoch) {
      w.reject(new ClientError(ClientErrorCode.POSITION_LOST, `${w.topic} began a new epoch (${h.epoch}, a server restart) before ${w.epoch}:${w.version} was held: read the table as it is now`));
      return true;
    }
    return false;
  }

  private describe(topic: string): string {
    const h = this.held(topic);
    return h ? `${h.epoch}:${h.version}` : 'nothing yet';
  }

  private drop(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    this.waiting.delete(w);
  }
}
