// V8's young generation, kept small. Node lets it grow from 1 MiB semi-spaces
// to 16 MiB ones whenever many allocations survive a scavenge, as they do in
// a connect storm (every connection's records are long-lived), and it never
// gives them back while the server runs: ≈ 23 MiB of RSS that a server
// holding 20,000 idle connections pays for one burst. Node cannot set
// --max-semi-space-size once started, but V8 reads --semi-space-growth-factor
// each time it would grow new space, so setting it to 1 at start keeps the
// young generation at its starting size: scavenges come more often and each
// is shorter. Process-wide (every isolate, the embedding application's too);
// a process started with its own young-generation flag is left alone.

import { setFlagsFromString } from 'node:v8';
import type { YoungGeneration } from './option-types.js';

/** Node flags that already decide the young generation's size. */
const OWN_FLAGS = /--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor|min[-_]semi[-_]space[-_]size)\b/;

let applied = false;

/**
 * Applies `mode` once per process. Returns what was done: 'set' (growth
 * stopped now), 'already' (an earlier server of this process did), 'flags'
 * (node was started with its own young-generation flag: left alone), 'node'.
 */
export function keepYoungGenerationSmall(mode: YoungGeneration, execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): 'set' | 'already' | 'flags' | 'node' {
  if (mode === 'node') return 'node';
  if (applied) return 'already';
  if (OWN_FLAGS.test(execArgv.join(' ')) || OWN_FLAGS.test(nodeOptions)) return 'flags';
  setFlagsFromString('--semi-space-growth-factor=1');
  applied = true;
  return 'set';
}
