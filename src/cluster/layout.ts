// Which origins are live, as every node learns it without configuration:
// origins announce themselves on `<prefix>.origins` every 2 s (and when they
// leave) and answer `<prefix>.layout`. A node hears of a new origin for a
// shard (first seen, or restarted: another id) and of one gone quiet.

import type { Subscription } from '@nats-io/transport-node';
import type { LogFn } from '../server/options.js';
import { decodeJson, type Announcement } from './messages.js';
import type { NatsLink } from './nats-link.js';
import type { Subjects } from './subjects.js';

export const ANNOUNCE_MS = 2_000;
/** An origin not heard of for this long is taken as gone. */
export const ORIGIN_SILENCE_MS = 3 * ANNOUNCE_MS + 500;

interface Known {
  id: string;
  since: number;
  seen: number;
}

export class Layout {
  /** n of the cluster's shards; 0 while no origin has been heard of. */
  of = 0;
  private readonly known = new Map<number, Known>();
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** When expire() last ran (its ticks come every ANNOUNCE_MS while this node's loop keeps up). */
  private lastTick = Date.now();
  private readonly arrivals: ((shard: number) => void)[] = [];
  private readonly departures: ((shard: number) => void)[] = [];

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly log: LogFn,
    /** This node's own shard when it is an origin (never "heard of" as another). */
    private readonly own: { index: number; of: number } | null,
  ) {
    if (own) this.of = own.of;
  }

  /** `arrived`: an origin (new or restarted) now sequences `shard`; `gone`: the shard's origin left or went quiet. */
  on(event: 'arrived' | 'gone', fn: (shard: number) => void): void {
    (event === 'arrived' ? this.arrivals : this.departures).push(fn);
  }

  /** Subscribes to announcements and asks the live origins for theirs. */
  async start(): Promise<void> {
    const nc = this.link.nc;
    this.sub = nc.subscribe(this.subjects.origins, { callback: (err, msg) => void (err || this.heard(msg.data)) });
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.expire(), ANNOUNCE_MS);
    this.timer.unref();
    try {
      const answers = await nc.requestMany(this.subjects.layout, '', { strategy: 'timer', maxWait: 300 });
      for await (const m of answers) this.heard(m.data);
    } catch {
      // no origin yet: they announce themselves when they come
    }
  }

  /** Shards whose origin is live now. */
  live(): number[] {
    return [...this.known.keys()];
  }

  isLive(shard: number): boolean {
    return this.known.has(shard) || this.own?.index === shard;
  }

  private heard(data: Uint8Array): void {
    let a: Announcement;
    try {
      a = decodeJson<Announcement>(data, 'an origin announcement');
    } catch {
      return;
    }
    if (this.own && a.shard === this.own.index) return;
    if (this.of && a.of !== this.of) {
      this.log('error', `origin ${a.id} announces shard ${a.shard}/${a.of} but this cluster has ${this.of} shards: ignored (every origin must give the same n)`);
      return;
    }
    this.of = a.of;
    const was = this.known.get(a.shard);
    if (a.state === 'leaving') {
      if (was?.id === a.id) this.drop(a.shard, 'left');
      return;
    }
    if (was?.id === a.id) {
      was.seen = Date.now();
      return;
    }
    this.known.set(a.shard, { id: a.id, since: a.since, seen: Date.now() });
    this.log('info', `origin ${a.id} sequences shard ${a.shard}/${a.of}${was ? ` (it was ${was.id}: a restart, new epochs)` : ''}`);
    for (const f of this.arrivals) f(a.shard);
  }

  private drop(shard: number, why: string): void {
    const was = this.known.get(shard);
    this.known.delete(shard);
    this.log('warn', `origin ${was?.id ?? '?'} of shard ${shard}/${this.of} ${why}: its topics are flagged stale`);
    for (const f of this.departures) f(shard);
  }

  private expire(): void {
    const now = Date.now();
    // While this node's own loop was stalled, announcements may be waiting unread: the stall is this
    // node's, not the origins'. A tick that comes late moves every origin's last sighting on by as much
    // (an origin is taken as gone after ORIGIN_SILENCE_MS that this node spent listening).
    const late = now - this.lastTick - ANNOUNCE_MS;
    this.lastTick = now;
    if (late > 250) for (const k of this.known.values()) k.seen += late;
    // While NATS is away nobody is heard of; that is the connection's fault, not the origins'.
    if (this.link.state !== 'connected') {
      for (const k of this.known.values()) k.seen = now;
      return;
    }
    const before = now - ORIGIN_SILENCE_MS;
    for (const [shard, k] of this.known) if (k.seen < before) this.drop(shard, 'went quiet');
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sub?.unsubscribe();
  }
}
