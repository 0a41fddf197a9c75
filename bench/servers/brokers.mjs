// Outside brokers under benchmark (nats-server, mosquitto), from inside their
// driver process (servers/nats.mjs, servers/mosquitto.mjs): a temporary
// directory with the config file, loopback ports, the broker's log kept for
// error messages, and the broker killed (and its directory removed) when this
// process exits, however it exits; the bench runner also kills it by pid.
// And the publisher's side: one TCP connection to the broker, the updates of
// one timer tick written together (as client libraries buffer and flush).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOG_KEEP = 16 * 1024;

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A free TCP port on 127.0.0.1 (for brokers that cannot pick their own and say which). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** RSS bytes of a process, from /proc. */
export function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

export class BrokerProc {
  constructor(name, binary) {
    this.name = name;
    this.binary = binary;
    this.dir = mkdtempSync(join(tmpdir(), `tickfan-bench-${name}-`));
    this.log = '';
    this.proc = null;
    const cleanup = () => this.kill();
    process.on('exit', cleanup);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => process.exit(130));
  }

  /** Writes a file into the broker's directory; returns its path. */
  file(name, text) {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  start(args) {
    this.log = '';
    const p = spawn(this.binary, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d) => {
      this.log += d.toString('latin1');
      if (this.log.length > LOG_KEEP * 2) this.log = this.log.slice(-LOG_KEEP);
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    p.on('error', (err) => (this.log += `\nspawn failed: ${err.message}\n`));
    this.exited = new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));
    this.proc = p;
    return p;
  }

  get pid() {
    return this.proc?.pid;
  }

  get running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits until every pattern has matched the log; resolves with each one's first group. */
  async waitLog(patterns, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = {};
      for (const [k, re] of Object.entries(patterns)) {
        const m = re.exec(this.log);
        if (m) found[k] = m[1] ?? m[0];
      }
      if (Object.keys(found).length === Object.keys(patterns).length) return found;
      if (!this.running) throw new Error(`${this.name} exited while starting:\n${this.log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start within ${timeoutMs} ms:\n${this.log.slice(-2000)}`);
      await sleep(20);
    }
  }

  /** Waits until every port accepts connections (false when the broker exits first). */
  async waitPorts(ports, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (const port of ports) {
      while (!(await portOpen(port))) {
        if (!this.running) return false;
        if (Date.now() > deadline) throw new Error(`${this.name} did not listen on ${port} within ${timeoutMs} ms:\n${this.log.slice(-2000)}`);
        await sleep(20);
      }
    }
    return true;
  }

  /** Kills the broker at once and removes its directory (synchronous: runs in exit handlers). */
  kill() {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      try {
        p.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }

  async stop() {
    this.kill();
    if (this.proc) await Promise.race([this.exited, sleep(3000)]);
  }
}

/**
 * The publisher's connection: writes queued within one event-loop turn go
 * out in one write, the way client libraries flush. `onData(buf)` sees what
 * the broker sends back (handshakes, pings).
 */
export class BatchedSocket {
  constructor(port, onData) {
    this.chunks = [];
    this.bytes = 0;
    this.scheduled = false;
    this.sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', onData);
    this.closed = new Promise((r) => this.sock.once('close', r));
    this.sock.on('error', (err) => (this.error = err));
    this.flush = () => {
      this.scheduled = false;
      if (this.chunks.length === 0) return;
      const b = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
      this.chunks = [];
      this.bytes = 0;
      this.sock.write(b);
    };
  }

  /** Queues bytes (copied when `copy`: the encoder reuses its buffer). */
  write(buf, copy = false) {
    const b = copy ? Buffer.from(buf) : buf;
    this.chunks.push(b);
    this.bytes += b.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Writes now, ahead of anything queued (handshakes). */
  now(buf) {
    this.sock.write(buf);
  }

  /** Bytes accepted by write() but not yet handed to the kernel. */
  get pending() {
    return this.bytes + this.sock.writableLength;
  }

  close() {
    this.sock.destroy();
  }
}
