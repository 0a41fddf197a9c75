// Real processes for the cluster fault suite (cluster-fault-suite.ts): a
// nats-server with JetStream and tickfan nodes started as the README says
// (`node dist/cli.js serve --nats … --role origin|edge --port …`), each in its
// own process group with its output in a log file, so that a fault can
// SIGKILL, SIGSTOP or SIGCONT it, and every group is killed at the end — also
// when the run fails or the test process exits.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The build under test: this checkout's dist/, or FAULT_SUITE_DIST (another build, for an A/B). */
export const DIST = process.env.FAULT_SUITE_DIST || join(ROOT, 'dist');
const CLI = join(DIST, 'cli.js');

/**
 * The SDK of the same build as the nodes (`tickfan/client`, i.e. dist/client),
 * typed as the source: a run never mixes a half-edited src/ with the built nodes.
 */
export async function loadSdk(): Promise<typeof import('../../src/client/index.js')> {
  return (await import(pathToFileURL(join(DIST, 'client/index.js')).href)) as typeof import('../../src/client/index.js');
}
const NATS_BINARY = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every process group started here and not yet known dead (killed on process exit as a last resort). */
const live = new Set<number>();
const killLive = () => {
  for (const pid of live) signalGroup(pid, 'SIGKILL');
};
process.once('exit', killLive);
// A test runner ending this process with a signal skips 'exit': kill the groups, then die of the signal as before.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killLive();
    process.kill(process.pid, sig);
  });
}

function signalGroup(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const taken = new Set<number>();

/**
 * A loopback port that was free a moment ago, below Linux's ephemeral range
 * (32768 and up) so that no outgoing connection takes it while a killed node
 * is down: a restarted node listens on the same port again. Never the same twice.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!taken.has(port) && (await bindable(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port in 20000-31999');
}

/** One process (group) with a name, a log file and a known exit. */
export class Proc {
  readonly exited: Promise<number | null>;
  exitCode: number | null = null;
  alive = true;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    live.add(child.pid!);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.alive = false;
        live.delete(child.pid!);
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) signalGroup(this.child.pid!, sig);
  }

  /** SIGKILL to the group (and SIGCONT, should it be stopped); resolves when it exited (at most 5 s). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGKILL');
    this.signal('SIGCONT');
    await Promise.race([this.exited, sleep(5_000)]);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

/** Starts and owns the processes of one run, in a temporary directory removed by `close()`. */
export class Procs {
  readonly dir = mkdtempSync(join(tmpdir(), 'tickfan-fault-'));
  readonly all: Proc[] = [];
  private serial = 0;

  spawn(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    const logFile = join(this.dir, `${name}-${++this.serial}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(cmd, args, { cwd: ROOT, detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    const p = new Proc(name, child, logFile);
    this.all.push(p);
    return p;
  }

  /** nats-server with JetStream, loopback only, its store in this run's directory (kept across restarts). */
  async nats(port: number): Promise<Proc> {
    const p = this.spawn('nats', NATS_BINARY, ['-js', '-sd', join(this.dir, 'js'), '-a', '127.0.0.1', '-p', String(port)]);
    await this.listening(p, port, 10_000);
    return p;
  }

  /** A tickfan node; resolves once it listens on `port`; throws with its log if it exited first. */
  async node(name: string, natsPort: number, role: 'origin' | 'edge', port: number, extra: string[] = []): Promise<Proc> {
    const args = [CLI, 'serve', '--nats', `nats://127.0.0.1:${natsPort}`, '--role', role, '--host', '127.0.0.1', '--port', String(port), ...extra];
    const p = this.spawn(name, process.execPath, args, { TICKFAN_LOG_LEVEL: 'info' });
    await this.listening(p, port, 15_000);
    return p;
  }

  /**
   * Starts a node again and again while it exits at once (a restarted origin is
   * refused its shard while the dead one's lease lasts), for at most `boundMs`.
   */
  async nodeWithRetry(name: string, natsPort: number, role: 'origin' | 'edge', port: number, boundMs: number): Promise<{ proc: Proc; attempts: number; refusals: string[] }> {
    const deadline = Date.now() + boundMs;
    const refusals: string[] = [];
    for (let attempt = 1; attempt <= 200; attempt++) {
      try {
        return { proc: await this.node(name, natsPort, role, port), attempts: attempt, refusals };
      } catch (err) {
        const reason = /TICKFAN_ERR_[A-Z_]+/.exec((err as Error).message)?.[0] ?? (err as Error).message.split('\n')[0]!;
        refusals.push(reason);
        if (Date.now() > deadline) throw new Error(`${name} did not start within ${boundMs} ms (${attempt} attempts): ${(err as Error).message}`);
        await sleep(250);
      }
    }
    throw new Error(`${name} did not start in 200 attempts`);
  }

  private async listening(p: Proc, port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 10_000; i++) {
      if (!p.alive) throw new Error(`${p.name} exited (code ${p.exitCode}) before listening on ${port}:\n${p.log().slice(-1500)}`);
      if (await portOpen(port)) return;
      if (Date.now() > deadline) {
        await p.kill();
        throw new Error(`${p.name} did not listen on ${port} within ${timeoutMs} ms:\n${p.log().slice(-1500)}`);
      }
      await sleep(25);
    }
  }

  /** Kills every process group still alive, then removes the directory (unless `keep`). */
  async close(keep = false): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill()));
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
