// Interest routing: which client subscriptions want a topic, by exact name
// (including topics that do not exist yet) or by pattern. Parsed patterns are
// shared, since thousands of clients subscribe to the same names. Patterns are
// routed through a trie of levels (literal, `*`, `>`), with a cache of the
// answer per topic name cleared whenever a pattern comes or goes, as in
// nats-server's sublist: a lookup walks the name's levels once, never every
// pattern subscription, and never splits the name.

import { TopicPattern, isPattern, validateTopic } from '../../engine/index.js';
import { ErrorCode, TickfanError } from '../../protocol/index.js';
import type { ClientSub } from './state.js';

const MAX_CACHED_PATTERNS = 100_000;
/** Topic names whose pattern subscribers are cached. */
const MAX_CACHED_NAMES = 4096;
const NONE: ReadonlySet<ClientSub> = new Set();

/** One level of the pattern trie. */
class Level {
  /** Literal next levels. */
  readonly next = new Map<string, Level>();
  /** The `*` next level. */
  star: Level | null = null;
  /** Subscriptions whose pattern ends at this level. */
  readonly here = new Set<ClientSub>();
  /** Subscriptions whose pattern continues with `>` here (one or more further levels). */
  readonly rest = new Set<ClientSub>();

  empty(): boolean {
    return this.next.size === 0 && this.star === null && this.here.size === 0 && this.rest.size === 0;
  }
}

export class Interest {
  private readonly exact = new Map<string, Set<ClientSub>>();
  private readonly root = new Level();
  /** Pattern subscribers per topic name, valid until a pattern subscription comes or goes. */
  private readonly cache = new Map<string, ReadonlySet<ClientSub>>();
  private readonly parsed = new Map<string, TopicPattern>();
  /** Subscriptions per name or pattern, for `onChange` (a cluster edge follows what its clients want). */
  private readonly counts = new Map<string, number>();
  /** Told when a name or pattern gains its first subscription (true) or loses its last (false). */
  onChange: ((source: string, wanted: boolean) => void) | null = null;

  constructor(
    private readonly maxTopicLength: number,
    /** Whether a topic of this name exists already (see `add`). */
    private readonly held: (name: string) => boolean = () => false,
  ) {}

  /** Validates and parses subscription names (topics or patterns); throws TickfanError. */
  parse(names: readonly string[]): TopicPattern[] {
    if (names.length === 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'subscribe needs at least one topic or pattern');
    return names.map((n) => this.pattern(n));
  }

  private pattern(name: string): TopicPattern {
    const known = this.parsed.get(name);
    if (known) return known;
    if (!isPattern(name)) validateTopic(name, this.maxTopicLength);
    const p = TopicPattern.parse(name, this.maxTopicLength);
    if (this.parsed.size >= MAX_CACHED_PATTERNS) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.set(name, p);
    return p;
  }

  /**
   * Registers a client subscription. For an exact name whose topic exists
   * already (`held`): topics are never removed, so an exact name that names one is
   * never created again, and `wanting` is never asked for it — its
   * subscribers are attached at once and kept out of the exact-name sets
   * (one Set entry per subscription less). Patterns are always registered.
   */
  add(cs: ClientSub): void {
    this.count(cs, 1);
    let wild = false;
    for (const p of cs.patterns) {
      if (isPattern(p.source)) {
        wild = true;
        this.insert(p, cs);
      } else if (!this.held(p.source)) {
        let set = this.exact.get(p.source);
        if (!set) this.exact.set(p.source, (set = new Set()));
        set.add(cs);
      }
    }
    if (wild && this.cache.size) this.cache.clear();
  }

  drop(cs: ClientSub): void {
    this.count(cs, -1);
    let wild = false;
    for (const p of cs.patterns) {
      if (isPattern(p.source)) {
        wild = true;
        this.remove(this.root, p, 0, cs);
        continue;
      }
      const set = this.exact.get(p.source);
      if (set && set.delete(cs) && set.size === 0) this.exact.delete(p.source);
    }
    if (wild && this.cache.size) this.cache.clear();
  }

  private insert(p: TopicPattern, cs: ClientSub): void {
    let node = this.root;
    for (const level of p.parts) {
      if (level === '*') node = node.star ??= new Level();
      else {
        let next = node.next.get(level);
        if (!next) node.next.set(level, (next = new Level()));
        node = next;
      }
    }
    (p.trailing ? node.rest : node.here).add(cs);
  }

  /** Removes `cs` under `p` from the trie below `node` (at level `i`); prunes levels left empty. */
  private remove(node: Level, p: TopicPattern, i: number, cs: ClientSub): void {
    const parts = p.parts;
    if (i === parts.length) {
      (p.trailing ? node.rest : node.here).delete(cs);
      return;
    }
    const level = parts[i]!;
    const child = level === '*' ? node.star : node.next.get(level);
    if (!child) return;
    this.remove(child, p, i + 1, cs);
    if (!child.empty()) return;
    if (level === '*') node.star = null;
    else node.next.delete(level);
  }

  private count(cs: ClientSub, by: 1 | -1): void {
    // Once each way (a flag on the record: no per-subscription entry in a WeakSet).
    if ((by === 1) === cs.counted) return;
    cs.counted = by === 1;
    for (const source of new Set(cs.patterns.map((p) => p.source))) {
      const n = (this.counts.get(source) ?? 0) + by;
      if (n > 0) this.counts.set(source, n);
      else this.counts.delete(source);
      if (n === (by === 1 ? 1 : 0)) this.onChange?.(source, by === 1);
    }
  }

  /** Every client subscription that wants `name` (each once). Read only: the set may be shared. */
  wanting(name: string): ReadonlySet<ClientSub> {
    const exact = this.exact.get(name);
    const byPattern = this.patternsWanting(name);
    if (byPattern.size === 0) return exact ?? NONE;
    if (!exact) return byPattern;
    const want = new Set<ClientSub>(exact);
    for (const cs of byPattern) want.add(cs);
    return want;
  }

  /** The pattern subscriptions matching `name`, from the cache or one walk of the trie. */
  private patternsWanting(name: string): ReadonlySet<ClientSub> {
    const root = this.root;
    if (root.empty()) return NONE;
    const hit = this.cache.get(name);
    if (hit) return hit;
    const out = new Set<ClientSub>();
    collect(root, name, 0, out);
    const found = out.size ? out : NONE;
    if (this.cache.size >= MAX_CACHED_NAMES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(name, found);
    return found;
  }
}

/** Adds the subscriptions of `node`'s subtree matching the levels of `name` from `pos` on. */
function collect(node: Level, name: string, pos: number, out: Set<ClientSub>): void {
  // `>` here takes the one or more levels that remain.
  for (const cs of node.rest) out.add(cs);
  let end = name.indexOf('.', pos);
  const last = end < 0;
  if (last) end = name.length;
  const literal = node.next.size ? node.next.get(name.slice(pos, end)) : undefined;
  if (literal) {
    if (last) for (const cs of literal.here) out.add(cs);
    else collect(literal, name, end + 1, out);
  }
  const star = node.star;
  if (star) {
    if (last) for (const cs of star.here) out.add(cs);
    else collect(star, name, end + 1, out);
  }
}
