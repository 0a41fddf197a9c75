// Adaptive batching: how busy this thread's event loop has been lately, so
// fan-out can decide whether a publish goes out at once or waits for the end
// of the turn. Batching a turn's publishes into one frame per channel is what
// lets a busy server deliver several times what a plain WebSocket server
// does, but on a lightly loaded server it only adds the rest of the turn's
// work to each update's latency. So: once the loop is busy at least a
// threshold of an interval, publishes are batched; once it is back 10 points
// below the threshold, they go out at once again (the gap keeps it from
// flapping).

import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from './clock.js';

/** Reads the loop's utilization since the previous call: 0 (idle) to 1 (always busy). */
export type LoadSampler = () => number;

/** The sampling interval: short enough to follow a burst, long enough to mean something. */
export const LOAD_SAMPLE_MS = 100;

/** performance.eventLoopUtilization() over each interval, for this thread. */
export function loopUtilization(): LoadSampler {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export class LoadGauge {
  /** The loop was lightly loaded over the last interval: send each publish at once. */
  light = true;
  private readonly timer: TimerHandle;

  /** `thresholdPercent`: loop utilization at which batching starts (1–100). */
  constructor(
    private readonly clock: Clock,
    thresholdPercent: number,
    sample: LoadSampler = loopUtilization(),
  ) {
    const busy = thresholdPercent / 100;
    const calm = busy - 0.1;
    this.timer = clock.setInterval(() => {
      const u = sample();
      if (this.light && u >= busy) this.light = false;
      else if (!this.light && u <= calm) this.light = true;
    }, LOAD_SAMPLE_MS);
  }

  close(): void {
    this.clock.clearInterval(this.timer);
  }
}
