// Issue 17's fault-injection suite, one run: a real nats-server, an origin and
// two edges (`node dist/cli.js serve`), SDK clients on both edges through a
// failover proxy, and faults one after another with steady publishing in
// between — NATS killed and restarted, the origin stopped (SIGSTOP 3 s), an
// edge killed (then back), the origin killed and restarted, a reader stalled.
// After each fault nothing more is published to the checked topics, and the
// run waits for every client, every edge's /snapshot and the origin to hold
// the model's latest state, not stale (cluster-fault-check.ts). Topics
// published just before a fault and never again are checked too (the quiet
// case). Run by cluster-fault-suite.test.ts and scripts/fault-suite.mjs.

import { Checker, converge, observe, type Watched } from './cluster-fault-check.js';
import { Model, Publisher, nextChanges } from './cluster-fault-model.js';
import { Procs, freePort, loadSdk, type Proc } from './cluster-fault-procs.js';
import { FailoverProxy } from './cluster-fault-proxy.js';

export interface FaultResult {
  fault: string;
  ok: boolean;
  /** Convergence time from the reference moment: the repair (NATS up, SIGCONT, republished, reader resumed) or, for edge-kill, the kill. */
  convergedMs: number;
  /** From the fault's injection. */
  fromFaultMs: number;
  /** From the moment the last publish was acknowledged. */
  fromQuietMs: number;
  /** Until every client held (before the edges and origin were asked). */
  clientsMs: number;
  problems: string[];
  info: string;
}

export interface RunResult {
  ok: boolean;
  durationMs: number;
  faults: FaultResult[];
  violations: string[];
  notes: string[];
  /** What happened to topics not republished after the origin restart (recorded, not judged). */
  notRepublished: string[];
  publishes: Publisher['counts'];
  publishErrors: string[];
  modelAnomalies: string[];
  resyncs: string[];
  updates: Checker['counts'];
  edgeHealth: string[];
  /** Each SDK client's counters at the end (reconnects, gaps, frame sequence gaps, catch-ups). */
  clientStats: string[];
  error?: string;
  logsDir?: string;
}

export interface SuiteOptions {
  /** Convergence deadline per fault (default 20 s). */
  deadlineMs?: number;
  log?: (line: string) => void;
  /** Keep the process logs when the run fails (their directory is in the result; FAULT_SUITE_KEEP_LOGS=1: always). */
  keepLogsOnFailure?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LIVE = ['fs.x.l0', 'fs.x.l1', 'fs.x.l2', 'fs.p.l0', 'fs.p.l1', 'fs.p.l2'];
const BLOBS = ['fs.b.0', 'fs.b.1'];
const PHASES = ['nats-restart', 'origin-stop', 'edge-kill', 'edge-back', 'origin-restart', 'reader-stall'] as const;
// Quiet topics of phase k: published before its fault and never again.
const QUIET = PHASES.map((_, k) => [`fs.x.q${k}`, `fs.p.q${k}`]);
// Repair-quiet topics of phase k: published before, then a burst of three at the repair (while the edges heal), never again.
const REPAIR = PHASES.map((_, k) => [`fs.x.r${k}a`, `fs.x.r${k}b`, `fs.p.r${k}a`, `fs.p.r${k}b`]);
const ORIGIN_RESTART = PHASES.indexOf('origin-restart');
const PAD = 'x'.repeat(16_000);

export async function runFaultSuite(opts: SuiteOptions = {}): Promise<RunResult> {
  const log = opts.log ?? (() => {});
  const deadlineMs = opts.deadlineMs ?? 20_000;
  const began = Date.now();
  const procs = new Procs();
  const proxy = new FailoverProxy();
  const model = new Model();
  const checker = new Checker(model);
  const watched: Watched[] = [];
  const faults: FaultResult[] = [];
  const notRepublished: string[] = [];
  const edgeHealth: string[] = [];
  const clientStats: string[] = [];
  let publisher: Publisher | undefined;
  let error: string | undefined;

  // Topics alive in the current origin's life (published since it started): the checked set.
  const alive = new Set<string>();
  let observeAgain: (() => Promise<unknown>) | null = null;
  try {
    const { connect } = await loadSdk();
    const [natsPort, originPort, portA, portB] = [await freePort(), await freePort(), await freePort(), await freePort()];
    let nats: Proc = await procs.nats(natsPort);
    let origin: Proc = await procs.node('origin', natsPort, 'origin', originPort);
    const edges: Record<'A' | 'B', { proc: Proc; port: number; up: boolean }> = {
      A: { proc: await procs.node('edgeA', natsPort, 'edge', portA), port: portA, up: true },
      B: { proc: await procs.node('edgeB', natsPort, 'edge', portB), port: portB, up: true },
    };
    const lanes = { A: await proxy.lane('A', [portA, portB]), B: await proxy.lane('B', [portB, portA]), R: await proxy.lane('R', [portA, portB]) };
    const pub = (publisher = new Publisher(model, originPort));
    const publish = async (topic: string, i: number, pad = '', force = false) => {
      if ((await pub.publish(topic, nextChanges(i, pad), force)) === 'acked') alive.add(topic);
    };
    log(`cluster up in ${Date.now() - began} ms (nats ${natsPort}, origin ${originPort}, edges ${portA} ${portB}, proxy lanes ${JSON.stringify(lanes)})`);

    for (const t of [...LIVE, ...BLOBS]) await publish(t, 0, t.startsWith('fs.b.') ? PAD : '');
    const client = (name: string, lane: keyof typeof lanes, subscribe: (w: Watched) => void) => {
      const w: Watched = { name, client: connect(`ws://127.0.0.1:${lanes[lane]}/ws`), subs: [] };
      watched.push(w);
      subscribe(w);
      return w;
    };
    const exactAll = (w: Watched) => {
      for (const t of [...LIVE, ...QUIET.flat(), ...REPAIR.flat()].filter((t) => t.startsWith('fs.x.'))) checker.watch(w, w.client.subscribe(t));
    };
    const allXP = (w: Watched) => {
      exactAll(w);
      checker.watch(w, w.client.subscribe('fs.p.*'));
    };
    const patterns = (w: Watched) => {
      checker.watch(w, w.client.subscribe('fs.x.*'));
      checker.watch(w, w.client.subscribe('fs.p.*'));
    };
    for (const [name, l, sub] of [['a1', 'A', allXP], ['a2', 'A', patterns], ['b1', 'B', allXP], ['b2', 'B', patterns]] as const) client(name, l, sub);
    const reader = client('reader', 'R', (w) => {
      checker.watch(w, w.client.subscribe('fs.b.*'));
      checker.watch(w, w.client.subscribe('fs.x.l0'));
      checker.watch(w, w.client.subscribe('fs.p.*'));
    });

    const xp = () => [...alive].filter((t) => !t.startsWith('fs.b.'));
    const topicsOf = (w: Watched) => (w === reader ? [...alive].filter((t) => t.startsWith('fs.b.') || t.startsWith('fs.p.') || t === 'fs.x.l0') : xp());
    const spec = () => {
      const readerEdges = proxy.targets('R');
      const live = (['A', 'B'] as const).filter((e) => edges[e].up);
      return {
        clients: watched.map((w) => ({ w, topics: topicsOf(w) })),
        edges: live.map((e) => ({ name: `edge${e}`, port: edges[e].port, topics: [...xp(), ...(readerEdges.includes(edges[e].port) ? [...alive].filter((t) => t.startsWith('fs.b.')) : [])] })),
        originPort,
        topics: [...alive],
        deadlineMs,
      };
    };
    const resyncUncertain = async () => {
      for (const t of alive) {
        if (!model.uncertain(t)) continue;
        const r = await fetch(`http://127.0.0.1:${originPort}/snapshot/${t}`, { signal: AbortSignal.timeout(3_000) });
        if (r.ok) model.resync(t, (await r.json()) as never, 'unknown publish outcome');
      }
    };
    const first = await converge(model, checker, { ...spec(), deadlineMs: 15_000 });
    if (!first.ok) throw new Error(`the cluster never converged before the first fault: ${first.problems.slice(0, 5).join('; ')}`);
    log(`initial convergence after ${Date.now() - began} ms`);

    // Steady publishing to the live topics (and, while `blobs`, large updates for the reader), until stop().
    const steady = (blobs = false) => {
      let stop = false;
      const loop = async (topic: string, pad: string, gapMs: number) => {
        for (let i = 1; i <= 5_000 && !stop; i++) {
          await publish(topic, i, pad);
          if (!stop) await sleep(gapMs);
        }
      };
      const loops = [...LIVE.map((t) => loop(t, '', 15)), ...BLOBS.map((t) => loop(t, PAD, blobs ? 0 : 60))];
      return async () => {
        stop = true;
        await Promise.all(loops);
        await pub.idle();
        return Date.now();
      };
    };
    const leadIn = async (k: number, ms = 1_500) => {
      const stop = steady();
      await sleep(ms);
      // The quiet topics of this phase: a few publishes, the last just before the fault.
      for (let i = 0; i < 3; i++) await Promise.all([...QUIET[k]!, ...REPAIR[k]!].map((t) => publish(t, i)));
      return stop;
    };
    // At a repair: three publishes to each repair-quiet topic, 0-40 ms apart; the steady ones go on for
    // 0-500 ms: the last updates meet the healing.
    const burst = (k: number) => Promise.all(REPAIR[k]!.map(async (t) => {
      for (let i = 0; i < 3; i++) {
        await sleep(Math.floor(Math.random() * 40));
        await publish(t, 10 + i);
      }
    }));
    const tail = async (stop: () => Promise<number>, k: number) => {
      await Promise.all([burst(k), sleep(Math.floor(Math.random() * 500))]);
      return stop();
    };
    // Waits for convergence and records it; `about` says more about the fault (asked once converged).
    const record = async (fault: string, ref: number, faultAt: number, quietAt: number, about: string | (() => Promise<string>)) => {
      await resyncUncertain();
      const c = await converge(model, checker, spec());
      checker.verify(true);
      const info = typeof about === 'string' ? about : await about();
      const r: FaultResult = {
        fault,
        ok: c.ok,
        convergedMs: c.at - ref,
        fromFaultMs: c.at - faultAt,
        fromQuietMs: Math.max(0, c.at - quietAt),
        clientsMs: c.clientsAt ? c.clientsAt - ref : -1,
        problems: c.problems,
        info,
      };
      faults.push(r);
      log(`${fault}: ${c.ok ? 'converged' : 'NOT converged'} ${r.convergedMs} ms after the reference (${r.fromFaultMs} ms after the fault, ${r.fromQuietMs} ms after the last publish)${info ? `; ${info}` : ''}${c.ok ? '' : `\n  ${c.problems.slice(0, 10).join('\n  ')}`}`);
    };
    const phase = (name: (typeof PHASES)[number]) => PHASES.indexOf(name);

    // nats-server killed, 3 s of publishing the edges cannot hear, restarted on the same port and store.
    {
      const stop = await leadIn(phase('nats-restart'));
      const faultAt = Date.now();
      await nats.kill();
      await sleep(3_000);
      nats = await procs.nats(natsPort);
      const ref = Date.now();
      const quietAt = await tail(stop, phase('nats-restart'));
      await record('nats-restart', ref, faultAt, quietAt, `last publish ${quietAt - ref} ms after the restart`);
    }
    // The origin stopped (SIGSTOP) for 3 s while publishes to it wait, then SIGCONT.
    {
      const stop = await leadIn(phase('origin-stop'));
      const faultAt = Date.now();
      origin.signal('SIGSTOP');
      await sleep(3_000);
      origin.signal('SIGCONT');
      const ref = Date.now();
      const quietAt = await tail(stop, phase('origin-stop'));
      await record('origin-stop', ref, faultAt, quietAt, `last publish ${quietAt - ref} ms after SIGCONT`);
    }
    // Edge A killed: its clients reconnect through the proxy to edge B.
    {
      const stop = await leadIn(phase('edge-kill'));
      const faultAt = Date.now();
      await edges.A.proc.kill();
      edges.A.up = false;
      const quietAt = await tail(stop, phase('edge-kill'));
      await record('edge-kill', faultAt, faultAt, quietAt, `last publish ${quietAt - faultAt} ms after the kill; proxy lane A ${JSON.stringify(proxy.counts('A'))}`);
    }
    // Edge A back: lanes A and R fail back to it, so it gains all its interest while the topics are published.
    {
      const stop = await leadIn(phase('edge-back'), 300);
      edges.A.proc = await procs.node('edgeA', natsPort, 'edge', portA);
      edges.A.up = true;
      const backAt = Date.now();
      const moved = proxy.failback('A') + proxy.failback('R');
      const quietAt = await tail(stop, phase('edge-back'));
      await record('edge-back', backAt, backAt, quietAt, `last publish ${quietAt - backAt} ms after the failback of ${moved} connections`);
    }
    // The origin killed (SIGKILL) and restarted: a new epoch. The checked topics are published once again.
    {
      const k = phase('origin-restart');
      const stop = await leadIn(k);
      const faultAt = Date.now();
      await origin.kill();
      await sleep(1_000);
      await stop();
      const restarted = await procs.nodeWithRetry('origin', natsPort, 'origin', originPort, 20_000);
      origin = restarted.proc;
      const upAt = Date.now();
      const forgotten = [...QUIET.slice(0, ORIGIN_RESTART), ...REPAIR.slice(0, ORIGIN_RESTART)].flat();
      const oldEpochs = new Map(forgotten.map((t) => [t, model.latest(t)?.epoch ?? 0]));
      for (const t of forgotten) alive.delete(t);
      const again = [...alive];
      alive.clear();
      await Promise.all(again.map((t) => publish(t, 1, t.startsWith('fs.b.') ? PAD : '', true)));
      const ref = Date.now();
      await record('origin-restart', ref, faultAt, ref, `restart took ${upAt - faultAt - 1_000} ms, ${restarted.attempts} attempts (${[...new Set(restarted.refusals)].join(', ') || 'none refused'}); republish took ${ref - upAt} ms`);
      const edgeList = [
        { name: 'edgeA', port: portA },
        { name: 'edgeB', port: portB },
      ];
      const watch = async () => notRepublished.push(`${Date.now() - upAt} ms after the restart: ${await observe(forgotten, oldEpochs, originPort, edgeList, watched, checker)}`);
      await watch();
      observeAgain = watch; // and again at the end of the run
    }
    // The reader stalls (the proxy stops reading from its edge) while large updates go to it, until its edge
    // has put it in the slow lane and 1 s more; then it reads again.
    {
      const k = phase('reader-stall');
      const stop = await leadIn(k);
      const before = await health(edges, proxy.targets('R'));
      const blobVersions = () => BLOBS.reduce((n, t) => n + (model.latest(t)?.version ?? 0), 0);
      const blobsBefore = blobVersions();
      const readerBefore = { ...reader.client.stats };
      const faultAt = Date.now();
      proxy.stall('R');
      const heavy = steady(true);
      // Until the edge puts the reader in its slow lane (at most 8 s), then 1 s more.
      for (let i = 0; i < 80 && (await health(edges, proxy.targets('R'))).slowLaneEntries === before.slowLaneEntries; i++) await sleep(100);
      await sleep(1_000);
      const stalledMs = Date.now() - faultAt;
      const stalledBytes = (blobVersions() - blobsBefore) * PAD.length;
      proxy.unstall('R');
      const ref = Date.now();
      const quietAt = Math.max(await tail(stop, k), await heavy());
      await record('reader-stall', ref, faultAt, quietAt, async () => {
        const after = await health(edges, proxy.targets('R'));
        const rs = reader.client.stats;
        const readerInfo = `reader: catch-ups +${rs.catchUps - readerBefore.catchUps} (${rs.catchUpDeltas - readerBefore.catchUpDeltas} deltas, ${rs.catchUpSnapshots - readerBefore.catchUpSnapshots} snapshots), gaps +${rs.gaps - readerBefore.gaps}, frame sequence gaps +${rs.sequenceGaps - readerBefore.sequenceGaps}, reconnects +${rs.reconnects - readerBefore.reconnects}`;
        return `stalled ${stalledMs} ms, ${(stalledBytes / 1e6).toFixed(1)} MB of updates for the reader meanwhile; its edge: slow lane entries +${after.slowLaneEntries - before.slowLaneEntries}, slow disconnects +${after.slowDisconnects - before.slowDisconnects}; ${readerInfo}`;
      });
    }
    if (observeAgain) await observeAgain();
    for (const w of watched) {
      const c = w.client.stats;
      clientStats.push(`${w.name}: reconnects ${c.reconnects}, gaps ${c.gaps} (healed ${c.gapsHealed}), frame sequence gaps ${c.sequenceGaps}, catch-ups ${c.catchUps} (${c.catchUpDeltas} deltas, ${c.catchUpSnapshots} snapshots), duplicates ${c.duplicates}`);
    }
    for (const e of ['A', 'B'] as const) {
      const h = await fetch(`http://127.0.0.1:${edges[e].port}/healthz`).then((r) => r.json() as Promise<{ cluster: Record<string, unknown> }>);
      edgeHealth.push(`edge${e}: heals ${JSON.stringify(h.cluster.heals)}, droppedWhileHealing ${h.cluster.droppedWhileHealing}, imageRequests ${h.cluster.imageRequests}, duplicates ${h.cluster.duplicates}`);
    }
  } catch (err) {
    error = (err as Error).stack ?? String(err);
    log(`run aborted: ${error}`);
  } finally {
    for (const w of watched) w.client.close();
    await proxy.close();
  }
  checker.verify(true);
  const ok = !error && faults.length === PHASES.length && faults.every((f) => f.ok) && checker.violations.length === 0;
  const keep = (!ok && !!opts.keepLogsOnFailure) || !!process.env.FAULT_SUITE_KEEP_LOGS;
  await procs.close(keep);
  return {
    ok,
    durationMs: Date.now() - began,
    faults,
    violations: checker.violations,
    notes: checker.notes,
    notRepublished,
    publishes: publisher?.counts ?? { acked: 0, refused: 0, unknown: 0, skipped: 0, rejected: 0 },
    publishErrors: publisher?.errors.slice(0, 20) ?? [],
    modelAnomalies: model.anomalies,
    resyncs: model.resyncs,
    updates: checker.counts,
    edgeHealth,
    clientStats,
    ...(error ? { error } : {}),
    ...(keep ? { logsDir: procs.dir } : {}),
  };
}

/** Slow-lane counters of the edges the reader is on. */
async function health(edges: Record<'A' | 'B', { port: number; up: boolean }>, ports: number[]): Promise<{ slowLaneEntries: number; slowDisconnects: number }> {
  const sum = { slowLaneEntries: 0, slowDisconnects: 0 };
  for (const e of Object.values(edges)) {
    if (!e.up || !ports.includes(e.port)) continue;
    const h = (await fetch(`http://127.0.0.1:${e.port}/healthz`, { signal: AbortSignal.timeout(3_000) }).then((r) => r.json())) as typeof sum;
    sum.slowLaneEntries += h.slowLaneEntries;
    sum.slowDisconnects += h.slowDisconnects;
  }
  return sum;
}
