// Many SDK subscribers of one keyed view, in a worker thread (for
// keyed-acceptance-scale.test.ts), so that the server's JS heap in the main
// thread holds the server alone. Uses the built SDK (dist/client, built by
// `npm test` first). workerData: { url, topic, count, depth }. Posts
// { ready } once every subscription holds its snapshot; on { until: v }
// posts { at: v, failed } once every one holds version v (failed: clients
// whose table size is not `depth`); on 'close' closes them and posts 'closed'.

import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { connect } from '../../dist/client/index.js';

const { url, topic, count, depth } = workerData;
const subs = [];
const clients = [];

async function open() {
  for (let i = 0; i < count; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(count, i + 100); k++) {
      const c = connect(url, { WebSocket, transport: 'ws', backoff: { initialMs: 50, maxMs: 500 } });
      clients.push(c);
      const s = c.subscribe(topic, { tables: { bids: { depth }, asks: { depth } } });
      subs.push(s);
      batch.push(s.ready);
    }
    await Promise.all(batch);
  }
  parentPort.postMessage({ ready: subs.length });
}

parentPort.on('message', (m) => {
  if (m === 'close') {
    for (const c of clients) c.close();
    setTimeout(() => parentPort.postMessage('closed'), 200);
    return;
  }
  const poll = () => {
    if (subs.every((s) => s.version === m.until)) {
      const failed = subs.filter((s) => s.table('bids').size !== depth || s.table('asks').size !== depth).length;
      return void parentPort.postMessage({ at: m.until, failed, reconnects: clients.reduce((n, c) => n + c.stats.reconnects, 0) });
    }
    setTimeout(poll, 10);
  };
  poll();
});

open().catch((e) => parentPort.postMessage({ error: String(e) }));
