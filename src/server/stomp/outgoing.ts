// The frames the server writes, as strings (or a Buffer for a binary body):
// MESSAGE for a topic update or a reply, RECEIPT, ERROR, CONNECTED. Pure;
// the sink decides where they go.

import { ERROR_CODE_TEXT, errorCodeName, fieldsToJson, type ErrorCode, type FieldValue, type Payload } from '../../protocol/index.js';
import { encodeFrame, escapeHeader, type HeaderList, type StompVersion } from './frame.js';
import { TOPIC_PREFIX } from './destinations.js';
import { withBody, type TopicUpdate } from './shared-message.js';
import type { StompSub } from './subscriptions.js';

/** The header `message` holds one line of at most this many characters; the body holds it all. */
const MESSAGE_HEADER_CHARS = 240;

/** A MESSAGE frame of a topic update for one subscription (its body cut down to the subscription's fields). */
export function updateFrame(u: TopicUpdate, sub: StompSub, messageId: number, version: StompVersion): string {
  let head = `MESSAGE\ndestination:${escapeHeader(TOPIC_PREFIX + u.topic, version)}\nsubscription:${escapeHeader(sub.id, version)}\nmessage-id:${messageId}\n`;
  if (sub.ack !== 'auto') head += `ack:${messageId}\n`;
  return head + (sub.fields && u.kind !== 'status' ? tailFor(u, sub.fields) : u.tail);
}

/** The shared tail, or one whose body holds only `fields` when the shared stream carries more. */
function tailFor(u: TopicUpdate, fields: ReadonlySet<string>): string {
  let extra = false;
  for (const k of u.fields.keys()) {
    if (!fields.has(k)) {
      extra = true;
      break;
    }
  }
  if (!extra) return u.tail;
  const kept: [string, FieldValue | null][] = [];
  for (const [k, v] of u.fields) if (fields.has(k)) kept.push([k, v]);
  return withBody(u.headers, JSON.stringify(fieldsToJson(kept)));
}

export function receiptFrame(receipt: string, version: StompVersion, extra: HeaderList = []): string {
  return encodeFrame('RECEIPT', [['receipt-id', receipt], ...extra], '', version) as string;
}

/** An ERROR frame a person can act on: the message in a header (one line) and in full in the body, with tickfan's code. */
export function errorFrame(code: number, message: string, receipt: string | null, version: StompVersion): string {
  const name = errorCodeName(code);
  const line = message.replace(/[\r\n]+/g, ' ');
  const headers: [string, string][] = [['message', line.length > MESSAGE_HEADER_CHARS ? line.slice(0, MESSAGE_HEADER_CHARS - 1) + '…' : line]];
  if (receipt !== null) headers.push(['receipt-id', receipt]);
  headers.push(['tickfan-code', String(code)], ['tickfan-error', name], ['content-type', 'text/plain']);
  const meaning = ERROR_CODE_TEXT[code as ErrorCode];
  return encodeFrame('ERROR', headers, `${message}\n\n${name} (${code})${meaning ? `: ${meaning}` : ''}\n`, version) as string;
}

export interface ReplyTarget {
  destination: string;
  /** The reply subscription's id, or the destination itself (as RabbitMQ names temporary queues). */
  subscription: string;
  ack: boolean;
  correlationId: string | null;
}

/**
 * The answer to a request, as a MESSAGE to its reply-to destination:
 * `tickfan-code` 0 with the reply (JSON fields, or bytes), or the error code
 * with `{"error": {code, name, message}}`.
 */
export function replyFrame(to: ReplyTarget, messageId: number, code: number, message: string, payload: Payload, responder: string, version: StompVersion): string | Buffer {
  const headers: [string, string][] = [
    ['destination', to.destination],
    ['subscription', to.subscription],
    ['message-id', String(messageId)],
  ];
  if (to.ack) headers.push(['ack', String(messageId)]);
  if (to.correlationId !== null) headers.push(['correlation-id', to.correlationId]);
  headers.push(['tickfan-code', String(code)]);
  if (code !== 0) {
    headers.push(['content-type', 'application/json']);
    return encodeFrame('MESSAGE', headers, JSON.stringify({ error: { code, name: errorCodeName(code), message } }), version);
  }
  if (responder) headers.push(['tickfan-responder', responder]);
  if (payload.data !== null) {
    headers.push(['content-type', 'application/octet-stream']);
    return encodeFrame('MESSAGE', headers, payload.data, version);
  }
  headers.push(['content-type', 'application/json']);
  return encodeFrame('MESSAGE', headers, JSON.stringify(fieldsToJson(payload.fields)), version);
}

export function connectedFrame(version: StompVersion, heartBeat: string, session: string, server: string): string {
  const headers: [string, string][] = [['version', version]];
  if (version !== '1.0') headers.push(['heart-beat', heartBeat]);
  headers.push(['session', session], ['server', server]);
  return encodeFrame('CONNECTED', headers, '', version) as string;
}

/** The ERROR frame of a close that no error message explained (server shutdown, heart-beat, token expiry…). */
export function closingFrame(code: number, reason: string, meaning: string | undefined, version: StompVersion): string {
  const headers: [string, string][] = [['message', reason.replace(/[\r\n]+/g, ' ')], ['tickfan-close-code', String(code)], ['content-type', 'text/plain']];
  return encodeFrame('ERROR', headers, `${reason}${meaning ? `: ${meaning}` : ''}\n`, version) as string;
}
