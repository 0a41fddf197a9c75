// Which origin sequences a topic: shard i of n (1-based) owns the topics whose
// FNV-1a 32-bit hash of the UTF-8 name, modulo n, is i - 1. Stable across
// processes, machines and versions, so every node computes the same owner.

const utf8 = new TextEncoder();

/** FNV-1a, 32 bits, of the UTF-8 bytes of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of utf8.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The shard (1..n) that owns `topic`. */
export function shardOf(topic: string, n: number): number {
  return n <= 1 ? 1 : (fnv1a32(topic) % n) + 1;
}

export interface Shard {
  /** 1-based. */
  index: number;
  of: number;
}

/** `"2/3"` → {index: 2, of: 3} (already validated by the option table). */
export function parseShard(s: string): Shard {
  const [i, n] = s.split('/').map(Number) as [number, number];
  return { index: i, of: n };
}

export function shardName(s: Shard): string {
  return `${s.index}/${s.of}`;
}
