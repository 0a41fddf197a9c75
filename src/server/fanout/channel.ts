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

/**
 * One topic's channels: by key, and as a list replaced (never changed in
 * place) when one comes or goes, so that walking it on every publish makes
 * no iterator (a Map's values() did: 56 B a publish) and a walk that creates
 * or drops a channel meanwhile goes on over the list it started with.
 */
class TopicChannels {
  readonly byKey = new Map<string, Channel>();
  list: readonly Channel[] = [];
}

/** The channels of every topic, created on first subscriber and dropped with the last. */
export class Channels {
  /** `dropped` hears a channel go (its keyed views are given back). */
  constructor(private readonly dropped: (ch: Channel) => void = () => {}) {}
  private readonly byTopic = new Map<Topic, TopicChannels>();
  private nextId = 1;

  /** The topic's channels as they are now (a later change makes a new list). */
  of(topic: Topic): readonly Channel[] | undefined {
    return this.byTopic.get(topic)?.list;
  }

  /** The channel for (topic, tier, fields, wire form, keyed views), created when missing. */
  get(topic: Topic, tier: Tier, fields: ReadonlySet<string> | null, form: Form, views: ViewReq | null = null): Channel {
    let chans = this.byTopic.get(topic);
    if (!chans) this.byTopic.set(topic, (chans = new TopicChannels()));
    const key = views ? `${tier}|${fieldsKey(fields)}|${form}|${views.key}` : `${tier}|${fieldsKey(fields)}|${form}`;
    let ch = chans.byKey.get(key);
    if (!ch) {
      chans.byKey.set(key, (ch = new Channel(key, topic, tier, fields, form, this.nextId++)));
      ch.views = views;
      chans.list = [...chans.list, ch];
    }
    return ch;
  }

  /** Drops a channel that has no subscriber left. */
  drop(ch: Channel): void {
    const chans = this.byTopic.get(ch.topic);
    if (chans?.byKey.get(ch.key) === ch) {
      chans.byKey.delete(ch.key);
      chans.list = chans.list.filter((c) => c !== ch);
    }
    this.dropped(ch);
    if (chans && chans.byKey.size === 0) this.byTopic.delete(ch.topic);
  }
}
