// Capped exponential backoff with full jitter. The connection resets it only
// once a server has accepted the client (its Welcome, or an SSE session), not
// when a socket merely opens.

/** Reconnect delays: uniform in [0, min(maxMs, initialMs × factorⁿ)] for the n-th failed attempt in a row. */
export interface BackoffOptions {
  /** First retry's upper bound in ms. Default 100. */
  initialMs: number;
  /** Cap on any delay in ms. Default 10 000. */
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor: number;
}

/** 100 ms, × 2, capped at 10 s (docs/sdk.md compares them with other clients'). */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 10_000, factor: 2 };

/** Capped exponential backoff with full jitter. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt: uniform in [0, min(max, initial × factor^n)]. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.initialMs * this.opts.factor ** this.attempt);
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** Back to the first window (the server accepted the client). */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
