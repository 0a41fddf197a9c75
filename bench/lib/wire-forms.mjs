// The wire scenario's updates and the forms it compares: the same update
// written as tickfan protocol 1 and 2 (frames as the fan-out's fast path
// publishes them), compact JSON, Socket.IO's event packet and a
// Lightstreamer TLCP update line. Pure (no I/O): the Node CPU runs and the
// headless Chromium bundle (esbuild) import it alike.

import { Encoder, FrameWriter, FrameWriter2, Protocol2Reader, ServerFrameReader } from '../../dist/protocol/index.js';
import { Topic } from '../../dist/engine/topic.js';
import { MarketSim } from '../../dist/demo/market-sim.js';

// ------------------------------------------------------------ feeds

const PAYLOAD_NAMES = ['bid', 'ask', 'last', 'size', 'bidSize', 'askSize', 'high', 'low', 'open', 'volume'];

/**
 * The fan-out scenario's payload (servers/driver.mjs): `t`, an integer
 * timestamp in ns, then `fields` prices that move on every update.
 * Returns a function making the next update's fields.
 */
export function fanoutPayload(fields = 4, now = () => Date.now() * 1e6) {
  const names = Array.from({ length: fields }, (_, i) => PAYLOAD_NAMES[i] ?? `f${i}`);
  const price = names.map((_, i) => 100 + i * 0.25);
  return () => {
    const o = { t: now() };
    for (let j = 0; j < names.length; j++) {
      // Moves every time, never an integer (integers would encode as Int).
      price[j] += (j & 1 ? -0.0625 : 0.0625) + 0.001;
      o[names[j]] = price[j];
    }
    return o;
  };
}

/**
 * Sequences updates as a tickfan server does (engine Topic: version, field
 * ids in order of first use) and keeps what each form needs.
 * @returns {{ topic: Topic, name: string, version: number, changes: Map, namesFrom: number, first: boolean }}
 */
class Sequencer {
  constructor() {
    this.topics = new Map();
    this.nextId = 1;
  }
  apply(name, changes) {
    let topic = this.topics.get(name);
    const first = !topic;
    if (!topic) this.topics.set(name, (topic = new Topic(name, 1_700_000_000_000_000, 0, this.nextId++)));
    const namesFrom = topic.fieldIdsEnd;
    const version = topic.apply(changes, 0);
    return { topic, name, version, changes, namesFrom, first };
  }
}

/**
 * `count` deltas of the demo feed (MarketSim, `px.*` and `fx.*`: the order
 * book is left out as the benchmark's subscriptions leave it), after each
 * topic's first image. Deterministic for a seed.
 */
export function demoUpdates({ count = 20_000, symbols = 300, seed = 42 } = {}) {
  const seq = new Sequencer();
  const images = [];
  const updates = [];
  let sim;
  const take = (name, changes) => {
    if (name.startsWith('book.')) return;
    const u = seq.apply(name, new Map(changes));
    if (u.first) images.push(u);
    else if (updates.length < count) updates.push(u);
  };
  sim = new MarketSim(take, { symbols, rate: 1, seed });
  sim.start();
  sim.stop();
  while (updates.length < count) sim.step();
  return { images, updates };
}

/** `count` updates of the fan-out payload over `topics` topics, round-robin (as the scenario's publisher does). */
export function fanoutUpdates({ count = 20_000, topics = 10, fields = 4 } = {}) {
  const seq = new Sequencer();
  const next = fanoutPayload(fields);
  const names = Array.from({ length: topics }, (_, i) => `px.H${String(i).padStart(4, '0')}`);
  const images = names.map((n) => seq.apply(n, new Map(Object.entries(next()))));
  const updates = [];
  for (let i = 0; i < count; i++) updates.push(seq.apply(names[i % topics], new Map(Object.entries(next()))));
  return { images, updates };
}

// ------------------------------------------------------------ forms

/** Bytes of a server → client WebSocket frame header (unmasked) for a payload of `n` bytes. */
export function wsHeader(n) {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

const utf8 = new TextEncoder();

/** The compact JSON object of an update: {"topic","version","changes":{…}} (deleted fields: null). */
export function jsonObject(u) {
  return { topic: u.name, version: u.version, changes: Object.fromEntries(u.changes) };
}

/** Socket.IO (Engine.IO v4 message `4` + Socket.IO EVENT `2`) text packet of an update: 42["update",{…}]. */
export function sioPacket(json) {
  return `42["update",${json}]`;
}

/** TLCP percent-encoding of a value's text: `|`, `%`, CR and LF always; `#`, `$`, `^` when leading. */
function tlcpValue(v) {
  if (v === null) return '#';
  const s = typeof v === 'string' ? v : String(v);
  if (s === '') return '$';
  let out = s.replace(/[%|\r\n]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (/^[#$^]/.test(out)) out = `%${out.charCodeAt(0).toString(16).toUpperCase()}${out.slice(1)}`;
  return out;
}

/**
 * Lightstreamer TLCP real-time update (MERGE mode) for items of a fixed field
 * schema: `U,<subscription>,<item>,<v1>|<v2>|…` — a changed field carries its
 * value, an unchanged one is empty, a run of unchanged fields may be `^N`
 * (whichever is shorter), a deleted (null) field is `#`. Item numbers are
 * 1-based positions in the subscription. Without the line's CR LF.
 */
export function lightstreamerLine(subId, item, schema, changes) {
  const tokens = [];
  let run = 0;
  const flush = () => {
    if (run === 0) return;
    // `run` empty tokens cost `run` separators; `^run` costs its text and one.
    const caret = `^${run}`;
    if (caret.length + 1 < run) tokens.push(caret);
    else for (let i = 0; i < run; i++) tokens.push('');
    run = 0;
  };
  for (const f of schema) {
    if (!changes.has(f)) {
      run++;
      continue;
    }
    flush();
    tokens.push(tlcpValue(changes.get(f)));
  }
  flush();
  return `U,${subId},${item},${tokens.join('|')}`;
}

/**
 * Every form of each update, as bytes on the wire per update: WebSocket
 * payload + frame header, one update per frame (the fast path's frame when a
 * channel has one update in a turn). Lightstreamer: the line + CR LF, no
 * WebSocket header (its server packs many lines per frame).
 */
export class Forms {
  constructor() {
    this.enc = new Encoder();
    this.w1 = new FrameWriter();
    this.w2 = new FrameWriter2();
    /** Lightstreamer subscriptions: one per topic prefix; items numbered in order of first sight. */
    this.ls = new Map();
  }

  p1Message(u) {
    return this.enc.delta(u.name, u.topic.epoch, u.version - 1, u.version, 1, u.changes, 0);
  }

  p2Message(u) {
    return this.enc.delta2(u.topic, u.version - 1, u.version, u.changes, { namesFrom: u.namesFrom, bind: false });
  }

  /** The frame the fast path publishes for this one update (sequence 0), copied. */
  p1Frame(u) {
    return this.w1.write(0, [this.p1Message(u)]).slice();
  }

  p2Frame(u) {
    return this.w2.write(0, [this.p2Message(u)]).slice();
  }

  json(u) {
    return JSON.stringify(jsonObject(u));
  }

  /** Schema and item of a topic for the Lightstreamer line (first image's field order). */
  lsItem(u, schemaFrom) {
    const prefix = u.name.slice(0, u.name.indexOf('.') + 1);
    let sub = this.ls.get(prefix);
    if (!sub) this.ls.set(prefix, (sub = { id: this.ls.size + 1, items: new Map(), schema: null }));
    if (!sub.schema) sub.schema = [...schemaFrom.keys()];
    let item = sub.items.get(u.name);
    if (item === undefined) sub.items.set(u.name, (item = sub.items.size + 1));
    return { sub, item };
  }

  /** Registers a topic's first image (its fields become the Lightstreamer schema of its subscription). */
  image(u) {
    this.lsItem(u, u.changes);
  }

  lightstreamer(u) {
    const { sub, item } = this.lsItem(u, u.changes);
    // A field outside the schema (none in these feeds) would need a schema change: give it a column.
    for (const k of u.changes.keys()) if (!sub.schema.includes(k)) sub.schema.push(k);
    return lightstreamerLine(sub.id, item, sub.schema, u.changes);
  }

  /** Bytes on the wire per form for one update. */
  sizes(u) {
    const p1 = this.p1Frame(u).byteLength;
    const p2 = this.p2Frame(u).byteLength;
    const json = utf8.encode(this.json(u)).byteLength;
    const sio = json + 12 + 1; // 42["update", … ]
    const ls = utf8.encode(this.lightstreamer(u)).byteLength + 2;
    return {
      p1: p1 + wsHeader(p1),
      p2: p2 + wsHeader(p2),
      json: json + wsHeader(json),
      jsonPayload: json,
      sio: sio + wsHeader(sio),
      lightstreamer: ls,
      fields: u.changes.size,
    };
  }
}

/** Averages of Forms.sizes over a list of updates (images register the Lightstreamer schema first). */
export function averageSizes({ images, updates }) {
  const f = new Forms();
  for (const u of images) f.image(u);
  const sum = {};
  for (const u of updates) for (const [k, v] of Object.entries(f.sizes(u))) sum[k] = (sum[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v / updates.length]));
}

// ------------------------------------------------------------ CPU

/**
 * Prepared inputs of the CPU runs: the updates, and each one's protocol-1
 * and protocol-2 frame and JSON text as a client receives them.
 */
export function prepareCpu(feed) {
  const f = new Forms();
  const p1 = feed.updates.map((u) => f.p1Frame(u));
  const p2 = feed.updates.map((u) => f.p2Frame(u));
  const json = feed.updates.map((u) => f.json(u));
  // Protocol 2 needs the topic ids bound and the field names learnt: what the
  // client got in the snapshots (here: binding catch-up deltas naming every field).
  const bind = feed.images.map((u) => new FrameWriter2().write(0, [f.enc.delta2(u.topic, u.version - 1, u.version, u.changes, { namesFrom: 1, bind: true })]).slice());
  return { feed, p1, p2, json, bind };
}

/** The SDK's decoding of a protocol-2 connection: frame reader in protocol 2, topic ids bound. */
function p2Reader(bind) {
  const frames = new ServerFrameReader();
  frames.protocol = 2;
  const topics = new Protocol2Reader();
  for (const b of bind) for (const m of frames.read(b).messages) topics.read(m);
  return { frames, topics };
}

/** Encode / decode cases: each runs its whole list once and returns a checksum (so nothing is optimised away). */
export function cpuCases(prep) {
  const { feed, p1, p2, json, bind } = prep;
  const ups = feed.updates;
  const enc = new Encoder();
  const r1 = new ServerFrameReader();
  const { frames: r2, topics } = p2Reader(bind);
  return {
    encode: {
      p1: () => {
        let n = 0;
        for (const u of ups) n += enc.delta(u.name, u.topic.epoch, u.version - 1, u.version, 1, u.changes, 0).byteLength;
        return n;
      },
      p2: () => {
        let n = 0;
        for (const u of ups) n += enc.delta2(u.topic, u.version - 1, u.version, u.changes, { namesFrom: u.namesFrom, bind: false }).byteLength;
        return n;
      },
      // The server holds changes as a Map: the object JSON needs is part of the cost.
      json: () => {
        let n = 0;
        for (const u of ups) n += JSON.stringify({ topic: u.name, version: u.version, changes: Object.fromEntries(u.changes) }).length;
        return n;
      },
    },
    decode: {
      // ServerFrameReader (protocol 1): the SDK's decoding of a frame into its messages.
      p1: () => {
        let n = 0;
        for (const fr of p1) n += r1.read(fr).messages[0].version;
        return n;
      },
      // Protocol 2: the frame, then topic id and field ids resolved into the same delta as protocol 1's.
      p2: () => {
        let n = 0;
        for (const fr of p2) {
          const m = topics.read(r2.read(fr).messages[0]);
          n += m.version;
        }
        return n;
      },
      json: () => {
        let n = 0;
        for (const s of json) n += JSON.parse(s).version;
        return n;
      },
    },
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs every case `repeat` times, interleaved (one pass of each case per
 * round, the order rotated every round), after a warm-up. ns per update:
 * median, min and max over the rounds.
 */
export function runCpu(prep, { repeat = 5, warmup = 2, only } = {}) {
  const cases = cpuCases(prep);
  const list = [];
  for (const [kind, byForm] of Object.entries(cases)) {
    if (only && !only.includes(kind)) continue;
    for (const [form, fn] of Object.entries(byForm)) list.push({ kind, form, fn, ns: [] });
  }
  const n = prep.feed.updates.length;
  let check = 0;
  for (let w = 0; w < warmup; w++) for (const c of list) check += c.fn();
  for (let r = 0; r < repeat; r++) {
    for (let i = 0; i < list.length; i++) {
      const c = list[(i + r) % list.length];
      const t0 = performance.now();
      check += c.fn();
      c.ns.push(((performance.now() - t0) * 1e6) / n);
    }
  }
  const out = {};
  for (const c of list) {
    out[c.kind] ??= {};
    out[c.kind][c.form] = { median: median(c.ns), min: Math.min(...c.ns), max: Math.max(...c.ns), runs: c.ns };
  }
  return { nsPerUpdate: out, updates: n, repeat, check };
}
