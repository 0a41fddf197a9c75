// An SDK subscriber in its own process (for same-turn-flush.test.ts), so it
// keeps reading while the server's thread is blocked on purpose. Arguments as
// JSON in argv[2]: { url, topic }. Sends { ready } once it holds the topic's
// snapshot, then { version, at } (at: Date.now()) for every update it gets.
// Uses the built SDK (dist/client, built by `npm test` first).

import WebSocket from 'ws';
import { connect } from '../../dist/client/index.js';

const { url, topic } = JSON.parse(process.argv[2]);
const client = connect(url, { WebSocket, transport: 'ws' });
const sub = client.subscribe(topic);
sub.on('update', (u) => process.send({ version: u.version, at: Date.now() }));
sub.ready.then(() => process.send({ ready: true }), (err) => process.send({ error: String(err) }));
process.on('message', (m) => {
  if (m === 'close') {
    client.close();
    setTimeout(() => process.exit(0), 50);
  }
});
