// Peer: Socket.IO, what most Node teams reach for — its default setup (the
// `ws` engine, JSON packets, no compression), rooms as topics,
// io.to(topic).emit() per update. The client asks for rooms with an
// acknowledged "sub" event. The payload is the same fields as tickfan's
// update, as JSON with the topic and version: {"t":…,"topic":…,"v":…,bid,…}.
// BENCH_SIO_SHAPE=update (the wire scenario) sends the compact JSON form
// instead: event "update" with {"topic","version","changes":{…}}.

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { serve } from './driver.mjs';

const versions = new Map();
const shape = process.env.BENCH_SIO_SHAPE ?? 'u';
let published = 0;
const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
io.on('connection', (socket) => {
  socket.on('sub', (topics, ack) => {
    socket.join(topics);
    if (typeof ack === 'function') ack(topics.length);
  });
});
await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));

serve({
  publish: (topic, fields) => {
    const v = (versions.get(topic) ?? 0) + 1;
    versions.set(topic, v);
    if (shape === 'update') {
      const changes = fields instanceof Map ? Object.fromEntries(fields) : fields;
      io.to(topic).emit('update', { topic, version: v, changes });
    } else {
      const { t, ...rest } = fields;
      io.to(topic).emit('u', { t, topic, v, ...rest });
    }
    published++;
  },
  stats: () => ({ connections: io.engine.clientsCount, publishes: published }),
  close: () => new Promise((resolve) => io.close(() => resolve())),
});
process.send({ type: 'ready', port: http.address().port, pid: process.pid });
