// The origin's version heartbeats (cluster/version-beats.ts): a published
// topic is named in the two beats after its last publish, every topic at least
// once in SWEEP_BEATS beats, messages stay within the size given, and the
// edge's reader refuses what is not a beat.

import { describe, expect, it } from 'vitest';
import { BeatPlanner, SWEEP_BEATS, readBeat, type BeatEntry } from '../../src/cluster/version-beats.js';
import type { Topic } from '../../src/engine/index.js';

const topic = (name: string, version = 1): Topic => ({ name, epoch: 7, version }) as unknown as Topic;
const names = (msgs: Uint8Array[]): string[] => msgs.flatMap((m) => readBeat(m).map((e: BeatEntry) => e[0]));

describe('version heartbeats', () => {
  it('names a published topic in the two beats after its last publish, then only in the sweep', () => {
    const all = Array.from({ length: 100 }, (_, i) => topic(`b.T${i}`));
    const p = new BeatPlanner();
    const hot = all[55]!;
    p.touched(hot);
    const seen: boolean[] = [];
    for (let i = 0; i < SWEEP_BEATS; i++) seen.push(names(p.next(() => all, 1 << 20)).includes(hot.name));
    // Beats 0 and 1 name it for its publish; the sweep names it once more in one of the ten.
    expect(seen[0]).toBe(true);
    expect(seen[1]).toBe(true);
    expect(seen.slice(2).filter(Boolean).length).toBeLessThanOrEqual(1);
  });

  it('names every topic at least once in every SWEEP_BEATS consecutive beats', () => {
    const all = Array.from({ length: 1234 }, (_, i) => topic(`s.T${i}`, i + 1));
    const p = new BeatPlanner();
    for (let start = 0; start < 3; start++) {
      const named = new Set<string>();
      for (let i = 0; i < SWEEP_BEATS; i++) for (const n of names(p.next(() => all, 1 << 20))) named.add(n);
      expect(named.size).toBe(all.length);
    }
  });

  it('carries each topic\u2019s epoch and version, in messages within the size given', () => {
    const all = Array.from({ length: 500 }, (_, i) => topic(`z.Topic${i}`, 1000 + i));
    const p = new BeatPlanner();
    for (const t of all) p.touched(t);
    const msgs = p.next(() => all, 2048);
    expect(msgs.length).toBeGreaterThan(1);
    for (const m of msgs) expect(m.byteLength).toBeLessThanOrEqual(2048);
    const entries = msgs.flatMap(readBeat);
    expect(entries).toHaveLength(500);
    expect(entries.find((e) => e[0] === 'z.Topic42')).toEqual(['z.Topic42', 7, 1042]);
  });

  it('refuses what is not a beat, and drops malformed entries', () => {
    expect(() => readBeat(new TextEncoder().encode('nope'))).toThrow(/not valid JSON/);
    expect(() => readBeat(new TextEncoder().encode('{"x":1}'))).toThrow(/needs a list/);
    expect(readBeat(new TextEncoder().encode('{"v":[["a",1,2],["b","x",2],[3,1,1],["c",1,2.5]]}'))).toEqual([['a', 1, 2]]);
  });
});
