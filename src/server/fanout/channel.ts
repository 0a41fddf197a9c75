// The channels of every topic: created with a topic's first subscriber at a
// (rate tier, field subset) and dropped with its last. Each update is encoded
// once per channel (never per subscriber).

import type { Topic } from '../../engine/index.js';
import { Channel, type Tier } from './state.js';
import type { Form } from './wire.js';
import type { ViewReq } from './view-entry.js';

export function fieldsKey(fields: ReadonlySet<string> | null): string {
  return fields ? [...fields].sort().join(',') : '*';
}

/** The channels of every topic, created on first subscriber and dropped with the last. */
export class Channels {
  /** `dropped` hears a channel go (its keyed views are given back). */
  constructor(private readonly dropped: (ch: Channel) => void = () => {}) {}
  private readonly byTopic = new Map<Topic, Map<string, Channel>>();
  private nextId = 1;

  of(topic: Topic): Iterable<Channel> | undefined {
    return this.byTopic.get(topic)?.values();
  }

  /** The channel for (topic, tier, fields, wire form, keyed views), created when missing. */
  get(topic: Topic, tier: Tier, fields: ReadonlySet<string> | null, form: Form, views: ViewReq | null = null): Channel {
    let chans = this.byTopic.get(topic);
    if (!chans) this.byTopic.set(topic, (chans = new Map()));
    const key = views ? `${tier}|${fieldsKey(fields)}|${form}|${views.key}` : `${tier}|${fieldsKey(fields)}|${form}`;
    let ch = chans.get(key);
    if (!ch) {
      chans.set(key, (ch = new Channel(key, topic, tier, fields, form, this.nextId++)));
      ch.views = views;
    }
    return ch;
  }

  /** Drops a channel that has no subscriber left. */
  drop(ch: Channel): void {
    const chans = this.byTopic.get(ch.topic);
    chans?.delete(ch.key);
    this.dropped(ch);
    if (chans && chans.size === 0) this.byTopic.delete(ch.topic);
  }
}
