// All topics of one sequencer: creation, validated publishes, lookups by name
// and pattern. Pure: fan-out and I/O live in src/server/.

import { ErrorCode, TickfanError, TopicPattern, isFieldValue, validateTopic, valueSize, type Changes, type FieldValue, type KeyedChange } from '../protocol/index.js';
import { EpochClock } from './epoch.js';
import { KeyedTables, type KeyedImage, type TableLimits } from './tables/index.js';
import { Topic, type Accepted } from './topic.js';
import { isEmptyBatch, type TopicBatch } from './topic-tables.js';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

export interface EngineLimits {
  /** Deltas kept per topic for merged catch-ups. */
  historySize: number;
  maxTopics: number;
  maxFieldsPerTopic: number;
  maxFieldNameLength: number;
  maxValueBytes: number;
  maxTopicLength: number;
}

export const DEFAULT_ENGINE_LIMITS: EngineLimits = {
  historySize: 256,
  maxTopics: 100_000,
  maxFieldsPerTopic: 1_000,
  maxFieldNameLength: 128,
  maxValueBytes: 64 * 1024,
  maxTopicLength: 256,
};

export class TopicStore {
  private readonly topics = new Map<string, Topic>();
  readonly limits: EngineLimits;
  private readonly epochs: EpochClock;
  private lastTopicId = 0;
  /** Topic ids this store assigns: first, first + step, … (origins sharing topics use disjoint ones). */
  private readonly ids: { first: number; step: number };

  constructor(limits: Partial<EngineLimits> = {}, epochs = new EpochClock(), ids = { first: 1, step: 1 }) {
    this.limits = { ...DEFAULT_ENGINE_LIMITS, ...limits };
    this.epochs = epochs;
    this.ids = ids;
  }

  get size(): number {
    return this.topics.size;
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  all(): IterableIterator<Topic> {
    return this.topics.values();
  }

  /** Topics matching a pattern (or the one topic a plain name names). */
  *matching(pattern: TopicPattern): Generator<Topic> {
    const exact = this.topics.get(pattern.source);
    if (exact) {
      yield exact;
      return;
    }
    for (const t of this.topics.values()) if (pattern.matches(t.name)) yield t;
  }

  /** Throws a TickfanError naming the first thing wrong with `changes`. */
  validateChanges(topic: string, changes: Changes): void {
    const { maxFieldNameLength, maxValueBytes } = this.limits;
    if (changes.size === 0) throw new TickfanError(ErrorCode.BAD_REQUEST, `publish to ${topic}: no fields given`);
    // keys() + get() rather than entries: no [k, v] array per field per publish.
    for (const k of changes.keys()) {
      const v = changes.get(k);
      if (typeof k !== 'string' || k.length === 0 || k.length > maxFieldNameLength) {
        throw new TickfanError(ErrorCode.BAD_FIELD, `field names must be 1–${maxFieldNameLength} characters (got ${JSON.stringify(String(k).slice(0, 40))})`);
      }
      if (!isFieldValue(v)) {
        throw new TickfanError(ErrorCode.BAD_FIELD, `field ${k}: values must be number, bigint, string, boolean, bytes or null (to delete)`);
      }
      // The wire carries 64-bit integers; a bigger one would make every later
      // snapshot of the topic fail to encode.
      if (typeof v === 'bigint' && (v < INT64_MIN || v > INT64_MAX)) {
        throw new TickfanError(ErrorCode.BAD_FIELD, `field ${k}: integer out of 64-bit range`);
      }
      if (valueSize(v) > maxValueBytes) {
        throw new TickfanError(ErrorCode.VALUE_TOO_LARGE, `field ${k}: value is larger than ${maxValueBytes} bytes`);
      }
    }
  }

  /**
   * Validates and applies one publish, creating the topic on first use.
   * `changes` is kept by the history ring: callers must not mutate it after.
   */
  publish(name: string, changes: Changes, ts = Date.now()): Accepted {
    let topic = this.topics.get(name);
    const created = !topic;
    if (!topic) validateTopic(name, this.limits.maxTopicLength);
    this.validateChanges(name, changes);
    topic ??= this.creatable(name);
    // Counted only when the limit could be reached (a pass over the changes otherwise spent on every publish).
    if (topic.state.size + changes.size > this.limits.maxFieldsPerTopic && topic.fieldCountAfter(changes) > this.limits.maxFieldsPerTopic) {
      throw new TickfanError(ErrorCode.TOO_MANY_FIELDS, `${name} would hold more than ${this.limits.maxFieldsPerTopic} fields`);
    }
    if (created) {
      this.topics.set(name, topic);
      this.lastTopicId = topic.id;
    }
    const base = topic.version;
    const namesFrom = topic.fieldIdsEnd;
    const version = topic.apply(changes, ts);
    return { topic, base, version, changes, created, namesFrom };
  }

  /**
   * Validates and applies one keyed batch (summary changes and row ops) as
   * one version, creating the topic on first use. Everything is checked
   * before anything changes: a refused batch (a TickfanError; row problems a
   * KeyedBatchError naming table and row) leaves the topic and its version
   * as they were. The row ops' field maps are the batch's: do not reuse them.
   */
  publishBatch(name: string, batch: TopicBatch, ts = Date.now()): Accepted {
    if (batch.tables === undefined) return this.publish(name, batch.fields, ts);
    let topic = this.topics.get(name);
    const created = !topic;
    if (!topic) validateTopic(name, this.limits.maxTopicLength);
    if (isEmptyBatch(batch)) throw new TickfanError(ErrorCode.BAD_REQUEST, `publish to ${name}: no fields and no row ops given`);
    if (batch.fields.size > 0) this.validateChanges(name, batch.fields);
    topic ??= this.creatable(name);
    if (topic.state.size + batch.fields.size > this.limits.maxFieldsPerTopic && topic.fieldCountAfter(batch.fields) > this.limits.maxFieldsPerTopic) {
      throw new TickfanError(ErrorCode.TOO_MANY_FIELDS, `${name} would hold more than ${this.limits.maxFieldsPerTopic} fields`);
    }
    const tables = topic.tables ?? new KeyedTables(this.tableLimits(), undefined, topic.version);
    const prepared = tables.prepare(batch.tables);
    if (created) {
      this.topics.set(name, topic);
      this.lastTopicId = topic.id;
    }
    const base = topic.version;
    const namesFrom = topic.fieldIdsEnd;
    const keyed = topic.applyBatch(batch.fields, tables, prepared, ts);
    return { topic, base, version: topic.version, changes: batch.fields, created, namesFrom, keyed };
  }

  /** Row limits of tables in this store's topics (field names and values as for the summary). */
  tableLimits(): Partial<TableLimits> {
    return { maxFieldNameLength: this.limits.maxFieldNameLength, maxValueBytes: this.limits.maxValueBytes };
  }

  /** A new topic for `name`, not yet held (the caller adds it once the publish is accepted). */
  private creatable(name: string): Topic {
    if (this.topics.size >= this.limits.maxTopics) {
      throw new TickfanError(ErrorCode.TOO_MANY_TOPICS, `cannot create ${name}: the server holds ${this.limits.maxTopics} topics already`);
    }
    return this.newTopic(name, this.epochs.next(), this.lastTopicId ? this.lastTopicId + this.ids.step : this.ids.first);
  }

  private newTopic(name: string, epoch: number, id: number): Topic {
    return new Topic(name, epoch, this.limits.historySize, id, Math.max(1024, 4 * this.limits.maxFieldsPerTopic));
  }

  /**
   * Replica side: applies an update the sequencer already validated and
   * versioned (with `keyed`, a keyed batch's net row change, in the same
   * version). Returns null — applying nothing — when it is not the next
   * version of that epoch, or the row change names a table this replica does
   * not hold (the replica missed something and must resync).
   */
  applySequenced(name: string, epoch: number, version: number, changes: Changes, ts: number, id: number, keyed?: KeyedChange): Accepted | null {
    let topic = this.topics.get(name);
    const created = !topic;
    if (!topic) {
      if (version !== 1) return null;
      topic = this.newTopic(name, epoch, id);
      this.topics.set(name, topic);
    } else if (topic.epoch !== epoch || topic.id !== id) {
      return null; // another history (or a restarted sequencer): the replica resynchronises from an image
    }
    const base = topic.version;
    const namesFrom = topic.fieldIdsEnd;
    if (keyed !== undefined) {
      // A keyed batch's net row change, in the same version: checked before anything changes.
      if (version !== base + 1) return null;
      const tables = topic.tables ?? new KeyedTables(this.tableLimits(), undefined, base);
      const declared = new Set(keyed.declared.map((s) => s.name));
      for (const s of keyed.declared) if (tables.table(s.name) !== undefined) return null;
      for (const t of keyed.tables.keys()) if (tables.table(t) === undefined && !declared.has(t)) return null;
      const fixed = topic.applyChangeAt(changes, tables, keyed, ts);
      return { topic, base, version, changes, created, namesFrom, keyed: fixed };
    }
    if (!topic.applyAt(version, changes, ts)) return null;
    return { topic, base, version, changes, created, namesFrom };
  }

  /** Replica side: sets a topic to the sequencer's exact (epoch, version, state). */
  resetTopic(
    name: string,
    epoch: number,
    version: number,
    state: Iterable<[string, FieldValue]>,
    ts: number,
    id: number,
    fieldNames: readonly string[],
    /** A keyed topic's tables at `version` (none: the topic holds no tables). */
    tables?: KeyedImage,
  ): { topic: Topic; created: boolean } {
    let topic = this.topics.get(name);
    const created = !topic;
    // The same name keeps its Topic (fan-out's channels hang on it); a restarted
    // sequencer may have given it another id, with another epoch.
    if (!topic) {
      topic = this.newTopic(name, epoch, id);
      this.topics.set(name, topic);
    }
    let keyed: KeyedTables | undefined;
    if (tables !== undefined) {
      if (tables.version !== version) throw new RangeError(`${name}: tables image at ${tables.version}, topic image at ${version}`);
      keyed = new KeyedTables(this.tableLimits(), undefined, version);
      keyed.reset(tables);
    }
    topic.reset(epoch, version, state, ts, fieldNames, id, keyed);
    return { topic, created };
  }
}
