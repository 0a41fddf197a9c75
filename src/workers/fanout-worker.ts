// A fan-out worker thread: its own uWebSockets.js app on the shared port, a
// replica of every topic fed by the broadcast ring, and publishes forwarded to
// the sequencer. Falls behind by more than the ring? It resynchronises from
// the sequencer's images and never reads an overwritten slot.

import { parentPort, workerData } from 'node:worker_threads';
import { decodeEncoded, type Delta2Msg } from '../protocol/index.js';
import { Authenticator } from '../server/auth.js';
import { createNode } from '../server/node.js';
import { resolveOptions } from '../server/options.js';
import type { FromWorker, ToWorker, WorkerInit } from './messages.js';
import { applyUpdate, readUpdate } from '../server/replication.js';
import { RecordType, readBroadcast, readReject, readStatus } from './records.js';
import { WorkerServiceGate } from './service-gate.js';
import { RingIngest } from './ring-ingest.js';
import { RingReader, RingWriter } from './shared-ring.js';

const BATCH = 4096;

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  const post = (m: FromWorker) => port.postMessage(m);
  const opts = resolveOptions({ ...init.options, workers: 0, name: `${init.options.name ?? 'tickfan'}/w${init.index}` });
  const auth = await Authenticator.create(opts.auth);
  const ingest = new RingIngest(new RingWriter(init.publish), new Int32Array(init.doorbell));
  const services = new WorkerServiceGate((m) => post(m));
  const node = createNode({ opts, auth, ingest: () => ingest, services: () => services });
  const { store, fanout, stats } = node;
  const reader = new RingReader(init.broadcast, 0);
  let running = true;
  let imagesWanted: ((m: Extract<ToWorker, { type: 'images' }>) => void) | null = null;

  /** Takes the sequencer's exact images and continues from the ring position they are exact at. */
  async function resync(): Promise<void> {
    const images = await new Promise<Extract<ToWorker, { type: 'images' }>>((resolve) => {
      imagesWanted = resolve;
      post({ type: 'resync', pending: ingest.pendingIds() });
    });
    for (const img of images.topics) {
      const have = store.get(img.name);
      if (have && have.epoch === img.epoch && have.version === img.version) continue;
      const { topic, created } = store.resetTopic(img.name, img.epoch, img.version, img.state, img.ts, img.id, img.fieldNames, img.tables);
      fanout.resynced(topic, created);
      if (topic.stale !== img.stale) fanout.setStale(topic, img.stale);
    }
    reader.seek(images.position);
    // Answers to our publishes that the seek skipped over.
    for (const o of images.outcomes) {
      if ('version' in o) ingest.accepted(o.requestId, o.epoch, o.version);
      else ingest.rejected(o.requestId, o.code, o.message, o.refusal);
    }
    stats.resyncs++;
  }

  let gap = false;
  function onRecord(rec: Uint8Array): void {
    const r = readBroadcast(rec);
    switch (r.type) {
      case RecordType.UPDATE: {
        const u = readUpdate(r.body);
        const d = decodeEncoded(u.delta2) as Delta2Msg;
        const a = gap ? null : applyUpdate(store, u, d);
        if (!a) gap = true;
        else {
          stats.publishes++;
          fanout.accepted(a, u.delta2);
        }
        if (r.origin === init.index) ingest.accepted(r.requestId, u.epoch, d.version);
        return;
      }
      case RecordType.REJECT:
        if (r.origin === init.index) {
          const { code, message, refusal } = readReject(r.body);
          ingest.rejected(r.requestId, code, message, refusal);
        }
        return;
      case RecordType.STATUS: {
        const { topic, stale } = readStatus(r.body);
        const t = store.get(topic);
        if (t) fanout.setStale(t, stale);
        return;
      }
    }
  }

  async function pump(): Promise<void> {
    while (running) {
      const res = reader.read(onRecord, BATCH);
      if (res.overrun || gap) {
        stats.overruns++;
        gap = false;
        await resync();
        continue;
      }
      // Yield to I/O and to fan-out's flush between batches.
      if (res.count > 0) await new Promise((r) => setImmediate(r));
      else await reader.waitAsync(1000);
    }
  }

  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'svc.deliver':
      case 'svc.outcome':
      case 'svc.served':
        services.fromMain(m);
        return;
      case 'images':
        imagesWanted?.(m);
        imagesWanted = null;
        return;
      case 'stall': {
        // Diagnostics: block this thread so that it falls behind the ring.
        const until = Date.now() + m.ms;
        while (Date.now() < until);
        post({ type: 'stalled' });
        return;
      }
      case 'close':
        running = false;
        // Close frames go out first; then every remaining socket (HTTP keep-alive
        // included) is closed so the thread's loop ends with no handle open.
        void node.close().then(() => {
          post({ type: 'closed' });
          port.close();
        });
        return;
    }
  });

  await resync();
  post({ type: 'listening', port: await node.listen() });
  await pump();
}

main().catch((err: unknown) => {
  parentPort?.postMessage({ type: 'failed', message: (err as Error)?.message ?? String(err) } satisfies FromWorker);
});
