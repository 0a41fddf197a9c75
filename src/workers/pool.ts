// Main-thread side of the multi-core layout: this thread is the sequencer,
// N fan-out workers serve clients on one port (the kernel balances accepts),
// and shared rings carry publishes in and sequenced updates out.

import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { TopicStore } from '../engine/index.js';
import { ChangesScratch, ErrorCode, TickfanError } from '../protocol/index.js';
import type { Authenticator } from '../server/auth.js';
import type { ServerOptions } from '../server/options.js';
import type { TickfanServer } from '../server/server.js';
import { freePort } from '../server/free-port.js';
import { ServerStats } from '../server/stats.js';
import { toTopicBatch } from '../server/batch-input.js';
import type { FromWorker, ServiceToMain, ToWorker, WorkerInit } from './messages.js';
import { ServiceHub } from './service-hub.js';
import { Sequencer } from './sequencer.js';
import { RingReader, RingWriter, createRing } from './shared-ring.js';

/** Each worker's publish ring: room for bursts of publishes between sequencer turns. */
const PUBLISH_RING_BYTES = 4 * 1024 * 1024;

/**
 * The worker's compiled script. Run from TypeScript sources (the tests), this
 * module sits in src/ and the workers load the build in dist/ instead.
 */
function workerScript(): URL {
  const beside = new URL('./fanout-worker.js', import.meta.url);
  if (existsSync(beside)) return beside;
  const built = new URL('../../dist/workers/fanout-worker.js', import.meta.url);
  if (existsSync(built)) return built;
  throw new TickfanError(ErrorCode.INTERNAL, 'the worker script dist/workers/fanout-worker.js is missing: run npm run build');
}

interface Running {
  worker: Worker;
  send(m: ToWorker): void;
  next(type: FromWorker['type']): Promise<FromWorker>;
}

/**
 * Starts the sequencer here and `opts.workers` fan-out workers sharing one
 * port. `pickPort` chooses the port when `opts.port` is 0 (tests inject it).
 */
export async function startWorkerPool(opts: ServerOptions, auth: Authenticator, pickPort: (host: string) => Promise<number> = freePort): Promise<TickfanServer> {
  const n = opts.workers;
  const store = new TopicStore(opts.limits);
  const broadcast = createRing(opts.ringBytes);
  const doorbell = new SharedArrayBuffer(4);
  const publishRings = Array.from({ length: n }, () => createRing(PUBLISH_RING_BYTES));
  const sequencer = new Sequencer(store, new RingWriter(broadcast), publishRings.map((r) => new RingReader(r, 0)), new Int32Array(doorbell));
  void sequencer.run();
  const stats = new ServerStats();
  const { log, ...plain } = opts;
  const workers: Running[] = [];
  // Request-reply: one router here for the responders and requesters of every worker.
  const services = new ServiceHub(n, (i, m) => workers[i]?.worker.postMessage(m satisfies ToWorker), stats, opts.requestTimeoutMs);
  // uSockets shares a port between threads (SO_REUSEPORT) only when it is
  // named explicitly: for port 0, pick a free port first.
  let port = opts.port || (await pickPort(opts.host));

  const stopAll = async () => {
    sequencer.stop();
    services.close();
    await Promise.all(workers.map((w) => w.worker.terminate()));
  };

  /** Starts worker `index` on `port` and waits until it listens. */
  const startWorker = async (index: number): Promise<void> => {
    // The first worker picks the port when asked for port 0; the others share it.
    // Connection caps are the server's: each worker admits its share (the kernel spreads accepts evenly).
    const share = (n: number) => Math.max(1, Math.ceil(n / opts.workers));
    const options = { ...plain, port, maxConnections: share(opts.maxConnections), maxConnectionsPerIp: share(opts.maxConnectionsPerIp) };
    const init: WorkerInit = { index, options, broadcast, publish: publishRings[index]!, doorbell };
    const worker = new Worker(workerScript(), { workerData: init });
    const waiters = new Map<string, (m: FromWorker) => void>();
    let failure: Error | null = null;
    worker.on('message', (m: FromWorker) => {
      if (m.type.startsWith('svc.')) return services.handle(index, m as ServiceToMain);
      if (m.type === 'resync') {
        worker.postMessage({ type: 'images', ...sequencer.images(), outcomes: sequencer.outcomesFor(index, m.pending) } satisfies ToWorker);
      }
      if (m.type === 'failed') failure = new TickfanError(ErrorCode.INTERNAL, `worker ${index} failed: ${m.message}`);
      const w = waiters.get(m.type) ?? (m.type === 'failed' ? [...waiters.values()][0] : undefined);
      if (w) {
        waiters.delete(m.type);
        w(m);
      }
    });
    // A worker that ends takes its responders and requesters with it.
    worker.on('exit', () => services.workerGone(index));
    worker.on('error', (err) => {
      log('error', `worker ${index}: ${err.stack ?? err.message}`);
      failure = err;
      for (const w of waiters.values()) w({ type: 'failed', message: err.message });
    });
    const running: Running = {
      worker,
      send: (m) => worker.postMessage(m),
      next: (type) =>
        new Promise<FromWorker>((resolve, reject) => {
          if (failure) return reject(failure);
          waiters.set(type, (m) => (m.type === 'failed' ? reject(failure ?? new Error(m.message)) : resolve(m)));
        }),
    };
    workers.push(running);
    const m = await running.next('listening');
    if (m.type === 'listening') port = m.port;
  };

  try {
    for (let index = 0; index < n; index++) {
      for (let attempt = 1; ; attempt++) {
        try {
          await startWorker(index);
          break;
        } catch (err) {
          // Port 0: the free port picked above can be taken by another process
          // before the first worker binds it. Pick another and try again.
          const raced = index === 0 && !opts.port && attempt < 5 && err instanceof Error && /cannot listen on/.test(err.message);
          if (!raced) throw err;
          await workers.pop()?.worker.terminate();
          port = await pickPort(opts.host);
        }
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  log('info', `listening on ${opts.host}:${port} with ${n} fan-out workers; this thread sequences`, {
    host: opts.host,
    port,
    workers: n,
    auth: auth.enabled,
    anonymous: auth.enabled && auth.anonymous !== null,
    topicTtlMs: opts.topicTtlMs,
  });

  let closed = false;
  const scratch = new ChangesScratch();
  return {
    port,
    host: opts.host,
    get stats() {
      stats.publishes = sequencer.stats.publishes;
      return stats;
    },
    store,
    workers: n,
    publish: (topic, fields) => {
      // Sequenced, encoded and written to the ring before it returns: one change set serves every publish (values.ts).
      const changes = scratch.take(fields);
      try {
        const r = sequencer.publish(topic, changes);
        return { topic, ...r };
      } finally {
        scratch.give(changes);
      }
    },
    // Sequenced here; the batch's net row change goes to every worker with its update.
    publishBatch(topic, batch) {
      const r = sequencer.publishBatch(topic, toTopicBatch(batch));
      return { topic, ...r };
    },
    setStale: (topic, stale) => sequencer.setStale(topic, stale),
    async stallWorker(index, ms) {
      const w = workers[index];
      if (!w) throw new TickfanError(ErrorCode.BAD_REQUEST, `no worker ${index} (there are ${n})`);
      const done = w.next('stalled');
      w.send({ type: 'stall', ms });
      await done;
    },
    async close() {
      if (closed) return;
      closed = true;
      // Every worker closes its listen socket and tells its clients "going away" (1001) first.
      await Promise.all(
        workers.map(async (w) => {
          const done = w.next('closed').catch(() => undefined);
          w.send({ type: 'close' });
          await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
        }),
      );
      await stopAll();
    },
  };
}
