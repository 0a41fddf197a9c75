// The truth of the cluster fault suite (cluster-fault-suite.ts): every publish
// goes over HTTP to the origin, one at a time per topic, and the model applies
// it at the (epoch, version) the origin's ack names, so it knows the exact
// state of every topic at every acknowledged version (as a hash). A publish
// whose outcome is unknown (no answer) makes the topic uncertain until the
// model resynchronises it from the origin's GET /snapshot while nothing is in
// flight; the versions in between are then counted as unverifiable.

import { createHash } from 'node:crypto';
import { request } from 'node:http';

export type Json = number | string | boolean;
export type Changes = Record<string, Json | null>;

/** A state (field → JSON value, as GET /snapshot and fieldsToJson give it) as one string, fields sorted. */
export function canonicalFields(fields: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(fields).sort().map((k) => [k, fields[k]]));
}

export function hashOf(canonical: string): string {
  return createHash('sha1').update(canonical).digest('hex');
}

interface Range {
  epoch: number;
  lo: number;
  hi: number;
}

class TopicModel {
  epoch = 0;
  version = 0;
  state: Record<string, Json> = {};
  /** Set after an unknown outcome: the model does not know this topic past `version` until resynchronised. */
  needsResync = false;
  /** Versions whose state the model never learnt. */
  readonly unknown: Range[] = [];
  /** (epoch:version) → hash of the state. */
  readonly hashes = new Map<string, string>();
  lastAckAt = 0;
}

export interface Snapshot {
  epoch: number;
  version: number;
  stale?: boolean;
  fields: Record<string, unknown>;
}

export class Model {
  readonly topics = new Map<string, TopicModel>();
  /** Acks that did not follow the model's version (each also makes the topic uncertain). */
  readonly anomalies: string[] = [];
  /** Topics that were resynchronised from the origin, with why. */
  readonly resyncs: string[] = [];

  private topic(name: string): TopicModel {
    let t = this.topics.get(name);
    if (!t) this.topics.set(name, (t = new TopicModel()));
    return t;
  }

  private remember(t: TopicModel): void {
    t.hashes.set(`${t.epoch}:${t.version}`, hashOf(canonicalFields(t.state)));
  }

  ack(name: string, epoch: number, version: number, changes: Changes): void {
    const t = this.topic(name);
    t.lastAckAt = Date.now();
    if (epoch !== t.epoch) {
      // A new history (first publish, or the origin restarted): it starts empty at version 1.
      if (t.epoch !== 0 && t.needsResync) t.unknown.push({ epoch: t.epoch, lo: t.version + 1, hi: Infinity });
      if (version !== 1) {
        this.anomalies.push(`${name}: first ack of epoch ${epoch} is version ${version}`);
        t.unknown.push({ epoch, lo: 1, hi: version });
        t.epoch = epoch;
        t.version = version;
        t.needsResync = true;
        return;
      }
      t.epoch = epoch;
      t.version = 0;
      t.state = {};
      t.needsResync = false;
    } else if (t.needsResync) {
      t.unknown.push({ epoch, lo: t.version + 1, hi: version });
      t.version = version;
      return;
    } else if (version !== t.version + 1) {
      this.anomalies.push(`${name}: ack of version ${version} in epoch ${epoch} after ${t.version}`);
      t.unknown.push({ epoch, lo: t.version + 1, hi: version });
      t.version = version;
      t.needsResync = true;
      return;
    }
    const next = { ...t.state };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    t.state = next;
    t.version = version;
    this.remember(t);
  }

  /** A publish got no answer: it may or may not have been applied. */
  unknownOutcome(name: string): void {
    const t = this.topic(name);
    if (!t.needsResync) t.unknown.push({ epoch: t.epoch, lo: t.version + 1, hi: Infinity });
    t.needsResync = true;
  }

  uncertain(name: string): boolean {
    return this.topics.get(name)?.needsResync ?? false;
  }

  /** Takes the origin's image of a topic with nothing in flight: the model is exact again. */
  resync(name: string, snap: Snapshot, why: string): void {
    const t = this.topic(name);
    this.resyncs.push(`${name} (${why}): model ${t.epoch}:${t.version} → origin ${snap.epoch}:${snap.version}`);
    if (snap.epoch !== t.epoch) t.unknown.push({ epoch: snap.epoch, lo: 1, hi: snap.version - 1 });
    t.epoch = snap.epoch;
    t.version = snap.version;
    t.state = snap.fields as Record<string, Json>;
    t.needsResync = false;
    this.remember(t);
  }

  latest(name: string): { epoch: number; version: number; hash: string } | null {
    const t = this.topics.get(name);
    if (!t || t.version === 0 || t.needsResync) return null;
    return { epoch: t.epoch, version: t.version, hash: t.hashes.get(`${t.epoch}:${t.version}`)! };
  }

  hashAt(name: string, epoch: number, version: number): string | undefined {
    return this.topics.get(name)?.hashes.get(`${epoch}:${version}`);
  }

  /** True when the model cannot know the state of `name` at (epoch, version). */
  unverifiable(name: string, epoch: number, version: number): boolean {
    const t = this.topics.get(name);
    if (!t) return false;
    if (t.needsResync && epoch === t.epoch && version > t.version) return true;
    return t.unknown.some((r) => r.epoch === epoch && version >= r.lo && version <= r.hi);
  }
}

export type Outcome = 'acked' | 'refused' | 'unknown' | 'skipped';

/** POST /publish/<topic> with a bounded wait; 'refused' only when nothing can have been applied. */
function post(port: number, topic: string, body: string, timeoutMs: number): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: `/publish/${encodeURIComponent(topic)}`, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end(body);
  });
}

/** Publishes to the origin, one publish in flight per topic, and feeds the acks to the model. */
export class Publisher {
  readonly counts = { acked: 0, refused: 0, unknown: 0, skipped: 0, rejected: 0 };
  readonly errors: string[] = [];
  private readonly chains = new Map<string, Promise<unknown>>();
  private enqueued = 0;

  constructor(
    readonly model: Model,
    readonly originPort: number,
  ) {}

  /** Queues a publish behind the topic's previous one; `force` publishes even to an uncertain topic. */
  publish(topic: string, changes: Changes, force = false): Promise<Outcome> {
    this.enqueued++;
    const prev = this.chains.get(topic) ?? Promise.resolve();
    const next = prev.then(() => this.once(topic, changes, force));
    this.chains.set(topic, next);
    return next;
  }

  private async once(topic: string, changes: Changes, force: boolean): Promise<Outcome> {
    if (this.model.uncertain(topic) && !force) {
      this.counts.skipped++;
      return 'skipped';
    }
    const r = await post(this.originPort, topic, JSON.stringify(changes), 15_000);
    if ('error' in r) {
      if (r.error === 'ECONNREFUSED') {
        this.counts.refused++;
        return 'refused';
      }
      this.counts.unknown++;
      this.errors.push(`${topic}: ${r.error}`);
      this.model.unknownOutcome(topic);
      return 'unknown';
    }
    if (r.status === 200) {
      const ack = JSON.parse(r.text) as { epoch: number; version: number };
      this.counts.acked++;
      this.model.ack(topic, ack.epoch, ack.version, changes);
      return 'acked';
    }
    // A refusal with an error body: the publish was not applied (4xx); a 5xx may have been.
    if (r.status >= 500) this.model.unknownOutcome(topic);
    this.counts.rejected++;
    this.errors.push(`${topic}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    return r.status >= 500 ? 'unknown' : 'refused';
  }

  /** Resolves when every queued publish has its outcome. */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const before = this.enqueued;
      await Promise.all([...this.chains.values()]);
      if (this.enqueued === before) return;
    }
  }
}

let counter = 0;

/** The next change set of a steady publisher: a few fields of mixed kinds, sometimes a delete. */
export function nextChanges(i: number, pad = ''): Changes {
  const n = ++counter;
  const c: Changes = { bid: 100 + (n % 1000) / 8 + 0.125, seq: n };
  if (i % 3 === 0) c.ask = 101 + (n % 997) / 16 + 0.0625;
  if (i % 4 === 1) c.note = `n${n}`;
  if (i % 7 === 3) c.note = null;
  if (i % 5 === 2) c[`k${n % 6}`] = n % 2 === 0;
  if (i % 11 === 5) c[`k${(n + 3) % 6}`] = null;
  if (pad) c.blob = pad + String(n).padStart(10, '0');
  return c;
}
