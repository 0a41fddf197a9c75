// What cluster nodes say to each other on NATS besides the sequenced updates
// (which travel as replication.ts encodes them): announcements, forwarded
// publishes and their answers, image requests and images. JSON, with field
// values in the exact JSON form of the HTTP API (json-values); keyed topics'
// rows, forwarded row ops and typed refusals (KeyedBatchError) likewise. A
// keyed batch an edge cannot type (it does not hold the topic's tables) goes
// to the origin in its HTTP JSON form, typed there with the origin's specs.

import type { Batch, KeyedImage, RowOp } from '../engine/index.js';
import { ErrorCode, TickfanError, valueFromJson, valueToJson, type Changes, type FieldValue, type Key, type State, type TableSpec } from '../protocol/index.js';
import { isKeyedBody, type KeyedBody } from '../server/keyed-json.js';
import type { TopicImage } from '../server/replication.js';
import { refusalError, refusalOf, type KeyedRefusal } from '../server/replication-keyed.js';

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

/**
 * A publish an edge forwards to the origin of the topic's shard (`tables`: a
 * keyed batch's declarations and row ops, in order), or a keyed batch as
 * POST /publish took it (`json`, without `fields`: an origin that predates it
 * refuses it as malformed rather than applying an empty publish).
 */
export type PublishRequest = { topic: string; fields: [string, unknown][]; tables?: { declare: TableSpec[]; ops: OpJson[] } } | { topic: string; json: KeyedBody };

/** A forwarded publish as the origin reads it: changes (and a batch), or (`json`, changes empty) a keyed body to type with its own tables. */
export interface ForwardedPublish {
  topic: string;
  changes: Changes;
  tables?: Batch;
  json?: KeyedBody;
}

/** A row op as JSON: the engine's RowOp with fields as [name, JSON value] pairs (keys are safe integers or strings: exact in JSON). */
type OpJson = Omit<RowOp, 'fields'> & { fields?: [string, unknown][] };

export type PublishReply = { epoch: number; version: number } | { error: { code: number; message: string; refusal?: KeyedRefusal } };

const entriesToJson = (m: Changes): [string, unknown][] => [...m].map(([k, v]) => [k, valueToJson(v)]);
const entriesFromJson = (e: [string, unknown][]): Changes => new Map(e.map(([k, v]) => [k, valueFromJson(v, k)]));

/** A flat publish is `{"topic","fields"}` as before keyed topics; a keyed batch adds `"tables"`. */
export function publishRequest(topic: string, changes: Changes, tables?: Batch): Uint8Array {
  const r: PublishRequest = { topic, fields: entriesToJson(changes) };
  if (tables !== undefined) r.tables = { declare: [...(tables.declare ?? [])], ops: tables.ops.map((o) => ('fields' in o ? { ...o, fields: entriesToJson(o.fields) } : o) as OpJson) };
  return encodeJson(r);
}

/** A keyed body of POST /publish, as given (keys untyped: the origin types them with its tables). */
export function publishJsonRequest(topic: string, body: KeyedBody): Uint8Array {
  return encodeJson({ topic, json: body } satisfies PublishRequest);
}

export function readPublishRequest(data: Uint8Array): ForwardedPublish {
  const r = decodeJson<PublishRequest>(data, 'a forwarded publish');
  if (typeof r?.topic === 'string' && 'json' in r && !('fields' in r)) {
    if (!isKeyedBody(r.json)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'cluster: a forwarded keyed body needs "fields" and/or "tables" objects');
    return { topic: r.topic, changes: new Map(), json: r.json };
  }
  if (typeof r?.topic !== 'string' || !('fields' in r) || !Array.isArray(r.fields)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'cluster: a forwarded publish needs topic and fields');
  const changes = entriesFromJson(r.fields);
  if (r.tables === undefined) return { topic: r.topic, changes };
  if (!Array.isArray(r.tables.ops)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'cluster: a forwarded keyed batch needs ops');
  // The engine validates the batch itself (prepareBatch); here only the field maps come back from JSON.
  const ops = r.tables.ops.map((o) => (Array.isArray(o.fields) ? { ...o, fields: entriesFromJson(o.fields) } : o) as RowOp);
  return { topic: r.topic, changes, tables: { declare: r.tables.declare ?? [], ops } };
}

/** The answer of a forwarded publish: the origin's version, or its typed error again (a KeyedBatchError with table and row). */
export function readPublishReply(data: Uint8Array): { epoch: number; version: number } {
  const r = decodeJson<PublishReply>(data, 'an origin answer');
  if ('error' in r) throw refusalError(r.error.code, r.error.message, r.error.refusal);
  return r;
}

export function errorReply(err: unknown): Uint8Array {
  const e = err instanceof TickfanError ? err : new TickfanError(ErrorCode.INTERNAL, 'the origin failed to apply the publish; it has been logged');
  const refusal = refusalOf(e);
  return encodeJson({ error: { code: e.errorCode, message: e.message, ...(refusal ? { refusal } : {}) } } satisfies PublishReply);
}

/** Images of the topics matching `patterns` (names or wildcards). */
export interface ImageRequest {
  patterns: string[];
}

/** A keyed topic's tables as JSON: rows best first, each `[key, [[field, JSON value], …]]`. */
interface TablesJson {
  version: number;
  tables: { spec: TableSpec; rows: [Key, [string, unknown][]][] }[];
}

/** A TopicImage as JSON: values in the exact JSON value form of the protocol (rows' too). */
type ImageJson = Omit<TopicImage, 'state' | 'tables'> & { state: [string, unknown][]; tables?: TablesJson };

export function imageToJson(img: TopicImage): ImageJson {
  const { tables, ...rest } = img;
  const j: ImageJson = { ...rest, state: img.state.map(([k, v]) => [k, valueToJson(v)]) };
  if (tables !== undefined) j.tables = { version: tables.version, tables: tables.tables.map((t) => ({ spec: t.spec, rows: t.rows.map(([k, f]) => [k, entriesToJson(f)]) })) };
  return j;
}

export function imageFromJson(j: ImageJson): TopicImage {
  const { tables, ...rest } = j;
  const img: TopicImage = { ...rest, state: j.state.map(([k, v]) => [k, valueFromJson(v, k) as FieldValue]) };
  if (tables !== undefined) {
    const keyed: KeyedImage = { version: tables.version, tables: tables.tables.map((t) => ({ spec: t.spec, rows: t.rows.map(([k, f]) => [k, entriesFromJson(f) as State] as const) })) };
    img.tables = keyed;
  }
  return img;
}

/** One reply of an image request: some images (an empty reply ends the answer). */
export function readImages(data: Uint8Array): TopicImage[] {
  return decodeJson<{ images: ImageJson[] }>(data, 'an image reply').images.map(imageFromJson);
}

/** A status change of a topic, sent on its update subject with the header below. */
export const STATUS_HEADER = 'Tickfan-Status';
