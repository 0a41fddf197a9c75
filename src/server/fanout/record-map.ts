// A connection's subscriptions by id and topic subscriptions by topic name,
// held without a Map or wrapper object of their own in the common case of one
// each: the record itself stands for its one-entry map (state.ts), a second
// entry makes a real Map, and none is one shared empty Map.

/**
 * The read side of a Map: what a connection's subscriptions (by id) and
 * topic subscriptions (by topic name) offer to the rest of the server. Most
 * connections hold one of each, and then the record itself stands for the
 * one-entry map (ClientSub and TopicSub implement this), so a connection
 * holds no Map and no wrapper of its own; a second entry makes a real Map,
 * and none is one shared empty Map. Changes go through Conn's methods.
 */
export interface RecordMap<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  has(key: K): boolean;
  values(): IterableIterator<V>;
  keys(): IterableIterator<K>;
  entries(): IterableIterator<[K, V]>;
  [Symbol.iterator](): IterableIterator<[K, V]>;
}

const NO_RECORDS = new Map<never, never>();

/** The one shared empty map (read only). */
export function noRecords<K, V>(): RecordMap<K, V> {
  return NO_RECORDS as unknown as RecordMap<K, V>;
}

/** A record standing for a map of itself, or a real Map of records, or none. */
export type Held<K, V> = V | Map<K, V> | null;

export function heldSet<K, V>(held: Held<K, V>, key: K, value: V, keyOf: (v: V) => K): Held<K, V> {
  if (held === null || (!(held instanceof Map) && keyOf(held) === key)) return value;
  if (held instanceof Map) return held.set(key, value);
  return new Map([[keyOf(held), held], [key, value]]);
}

export function heldDelete<K, V>(held: Held<K, V>, key: K, keyOf: (v: V) => K): Held<K, V> {
  if (held === null) return null;
  if (!(held instanceof Map)) return keyOf(held) === key ? null : held;
  held.delete(key);
  if (held.size === 0) return null;
  if (held.size !== 1) return held;
  // Back to one: the record stands for itself again (no Map kept for an idle connection).
  return held.values().next().value as V;
}
