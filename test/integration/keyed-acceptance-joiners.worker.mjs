// The late joiners of keyed-acceptance-late-joiners.test.ts, in a worker
// thread so that 100 SDK clients do not compete with the sequencer for the
// test's event loop. Uses the built SDK (dist/client: `npm test` builds it
// first, as the CLI tests use dist/cli.js). workerData: { url, topic, joins:
// [{ at (ms after 'start'), depth (0: every row) }] }. Messages in: 'start',
// { finish: lastVersion }. Out: { results } once every joiner holds the last
// version (or after 30 s): per joiner its first update (version, snapshot
// flag, view in canonical form), the versions it was delivered, its SDK stats,
// its errors and its view at the end.

import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
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

const viewOf = (sub, depth) => SIDES.map((s) => canon(sub.table(s).rows(), depth)).join('|');

const { url, topic, joins } = workerData;
const joiners = [];

function join(depth) {
  const client = connect(url, { WebSocket, transport: 'ws', backoff: { initialMs: 10, maxMs: 50 } });
  const j = { client, depth, first: null, versions: [], errors: [], sub: null };
  const tables = depth ? { bids: { depth }, asks: { depth } } : undefined;
  j.sub = client.subscribe(topic, { ...(tables ? { tables } : {}), checksums: depth === 10 });
  j.sub.on('update', (u) => {
    if (!j.first) j.first = { version: u.version, snapshot: u.snapshot, view: viewOf(j.sub, depth) };
    j.versions.push(u.version);
  });
  j.sub.on('error', (e) => j.errors.push(String(e)));
  joiners.push(j);
}

parentPort.on('message', (m) => {
  if (m === 'start') {
    for (const { at, depth } of joins) setTimeout(() => join(depth), at);
    return;
  }
  const last = m.finish;
  const deadline = Date.now() + 30_000;
  const poll = () => {
    const done = joiners.length === joins.length && joiners.every((j) => j.versions.at(-1) === last);
    if (!done && Date.now() < deadline) return void setTimeout(poll, 10);
    const results = joiners.map((j) => ({
      depth: j.depth,
      first: j.first,
      versions: j.versions,
      stats: { ...j.client.stats },
      errors: j.errors,
      end: viewOf(j.sub, j.depth),
    }));
    for (const j of joiners) j.client.close();
    parentPort.postMessage({ results });
  };
  poll();
});
