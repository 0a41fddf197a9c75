// STOMP heart-beating: the CONNECT negotiation (spec 1.1+: each side sends
// at the larger of what it can do and what the other wants), EOLs to quiet
// clients, and the close of a client silent past its promised interval plus grace.

import { ErrorCode, TickfanError } from '../../protocol/index.js';
import type { StompVersion } from './frame.js';

export interface HeartbeatTerms {
  /** The CONNECTED heart-beat header: what the server can send, what it wants. */
  header: string;
  /** The server sends something at least this often (0: never needed). */
  outMs: number;
  /** The client promised something at least this often (0: no promise). */
  inMs: number;
}

/**
 * Terms from CONNECT's `heart-beat: cx,cy`: the server offers and asks for
 * `serverMs` both ways. STOMP 1.0 has no heart-beating.
 */
export function negotiateHeartbeat(value: string | undefined, serverMs: number, version: StompVersion): HeartbeatTerms {
  const header = `${serverMs},${serverMs}`;
  if (version === '1.0' || value === undefined) return { header, outMs: 0, inMs: 0 };
  const m = /^\s*(\d{1,9})\s*,\s*(\d{1,9})\s*$/.exec(value);
  if (!m) throw new TickfanError(ErrorCode.BAD_REQUEST, `heart-beat must be two numbers of milliseconds, "cx,cy" (0,0: none), not ${JSON.stringify(value.slice(0, 40))}`);
  const cx = Number(m[1]);
  const cy = Number(m[2]);
  return { header, outMs: cy > 0 ? Math.max(serverMs, cy) : 0, inMs: cx > 0 ? Math.max(serverMs, cx) : 0 };
}

/** How long a client that promised a heart-beat every `inMs` may stay silent: the interval plus half again, at least a second. */
export function silenceLimitMs(inMs: number): number {
  return inMs + Math.max(inMs / 2, 1_000);
}

/** A connection that heart-beats. */
export interface Beating {
  readonly terms: HeartbeatTerms;
  /** When the client last sent anything (frames and EOLs alike). */
  readonly lastReadAt: number;
  /** When the server last wrote to it. */
  readonly lastWriteAt: number;
  /** Writes one EOL. */
  beat(): void;
  /** The client was silent for `ms`: ERROR and close. */
  silent(ms: number): void;
}

/**
 * One timer for every STOMP connection of a node, running only while one
 * heart-beats (a closed server leaves none behind). It ticks at a quarter of
 * the server's interval, so no connection goes longer than its interval without an EOL.
 */
export class StompHeartbeats {
  private readonly beating = new Set<Beating>();
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;

  constructor(serverMs: number) {
    this.tickMs = Math.max(10, Math.min(1_000, Math.floor(serverMs / 4)));
  }

  add(b: Beating): void {
    if (b.terms.outMs === 0 && b.terms.inMs === 0) return;
    this.beating.add(b);
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(Date.now()), this.tickMs);
    this.timer.unref();
  }

  delete(b: Beating): void {
    this.beating.delete(b);
    if (this.beating.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One look at every connection (exposed for tests with a chosen clock). */
  tick(now: number): void {
    for (const b of [...this.beating]) {
      const { outMs, inMs } = b.terms;
      if (inMs > 0 && now - b.lastReadAt > silenceLimitMs(inMs)) {
        this.delete(b);
        b.silent(now - b.lastReadAt);
        continue;
      }
      if (outMs > 0 && now - b.lastWriteAt + this.tickMs >= outMs) b.beat();
    }
  }
}
