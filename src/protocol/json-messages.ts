// JSON form of protocol messages, for SSE: server messages travel down as JSON
// event objects, client messages go up as JSON commands (POST /sse/<session>).
// Both directions of both halves live here so the server and the SDK cannot drift.

import { ErrorCode, TickfanError, errorCodeName } from './codes.js';
import { fieldsToJson, valueFromJson, valueToJson } from './json-values.js';
import { keyedFromJson, keyedToJson } from './keyed-json.js';
import { TopicState, type AnyMessage, type ClientMessage, type Payload, type ResumePoint } from './messages.js';
import type { Changes, State } from './values.js';

const STATE_NAME: Record<number, string> = { [TopicState.OK]: 'ok', [TopicState.STALE]: 'stale', [TopicState.GONE]: 'gone' };

// ---------------------------------------------------------------- server → JSON event

/** A server message as the JSON object an SSE event carries. */
export function messageToJson(m: AnyMessage): Record<string, unknown> {
  switch (m.type) {
    case 'welcome':
      return { type: m.type, protocol: m.protocol, server: m.server, heartbeatMs: m.heartbeatMs, maxFrame: m.maxFrame, rateTiers: m.rateTiers, maxProtocol: m.maxProtocol };
    case 'snapshot':
      return { type: m.type, topic: m.topic, epoch: m.epoch, version: m.version, ts: m.ts, fields: fieldsToJson(m.fields) };
    case 'delta':
      return { type: m.type, topic: m.topic, epoch: m.epoch, base: m.base, version: m.version, updates: m.updates, ts: m.ts, changes: fieldsToJson(m.changes) };
    case 'topicStatus':
      return { type: m.type, topic: m.topic, state: STATE_NAME[m.state] ?? 'ok', epoch: m.epoch, version: m.version };
    case 'ack':
      return { type: m.type, id: m.id, topic: m.topic, epoch: m.epoch, version: m.version, count: m.count };
    case 'error':
      return { type: m.type, code: m.code, name: errorCodeName(m.code), id: m.id, topic: m.topic, message: m.message };
    case 'heartbeat':
      return { type: m.type, time: m.time, versions: m.versions };
    case 'ping':
    case 'pong':
      return { type: m.type, nonce: m.nonce.toString() };
    case 'serviceRequest':
      return { type: m.type, correlation: m.correlation, serveId: m.serveId, service: m.service, requester: m.requester, timeoutMs: m.timeoutMs, ...payloadToJson(m.payload) };
    case 'response':
      return { type: m.type, id: m.id, code: m.code, ...(m.code ? { name: errorCodeName(m.code) } : {}), message: m.message, responder: m.responder, ...payloadToJson(m.payload) };
    case 'keyedSnapshot':
    case 'keyedDelta':
      return keyedToJson(m);
    default:
      return { type: m.type };
  }
}

/** A payload as JSON: `{"fields": {…}}`, or `{"data": {"$bytes": "<base64>"}}` for bytes. */
export function payloadToJson(p: Payload): { fields: Record<string, unknown> } | { data: unknown } {
  return p.data !== null ? { data: valueToJson(p.data) } : { fields: fieldsToJson(p.fields) };
}

/** A payload from its JSON form (either key); BAD_REQUEST / BAD_FIELD when it is neither. */
export function payloadFromJson(o: Record<string, unknown>): Payload {
  if (o.data !== undefined) {
    const data = valueFromJson(o.data, 'data');
    if (!(data instanceof Uint8Array)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'a payload\'s "data" must be {"$bytes": "<base64>"}');
    return { fields: null, data };
  }
  const fields = o.fields ?? {};
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'a payload\'s "fields" must be an object of field → value');
  return { fields: fieldMap(fields), data: null };
}

// ---------------------------------------------------------------- JSON event → server message

function fieldMap(o: unknown): Changes {
  const out: Changes = new Map();
  if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) out.set(k, valueFromJson(v, k));
  return out;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A server message from its JSON form; null for a type this SDK does not know (newer server). */
export function messageFromJson(o: Record<string, unknown>): AnyMessage | null {
  switch (o.type) {
    case 'welcome':
      return { type: 'welcome', protocol: num(o.protocol), server: text(o.server), heartbeatMs: num(o.heartbeatMs), maxFrame: num(o.maxFrame), rateTiers: Array.isArray(o.rateTiers) ? (o.rateTiers as number[]) : [], maxProtocol: num(o.maxProtocol) || 1 };
    case 'snapshot':
      return { type: 'snapshot', topic: text(o.topic), epoch: num(o.epoch), version: num(o.version), ts: num(o.ts), fields: fieldMap(o.fields) as State };
    case 'delta':
      return { type: 'delta', topic: text(o.topic), epoch: num(o.epoch), base: num(o.base), version: num(o.version), updates: num(o.updates), ts: num(o.ts), changes: fieldMap(o.changes) };
    case 'topicStatus':
      return { type: 'topicStatus', topic: text(o.topic), state: o.state === 'stale' ? TopicState.STALE : o.state === 'gone' ? TopicState.GONE : TopicState.OK, epoch: num(o.epoch), version: num(o.version) };
    case 'ack':
      return { type: 'ack', id: num(o.id), topic: text(o.topic), epoch: num(o.epoch), version: num(o.version), count: num(o.count) };
    case 'error':
      return { type: 'error', code: num(o.code), id: num(o.id), topic: text(o.topic), message: text(o.message) };
    case 'heartbeat':
      return { type: 'heartbeat', time: num(o.time), versions: Array.isArray(o.versions) ? (o.versions as ResumePoint[]) : [] };
    case 'ping':
    case 'pong':
      return { type: o.type, nonce: BigInt(text(o.nonce) || '0') };
    case 'serviceRequest':
      return { type: 'serviceRequest', correlation: num(o.correlation), serveId: num(o.serveId), service: text(o.service), requester: text(o.requester), timeoutMs: num(o.timeoutMs), payload: payloadFromJson(o) };
    case 'response':
      return { type: 'response', id: num(o.id), code: num(o.code), message: text(o.message), responder: text(o.responder), payload: payloadFromJson(o) };
    case 'keyedSnapshot':
    case 'keyedDelta':
      return keyedFromJson(o);
    default:
      return null;
  }
}

// ---------------------------------------------------------------- client message → JSON command

/** A client message as the JSON command POST /sse/<session> takes (null: nothing to send over SSE). */
export function messageToCommand(m: ClientMessage): Record<string, unknown> | null {
  switch (m.type) {
    case 'hello':
      // A stream's first token travels in its URL; a later one (a refresh) is a command.
      return m.token ? { type: 'hello', token: m.token } : null;
    case 'subscribe':
      return { type: m.type, id: m.id, topics: m.topics, maxRate: m.maxRate, fields: m.fields, resume: m.resume, ...(m.timestamps ? { timestamps: true } : {}) };
    case 'unsubscribe':
    case 'pause':
    case 'resume':
      return { type: m.type, id: m.id };
    case 'catchUp':
      return { type: m.type, topic: m.topic, epoch: m.epoch, version: m.version };
    case 'publish':
      return { type: m.type, id: m.id, topic: m.topic, fields: fieldsToJson(m.changes) };
    case 'ping':
    case 'pong':
      return { type: m.type, nonce: m.nonce.toString() };
    case 'serve':
      return { type: m.type, id: m.id, service: m.service };
    case 'unserve':
      return { type: m.type, id: m.id };
    case 'request':
      return { type: m.type, id: m.id, service: m.service, timeoutMs: m.timeoutMs, ...payloadToJson(m.payload) };
    case 'reply':
      return { type: m.type, correlation: m.correlation, failed: m.failed, error: m.error, ...payloadToJson(m.payload) };
  }
}

// ---------------------------------------------------------------- JSON command → client message

function int(v: unknown, what: string, min = 0, max = 2 ** 32 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `${what} must be an integer between ${min} and ${max}`);
  }
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TickfanError(ErrorCode.BAD_REQUEST, `${what} must be a string`);
  return v;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new TickfanError(ErrorCode.BAD_REQUEST, `${what} must be an array of strings`);
  return v as string[];
}

function resumePoints(v: unknown): ResumePoint[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'resume must be an array of {topic, epoch, version}');
  return v.map((p: { topic?: unknown; epoch?: unknown; version?: unknown }) => ({
    topic: str(p?.topic, 'resume[].topic'),
    epoch: int(p?.epoch, 'resume[].epoch', 0, Number.MAX_SAFE_INTEGER),
    version: int(p?.version, 'resume[].version', 0, Number.MAX_SAFE_INTEGER),
  }));
}

/**
 * A JSON command (POST /sse/<session>) as the protocol message it stands for:
 * the same handler then serves WebSocket and SSE clients. Throws TickfanError
 * (BAD_REQUEST, BAD_FIELD or UNKNOWN_MESSAGE) for anything else.
 */
export function commandToMessage(c: unknown): ClientMessage {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'a command is a JSON object with a "type"');
  const o = c as Record<string, unknown>;
  switch (o.type) {
    case 'hello': {
      // A token refresh on the session (its first token came with GET /sse).
      const token = str(o.token, 'token');
      if (!token) throw new TickfanError(ErrorCode.BAD_REQUEST, 'hello carries a new token: {"type":"hello","token":"<jwt>"}');
      return { type: 'hello', protocol: 0, client: '', token };
    }
    case 'subscribe': {
      const maxRate = o.maxRate ?? 0;
      if (typeof maxRate !== 'number' || !(maxRate >= 0)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'maxRate must be 0 (every update) or a positive rate');
      return { type: 'subscribe', id: int(o.id, 'id', 1), topics: strings(o.topics, 'topics'), maxRate, fields: strings(o.fields, 'fields'), resume: resumePoints(o.resume), timestamps: o.timestamps === true };
    }
    case 'unsubscribe':
    case 'pause':
    case 'resume':
      return { type: o.type, id: int(o.id, 'id', 1) };
    case 'catchUp':
      return { type: 'catchUp', topic: str(o.topic, 'topic'), epoch: int(o.epoch, 'epoch', 0, Number.MAX_SAFE_INTEGER), version: int(o.version, 'version', 0, Number.MAX_SAFE_INTEGER) };
    case 'publish': {
      const fields = o.fields;
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'publish needs "fields": an object of field → value (null deletes)');
      const changes: Changes = new Map();
      for (const [k, v] of Object.entries(fields)) changes.set(k, valueFromJson(v, k));
      return { type: 'publish', id: o.id === undefined ? 0 : int(o.id, 'id'), topic: str(o.topic, 'topic'), changes };
    }
    case 'ping':
    case 'pong': {
      const n = typeof o.nonce === 'string' || typeof o.nonce === 'number' ? o.nonce : 0;
      let nonce: bigint;
      try {
        nonce = BigInt(n);
      } catch {
        throw new TickfanError(ErrorCode.BAD_REQUEST, 'nonce must be an integer');
      }
      return { type: o.type, nonce };
    }
    case 'serve':
      return { type: 'serve', id: int(o.id, 'id', 1), service: str(o.service, 'service') };
    case 'unserve':
      return { type: 'unserve', id: int(o.id, 'id', 1) };
    case 'request':
      return { type: 'request', id: int(o.id, 'id', 1), service: str(o.service, 'service'), timeoutMs: o.timeoutMs === undefined ? 0 : int(o.timeoutMs, 'timeoutMs'), payload: payloadFromJson(o) };
    case 'reply':
      return {
        type: 'reply',
        correlation: int(o.correlation, 'correlation', 1, Number.MAX_SAFE_INTEGER),
        failed: o.failed === true,
        error: o.error === undefined ? '' : str(o.error, 'error'),
        payload: payloadFromJson(o),
      };
    default:
      throw new TickfanError(
        ErrorCode.UNKNOWN_MESSAGE,
        `unknown command type ${JSON.stringify(o.type)}: subscribe, unsubscribe, pause, resume, catchUp, publish, ping, serve, unserve, request or reply`,
      );
  }
}
