// What the sequencer thread and its fan-out workers say to each other over
// postMessage (the rings carry the updates themselves). Both sides import
// this module and nothing of each other.

import type { ServerOptions } from '../server/options.js';
import type { PublishOutcome, TopicImage } from './sequencer.js';

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
  | { type: 'close' };

export type FromWorker =
  | { type: 'resync'; pending: number[] }
  | { type: 'listening'; port: number }
  | { type: 'stalled' }
  | { type: 'closed' }
  | { type: 'failed'; message: string };
