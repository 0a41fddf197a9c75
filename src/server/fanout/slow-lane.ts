// The slow lane: a connection whose transport buffer passes the threshold
// leaves the fast path and is owed one catch-up per dirty topic; on drain it
// gets them and rejoins. Past the hard cap (bytes) or the timeout (time) it
// is closed with the slow-consumer code, so no buffer grows without bound.

import { CloseCode } from '../../protocol/index.js';
import type { LogFn } from '../options.js';
import type { ServerStats } from '../stats.js';
import type { CatchUps } from './catch-up.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Conn } from './state.js';
import type { FastPath } from './fast-path.js';

export interface SlowLaneOptions {
  slowThresholdBytes: number;
  hardCapBytes: number;
  slowTimeoutMs: number;
  log: LogFn;
}

export class SlowLane {
  /** Fast-path sockets owed a look at their buffer (fractional: a share of the bytes published). */
  private owedChecks = 0;
  /** Where the round-robin look at fast-path sockets continues (a live iterator of every connection). */
  private cursor: Iterator<Conn> | null = null;
  /** Connections in the slow lane (the sweep looks at these, not at every connection). */
  private readonly slowConns = new Set<Conn>();
  private readonly sweepTimer: TimerHandle;

  constructor(
    /**
     * Every connection: the looks go over these and skip those without a
     * fast-path subscription (no second set of connections to keep: 30-40
     * bytes per connection, issue 21).
     */
    private readonly conns: ReadonlySet<Conn>,
    private readonly opts: SlowLaneOptions,
    private readonly clock: Clock,
    private readonly stats: ServerStats,
    private readonly fast: FastPath,
    private readonly catchUps: CatchUps,
  ) {
    // Often enough to see a fast-path socket's buffer grow well before uWS would drop for it.
    this.sweepTimer = clock.setInterval(() => this.sweep(), Math.min(100, Math.max(10, opts.slowTimeoutMs / 4)));
  }

  /** A direct frame went out: past the threshold, the connection enters the slow lane. */
  sent(conn: Conn): void {
    if (!conn.slow && conn.sink && conn.sink.buffered() > this.opts.slowThresholdBytes) this.enter(conn);
  }

  /**
   * Native publishes do not report per socket. Every fast-path socket is
   * looked at again once half the slow-lane threshold has been published
   * since its last look (no socket can have taken more), long before uWS
   * itself would have to drop at the hard cap. The looks go round-robin,
   * spread over the turns that publish those bytes in proportion to them,
   * rather than all at once every so many bytes (those without a fast-path
   * subscription are passed over at once), and a turn publishing little
   * looks at few.
   */
  published(bytes: number): void {
    const n = this.fast.connCount;
    const conns = this.conns;
    if (bytes <= 0 || n === 0) return;
    this.owedChecks += (n * bytes) / (this.opts.slowThresholdBytes / 2);
    if (this.owedChecks < 1) return;
    const k = Math.min(n, Math.floor(this.owedChecks));
    this.owedChecks = k === n ? 0 : this.owedChecks - k;
    // k looks at fast-path sockets; the others are passed over (one round at most).
    let visits = conns.size;
    for (let i = 0; i < k && visits > 0; visits--) {
      let next = this.cursor?.next();
      if (!next || next.done) {
        this.cursor = conns.values();
        next = this.cursor.next();
        if (next.done) break;
      }
      if (next.value.fastCount === 0) continue;
      this.check(next.value);
      i++;
    }
  }

  /** Every fast-path socket at once (the sweep timer). */
  private checkFastBuffers(): void {
    for (const conn of this.conns) this.check(conn);
    // Every socket was just looked at: the round-robin starts over, and a live
    // iterator kept across the set's growth no longer holds its old tables.
    this.cursor = null;
  }

  private check(conn: Conn): void {
    if (!conn.slow && conn.fastCount > 0 && conn.sink && conn.sink.buffered() > this.opts.slowThresholdBytes) this.enter(conn);
  }

  /** Leaves the fast path: what it misses from now on is owed as one catch-up per topic. */
  enter(conn: Conn): void {
    conn.slow = true;
    this.slowConns.add(conn);
    conn.slowSince = this.clock.now();
    this.stats.slowLaneEntries++;
    for (const ts of conn.topics.values()) {
      if (!ts.fast) continue;
      this.fast.leave(ts);
      this.catchUps.markDirty(ts);
    }
  }

  /** The transport drained: a slow connection that is below half the threshold gets its catch-ups. */
  drain(conn: Conn): void {
    const sink = conn.sink;
    if (!conn.slow || conn.closed || !sink) return;
    if (sink.buffered() > this.opts.slowThresholdBytes / 2) return;
    conn.slow = false;
    this.slowConns.delete(conn);
    if (conn.dirtySubs) for (const ts of [...conn.dirtySubs]) if (!ts.paused) this.catchUps.catchUp(ts);
    for (const ts of conn.topics.values()) this.fast.join(ts);
  }

  /** Closes a connection that could not keep up (4008); it resumes on reconnect. */
  disconnect(conn: Conn, why: string): void {
    if (conn.closed || !conn.sink) return;
    this.stats.slowDisconnects++;
    this.opts.log('warn', `closing connection ${conn.id} (${conn.remote}) as a slow consumer: ${why}`);
    conn.outbox.length = 0;
    conn.sink.end(CloseCode.SLOW_CONSUMER, 'slow consumer');
  }

  private sweep(): void {
    const now = this.clock.now();
    this.checkFastBuffers();
    for (const conn of this.slowConns) {
      if (!conn.slow || conn.closed || !conn.sink) {
        this.slowConns.delete(conn);
        continue;
      }
      if (conn.sink.buffered() > this.opts.hardCapBytes) this.disconnect(conn, `over ${this.opts.hardCapBytes} bytes buffered`);
      else if (now - conn.slowSince > this.opts.slowTimeoutMs) this.disconnect(conn, `behind for over ${this.opts.slowTimeoutMs} ms`);
      else this.drain(conn);
    }
  }

  stop(): void {
    this.clock.clearInterval(this.sweepTimer);
  }
}
