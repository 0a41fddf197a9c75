// An edge's interest: the names and patterns its clients subscribe to, and
// the NATS subscriptions on `<prefix>.u.<name or pattern>` that bring their
// updates. Which replica topics the edge follows comes from here.
//
// NATS delivers a message once per matching subscription of a connection, so
// a source covered by another followed pattern (`d.x` or `d.*` under `d.*`,
// `d.>` or `>`) holds no subscription of its own: its updates come by the
// covering one, once. Handovers never lose an update: a covering pattern is
// subscribed before what it covers ends, and what a removed pattern covered
// is subscribed before it ends; the old subscription ends only after a round
// trip (PING/PONG) shows the server has processed the new one, so updates
// already on their way to the old one are still delivered. In between, an
// update may come twice (replicas drop the second by version).
// Reconnects: nats.js renews the subscriptions held; a round trip still
// pending then fails and its subscriptions end before the new connection is
// up (the edge heals every replica by image on reconnect anyway).
// Patterns that overlap without one covering the other (`a.*` and `*.b`) still
// both deliver what they share.

import type { Msg, Subscription } from '@nats-io/transport-node';
import { TopicPattern, isPattern } from '../engine/index.js';
import type { NatsLink } from './nats-link.js';
import type { Subjects } from './subjects.js';

/** One followed name or pattern. */
interface Source {
  readonly name: string;
  readonly pattern: TopicPattern | null;
  /** Its NATS subscription: held while no other followed pattern covers it (and until a covering one is confirmed). */
  sub: Subscription | null;
  /** Non-zero while `sub` is to end: the number of the round trip it waits for. */
  ending: number;
}

/** True when every topic `q` matches is matched by `p` (NATS wildcard containment). */
export function patternCovers(p: TopicPattern, q: TopicPattern): boolean {
  const a = p.parts;
  const b = q.parts;
  if (p.trailing) {
    // `>` takes one or more levels: q needs at least one beyond p's (its own `>` counts as one).
    if (b.length < a.length + (q.trailing ? 0 : 1)) return false;
  } else if (q.trailing || b.length !== a.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== '*' && a[i] !== b[i]) return false;
  return true;
}

export class EdgeInterest {
  private readonly exact = new Map<string, Source>();
  private readonly patterns = new Map<string, Source>();
  /** Every source holding a NATS subscription now, followed or ending (a removed pattern waiting for its round trip). */
  private readonly holding = new Set<Source>();
  private rounds = 0;

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly maxTopicLength: number,
    private readonly onMessage: (msg: Msg) => void,
  ) {}

  /** Starts following `source` (already validated by fan-out); false when it already was. */
  add(source: string): boolean {
    if (this.has(source)) return false;
    const s: Source = { name: source, pattern: isPattern(source) ? TopicPattern.parse(source, this.maxTopicLength) : null, sub: null, ending: 0 };
    (s.pattern ? this.patterns : this.exact).set(source, s);
    if (this.coverer(s)) return true; // its updates already come by a broader subscription
    this.subscribe(s);
    if (s.pattern) {
      const covered: Source[] = [];
      for (const o of this.holding) if (o !== s && !o.ending && this.isFollowed(o) && this.covers(s.pattern, o)) covered.push(o);
      this.end(covered);
    }
    return true;
  }

  remove(source: string): void {
    const s = this.exact.get(source) ?? this.patterns.get(source);
    if (!s) return;
    (s.pattern ? this.patterns : this.exact).delete(source);
    // No subscription, or one already ending after a round trip sent behind whatever covers it now.
    if (!s.sub || s.ending) return;
    if (!s.pattern) return this.drop(s);
    // What it covered and nothing else does is subscribed first; it ends once the server has those.
    let handsOver = false;
    for (const o of this.all()) {
      if (!this.covers(s.pattern, o)) continue;
      handsOver = true;
      if (this.coverer(o)) continue;
      if (o.sub) {
        o.ending = 0; // was ending under this pattern: kept
      } else this.subscribe(o);
    }
    if (handsOver) this.end([s]);
    else this.drop(s);
  }

  /** True while `source` (a name or pattern) is followed. */
  has(source: string): boolean {
    return this.exact.has(source) || this.patterns.has(source);
  }

  /** True when some client wants topic `name`. */
  follows(name: string): boolean {
    if (this.exact.has(name)) return true;
    for (const { pattern } of this.patterns.values()) if (pattern!.matches(name)) return true;
    return false;
  }

  /** Every name and pattern followed now. */
  sources(): string[] {
    return [...this.exact.keys(), ...this.patterns.keys()];
  }

  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  /** NATS subscriptions held now (fewer than `size` when patterns cover other sources; more for a moment during a handover). */
  get subscriptions(): number {
    return this.holding.size;
  }

  close(): void {
    for (const s of [...this.holding]) this.drop(s);
    this.exact.clear();
    this.patterns.clear();
  }

  // ------------------------------------------------------------ internals

  private *all(): Generator<Source> {
    yield* this.exact.values();
    yield* this.patterns.values();
  }

  private isFollowed(s: Source): boolean {
    return (s.pattern ? this.patterns : this.exact).get(s.name) === s;
  }

  /** True when pattern `p` takes every update of source `o`. */
  private covers(p: TopicPattern, o: Source): boolean {
    return o.pattern ? patternCovers(p, o.pattern) : p.matches(o.name);
  }

  /** Another followed pattern covering `s`, if any. */
  private coverer(s: Source): Source | undefined {
    for (const p of this.patterns.values()) if (p !== s && this.covers(p.pattern!, s)) return p;
    return undefined;
  }

  private subscribe(s: Source): void {
    const sub = this.link.nc.subscribe(this.subjects.update(s.name), {
      callback: (err, msg) => {
        if (err) return;
        // An ending subscription still delivers what is on its way, but only of topics someone follows.
        if (s.ending && !this.follows(this.subjects.topicOf(msg.subject))) return;
        this.onMessage(msg);
      },
    });
    s.sub = sub;
    s.ending = 0;
    this.holding.add(s);
  }

  /**
   * Ends these subscriptions once the server has processed every SUB sent so
   * far (the covering ones): a round trip. If a source is wanted again by
   * itself meanwhile (its coverer removed), it keeps its subscription.
   */
  private end(list: Source[]): void {
    if (!list.length) return;
    const round = ++this.rounds;
    for (const s of list) s.ending = round;
    const done = (): void => {
      for (const s of list) if (s.ending === round) this.drop(s);
    };
    // Rejected when the connection drops or closes: ended then (nats.js renews only what is still held).
    this.link.nc.flush().then(done, done);
  }

  private drop(s: Source): void {
    s.sub?.unsubscribe();
    s.sub = null;
    s.ending = 0;
    this.holding.delete(s);
  }
}
