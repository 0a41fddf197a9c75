// A running tickfan server as its embedder sees it (TickfanServer), and the
// single-thread layout: one node whose ingest is this thread's sequencer.
// startServer (src/start.ts) picks this layout or the fan-out workers'.

import type { TopicStore } from '../engine/index.js';
import { ChangesScratch, ErrorCode, TickfanError, type Changes, type FieldValue } from '../protocol/index.js';
import type { Authenticator } from './auth.js';
import { toTopicBatch, type BatchInput } from './batch-input.js';
import { LocalIngest, type PublishResult } from './ingest.js';
import { createNode } from './node.js';
import type { ServerOptions } from './options.js';
import type { ServerStats } from './stats.js';

export type { PublishResult, BatchInput };
export type { FieldsInput, RowOpInput } from './batch-input.js';

/** A running tickfan server. */
export interface TickfanServer {
  /** The port actually bound (useful with `port: 0`). */
  readonly port: number;
  readonly host: string;
  /** Counters of this thread (with workers: the sequencer's publishes; see /healthz per worker). */
  readonly stats: ServerStats;
  /** The authoritative topic store (the sequencer's, with workers). */
  readonly store: TopicStore;
  /** Fan-out worker threads running (0 when single-threaded). */
  readonly workers: number;
  /** Publishes in-process, like a client would; returns the version assigned. Throws TickfanError when refused. */
  publish(topic: string, fields: Record<string, FieldValue | null> | Changes): PublishResult;
  /**
   * Publishes one keyed batch in-process: summary fields and row ops over the
   * topic's tables, one version for all of it. Throws KeyedBatchError (a
   * TickfanError naming table and row) and changes nothing when refused.
   * Works in every layout (one thread, fan-out workers, a cluster origin).
   *
   *   server.publishBatch('book.X', { fields: { last: 65000.5 }, tables: {
   *     declare: [{ name: 'bids', key: 'int', order: { key: 'desc' } }],
   *     ops: [{ op: 'upsert', table: 'bids', key: 6500050, fields: { qty: 3.2 } }] } });
   */
  publishBatch(topic: string, batch: BatchInput): PublishResult;
  /** Flags a topic stale (or fresh again) to its subscribers. */
  setStale(topic: string, stale: boolean): void;
  /** Diagnostics for tests and operators: blocks worker `index`'s event loop for `ms` (it then overruns and resyncs). */
  stallWorker(index: number, ms: number): Promise<void>;
  /** Stops listening, tells every client "going away" (1001), stops workers and timers. */
  close(): Promise<void>;
}

/** One thread: this node sequences its own topics and serves its clients. */
export async function startSingleThread(opts: ServerOptions, auth: Authenticator): Promise<TickfanServer> {
  let local!: LocalIngest;
  const node = createNode({ opts, auth, ingest: ({ store, fanout, stats }) => (local = new LocalIngest(store, fanout, stats)) });
  const port = await node.listen();
  const { store, fanout, stats } = node;
  opts.log('info', `listening on ${opts.host}:${port}`, { host: opts.host, port, auth: auth.enabled, anonymous: auth.enabled && auth.anonymous !== null, topicTtlMs: opts.topicTtlMs });
  let closed = false;
  const scratch = new ChangesScratch();
  return {
    port,
    host: opts.host,
    stats,
    store,
    workers: 0,
    publish: (topic, fields) => {
      // Applied and encoded before publish() returns: one change set serves every publish (values.ts).
      const changes = scratch.take(fields);
      try {
        return local.publish(topic, changes);
      } finally {
        scratch.give(changes);
      }
    },
    publishBatch: (topic, batch) => local.publishBatch(topic, toTopicBatch(batch)),
    setStale(topic, stale) {
      const t = store.get(topic);
      if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${topic}`);
      fanout.setStale(t, stale);
    },
    stallWorker: () => Promise.reject(new TickfanError(ErrorCode.BAD_REQUEST, 'this server runs without workers')),
    async close() {
      if (closed) return;
      closed = true;
      opts.log('info', `closing: ${stats.connections} connections are told 1001 going away`);
      await node.close();
    },
  };
}
