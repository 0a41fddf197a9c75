// Time as fan-out sees it: a monotonic clock, wall time, timers and "later in
// this turn". Injected so that rate tiers, the slow lane, heartbeats and stale
// flags can be driven by a fake clock in unit tests, without sleeps.

/** An opaque timer handle (a NodeJS.Timeout for the real clock). */
export type TimerHandle = unknown;

export interface Clock {
  /** Monotonic milliseconds (performance.now() for the real clock). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (Date.now()). */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** A repeating timer that never keeps the process alive on its own. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /** Runs `fn` once the current event-loop turn's I/O is done (setImmediate). */
  defer(fn: () => void): void;
  /**
   * Runs `fn` when the callback now running returns (a microtask): still in
   * this turn's I/O, so what it publishes through uWebSockets.js goes out in
   * this turn's drain. (uWS drains its topic tree in its check handle, which
   * runs before Node's setImmediate callbacks: a frame published from
   * `defer` waits one whole loop iteration more.)
   */
  afterCallback(fn: () => void): void;
}

/** The process's clock and timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  defer: (fn) => void setImmediate(fn),
  afterCallback: (fn) => queueMicrotask(fn),
};
