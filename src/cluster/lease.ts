// Ownership of a shard: an origin holds a lease on `s<i>of<n>` in a JetStream
// KV bucket (history 1, entries expire 6 s after their last write). It takes
// the key with a create (refused while another origin holds it), renews it by
// compare-and-set every 2 s and deletes it when it stops; if it dies, the key
// expires and another origin may take the shard. One sequencer per topic.
// A starting origin that finds the lease held watches it: renewed, its holder
// is alive and this one refuses at once; not renewed (the holder crashed and
// this is its restart), it waits for the lease to expire, up to leaseWaitMs,
// so that a supervisor restarting a crashed origin need not retry blindly.

import { Kvm, type KV } from '@nats-io/kv';
import { hostname } from 'node:os';
import type { LogFn } from '../server/options.js';
import type { NatsLink } from './nats-link.js';
import { shardName, type Shard } from './shard.js';

export const LEASE_TTL_MS = 6_000;
export const LEASE_RENEW_MS = 2_000;

/** Who holds a shard, as stored in its lease. */
export interface LeaseHolder {
  id: string;
  shard: string;
  host: string;
  pid: number;
  since: number;
}

/** A second origin for a shard (or one that disagrees on n) refuses to start. */
export class ShardTakenError extends Error {
  readonly code = 'TICKFAN_ERR_SHARD_TAKEN';
  constructor(
    message: string,
    readonly holder: LeaseHolder | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ShardTakenError';
  }
}

const keyOf = (s: Shard) => `s${s.index}of${s.of}`;

function describe(h: LeaseHolder | null): string {
  return h ? `origin ${h.id} (${h.host}, pid ${h.pid}, since ${new Date(h.since).toISOString()})` : 'another origin';
}

export class ShardLease {
  /** True while this origin holds the shard and may sequence its topics (once false, for good). */
  held = true;
  renewals = 0;
  private revision: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly losts: ((holder: LeaseHolder | null) => void)[] = [];

  private constructor(
    private readonly kv: KV,
    private readonly link: NatsLink,
    private readonly shard: Shard,
    private readonly me: LeaseHolder,
    revision: number,
    private readonly log: LogFn,
  ) {
    this.revision = revision;
    this.timer = setInterval(() => void this.renew(), LEASE_RENEW_MS);
    this.timer.unref();
  }

  /**
   * Takes the shard's lease; rejects with ShardTakenError while a live
   * origin holds it, or when one that stopped renewing it still holds it
   * after `waitMs`.
   */
  static async take(link: NatsLink, bucket: string, shard: Shard, id: string, log: LogFn, waitMs = 0): Promise<ShardLease> {
    let kv: KV;
    try {
      kv = await new Kvm(link.nc).create(bucket, { history: 1, ttl: LEASE_TTL_MS });
    } catch (err) {
      throw new Error(`cannot open the shard lease bucket ${bucket} in NATS: ${(err as Error).message} (origins need JetStream: run nats-server -js)`, { cause: err });
    }
    // Every origin of a cluster cuts the topics the same way.
    for await (const key of await kv.keys()) {
      const m = /^s(\d+)of(\d+)$/.exec(key);
      if (!m || Number(m[2]) === shard.of) continue;
      const other = await ShardLease.holder(kv, key);
      if (other) {
        throw new ShardTakenError(`${describe(other)} holds shard ${other.shard}: every origin of a cluster must give the same n, this one says ${shardName(shard)}`, other);
      }
    }
    const me: LeaseHolder = { id, shard: shardName(shard), host: hostname(), pid: process.pid, since: Date.now() };
    const key = keyOf(shard);
    const deadline = Date.now() + waitMs;
    let seen: { revision: number; at: number } | null = null;
    for (;;) {
      try {
        const rev = await kv.create(key, JSON.stringify(me));
        if (seen) log('info', `shard ${shardName(shard)}: the lease of the origin before expired; this origin holds it now`);
        return new ShardLease(kv, link, shard, me, rev, log);
      } catch (err) {
        const e = await kv.get(key).catch(() => null);
        const holder = e && e.operation === 'PUT' ? e.json<LeaseHolder>() : null;
        const refuse = (why: string) =>
          new ShardTakenError(`shard ${shardName(shard)} is held by ${describe(holder)}: ${why}`, holder, { cause: err });
        if (e && e.operation === 'PUT') {
          // Renewed since we first looked: its holder is alive.
          if (seen && e.revision !== seen.revision) {
            throw refuse('a live origin (it renewed its lease) already sequences it, and a second origin for the same shard refuses to start');
          }
          if (!seen) {
            seen = { revision: e.revision, at: Date.now() };
            if (waitMs > 0) {
              log('warn', `shard ${shardName(shard)} is held by ${describe(holder)}; if that origin is gone its lease expires ${LEASE_TTL_MS / 1000} s after its last renewal: waiting up to ${waitMs} ms (a live holder renews within ${LEASE_RENEW_MS / 1000} s, and then this origin refuses)`, { holder });
            }
          }
        }
        if (Date.now() >= deadline) {
          throw refuse(
            waitMs > 0
              ? `its lease did not expire within leaseWaitMs (${waitMs} ms); a second origin for the same shard refuses to start`
              : `a second origin for the same shard refuses to start (it may take the shard ${LEASE_TTL_MS / 1000} s after that one stops renewing its lease; leaseWaitMs waits for that)`,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  private static async holder(kv: KV, key: string): Promise<LeaseHolder | null> {
    const e = await kv.get(key);
    return e && e.operation === 'PUT' ? e.json<LeaseHolder>() : null;
  }

  /** `fn` hears that another origin took the shard: this one must stop sequencing. */
  onLost(fn: (holder: LeaseHolder | null) => void): void {
    this.losts.push(fn);
  }

  private async renew(): Promise<void> {
    // Nobody else can take it through a NATS that is down for us too; once lost, it stays lost (restart this origin).
    if (this.link.state !== 'connected' || !this.held) return;
    const key = keyOf(this.shard);
    try {
      this.revision = await this.kv.update(key, JSON.stringify(this.me), this.revision);
      this.renewals++;
      return;
    } catch {
      // Not at our revision any more: expired while NATS was away, or taken.
    }
    try {
      const holder = await ShardLease.holder(this.kv, key);
      if (holder && holder.id !== this.me.id) {
        if (this.held) {
          this.held = false;
          this.log('error', `shard ${this.me.shard} was taken by ${describe(holder)}: this origin stops sequencing it (publishes are refused); restart it to serve again`, { holder });
          for (const f of this.losts) f(holder);
        }
        return;
      }
      // Ours still, or expired while NATS was away and taken by nobody: hold it again.
      this.revision = holder ? (await this.kv.get(key))!.revision : await this.kv.create(key, JSON.stringify(this.me));
      this.renewals++;
    } catch (err) {
      this.log('warn', `shard ${this.me.shard}: lease renewal failed (${(err as Error).message}); retrying`);
    }
  }

  /** Gives the shard up (another origin may take it at once). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.held || this.link.state !== 'connected') return;
    this.held = false;
    await this.kv.delete(keyOf(this.shard), { previousSeq: this.revision }).catch(() => undefined);
  }
}
