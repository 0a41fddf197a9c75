// The late joiners of keyed-acceptance-late-joiners.test.ts, in a worker
// thread so that 100 clients do not compete with the sequencer for the
// test's event loop. workerData: { url (the server's ws://…/ws), topic,
// transport ('ws' | 'sse': the built SDK, dist/client — `npm test` builds it
// first, as the CLI tests use dist/cli.js; 'stomp': @stomp/stompjs, its
// keyed JSON bodies held in plain maps as a client in another language
// would), joins: [{ at (ms after 'start'), depth (0: every row) }] }.
// Messages in: 'start', { finish: lastVersion }. Out: { results } once every
// joiner holds the last version (or after 30 s): per joiner its first update
// (version, snapshot flag, view in canonical form), the versions it was
// delivered, its stats, its errors and its view at the end.

import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { Client } from '@stomp/stompjs';
import { connect } from '../../dist/client/index.js';

const SIDES = ['bids', 'asks'];

/** A side's rows, best first, the top `depth` (0: all): [key, [[field, value] … by name]]. */
function canon(rows, depth) {
  const out = [];
  for (const r of rows) {
    if (depth && out.length === depth) break;
    out.push([r.key, Object.entries(r.fields).sort(([a], [b]) => (a < b ? -1 : 1))]);
  }
  return JSON.stringify(out);
}

const { url, topic, joins, transport } = workerData;
const joiners = [];
let t0 = 0;

// ---------------------------------------------------------------- the SDK (WebSocket or SSE)

function joinSdk(depth) {
  // A generous watchdog: this thread runs 100 clients and may fall seconds behind; when it catches up, timers run
  // before the reads waiting for it, and a 10 s grace would end streams that are well (liveness is tested elsewhere).
  const client = connect(url, { WebSocket, transport, backoff: { initialMs: 10, maxMs: 50 }, heartbeatGraceMs: 60_000 });
  const j = { depth, first: null, versions: [], errors: [] };
  const tables = depth ? { bids: { depth }, asks: { depth } } : undefined;
  const sub = client.subscribe(topic, { ...(tables ? { tables } : {}), checksums: depth === 10 });
  j.view = () => SIDES.map((s) => canon(sub.table(s).rows(), depth)).join('|');
  j.stats = () => ({ ...client.stats });
  j.close = () => client.close();
  j.transport = () => client.transport;
  sub.on('update', (u) => {
    if (!j.first) j.first = { version: u.version, snapshot: u.snapshot, view: j.view(), at: Date.now() - t0 };
    j.versions.push(u.version);
  });
  sub.on('error', (e) => j.errors.push(String(e)));
  client.on('disconnect', (d) => j.errors.push(`disconnected ${Date.now() - t0} ms after the start: ${d.code} ${d.reason} (at v${j.versions.at(-1)})`));
  return j;
}

// ---------------------------------------------------------------- STOMP, keyed JSON bodies

/**
 * Keyed JSON messages applied to plain maps: a snapshot (its parts, all at one
 * version) replaces the view; a delta applies on its base; one at or below the
 * held version is a duplicate (ignored, counted); one above is a gap.
 */
class JsonBook {
  constructor() {
    this.epoch = 0;
    this.version = -1;
    this.tables = new Map();
    this.pending = null;
    this.stats = { gaps: 0, duplicates: 0, checksumMismatches: 0, sequenceGaps: 0, snapshots: 0 };
  }

  /** 'snapshot' or 'delta' when `m` completed a version, null otherwise. */
  apply(m) {
    if (m.type === 'keyedSnapshot') {
      if (m.part === 0) this.pending = { version: m.version, tables: new Map(Object.keys(m.views).map((n) => [n, new Map()])) };
      const p = this.pending;
      if (!p || p.version !== m.version) throw new Error(`snapshot part ${m.part} of v${m.version} without its first part`);
      for (const [name, rows] of Object.entries(m.rows)) for (const [k, f] of Object.entries(rows)) p.tables.get(name).set(Number(k), f);
      if (!m.last) return null;
      this.tables = p.tables;
      this.pending = null;
      this.epoch = m.epoch;
      this.version = m.version;
      this.stats.snapshots++;
      return 'snapshot';
    }
    if (m.type !== 'keyedDelta') return null;
    if (this.pending) throw new Error(`a delta v${m.version} between the parts of snapshot v${this.pending.version}`);
    if (m.epoch === this.epoch && m.version <= this.version) return void this.stats.duplicates++, null;
    if (m.epoch !== this.epoch || m.base !== this.version) return void this.stats.gaps++, null;
    for (const [name, tc] of Object.entries(m.tables)) {
      let t = this.tables.get(name);
      if (!t) this.tables.set(name, (t = new Map()));
      if (tc.clear) t.clear();
      for (const k of tc.delete ?? []) t.delete(Number(k));
      for (const op of ['replace', 'insert']) for (const [k, f] of Object.entries(tc[op] ?? {})) t.set(Number(k), { ...f });
      for (const [k, f] of Object.entries(tc.upsert ?? {})) {
        const row = { ...(t.get(Number(k)) ?? {}) };
        for (const [n, v] of Object.entries(f)) {
          if (v === null) delete row[n];
          else row[n] = v;
        }
        t.set(Number(k), row);
      }
    }
    this.version = m.version;
    return 'delta';
  }

  /** Both sides in canonical form, best first (the client sorts only to compare). */
  view(depth) {
    return SIDES.map((s, i) => {
      const t = this.tables.get(s) ?? new Map();
      const keys = [...t.keys()].sort((a, b) => (i === 0 ? b - a : a - b));
      return canon(keys.map((key) => ({ key, fields: t.get(key) })), depth);
    }).join('|');
  }
}

function joinStomp(depth) {
  const j = { depth, first: null, versions: [], errors: [] };
  const book = new JsonBook();
  let socket = null;
  const client = new Client({
    webSocketFactory: () => (socket = new WebSocket(url.replace(/\/ws$/, '/stomp'), ['v12.stomp'])),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: () => {},
  });
  client.onStompError = (f) => j.errors.push(`ERROR ${f.headers.message}: ${f.body}`);
  client.onWebSocketClose = () => {
    if (!j.closing) j.errors.push('the STOMP connection closed');
  };
  client.onConnect = () => {
    const headers = depth ? { 'tickfan-tables': `bids:${depth},asks:${depth}`, 'tickfan-checksums': String(depth === 10) } : {};
    client.subscribe(
      `/topic/${topic}`,
      (msg) => {
        let done;
        try {
          const body = JSON.parse(msg.body);
          if (String(body.version) !== msg.headers['tickfan-version']) j.errors.push(`header version ${msg.headers['tickfan-version']} != body ${body.version}`);
          done = book.apply(body);
        } catch (e) {
          return void j.errors.push(String(e));
        }
        if (!done) return;
        if (!j.first) j.first = { version: book.version, snapshot: done === 'snapshot', view: book.view(depth), at: Date.now() - t0 };
        else if (done === 'snapshot') j.errors.push(`a second snapshot, at v${book.version}`);
        j.versions.push(book.version);
      },
      headers,
    );
  };
  client.activate();
  j.view = () => book.view(depth);
  j.stats = () => ({ ...book.stats });
  j.close = () => {
    j.closing = true;
    void client.deactivate({ force: true });
    socket?.terminate();
  };
  j.transport = () => 'stomp';
  return j;
}

// ---------------------------------------------------------------- the run

const join = transport === 'stomp' ? joinStomp : joinSdk;

parentPort.on('message', (m) => {
  if (m === 'start') {
    t0 = Date.now();
    for (const { at, depth } of joins) setTimeout(() => joiners.push(Object.assign(join(depth), { joinedAt: Date.now() - t0 })), at);
    return;
  }
  const last = m.finish;
  const deadline = Date.now() + 30_000;
  const poll = () => {
    const done = joiners.length === joins.length && joiners.every((j) => j.versions.at(-1) === last);
    if (!done && Date.now() < deadline) return void setTimeout(poll, 10);
    const results = joiners.map((j) => ({
      depth: j.depth,
      transport: j.transport(),
      first: j.first,
      joinedAt: j.joinedAt,
      versions: j.versions,
      stats: j.stats(),
      errors: j.errors,
      end: j.view(),
    }));
    for (const j of joiners) j.close();
    parentPort.postMessage({ results });
  };
  poll();
});
