// What a STOMP connection makes of each message fan-out hands it. Fan-out
// gives the same buffer to every subscriber of a channel, so the part of a
// MESSAGE frame that does not depend on the connection (headers and JSON
// body) is made once per buffer, cached by it, however many frames carry it.

import { decodeEncoded, fieldsToJson, type AnyMessage, type FieldValue, type ResponseMsg } from '../../protocol/index.js';

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

/** What a size-prefixed message from fan-out means to a STOMP connection; throws if it does not decode. */
export function translate(buf: Uint8Array): Translated {
  const hit = cache.get(buf);
  if (hit) return hit;
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
