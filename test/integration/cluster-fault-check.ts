// Checks of the cluster fault suite (cluster-fault-suite.ts): every update an
// SDK client reports is checked against the model (its state must be the
// model's state at that version: no wrong value) and against the previous one
// of the same subscription (a delta only on its base, in the same epoch: no
// blind apply); and convergence — each client, each edge's GET /snapshot and
// the origin's hold the model's latest (epoch, version, state), not stale —
// is polled with a deadline.

import type { Subscription, TickfanClient, Update } from '../../src/client/index.js';
import { canonicalFields, hashOf, type Model, type Snapshot } from './cluster-fault-model.js';

const MAX_LISTED = 40;

interface Pending {
  who: string;
  topic: string;
  epoch: number;
  version: number;
  canonical: string;
}

export interface Watched {
  name: string;
  client: TickfanClient;
  subs: Subscription[];
}

/** A field value in the JSON form GET /snapshot uses (the suite publishes numbers, strings and booleans). */
function valueJson(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0) ? v : { $float: Object.is(v, -0) ? '-0' : String(v) };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  return v;
}

export function clientCanonical(state: Record<string, unknown>): string {
  return canonicalFields(Object.fromEntries(Object.entries(state).map(([k, v]) => [k, valueJson(v)])));
}

export class Checker {
  readonly violations: string[] = [];
  /** Not failures, but worth telling: versions going back, subscription errors. */
  readonly notes: string[] = [];
  readonly counts = { updates: 0, verified: 0, unverifiable: 0, snapshots: 0 };
  private pending: Pending[] = [];
  private readonly chain = new Map<string, { epoch: number; version: number }>();
  private readonly statuses = new Map<string, 'ok' | 'stale'>();

  constructor(private readonly model: Model) {}

  private violation(msg: string): void {
    if (this.violations.length < MAX_LISTED) this.violations.push(msg);
  }

  private note(msg: string): void {
    if (this.notes.length < MAX_LISTED) this.notes.push(msg);
  }

  watch(w: Watched, sub: Subscription): void {
    w.subs.push(sub);
    sub.on('update', (u) => this.onUpdate(`${w.name}/${sub.pattern}`, u));
    sub.on('status', (s) => this.statuses.set(`${w.name}|${sub.id}|${s.topic}`, s.status));
    sub.on('error', (e) => this.note(`${w.name} ${sub.pattern}: subscription error ${e.message}`));
  }

  private onUpdate(who: string, u: Update): void {
    this.counts.updates++;
    if (u.snapshot) this.counts.snapshots++;
    const key = `${who}|${u.topic}`;
    const prev = this.chain.get(key);
    if (!u.snapshot) {
      if (!prev) this.violation(`${who} ${u.topic}: delta to v${u.version} before any snapshot`);
      else if (u.epoch !== prev.epoch) this.violation(`${who} ${u.topic}: delta of epoch ${u.epoch} applied on epoch ${prev.epoch}`);
      else if (u.version <= prev.version || u.version - prev.version !== u.updates) {
        this.violation(`${who} ${u.topic}: delta v${prev.version} → v${u.version} carrying ${u.updates} updates`);
      }
    } else if (prev && prev.epoch === u.epoch && u.version < prev.version) {
      this.note(`${who} ${u.topic}: snapshot took it back from v${prev.version} to v${u.version} (epoch ${u.epoch})`);
    }
    this.chain.set(key, { epoch: u.epoch, version: u.version });
    this.pending.push({ who, topic: u.topic, epoch: u.epoch, version: u.version, canonical: clientCanonical(u.state) });
  }

  /** Checks the updates whose version the model knows; with `final`, one it cannot know unless unverifiable is a violation. */
  verify(final: boolean): void {
    const keep: Pending[] = [];
    for (const p of this.pending) {
      const want = this.model.hashAt(p.topic, p.epoch, p.version);
      if (want !== undefined) {
        this.counts.verified++;
        if (hashOf(p.canonical) !== want) this.violation(`${p.who} ${p.topic}: wrong state at ${p.epoch}:${p.version}: ${p.canonical.slice(0, 300)}`);
      } else if (this.model.unverifiable(p.topic, p.epoch, p.version)) {
        this.counts.unverifiable++;
      } else if (final) {
        this.violation(`${p.who} ${p.topic}: update at ${p.epoch}:${p.version}, a version the origin never acknowledged`);
      } else keep.push(p);
    }
    this.pending = keep;
  }

  /** The last status each subscription of `w` covering `topic` reported ('ok' when none). */
  statusOf(w: Watched, topic: string): 'ok' | 'stale' {
    for (const sub of w.subs) {
      if (sub.pattern !== topic && !sub.topics.has(topic)) continue;
      if (this.statuses.get(`${w.name}|${sub.id}|${topic}`) === 'stale') return 'stale';
    }
    return 'ok';
  }
}

export async function snapshotAt(port: number, topic: string): Promise<{ status: number; snap?: Snapshot; error?: string }> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/snapshot/${encodeURIComponent(topic)}`, { signal: AbortSignal.timeout(3_000) });
    const body = (await r.json()) as Snapshot;
    return r.status === 200 ? { status: 200, snap: body } : { status: r.status };
  } catch (err) {
    return { status: 0, error: (err as Error).message };
  }
}

export interface ConvergeSpec {
  clients: { w: Watched; topics: readonly string[] }[];
  edges: { name: string; port: number; topics: readonly string[] }[];
  originPort: number;
  topics: readonly string[];
  deadlineMs: number;
}

function show(s: { epoch: number; version: number } | null | undefined, extra = ''): string {
  return s ? `${s.epoch}:${s.version}${extra}` : 'nothing';
}

function clientProblems(model: Model, checker: Checker, spec: ConvergeSpec): string[] {
  const out: string[] = [];
  for (const { w, topics } of spec.clients) {
    for (const topic of topics) {
      const want = model.latest(topic);
      const held = w.client.stateOf(topic);
      const status = checker.statusOf(w, topic);
      if (!want) out.push(`model has no certain state of ${topic}`);
      else if (!held || held.epoch !== want.epoch || held.version !== want.version || hashOf(clientCanonical(held.state)) !== want.hash || status !== 'ok') {
        out.push(`client ${w.name} ${topic}: holds ${show(held)} ${status}${held && held.version === want.version && status === 'ok' ? ' (state differs)' : ''}, model ${show(want)}`);
      }
    }
  }
  return out;
}

async function nodeProblems(model: Model, port: number, name: string, topics: readonly string[]): Promise<string[]> {
  const answers = await Promise.all(topics.map((t) => snapshotAt(port, t)));
  const out: string[] = [];
  topics.forEach((topic, i) => {
    const want = model.latest(topic);
    const a = answers[i]!;
    if (!want) return void out.push(`model has no certain state of ${topic}`);
    if (!a.snap) return void out.push(`${name} ${topic}: GET /snapshot ${a.status}${a.error ? ` (${a.error})` : ''}, model ${show(want)}`);
    const same = a.snap.epoch === want.epoch && a.snap.version === want.version && hashOf(canonicalFields(a.snap.fields)) === want.hash;
    if (!same || a.snap.stale) out.push(`${name} ${topic}: ${show(a.snap, a.snap.stale ? ' stale' : ' ok')}${!same && a.snap.version === want.version ? ' (state differs)' : ''}, model ${show(want)}`);
  });
  return out;
}

/**
 * Polls until every client, every edge and the origin hold the model's latest
 * state of their topics and none is stale; `at` is when it first held (ms since 1970).
 */
export async function converge(model: Model, checker: Checker, spec: ConvergeSpec): Promise<{ ok: boolean; at: number; clientsAt: number; problems: string[] }> {
  const deadline = Date.now() + spec.deadlineMs;
  let clientsAt = 0;
  let problems: string[] = [];
  for (let i = 0; i < 100_000; i++) {
    const started = Date.now();
    checker.verify(false);
    problems = clientProblems(model, checker, spec);
    if (problems.length === 0) {
      if (!clientsAt) clientsAt = started;
      const nodes = await Promise.all([...spec.edges.map((e) => nodeProblems(model, e.port, e.name, e.topics)), nodeProblems(model, spec.originPort, 'origin', spec.topics)]);
      problems = nodes.flat();
      // The clients may have moved on while the nodes answered: they must still hold.
      if (problems.length === 0) problems = clientProblems(model, checker, spec);
      if (problems.length === 0) return { ok: true, at: started, clientsAt, problems };
    } else clientsAt = 0;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  // Not converged: say what every holder has, the nodes' view included.
  const nodes = await Promise.all([...spec.edges.map((e) => nodeProblems(model, e.port, e.name, e.topics)), nodeProblems(model, spec.originPort, 'origin', spec.topics)]);
  problems = [...new Set([...nodes.flat(), ...clientProblems(model, checker, spec)])];
  return { ok: false, at: Date.now(), clientsAt, problems: problems.slice(0, MAX_LISTED) };
}

/**
 * What the origin, the edges and the clients say of topics whose fate is only
 * recorded (not republished after an origin restart), summed up: for each
 * holder, how many topics it holds in the epoch it had before (`old`), in
 * another, or not at all, stale or ok; with one topic in full as an example.
 */
export async function observe(topics: readonly string[], oldEpochs: ReadonlyMap<string, number>, originPort: number, edges: { name: string; port: number }[], clients: Watched[], checker: Checker): Promise<string> {
  const tally = new Map<string, Map<string, number>>();
  const add = (who: string, what: string) => {
    const m = tally.get(who) ?? new Map<string, number>();
    tally.set(who, m.set(what, (m.get(what) ?? 0) + 1));
  };
  const kind = (topic: string, s: { epoch: number; version: number } | undefined | null) => (!s ? 'nothing' : s.epoch === oldEpochs.get(topic) ? `old epoch v${s.version}` : `epoch ${s.epoch} v${s.version}`);
  let example = '';
  for (const topic of topics) {
    const parts: string[] = [];
    const o = await snapshotAt(originPort, topic);
    add('origin', o.snap ? kind(topic, o.snap) : `HTTP ${o.status}`);
    parts.push(`origin ${o.snap ? show(o.snap) : `HTTP ${o.status}`}`);
    for (const e of edges) {
      const a = await snapshotAt(e.port, topic);
      add(e.name, a.snap ? `${kind(topic, a.snap).replace(/ v\d+$/, '')} ${a.snap.stale ? 'stale' : 'ok'}` : `HTTP ${a.status}`);
      parts.push(`${e.name} ${a.snap ? show(a.snap, a.snap.stale ? ' stale' : ' ok') : `HTTP ${a.status}`}`);
    }
    for (const w of clients) {
      const held = w.client.stateOf(topic);
      if (!w.subs.some((sub) => sub.pattern === topic || sub.topics.has(topic))) continue;
      add('clients', `${kind(topic, held).replace(/ v\d+$/, '')}${held ? ` ${checker.statusOf(w, topic)}` : ''}`);
      parts.push(`${w.name} ${show(held, ` ${checker.statusOf(w, topic)}`)}`);
    }
    example ||= `${topic}: ${parts.join(', ')}`;
  }
  const summary = [...tally].map(([who, m]) => `${who}: ${[...m].map(([what, n]) => `${what} x${n}`).join(', ')}`);
  return `${topics.length} topics — ${summary.join('; ')} (e.g. ${example})`;
}
