// Raw WebSocket clients of the wire scenario's compression runs, in a worker
// thread: many connections that offer permessage-deflate (or not), speak
// tickfan protocol 1 or 2, subscribe, and count what arrives — bytes (frame
// headers + payloads) and frames, compressed ones (RSV1) apart — without
// decoding (a compressed frame would need inflating first: the server's own
// delivery counter says how many updates they held). Pings are answered.
//
// Main thread: `new WireClients(specs)`, then connect(), reset(), collect(), close().

import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Encoder } from '../../dist/protocol/index.js';
import { eachServerFrame, upgradeRequest, wsFrame } from './wire.mjs';

const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

// ------------------------------------------------------------ worker side

class Client {
  constructor(spec, port, enc) {
    this.spec = spec; // { protocol, deflate, topics }
    this.port = port;
    this.enc = enc;
    this.reset();
  }

  reset() {
    this.bytes = 0;
    this.frames = 0;
    this.compressed = 0;
  }

  open() {
    return new Promise((resolve) => {
      const sock = (this.sock = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true }));
      let hs = null;
      let carry = null;
      let upgraded = false;
      sock.on('connect', () => {
        const req = upgradeRequest('/ws', this.port);
        sock.write(this.spec.deflate ? req.replace('\r\n\r\n', `\r\nSec-WebSocket-Extensions: ${DEFLATE_OFFER}\r\n\r\n`) : req);
      });
      sock.on('error', (err) => resolve({ ok: false, error: err.message }));
      sock.on('close', () => resolve({ ok: false, error: 'closed' }));
      sock.on('data', (chunk) => {
        if (!upgraded) {
          hs = hs ? Buffer.concat([hs, chunk]) : chunk;
          const end = hs.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = hs.subarray(0, end).toString('latin1');
          if (!/^HTTP\/1\.1 101/.test(head)) return resolve({ ok: false, error: head.split('\r\n')[0] });
          upgraded = true;
          this.negotiated = /sec-websocket-extensions:\s*permessage-deflate/i.test(head);
          this.extensions = /sec-websocket-extensions:\s*([^\r\n]*)/i.exec(head)?.[1] ?? '';
          const hello = this.enc.hello(this.spec.protocol, 'tickfan-bench-wire', '');
          const sub = this.enc.subscribe(1, this.spec.topics, 0, [], []);
          sock.write(wsFrame(Buffer.concat([hello, sub])));
          resolve({ ok: true });
          chunk = hs.subarray(end + 4);
          hs = null;
          if (chunk.length === 0) return;
        }
        // Frames: count header + payload; answer pings; nothing else is read.
        const b = carry ? Buffer.concat([carry, chunk]) : chunk;
        carry = null;
        const o = eachServerFrame(b, (first, at, len, h) => {
          const op = first & 15;
          this.bytes += h + len;
          if (op === 2 || op === 1) {
            this.frames++;
            if (first & 0x40) this.compressed++;
          } else if (op === 9) sock.write(wsFrame(b.subarray(at, at + len), 0xa));
        });
        if (o < b.length) carry = Buffer.from(b.subarray(o));
      });
    });
  }

  close() {
    this.sock?.destroy();
  }
}

function workerMain() {
  const { port, specs } = workerData;
  const enc = new Encoder();
  const clients = specs.map((s) => new Client(s, port, enc));
  parentPort.on('message', async ({ id, cmd }) => {
    let result;
    if (cmd === 'connect') {
      const out = [];
      // A few at a time: the server's accept queue and our own event loop stay calm.
      for (let i = 0; i < clients.length; i += 64) out.push(...(await Promise.all(clients.slice(i, i + 64).map((c) => c.open()))));
      const failed = out.filter((r) => !r.ok);
      result = { connected: out.length - failed.length, failed: failed.length, error: failed[0]?.error, negotiated: clients.filter((c) => c.negotiated).length, extensions: clients.find((c) => c.negotiated)?.extensions ?? '' };
    } else if (cmd === 'reset') {
      for (const c of clients) c.reset();
      result = true;
    } else if (cmd === 'collect') {
      result = clients.map((c) => [c.bytes, c.frames, c.compressed]);
    } else if (cmd === 'close') {
      for (const c of clients) c.close();
      result = true;
    }
    parentPort.postMessage({ id, result });
  });
}

if (!isMainThread && workerData?.wireClients) workerMain();

// ------------------------------------------------------------ main side

export class WireClients {
  /**
   * @param {number} port  the tickfan server's port
   * @param {{ protocol: 1|2, deflate: boolean, topics: string[] }[]} specs  one per client
   */
  constructor(port, specs) {
    this.specs = specs;
    this.worker = new Worker(new URL(import.meta.url), { workerData: { wireClients: true, port, specs } });
    this.worker.unref();
    this.pending = new Map();
    this.nextId = 1;
    this.worker.on('message', ({ id, result }) => {
      this.pending.get(id)?.(result);
      this.pending.delete(id);
    });
  }

  ask(cmd) {
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.pending.set(id, resolve);
      this.worker.postMessage({ id, cmd });
    });
  }

  connect() {
    return this.ask('connect');
  }

  reset() {
    return this.ask('reset');
  }

  /** Per client: [bytes, frames, compressed frames] since the last reset. */
  collect() {
    return this.ask('collect');
  }

  async close() {
    await this.ask('close');
    await this.worker.terminate();
  }
}
