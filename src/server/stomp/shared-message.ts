// What a STOMP connection makes of each message fan-out hands it. Fan-out
// gives the same buffer to every subscriber of a channel, so the part of a
// MESSAGE frame that does not depend on the connection (headers and JSON
// body) is made once per buffer, cached by it, however many frames carry it.
// Keyed topics' messages come as JSON already (one per channel, from fan-out).

import { decodeEncoded, fieldsToJson, type AnyMessage, type FieldValue, type ResponseMsg } from '../../protocol/index.js';
import { keyedJsonOf, type KeyedJson } from '../fanout/keyed-json-wire.js';

/** A snapshot, delta or topic status, ready to be framed for any subscription. */
export interface TopicUpdate {
  kind: 'snapshot' | 'delta' | 'status';
  topic: string;
  epoch: number;
  version: number;
  /** The fields a snapshot holds or a delta changes (null: deleted); empty for a status. */
  fields: ReadonlyMap<string, FieldValue | null>;
  /** Everything after the connection's own headers: shared headers, content-length, blank line, body, NUL. */
  tail: string;
  /** Headers of the tail without its body: for a body cut down to a subscription's fields. */
  headers: string;
}

/** Every kind of message a STOMP connection acts on; `other` is dropped (Welcome, protocol heartbeats, pongs of others). */
export type Translated =
  | TopicUpdate
  | { kind: 'ack'; id: number }
  | { kind: 'error'; id: number; code: number; message: string; topic: string }
  | { kind: 'response'; msg: ResponseMsg }
  | { kind: 'pong'; nonce: number }
  | { kind: 'other' };

const STATUS_NAME = ['ok', 'stale', 'gone'] as const;
const cache = new WeakMap<Uint8Array, TopicUpdate>();

/** The tail of a MESSAGE frame: shared headers, then a JSON body. */
export function withBody(headers: string, json: string): string {
  return `${headers}content-length:${Buffer.byteLength(json)}\n\n${json}\0`;
}

function update(m: AnyMessage): TopicUpdate | null {
  switch (m.type) {
    case 'snapshot': {
      const headers = `content-type:application/json\ntickfan-kind:snapshot\ntickfan-epoch:${m.epoch}\ntickfan-version:${m.version}\n`;
      return { kind: 'snapshot', topic: m.topic, epoch: m.epoch, version: m.version, fields: m.fields, headers, tail: withBody(headers, JSON.stringify(fieldsToJson(m.fields))) };
    }
    case 'delta': {
      const headers = `content-type:application/json\ntickfan-kind:delta\ntickfan-epoch:${m.epoch}\ntickfan-base:${m.base}\ntickfan-version:${m.version}\ntickfan-updates:${m.updates}\n`;
      return { kind: 'delta', topic: m.topic, epoch: m.epoch, version: m.version, fields: m.changes, headers, tail: withBody(headers, JSON.stringify(fieldsToJson(m.changes))) };
    }
    case 'topicStatus': {
      // An empty body: a client that applies every body as a delta changes nothing.
      const headers = `content-type:application/json\ntickfan-kind:status\ntickfan-status:${STATUS_NAME[m.state] ?? 'ok'}\ntickfan-epoch:${m.epoch}\ntickfan-version:${m.version}\n`;
      return { kind: 'status', topic: m.topic, epoch: m.epoch, version: m.version, fields: new Map(), headers, tail: withBody(headers, '{}') };
    }
    default:
      return null;
  }
}

const NO_FIELDS: ReadonlyMap<string, FieldValue | null> = new Map();

/**
 * A keyed topic's message (already JSON: fanout/keyed-json-wire.ts): the body
 * is the keyed JSON form; a snapshot may come in parts (tickfan-part, and
 * tickfan-last on the last), each a MESSAGE. The body is the same for every
 * subscription of the connection (one view per topic per connection).
 */
function keyedUpdate(k: KeyedJson): TopicUpdate {
  let headers = `content-type:application/json\ntickfan-kind:${k.kind}\ntickfan-epoch:${k.epoch}\n`;
  if (k.kind === 'keyedDelta') headers += `tickfan-base:${k.base}\ntickfan-version:${k.version}\ntickfan-updates:${k.version - k.base}\n`;
  else headers += `tickfan-version:${k.version}\ntickfan-part:${k.part}\ntickfan-last:${k.last}\n`;
  return { kind: k.kind === 'keyedDelta' ? 'delta' : 'snapshot', topic: k.topic, epoch: k.epoch, version: k.version, fields: NO_FIELDS, headers, tail: withBody(headers, k.json) };
}

/** What a size-prefixed message from fan-out means to a STOMP connection; throws if it does not decode. */
export function translate(buf: Uint8Array): Translated {
  const hit = cache.get(buf);
  if (hit) return hit;
  const k = keyedJsonOf(buf);
  if (k) {
    const u = keyedUpdate(k);
    cache.set(buf, u);
    return u;
  }
  const m = decodeEncoded(buf);
  const u = update(m);
  if (u) {
    cache.set(buf, u);
    return u;
  }
  switch (m.type) {
    case 'ack':
      return { kind: 'ack', id: m.id };
    case 'error':
      return { kind: 'error', id: m.id, code: m.code, message: m.message, topic: m.topic };
    case 'response':
      return { kind: 'response', msg: m };
    case 'pong':
      return { kind: 'pong', nonce: Number(m.nonce) };
    default:
      return { kind: 'other' };
  }
}
