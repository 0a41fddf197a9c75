// Wire forms: what fan-out encodes, once per channel, for each kind of
// connection — protocol 1 (FlatBuffers tables with names), protocol 2
// (topic and field ids, packed values), protocol 2 with timestamps, and the
// keyed JSON form (keyed topics on SSE and STOMP: keyed-json-wire.ts; their
// flat topics are protocol 1's). A connection's form never changes once it
// has subscriptions.

import type { CatchUpPlan, Topic } from '../../engine/index.js';
import type { ByteSink, Changes, Delta2Options, Encoder } from '../../protocol/index.js';

export const Form = { P1: 1, P2: 2, P2_TS: 3, JSON: 4 } as const;
export type Form = (typeof Form)[keyof typeof Form];

/**
 * The form of a connection speaking `protocol` whose subscriptions (any of
 * them) ask for timestamps; `keyedJson`: a JSON sink's (SSE, STOMP) keyed topic.
 */
export function formOf(protocol: number, timestamps: boolean, keyedJson = false): Form {
  if (keyedJson) return Form.JSON;
  if (protocol < 2) return Form.P1;
  return timestamps ? Form.P2_TS : Form.P2;
}

/** Flat messages of a form in protocol 1 (a keyed JSON channel whose topic has no tables: protocol 1, which JSON sinks read). */
const p1 = (form: Form): boolean => form === Form.P1 || form === Form.JSON;

export class Wire {
  /** The stream's delta options, refilled per call (read synchronously by the encoder): no object per publish. */
  private readonly streamOpts: Delta2Options = { namesFrom: 1, bind: false, ts: undefined };

  constructor(private readonly enc: Encoder) {}

  /**
   * A delta of a channel's stream from `base` to the topic's `version`:
   * protocol 2 names the fields whose ids start at `namesFrom` (assigned
   * since the stream's last message), protocol 1 names every field.
   */
  streamDelta(form: Form, topic: Topic, base: number, version: number, updates: number, changes: Changes, namesFrom: number, fields: ReadonlySet<string> | null): Uint8Array {
    const only = fields ?? undefined;
    if (p1(form)) return this.enc.delta(topic.name, topic.epoch, base, version, updates, changes, topic.ts, only);
    const o = this.streamOpts;
    o.namesFrom = namesFrom;
    o.ts = form === Form.P2_TS ? topic.ts : undefined;
    return this.enc.delta2(topic, base, version, changes, o, only);
  }

  /**
   * streamDelta() of a protocol-2 form written into `sink` (the fast path's
   * stage) instead of a fresh array; returns where it starts there.
   */
  stageDelta(sink: ByteSink, form: Form, topic: Topic, base: number, version: number, changes: Changes, namesFrom: number, fields: ReadonlySet<string> | null): number {
    const o = this.streamOpts;
    o.namesFrom = namesFrom;
    o.ts = form === Form.P2_TS ? topic.ts : undefined;
    return this.enc.delta2Into(sink, topic, base, version, changes, o, fields ?? undefined);
  }

  /** A merged catch-up delta; protocol 2 binds the topic id and names every field. */
  catchUpDelta(form: Form, topic: Topic, plan: Extract<CatchUpPlan, { kind: 'delta' }>, fields: ReadonlySet<string> | null): Uint8Array {
    const only = fields ?? undefined;
    if (p1(form)) return this.enc.delta(topic.name, topic.epoch, plan.base, plan.version, plan.updates, plan.changes, topic.ts, only);
    return this.enc.delta2(topic, plan.base, plan.version, plan.changes, { namesFrom: 1, bind: true, ts: form === Form.P2_TS ? topic.ts : undefined }, only);
  }

  /** "You are current": an empty delta from the current version to itself (protocol 2: binding the topic id). */
  confirm(form: Form, topic: Topic): Uint8Array {
    if (p1(form)) return this.enc.delta(topic.name, topic.epoch, topic.version, topic.version, 0, [], topic.ts);
    return this.enc.delta2(topic, topic.version, topic.version, [], { namesFrom: 1, bind: true });
  }

  snapshot(form: Form, topic: Topic, fields: ReadonlySet<string> | null): Uint8Array {
    const only = fields ?? undefined;
    if (p1(form)) return this.enc.snapshot(topic.name, topic.epoch, topic.version, topic.state, topic.ts, only);
    return this.enc.snapshot2(topic, topic.version, topic.state, topic.ts, only);
  }
}
