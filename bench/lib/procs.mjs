// Child processes of a benchmark run: each server (tickfan and its peers)
// runs alone in its own process so its CPU and memory are measured apart
// from the load generator, read from /proc. Every child is killed when the
// run ends, on error and on Ctrl-C too.

import { fork } from 'node:child_process';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SERVERS = {
  tickfan: new URL('../servers/tickfan.mjs', import.meta.url),
  uws: new URL('../servers/uws-raw.mjs', import.meta.url),
  sio: new URL('../servers/socketio.mjs', import.meta.url),
  nats: new URL('../servers/nats.mjs', import.meta.url),
  mosquitto: new URL('../servers/mosquitto.mjs', import.meta.url),
};

const children = new Set();
/** Processes a server child started (outside brokers) and their temporary directories: gone with the run too. */
const grandchildren = new Set();
const tempDirs = new Set();

function removeDir(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
  tempDirs.delete(dir);
}

function killPid(pid) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const pid of grandchildren) killPid(pid);
  grandchildren.clear();
  for (const dir of tempDirs) removeDir(dir);
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

const TICKS = 100; // CLK_TCK on Linux

/**
 * CPU seconds of a server: its process and the ones it started (an outside
 * broker and its publisher), summed; RSS of the one holding the connections.
 */
function serverUsage(pids, rssPid) {
  let cpuSec = 0;
  let mem = null;
  for (const pid of pids) {
    const u = procUsage(pid);
    cpuSec += u.cpuSec;
    if (pid === rssPid) mem = u;
  }
  return { cpuSec, rss: mem.rss, rssPeak: mem.rssPeak };
}

/** CPU seconds (user + system, every thread) and RSS bytes of a process, from /proc. */
export function procUsage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSec = (Number(f[11]) + Number(f[12])) / TICKS;
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSec, rss: rssKb * 1024, rssPeak: hwmKb * 1024 };
}

/** The soft and hard open-file limits of this process. */
export function fileLimit() {
  const t = readFileSync('/proc/self/limits', 'latin1');
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(t);
  const n = (s) => (s === 'unlimited' ? Infinity : Number(s));
  return m ? { soft: n(m[1]), hard: n(m[2]) } : { soft: 1024, hard: 1024 };
}

/**
 * Starts a server child and waits for it to listen.
 * @param {'tickfan'|'uws'|'sio'|'nats'|'mosquitto'} kind
 * @param {{ options?: object, profileDir?: string, gc?: boolean, env?: Record<string, string> }} [o]
 */
export async function startServerProc(kind, o = {}) {
  // BENCH_TICKFAN_NODE_FLAGS adds node flags to the tickfan server only (e.g.
  // --max-semi-space-size=4), BENCH_SERVER_NODE_FLAGS to every server (e.g. --trace-gc).
  const words = (s) => s.split(' ').filter(Boolean);
  const tickfanFlags = words(process.env.BENCH_TICKFAN_NODE_FLAGS ?? '');
  const execArgv = ['--max-old-space-size=8192', ...words(process.env.BENCH_SERVER_NODE_FLAGS ?? ''), ...(kind === 'tickfan' ? tickfanFlags : [])];
  if (o.gc) execArgv.push('--expose-gc');
  if (o.profileDir) {
    mkdirSync(o.profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${kind}-${Date.now()}.cpuprofile`);
  }
  const child = fork(fileURLToPath(SERVERS[kind]), [], {
    execArgv,
    env: { ...process.env, TICKFAN_QUIET: '1', BENCH_SERVER_OPTS: JSON.stringify(o.options ?? {}), ...o.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const pending = new Map();
  let nextId = 1;
  let exited = null;
  const exitP = new Promise((r) => child.once('exit', r));
  const ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m?.type === 'ready') return resolve(m);
      const p = pending.get(m?.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${kind} server: ${m.error}`));
      else p.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      exited = { code, signal };
      const err = new Error(`${kind} server exited (${signal ?? code})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    setTimeout(() => reject(new Error(`${kind} server did not start within 15 s`)), 15_000).unref();
  });
  let started;
  try {
    started = await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const { port } = started;
  // An outside broker's pid: its CPU counts as the server's, and it dies with the run.
  const extra = (started.pids ?? []).filter((p) => Number.isInteger(p));
  const dirs = (started.dirs ?? []).filter((d) => typeof d === 'string' && d.includes('tickfan-bench-'));
  for (const pid of extra) grandchildren.add(pid);
  for (const dir of dirs) tempDirs.add(dir);
  const reap = () => {
    for (const pid of extra) (killPid(pid), grandchildren.delete(pid));
    for (const dir of dirs) removeDir(dir);
  };
  // A server child that dies (killed, crashed) takes its broker with it at once.
  if (exited) reap();
  else child.once('exit', reap);
  const pids = [child.pid, ...extra];
  const rssPid = started.rssPid ?? child.pid;
  const ask = (cmd, args = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${kind} server has exited`));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${kind} server: "${cmd}" got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      child.send({ id, cmd, args });
    });
  let mark = { usage: serverUsage(pids, rssPid), at: performance.now() };
  return {
    kind,
    port,
    pid: child.pid,
    /** The child and the processes it started (an outside broker). */
    pids,
    ask,
    usage: () => serverUsage(pids, rssPid),
    /** Starts a CPU window. */
    mark() {
      mark = { usage: serverUsage(pids, rssPid), at: performance.now() };
    },
    /** CPU share since mark() (100 = one core) and RSS now. */
    since() {
      const u = serverUsage(pids, rssPid);
      const ms = performance.now() - mark.at;
      return { cpuPct: ((u.cpuSec - mark.usage.cpuSec) * 1000 * 100) / ms, rss: u.rss, rssPeak: u.rssPeak };
    },
    /** Asks the server to exit cleanly (so --cpu-prof writes its profile), then makes sure it is gone. */
    async stop() {
      if (exited) return reap();
      try {
        await ask('exit', {}, 5_000);
      } catch {
        // it may already be on its way out
      }
      const t = setTimeout(() => child.kill('SIGKILL'), o.profileDir ? 15_000 : 3_000);
      await exitP;
      clearTimeout(t);
      reap();
    },
  };
}

/**
 * The child side of a benchmark process: answers the parent's `{id, cmd, args}`
 * messages with `handlers[cmd](args)` (`{id, result}` or `{id, error}`), and
 * never outlives the parent.
 */
export function serveCommands(handlers) {
  process.on('message', async (m) => {
    try {
      const h = handlers[m?.cmd];
      if (!h) throw new Error(`unknown command ${m?.cmd}`);
      process.send?.({ id: m.id, result: await h(m.args ?? {}) });
    } catch (err) {
      process.send?.({ id: m.id, error: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
