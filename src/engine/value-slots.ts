// Field values by slot number, numbers unboxed: a Float64Array for numbers,
// and a side array (allocated when the first one comes) for the values that
// are not numbers — strings, bigints, booleans, bytes, null. A published
// number kept here is not a heap object, so it does not survive young-
// generation GCs for as long as it is held. The history ring (a circular log
// of slots) and a topic's state (a slot per field) keep their values here.

import type { FieldValue } from '../protocol/index.js';

type Ref = Exclude<FieldValue, number> | null;

export class ValueSlots {
  private readonly nums: Float64Array;
  private refs: (Ref | undefined)[] | null = null;

  constructor(readonly size: number) {
    this.nums = new Float64Array(size);
  }

  write(i: number, v: FieldValue | null): void {
    if (typeof v === 'number') {
      this.nums[i] = v;
      if (this.refs !== null) this.refs[i] = undefined;
    } else {
      (this.refs ??= new Array<Ref | undefined>(this.size))[i] = v;
    }
  }

  read(i: number): FieldValue | null {
    const r = this.refs === null ? undefined : this.refs[i];
    return r === undefined ? this.nums[i]! : r;
  }

  /** Lets go of slot i's value if it is not a number (its number is simply overwritten later). */
  drop(i: number): void {
    if (this.refs !== null) this.refs[i] = undefined;
  }

  dropAll(): void {
    if (this.refs !== null) this.refs.fill(undefined);
  }

  /** Copies slot `from` of `src` into slot `to` of this one. */
  copy(src: ValueSlots, from: number, to: number): void {
    this.nums[to] = src.nums[from]!;
    const r = src.refs === null ? undefined : src.refs[from];
    if (r !== undefined) (this.refs ??= new Array<Ref | undefined>(this.size))[to] = r;
  }
}
