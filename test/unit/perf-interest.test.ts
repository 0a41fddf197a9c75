// Pattern routing through a trie of levels with a cache (issue 13): Interest
// answers exactly what a scan of every subscription would, as patterns come
// and go, without splitting topic names; TopicPattern.matches does not split either.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { TopicPattern } from '../../src/protocol/index.js';
import { ClientSub, Conn } from '../../src/server/fanout/state.js';
import { Interest } from '../../src/server/fanout/interest.js';
import { rng } from '../../src/demo/index.js'; // the project's seeded generator (mulberry32): failures reproduce


const WORDS = ['px', 'fx', 'a', 'b', 'EUR', 'USD', 'x-1', 'q:2'];

function randomName(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  return Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!).join('.');
}

function randomPattern(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  const levels = Array.from({ length: n }, () => (r() < 0.3 ? '*' : WORDS[Math.floor(r() * WORDS.length)]!));
  if (r() < 0.3) levels[n - 1] = '>';
  return levels.join('.');
}

/** Brute force: what wanting() must answer. */
function scan(subs: Iterable<ClientSub>, name: string): Set<ClientSub> {
  const out = new Set<ClientSub>();
  for (const cs of subs) if (cs.patterns.some((p) => (p.source.includes('*') || p.source.includes('>') ? split(p.source, name) : p.source === name))) out.add(cs);
  return out;
}

/** The reference matcher: levels by split. */
function split(pattern: string, name: string): boolean {
  const pl = pattern.split('.');
  const nl = name.split('.');
  const tail = pl[pl.length - 1] === '>';
  const levels = tail ? pl.slice(0, -1) : pl;
  if (tail ? nl.length <= levels.length : nl.length !== levels.length) return false;
  return levels.every((l, i) => l === '*' || l === nl[i]);
}

afterEach(() => vi.restoreAllMocks());

describe('pattern routing', () => {
  it('TopicPattern.matches agrees with matching level by level after a split', () => {
    const r = rng(7);
    for (let i = 0; i < 20_000; i++) {
      const p = randomPattern(r);
      const n = randomName(r);
      expect(TopicPattern.parse(p).matches(n), `${p} ~ ${n}`).toBe(split(p, n));
    }
    for (const [p, n] of [
      ['>', 'a'],
      ['a.>', 'a'],
      ['a.>', 'a.b.c'],
      ['a.*', 'a.bb'],
      ['a.b', 'a.bc'],
      ['a.bc', 'a.b'],
      ['*.*', 'a'],
      ['*', 'a.b'],
    ] as const) {
      expect(TopicPattern.parse(p).matches(n), `${p} ~ ${n}`).toBe(split(p, n));
    }
  });

  it('wanting() answers what a scan of every subscription would, as subscriptions come and go', () => {
    const r = rng(42);
    const interest = new Interest(256);
    const live = new Set<ClientSub>();
    const conn = new Conn(1, 'test');
    let id = 1;
    for (let round = 0; round < 3_000; round++) {
      const roll = r();
      if (roll < 0.45 || live.size === 0) {
        const count = 1 + Math.floor(r() * 3);
        const names = Array.from({ length: count }, () => (r() < 0.7 ? randomPattern(r) : randomName(r)));
        const cs = new ClientSub(conn, id++, interest.parse(names), 0, null);
        interest.add(cs);
        live.add(cs);
      } else if (roll < 0.7) {
        const victim = [...live][Math.floor(r() * live.size)]!;
        interest.drop(victim);
        live.delete(victim);
      } else {
        const name = randomName(r);
        expect(new Set(interest.wanting(name)), `round ${round}: ${name}`).toEqual(scan(live, name));
      }
    }
    for (const cs of live) interest.drop(cs);
    expect(interest.wanting('px.EUR').size).toBe(0);
  });

  it('never splits the topic name (trie walk and cached answers)', () => {
    const interest = new Interest(256);
    const conn = new Conn(1, 'test');
    const subs = Array.from({ length: 1_000 }, (_, i) => new ClientSub(conn, i, interest.parse([i % 2 ? 'px.*' : `fx.${i}.>`]), 0, null));
    for (const cs of subs) interest.add(cs);
    const spy = vi.spyOn(String.prototype, 'split');
    expect(interest.wanting('px.EUR').size).toBe(500);
    expect(interest.wanting('px.EUR').size).toBe(500); // cached
    expect(interest.wanting('fx.4.a.b').size).toBe(1);
    expect(interest.wanting('fx.5.a').size).toBe(0);
    expect(spy).not.toHaveBeenCalled();
  });
});
