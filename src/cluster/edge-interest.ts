// An edge's interest: the names and patterns its clients subscribe to, each
// one NATS subscription on `<prefix>.u.<name or pattern>` while at least one
// client wants it. Which replica topics the edge follows comes from here.

import type { Msg, Subscription } from '@nats-io/transport-node';
import { TopicPattern, isPattern } from '../engine/index.js';
import type { NatsLink } from './nats-link.js';
import type { Subjects } from './subjects.js';

export class EdgeInterest {
  private readonly exact = new Map<string, Subscription>();
  private readonly patterns = new Map<string, { pattern: TopicPattern; sub: Subscription }>();

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly maxTopicLength: number,
    private readonly onMessage: (msg: Msg) => void,
  ) {}

  /** Starts following `source` (already validated by fan-out); false when it already was. */
  add(source: string): boolean {
    if (this.exact.has(source) || this.patterns.has(source)) return false;
    const sub = this.link.nc.subscribe(this.subjects.update(source), { callback: (err, msg) => void (err || this.onMessage(msg)) });
    if (isPattern(source)) this.patterns.set(source, { pattern: TopicPattern.parse(source, this.maxTopicLength), sub });
    else this.exact.set(source, sub);
    return true;
  }

  remove(source: string): void {
    const sub = this.exact.get(source) ?? this.patterns.get(source)?.sub;
    sub?.unsubscribe();
    this.exact.delete(source);
    this.patterns.delete(source);
  }

  /** True while `source` (a name or pattern) is followed. */
  has(source: string): boolean {
    return this.exact.has(source) || this.patterns.has(source);
  }

  /** True when some client wants topic `name`. */
  follows(name: string): boolean {
    if (this.exact.has(name)) return true;
    for (const { pattern } of this.patterns.values()) if (pattern.matches(name)) return true;
    return false;
  }

  /** Every name and pattern followed now. */
  sources(): string[] {
    return [...this.exact.keys(), ...this.patterns.keys()];
  }

  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  close(): void {
    for (const s of this.exact.values()) s.unsubscribe();
    for (const p of this.patterns.values()) p.sub.unsubscribe();
    this.exact.clear();
    this.patterns.clear();
  }
}
