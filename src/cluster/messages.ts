// What cluster nodes say to each other on NATS besides the sequenced updates
// (which travel as replication.ts encodes them): announcements, forwarded
// publishes and their answers, image requests and images. JSON, with field
// values in the exact JSON form of the HTTP API (json-values).

import { ErrorCode, TickfanError, valueFromJson, valueToJson, type Changes, type FieldValue } from '../protocol/index.js';
import type { TopicImage } from '../server/replication.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function encodeJson(v: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(v));
}

export function decodeJson<T>(data: Uint8Array, what: string): T {
  try {
    return JSON.parse(fromUtf8.decode(data)) as T;
  } catch (err) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `cluster: ${what} is not valid JSON`, { cause: err });
  }
}

/** An origin says who it is and which shard it sequences (on `<prefix>.origins`, and as the answer to `<prefix>.layout`). */
export interface Announcement {
  /** Unique per process: a restarted origin has a new one. */
  id: string;
  shard: number;
  of: number;
  /** When this origin started sequencing (ms since 1970). */
  since: number;
  /** `leaving`: it stops now (its edges flag its topics stale at once). */
  state: 'up' | 'leaving';
}

/** A publish an edge forwards to the origin of the topic's shard. */
export interface PublishRequest {
  topic: string;
  fields: [string, unknown][];
}

export type PublishReply = { epoch: number; version: number } | { error: { code: number; message: string } };

export function publishRequest(topic: string, changes: Changes): Uint8Array {
  return encodeJson({ topic, fields: [...changes].map(([k, v]) => [k, valueToJson(v)]) } satisfies PublishRequest);
}

export function readPublishRequest(data: Uint8Array): { topic: string; changes: Changes } {
  const r = decodeJson<PublishRequest>(data, 'a forwarded publish');
  if (typeof r?.topic !== 'string' || !Array.isArray(r.fields)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'cluster: a forwarded publish needs topic and fields');
  return { topic: r.topic, changes: new Map(r.fields.map(([k, v]) => [k, valueFromJson(v, k)])) };
}

/** The answer of a forwarded publish: the origin's version, or its typed error again. */
export function readPublishReply(data: Uint8Array): { epoch: number; version: number } {
  const r = decodeJson<PublishReply>(data, 'an origin answer');
  if ('error' in r) throw new TickfanError(r.error.code as ErrorCode, r.error.message);
  return r;
}

export function errorReply(err: unknown): Uint8Array {
  const e = err instanceof TickfanError ? err : new TickfanError(ErrorCode.INTERNAL, 'the origin failed to apply the publish; it has been logged');
  return encodeJson({ error: { code: e.errorCode, message: e.message } } satisfies PublishReply);
}

/** Images of the topics matching `patterns` (names or wildcards). */
export interface ImageRequest {
  patterns: string[];
}

/** A TopicImage as JSON: values in the exact JSON value form of the protocol. */
type ImageJson = Omit<TopicImage, 'state'> & { state: [string, unknown][] };

export function imageToJson(img: TopicImage): ImageJson {
  return { ...img, state: img.state.map(([k, v]) => [k, valueToJson(v)]) };
}

export function imageFromJson(j: ImageJson): TopicImage {
  return { ...j, state: j.state.map(([k, v]) => [k, valueFromJson(v, k) as FieldValue]) };
}

/** One reply of an image request: some images (an empty reply ends the answer). */
export function readImages(data: Uint8Array): TopicImage[] {
  return decodeJson<{ images: ImageJson[] }>(data, 'an image reply').images.map(imageFromJson);
}

/** A status change of a topic, sent on its update subject with the header below. */
export const STATUS_HEADER = 'Tickfan-Status';
