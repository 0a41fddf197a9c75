// Many SDK subscribers of one keyed view, in a child process (for
// keyed-acceptance-scale.test.ts): the server's process then holds the server
// alone (its JS heap and RSS are what is measured), and 10,000 client
// sockets do not share the server's open-file limit (20,000 a process here).
// Uses the built SDK (dist/client, built by `npm test` first). Arguments
// come as JSON in argv[2]: { url, topic, count, depth }. Sends { ready } once
// every subscription holds its snapshot; on { until: v } sends { at: v,
// failed, reconnects } once every one holds version v (failed: clients whose
// table size is not `depth`); on 'close' closes them and sends 'closed'.
// Any failure is sent as { error }.

import WebSocket from 'ws';
import { connect } from '../../dist/client/index.js';

const { url, topic, count, depth } = JSON.parse(process.argv[2]);
const subs = [];
const clients = [];
const send = (m) => process.send(m);

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
  send({ ready: subs.length, rss: process.memoryUsage().rss });
}

process.on('message', (m) => {
  if (m === 'close') {
    for (const c of clients) c.close();
    setTimeout(() => send('closed'), 200);
    return;
  }
  const poll = () => {
    if (subs.every((s) => s.version === m.until)) {
      const failed = subs.filter((s) => s.table('bids').size !== depth || s.table('asks').size !== depth).length;
      return void send({ at: m.until, failed, reconnects: clients.reduce((n, c) => n + c.stats.reconnects, 0) });
    }
    setTimeout(poll, 10);
  };
  poll();
});
process.on('disconnect', () => process.exit(0));

open().catch((e) => send({ error: String(e?.stack ?? e) }));
