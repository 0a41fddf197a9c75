// What the sequencer thread and its fan-out workers say to each other over
// postMessage (the rings carry the updates themselves). Both sides import
// this module and nothing of each other.

import type { Payload } from '../protocol/index.js';
import type { ServerOptions } from '../server/options.js';
import type { Delivery, ReplyOutcome } from '../server/services/index.js';
import type { TopicImage } from '../server/replication.js';
import type { PublishOutcome } from './sequencer.js';

/** A request's outcome as it crosses threads (errors travel as code and message). */
export type WireOutcome = { ok: true; payload: Payload; responder: string } | { ok: false; code: number; message: string };

/**
 * Request-reply between a worker's sessions and the main thread's router:
 * responders (`link`) and requesters (`requester`) are numbered per worker.
 */
export type ServiceToMain =
  | { type: 'svc.serve'; link: number; serveId: number; service: string; subject: string }
  | { type: 'svc.unserve'; link: number; serveId: number }
  | { type: 'svc.request'; request: number; requester: number; who: string; service: string; payload: Payload; timeoutMs: number }
  | { type: 'svc.reply'; link: number; correlation: number; outcome: ReplyOutcome }
  | { type: 'svc.responderGone'; link: number }
  | { type: 'svc.requesterGone'; requester: number };

export type ServiceToWorker =
  | { type: 'svc.deliver'; link: number; delivery: Delivery }
  | { type: 'svc.outcome'; request: number; outcome: WireOutcome }
  /** The router has the offer: the worker may acknowledge the Serve. */
  | { type: 'svc.served'; link: number; serveId: number };

/** workerData of a fan-out worker. */
export interface WorkerInit {
  index: number;
  options: Omit<Partial<ServerOptions>, 'log'>;
  broadcast: SharedArrayBuffer;
  publish: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
}

export type ToWorker =
  | { type: 'images'; position: number; topics: TopicImage[]; outcomes: PublishOutcome[] }
  | { type: 'stall'; ms: number }
  | { type: 'close' }
  | ServiceToWorker;

export type FromWorker =
  | { type: 'resync'; pending: number[] }
  | { type: 'listening'; port: number }
  | { type: 'stalled' }
  | { type: 'closed' }
  | { type: 'failed'; message: string }
  | ServiceToMain;
