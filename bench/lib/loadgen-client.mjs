// The load generator's client (loadgen-group.mjs holds many, in a worker
// thread of loadgen-worker.mjs): one WebSocket connection on a raw TCP
// socket — connect, upgrade, subscribe (or resume) — and the streaming parser
// that walks its server frames in place and reads only what is measured:
// message counts, versions where a scenario tracks them, and the publish
// timestamp of one message in the group's `sampleEvery` (group.record()).
// This is the load generator's per-frame hot path: plain methods on one
// class, no closures or allocations per frame.
//
// Protocols: "tickfan" (seq + size-prefixed FlatBuffers; with spec.protocol
// 2, after the Welcome{2} frame: varint seq + varint-sized kind + root),
// "uws" (one size-prefixed FlatBuffers Delta per frame; protocol 2: the
// frame tickfan itself would send for the update — sequence 0, then one
// varint-sized Delta2 with its kind byte — read by tickfan's parser), "sio" (Engine.IO v4 / Socket.IO
// text packets over WebSocket), "nats" and "mosquitto" (the NATS protocol
// and MQTT 3.1.1 QoS 0 in WebSocket frames: loadgen-brokers.mjs).

import net from 'node:net';
import { Encoder } from '../../dist/protocol/index.js';
import { BODY, KIND, ackId, body, bodyType, fieldAt, i64, stamp, stamp2, topic as topicOf, u32, upgradeRequest, varint, varintLen, version as versionOf, welcomeProtocol, wsFrame } from './wire.mjs';

const SIO_EVENT = Buffer.from('42["u",{"t":');
const PONG_EMPTY = wsFrame(Buffer.alloc(0), 0xa);

const enc = new Encoder(4096);
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

// Parser states: next unit is a WebSocket frame header, a tickfan frame's sequence number, or a message.
const HDR = 0;
const SEQ = 1;
const MSG = 2;

/** One connection: its socket, handshake, subscription and frame parser; counts into its group `g`. */
export class Client {
  constructor(g, { index, topics, addr, stalled = false }) {
    this.g = g;
    this.index = index;
    this.topics = topics;
    this.addr = addr;
    this.stalled = stalled;
    this.sock = null;
    this.ready = false;
    this.held = g.spec.trackVersions ? new Map() : null;
  }

  /** A new connection's frame parser: at a frame header, in the protocol its system starts with. */
  resetParser() {
    const g = this.g;
    this.carry = null;
    this.state = HDR;
    this.left = 0;
    // Raw uWS with protocol 2 sends tickfan's own frames (payload.mjs): the same parser reads both.
    const uwsFrames2 = g.proto === 'uws' && g.spec.protocol === 2;
    this.streamed = g.proto === 'tickfan' || uwsFrames2;
    // tickfan: protocol 2 framing from the frame after the one holding Welcome{2}.
    this.p2 = false;
    this.to2 = uwsFrames2;
    this.seq = 0;
  }

  /** Opens the socket, upgrades, subscribes; `done(ok)` once subscribed (or failed). */
  open(done, resume = false) {
    const g = this.g;
    this.ready = false;
    this.upgraded = false;
    this.hs = null;
    this.resetParser();
    this.broker = g.Broker ? new g.Broker(this) : null;
    this.closeCode = 0;
    this.resume = resume;
    this.done = done;
    // onread: reads land in one buffer shared by every socket of this thread
    // (callbacks run one at a time), skipping the stream machinery and a fresh
    // Buffer per read — the load generator's largest per-frame cost.
    const sock = (this.sock = net.connect({
      host: '127.0.0.1',
      port: g.spec.port,
      localAddress: this.addr,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n, buf) => void (this.sock === sock && this.onData(buf.subarray(0, n))) },
    }));
    sock.on('connect', () => {
      g.stormMark('connected');
      sock.write(upgradeRequest(g.spec.path, g.spec.port, g.Broker?.subprotocol));
    });
    sock.on('error', (err) => {
      if (this.sock !== sock) return;
      g.errors++;
      g.lastError = err.message;
      this.finishOpen(false);
    });
    sock.on('close', () => {
      if (this.sock !== sock) return; // an old socket, replaced after a drop
      const key = this.closeCode || 'tcp';
      if (!g.closing) g.closes[key] = (g.closes[key] ?? 0) + 1;
      this.ready = false;
      this.finishOpen(false);
    });
  }

  finishOpen(ok) {
    const d = this.done;
    this.done = null;
    if (d) d(ok);
  }

  /**
   * Drops the connection abruptly, with a TCP reset: a FIN would leave this
   * side's port in TIME_WAIT for 60 s, and a few storms of 10,000 in a row
   * (tickfan's, then the raw uWS floor's) would run the four source addresses
   * out of ports, so that the later storms measured their retries.
   */
  kill() {
    this.ready = false;
    const s = this.sock;
    this.sock = null;
    if (s && !s.destroyed && s.readyState === 'open') s.resetAndDestroy();
    else s?.destroy();
  }

  send(payload, opcode = 2) {
    this.sock?.write(wsFrame(payload, opcode));
  }

  onOpen() {
    const g = this.g;
    if (g.proto === 'tickfan') {
      const resume = [];
      if (this.resume && this.held) {
        for (const t of this.topics) {
          const v = this.held.get(t);
          const e = g.epochs.get(t);
          if (v !== undefined && e !== undefined) resume.push({ topic: t, epoch: e, version: v });
        }
      }
      const hello = enc.hello(g.spec.protocol ?? 1, 'tickfan-bench', '');
      const sub = enc.subscribe(1, this.topics, g.spec.maxRate ?? 0, [], resume);
      this.send(Buffer.concat([hello, sub]));
    } else if (g.proto === 'uws') {
      this.send(Buffer.from(`sub ${this.topics.join(',')}`), 1);
    } else if (this.broker) this.broker.open();
    // sio: waits for the Engine.IO open packet.
  }

  subscribed() {
    this.ready = true;
    if (this.stalled) this.sock?.pause();
    const st = this.g.storm;
    if (st) {
      this.g.stormMark('subscribed');
      this.checkStorm();
    }
    this.finishOpen(true);
  }

  checkStorm() {
    const st = this.g.storm;
    if (!st || this.stormBehind === -2 || st.firstMessage) return;
    for (const t of this.topics) {
      const target = st.targets[t];
      if (target && (this.held.get(t) ?? -1) < target.version) return;
    }
    this.stormBehind = -2;
    this.g.clientCurrent(this);
  }

  onData(chunk) {
    const g = this.g;
    if (!this.upgraded) {
      this.hs = this.hs ? Buffer.concat([this.hs, chunk]) : Buffer.from(chunk);
      const end = this.hs.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!this.hs.subarray(0, 16).toString('latin1').includes(' 101')) {
        g.errors++;
        g.lastError = `upgrade refused: ${this.hs.subarray(0, end).toString('latin1').split('\r\n')[0]}`;
        this.sock.destroy();
        return;
      }
      this.upgraded = true;
      g.stormMark('upgraded');
      chunk = this.hs.subarray(end + 4);
      this.hs = null;
      this.onOpen();
      if (chunk.length === 0) return;
    }
    // A streaming parser over units — a WebSocket frame header, a tickfan
    // frame's sequence number, one size-prefixed message — so a 48 KB frame
    // split over two reads is parsed in place: only a partial unit is copied.
    const b = chunk;
    const n = b.length;
    let o = 0;
    if (this.carry) {
      let c = this.carry;
      for (;;) {
        const head = this.unitHead();
        const need = c.length >= head ? this.unitSize(c, 0, c.length) : head;
        if (c.length >= need) break;
        const take = Math.min(need - c.length, n - o);
        c = Buffer.concat([c, b.subarray(o, o + take)]);
        o += take;
        if (o === n && c.length < need) {
          this.carry = c;
          return;
        }
      }
      this.carry = null;
      this.unit(c, 0, c.length);
    }
    while (o < n) {
      const avail = n - o;
      if (avail < this.unitHead()) break;
      const need = this.unitSize(b, o, avail);
      if (avail < need) break;
      this.unit(b, o, need);
      o += need;
    }
    // Copied: the read buffer is reused by the next read.
    if (o < n) this.carry = Buffer.from(b.subarray(o));
  }

  /** Bytes needed to know the size of the next unit. */
  unitHead() {
    if (this.p2 && this.state !== HDR) return 1;
    return this.state === SEQ ? 8 : this.state === MSG ? 4 : 2;
  }

  /** Size of the next unit (may ask for more header bytes first). */
  unitSize(b, o, avail) {
    if (this.p2 && this.state === SEQ) return varintLen(b, o, avail);
    if (this.p2 && this.state === MSG) {
      const n = varintLen(b, o, avail);
      return n > avail ? n : n + varint(b, o);
    }
    if (this.state === SEQ) return 8;
    if (this.state === MSG) return 4 + u32(b, o);
    let len = b[o + 1] & 127;
    let h = 2;
    if (len === 126) {
      if (avail < 4) return 4;
      len = (b[o + 2] << 8) | b[o + 3];
      h = 4;
    } else if (len === 127) {
      if (avail < 10) return 10;
      len = u32be(b, o + 2) * 4294967296 + u32be(b, o + 6);
      h = 10;
    }
    // A tickfan data frame is parsed message by message; any other frame whole.
    return this.streamed && (b[o] & 15) === 2 ? h : h + len;
  }

  unit(b, o, size) {
    const g = this.g;
    g.bytes += size;
    if (this.state === MSG) {
      if (this.p2) this.message2(b, o + varintLen(b, o, size));
      else this.message(b, o + 4);
      if ((this.left -= size) <= 0) this.state = HDR;
      return;
    }
    if (this.state === SEQ && this.p2) {
      const seq = varint(b, o);
      if (seq === 0) this.seq++;
      else {
        if (seq !== this.seq + 1) g.seqGaps++;
        this.seq = seq;
      }
      this.state = (this.left -= size) > 0 ? MSG : HDR;
      return;
    }
    if (this.state === SEQ) {
      // 0: a frame published to many connections at once (counted, its number
      // implied); otherwise the exact count of frames this connection was sent.
      const seq = u32(b, o) + u32(b, o + 4) * 4294967296;
      if (seq === 0) this.seq++;
      else {
        if (seq !== this.seq + 1) g.seqGaps++;
        this.seq = seq;
      }
      this.state = (this.left -= 8) > 0 ? MSG : HDR;
      return;
    }
    const op = b[o] & 15;
    let len = b[o + 1] & 127;
    let h = 2;
    if (len === 126) {
      len = (b[o + 2] << 8) | b[o + 3];
      h = 4;
    } else if (len === 127) {
      len = u32be(b, o + 2) * 4294967296 + u32be(b, o + 6);
      h = 10;
    }
    if (op === 2 && this.streamed) {
      g.frames++;
      this.p2 = this.to2;
      this.left = len;
      this.state = SEQ;
      return;
    }
    const p = o + h;
    if (this.broker && op <= 2) {
      g.frames++;
      this.broker.feed(b, p, p + len);
    } else if (op === 2) this.uwsFrame(b, p);
    else if (op === 1) this.text(b, p, p + len);
    else if (op === 9) this.sock?.write(PONG_EMPTY);
    else if (op === 8) this.closeCode = len >= 2 ? (b[p] << 8) | b[p + 1] : 1005;
  }

  /** uws peer: one size-prefixed Delta per frame (protocol 2: varint size, kind, Delta2). */
  uwsFrame(b, p) {
    this.g.frames++;
    this.delivered(b, p);
  }

  /** One peer update whose payload (payload.mjs) starts at `p`: counted, one in sampleEvery timed. */
  delivered(b, p) {
    const g = this.g;
    g.deliveries++;
    if (g.storm && this.stormBehind === -1) {
      this.stormBehind = -2;
      g.clientCurrent(this);
    }
    if (--g.countdown === 0) {
      g.countdown = g.sampleEvery;
      const ts = g.spec.protocol === 2 ? stamp2(b, p + varintLen(b, p, 8) + 1) : stamp(b, body(b, p + 4), BODY.Delta);
      if (ts > 0) g.record(ts);
    }
  }

  serverError(msg) {
    this.g.serverErrors++;
    this.g.lastError = msg;
  }

  /** One protocol-2 message: its kind byte at `m`, its root buffer after it. */
  message2(b, m) {
    const g = this.g;
    const kind = b[m];
    if (kind === KIND.DELTA2) {
      g.deliveries++;
      // The raw uWS floor of a storm has no versions: a client counts once its first update arrives again.
      if (g.storm?.firstMessage && this.stormBehind === -1) {
        this.stormBehind = -2;
        g.clientCurrent(this);
      }
      if (--g.countdown === 0) {
        g.countdown = g.sampleEvery;
        const ts = stamp2(b, m + 1);
        if (ts > 0) g.record(ts);
      }
    } else if (kind === KIND.SNAPSHOT2) {
      g.snapshots++;
    } else if (kind === KIND.MESSAGE) {
      this.message(b, m + 1);
    }
  }

  /** One tickfan message (bytes after its size prefix at `m`). */
  message(b, m) {
    const g = this.g;
    const type = bodyType(b, m);
    if (type === BODY.Delta) {
      g.deliveries++;
      if (--g.countdown === 0) {
        g.countdown = g.sampleEvery;
        const ts = stamp(b, body(b, m), type);
        if (ts > 0) g.record(ts);
      }
      if (this.held !== null) this.hold(b, body(b, m), type);
    } else if (type === BODY.Snapshot) {
      g.snapshots++;
      if (this.held !== null) this.hold(b, body(b, m), type);
    } else if (type === BODY.Welcome) {
      if (welcomeProtocol(b, body(b, m)) === 2) this.to2 = true;
    } else if (type === BODY.Ack) {
      if (ackId(b, body(b, m)) === 1 && !this.ready) this.subscribed();
    } else if (type === BODY.Error) {
      g.serverErrors++;
    }
  }

  hold(b, t, type) {
    const name = topicOf(b, t);
    const v = versionOf(b, t, type);
    if (!this.g.epochs.has(name)) {
      const eo = fieldAt(b, t, 1);
      this.g.epochs.set(name, eo ? i64(b, t + eo) : 0);
    }
    this.held.set(name, v);
    if (this.g.storm && this.ready) this.checkStorm();
  }

  text(b, p, end) {
    const g = this.g;
    const c0 = b[p];
    if (c0 === 0x34 /* 4 */ && b[p + 1] === 0x32 /* 2 */) {
      // 42["u",{"t":<ns>,…}]
      g.frames++;
      g.deliveries++;
      if (--g.countdown === 0) {
        g.countdown = g.sampleEvery;
        if (b.compare(SIO_EVENT, 0, SIO_EVENT.length, p, p + SIO_EVENT.length) === 0) {
          let ns = 0;
          for (let i = p + SIO_EVENT.length; i < end; i++) {
            const d = b[i] - 48;
            if (d < 0 || d > 9) break;
            ns = ns * 10 + d;
          }
          g.record(ns);
        }
      }
    } else if (c0 === 0x32 /* 2: Engine.IO ping */) {
      this.send(Buffer.from('3'), 1);
    } else if (c0 === 0x30 /* 0: Engine.IO open */) {
      this.send(Buffer.from('40'), 1);
    } else if (c0 === 0x34 && b[p + 1] === 0x30 /* 40: namespace connected */) {
      this.send(Buffer.from(`421${JSON.stringify(['sub', this.topics])}`), 1);
    } else if (c0 === 0x34 && b[p + 1] === 0x33 /* 43: ack */) {
      if (!this.ready) this.subscribed();
    } else if (c0 === 0x6f /* o: uws "ok <n>" */) {
      if (!this.ready) this.subscribed();
    } else if (c0 === 0x34 && b[p + 1] === 0x34 /* 44: connect error */) {
      g.serverErrors++;
    }
  }
}

function u32be(b, o) {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
