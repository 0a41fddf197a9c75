// What cluster nodes say to each other for request-reply across nodes: a
// request forwarded on `<prefix>.svc.<service>` (the service, who asks, the
// payload, the timeout) and its answer (a reply with who answered, or the
// typed error the requester would have got locally). JSON, with field values
// in the exact JSON form of the HTTP API, fields as ordered [name, value] pairs.

import { ErrorCode, TickfanError, valueFromJson, valueToJson, type Changes, type Payload } from '../protocol/index.js';
import type { Outcome } from '../server/services/index.js';
import { decodeJson, encodeJson } from './messages.js';

/** A request one node forwards to a node with a responder for it. */
export interface ForwardedRequest {
  service: string;
  /** The requester's token subject (what the responder sees as `requester`). */
  who: string;
  /** The timeout the requester's node gave it (capped there), ms. */
  timeoutMs: number;
  payload: Payload;
}

type PayloadJson = { fields: [string, unknown][] } | { data: unknown };

interface RequestJson {
  service: string;
  who: string;
  timeoutMs: number;
  payload: PayloadJson;
}

type OutcomeJson = { ok: true; responder: string; payload: PayloadJson } | { ok: false; code: number; message: string };

function payloadToJson(p: Payload): PayloadJson {
  return p.data !== null ? { data: valueToJson(p.data) } : { fields: [...p.fields].map(([k, v]) => [k, valueToJson(v)]) };
}

function payloadFromJson(j: PayloadJson | undefined, what: string): Payload {
  if (j && 'data' in j) {
    const data = valueFromJson(j.data, 'data');
    if (!(data instanceof Uint8Array)) throw new TickfanError(ErrorCode.BAD_REQUEST, `cluster: ${what}'s bytes must be {"$bytes": "<base64>"}`);
    return { fields: null, data };
  }
  if (!j || !Array.isArray(j.fields)) throw new TickfanError(ErrorCode.BAD_REQUEST, `cluster: ${what} needs a payload of fields or bytes`);
  const fields: Changes = new Map();
  for (const e of j.fields) {
    if (!Array.isArray(e) || typeof e[0] !== 'string') throw new TickfanError(ErrorCode.BAD_REQUEST, `cluster: ${what}'s fields must be [name, value] pairs`);
    fields.set(e[0], valueFromJson(e[1], e[0]));
  }
  return { fields, data: null };
}

export function encodeForwardedRequest(r: ForwardedRequest): Uint8Array {
  return encodeJson({ service: r.service, who: r.who, timeoutMs: r.timeoutMs, payload: payloadToJson(r.payload) } satisfies RequestJson);
}

/** Throws BAD_REQUEST (with what is wrong) for anything but a request another node encoded. */
export function readForwardedRequest(data: Uint8Array): ForwardedRequest {
  const j = decodeJson<RequestJson>(data, 'a forwarded request');
  if (typeof j?.service !== 'string' || typeof j.who !== 'string' || typeof j.timeoutMs !== 'number') {
    throw new TickfanError(ErrorCode.BAD_REQUEST, 'cluster: a forwarded request needs service, who and timeoutMs');
  }
  return { service: j.service, who: j.who, timeoutMs: j.timeoutMs, payload: payloadFromJson(j.payload, 'a forwarded request') };
}

/** The answer a node sends back: the router's outcome as it is (a reply, or the typed error's code and message). */
export function encodeOutcome(o: Outcome): Uint8Array {
  return encodeJson((o.ok ? { ok: true, responder: o.responder, payload: payloadToJson(o.payload) } : { ok: false, code: o.error.errorCode, message: o.error.message }) satisfies OutcomeJson);
}

/** The answer as the requester's router would have given it; a garbled one is INTERNAL (never a hang). */
export function readOutcome(data: Uint8Array): Outcome {
  let j: OutcomeJson;
  try {
    j = decodeJson<OutcomeJson>(data, 'an answer from another node');
    if (j?.ok === true) return { ok: true, responder: String(j.responder ?? ''), payload: payloadFromJson(j.payload, 'an answer') };
    if (j?.ok === false && typeof j.code === 'number') return { ok: false, error: new TickfanError(j.code as ErrorCode, String(j.message ?? '')) };
  } catch (err) {
    return { ok: false, error: new TickfanError(ErrorCode.INTERNAL, `the answer from another node could not be read: ${(err as Error).message}`) };
  }
  return { ok: false, error: new TickfanError(ErrorCode.INTERNAL, 'the answer from another node is neither a reply nor an error') };
}
