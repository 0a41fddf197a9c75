// Keyed topics in JSON commands, for SSE and STOMP: a publish that carries
// `tables` (the HTTP publish's JSON form, server/keyed-json.ts) becomes a
// keyed Publish, and an SSE subscribe's `tables` / `checksums` its table views.

import type { TopicStore } from '../../engine/index.js';
import { commandToMessage, type ClientMessage, type KeyedBatchMsg, type PublishMsg } from '../../protocol/index.js';
import { viewRequestsFromJson } from '../../protocol/keyed-json.js';
import { batchFromJson, isKeyedBody, keyTypesIn, namesUnknownTable } from '../keyed-json.js';

/**
 * A keyed batch `{"fields":{…},"tables":{…}}` for `topic` as a Publish
 * (tables' key types from the store); null when `body` is not keyed. With
 * `forward` (the node's ingest can hand a JSON body to the topic's origin: a
 * cluster node), a body naming a table this node does not hold and the body
 * does not declare goes as given (`keyedJson`), as POST /publish does.
 */
export function keyedPublish(store: TopicStore, id: number, topic: string, body: unknown, forward: boolean): PublishMsg | null {
  if (!isKeyedBody(body) || body.tables === undefined) return null;
  const keyTypeOf = keyTypesIn(store, topic);
  if (forward && namesUnknownTable(body, keyTypeOf)) return { type: 'publish', id, topic, changes: new Map(), keyedJson: body };
  const batch = batchFromJson(body, keyTypeOf);
  return { type: 'publish', id, topic, changes: batch.fields, keyed: batch.tables as KeyedBatchMsg };
}

/**
 * One SSE command as its client message: a publish with `tables` is a keyed
 * batch (`fields` is its summary), a subscribe may carry `tables` (by name:
 * `{"bids": {"depth": 10, "fields": ["qty"]}}`) and `"checksums": true`.
 * `forward`: as for keyedPublish.
 */
export function sseCommand(store: TopicStore, c: unknown, forward: boolean): ClientMessage {
  const o = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
  if (o.type === 'publish' && o.tables !== undefined) {
    const head = commandToMessage({ type: 'publish', id: o.id, topic: o.topic, fields: {} }) as PublishMsg;
    const keyed = keyedPublish(store, head.id, head.topic, { fields: o.fields ?? {}, tables: o.tables }, forward);
    if (keyed) return keyed;
  }
  const m = commandToMessage(c);
  if (m.type === 'subscribe') {
    const tables = viewRequestsFromJson(o.tables);
    if (tables?.length) m.tables = tables;
    if (o.checksums === true) m.checksums = true;
  }
  return m;
}
