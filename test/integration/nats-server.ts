// A real nats-server (Debian's) for the cluster tests: loopback only, on a free
// port, JetStream in a temporary directory, monitoring on another free port
// (for /varz: slow consumers, connections). It can be killed and restarted on
// the same port and store, and is always stopped in afterAll.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from './helpers.js';

const BINARY = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';

export interface NatsServerOptions {
  /** Bytes the server buffers for one client before cutting it as a slow consumer (and max_payload, which may not exceed it). */
  maxPending?: number;
  /** How long a write to a client may block before it is cut as a slow consumer. */
  writeDeadline?: string;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcp(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class NatsServer {
  private proc: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'tickfan-nats-'));
  log = '';

  private constructor(
    readonly port: number,
    readonly monitorPort: number,
    private readonly opts: NatsServerOptions,
  ) {}

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    // freePort() hands out a port another test process may take before nats-server binds it
    // ("address already in use", seen once in a full run): new ports, a few times.
    for (let attempt = 1; ; attempt++) {
      const s = new NatsServer(await freePort(), await freePort(), opts);
      try {
        await s.run();
        return s;
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test(s.log)) throw err;
      }
    }
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private async run(): Promise<void> {
    const conf = join(this.dir, 'nats.conf');
    const lines = [`listen: 127.0.0.1:${this.port}`, `http: 127.0.0.1:${this.monitorPort}`, `jetstream { store_dir: "${join(this.dir, 'js')}" }`];
    if (this.opts.maxPending) lines.push(`max_pending: ${this.opts.maxPending}`, `max_payload: ${Math.min(this.opts.maxPending, 1024 * 1024)}`);
    if (this.opts.writeDeadline) lines.push(`write_deadline: "${this.opts.writeDeadline}"`);
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const p = spawn(BINARY, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.on('error', (err) => (this.log += `spawn failed: ${err.message} (install Debian's nats-server: apt-get install nats-server)\n`));
    p.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.proc = p;
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (p.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start on ${this.port}:\n${this.log}`);
      await sleep(20);
    }
  }

  /** Kills the server at once (SIGKILL: no goodbye to its clients). */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    p.kill('SIGCONT');
    await exited;
  }

  /** Freezes the server (SIGSTOP): its connections stay open and silent, as with a hung process. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Starts it again on the same port and store (JetStream keeps the shard leases). */
  restart(): Promise<void> {
    return this.run();
  }

  /** The server's /varz (slow_consumers, connections, in_msgs, …). */
  async varz(): Promise<Record<string, number>> {
    const r = await fetch(`http://127.0.0.1:${this.monitorPort}/varz`);
    return (await r.json()) as Record<string, number>;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
