// Epochs name one unbroken history of a topic. They come from the wall clock
// in microseconds (kept strictly increasing) so a restarted server never
// reuses one, and stay below 2^53 so JavaScript numbers hold them exactly.

export class EpochClock {
  private last = 0;
  constructor(private readonly now: () => number = Date.now) {}

  next(): number {
    this.last = Math.max(Math.floor(this.now() * 1000), this.last + 1);
    return this.last;
  }
}
