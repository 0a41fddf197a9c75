// A topic's latest state: a Map of field → value to everything that reads it,
// whose numbers are kept in a Float64Array instead of as the values published.
//
// Why: a published number is a heap object (a HeapNumber) in the young
// generation. Kept in an ordinary Map it stays alive until the field's next
// update, so every young-generation GC found the last few hundred milliseconds
// of prices alive — tens of thousands of small objects to copy — and an
// old-generation Map pointing into the young generation. At 10k publishes a
// second that was most of each scavenge's work (pauses of 1.5–4 ms where raw
// uWebSockets.js, which keeps no state, scavenged in 0.3–0.7 ms). Stored as
// raw doubles, a publish's numbers die young.
//
// The Map it extends holds field → slot (insertion order, so iteration order
// is exactly a Map's); the slots' values are in a ValueSlots. Every Map method is
// overridden; structured clone would see the slots, so images are made with
// the iterator (`[...state]`), never by cloning the object.

import type { FieldValue } from '../protocol/index.js';
import { ValueSlots } from './value-slots.js';

export class FieldState extends Map<string, FieldValue> {
  private vals = new ValueSlots(8);
  private free: number[] = [];
  private next = 0;

  constructor(entries?: Iterable<readonly [string, FieldValue]> | null) {
    super();
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  private slotOf(key: string): number | undefined {
    return super.get(key) as unknown as number | undefined;
  }

  override get(key: string): FieldValue | undefined {
    const s = this.slotOf(key);
    // A held value is never null (null deletes): the slot holds a FieldValue.
    return s === undefined ? undefined : (this.vals.read(s) as FieldValue);
  }

  override set(key: string, value: FieldValue): this {
    let s = this.slotOf(key);
    if (s === undefined) {
      s = this.free.length > 0 ? this.free.pop()! : this.next++;
      if (s >= this.vals.size) this.grow();
      super.set(key, s as unknown as FieldValue);
    }
    this.vals.write(s, value);
    return this;
  }

  override delete(key: string): boolean {
    const s = this.slotOf(key);
    if (s === undefined) return false;
    this.vals.drop(s);
    this.free.push(s);
    return super.delete(key);
  }

  override clear(): void {
    super.clear();
    this.free = [];
    this.next = 0;
    this.vals.dropAll();
  }

  override *entries(): MapIterator<[string, FieldValue]> {
    for (const k of super.keys()) yield [k, this.get(k)!];
  }

  override *values(): MapIterator<FieldValue> {
    for (const k of super.keys()) yield this.get(k)!;
  }

  override [Symbol.iterator](): MapIterator<[string, FieldValue]> {
    return this.entries();
  }

  override forEach(fn: (value: FieldValue, key: string, map: Map<string, FieldValue>) => void, thisArg?: unknown): void {
    for (const k of super.keys()) fn.call(thisArg, this.get(k)!, k, this);
  }

  private grow(): void {
    const vals = new ValueSlots(this.vals.size * 2);
    for (let i = 0; i < this.vals.size; i++) vals.copy(this.vals, i, i);
    this.vals = vals;
  }
}
