// Version heartbeats between an origin and its edges: the cluster's version
// of the heartbeats clients get. Every `clusterHeartbeatMs` an origin sends,
// on `<prefix>.beat.<shard>`, the (epoch, version) of
//   - every topic published since the beat before last (so each topic is in
//     the two beats after its last publish: a quiet topic whose last update an
//     edge lost is noticed within two intervals), and
//   - a slice of all its topics, so that every topic is in at least one beat
//     of every SWEEP_BEATS (whatever made an edge fall behind, even a lost
//     beat, it notices within SWEEP_BEATS intervals).
// An edge that follows a topic and holds an older version (or another epoch,
// or none at all) heals it with an image.

import type { Topic } from '../engine/index.js';
import { decodeJson, encodeJson } from './messages.js';

/** Every topic of an origin is in at least one beat out of this many. */
export const SWEEP_BEATS = 10;

/** One entry of a beat: topic name, epoch, version. */
export type BeatEntry = [name: string, epoch: number, version: number];

/** The origin's side: which topics the next beat names. */
export class BeatPlanner {
  private recent = new Set<Topic>();
  private previous = new Set<Topic>();
  private sweep = 0;

  /** A topic of this origin was published. */
  touched(t: Topic): void {
    this.recent.add(t);
  }

  /**
   * The entries of the next beat, from `all` (this origin's topics), in
   * messages of at most `maxBytes` each.
   */
  next(all: () => Topic[], maxBytes: number): Uint8Array[] {
    const named = new Set<Topic>([...this.previous, ...this.recent]);
    this.previous = this.recent;
    this.recent = new Set();
    const topics = all();
    const slice = Math.ceil(topics.length / SWEEP_BEATS);
    const from = this.sweep * slice;
    for (let i = from; i < Math.min(topics.length, from + slice); i++) named.add(topics[i]!);
    this.sweep = (this.sweep + 1) % SWEEP_BEATS;
    const out: Uint8Array[] = [];
    let part: BeatEntry[] = [];
    let size = 0;
    for (const t of named) {
      const bytes = t.name.length + 40;
      if (part.length && size + bytes > maxBytes) {
        out.push(encodeBeat(part));
        part = [];
        size = 0;
      }
      part.push([t.name, t.epoch, t.version]);
      size += bytes;
    }
    if (part.length) out.push(encodeBeat(part));
    return out;
  }
}

export function encodeBeat(entries: BeatEntry[]): Uint8Array {
  return encodeJson({ v: entries });
}

export function readBeat(data: Uint8Array): BeatEntry[] {
  const b = decodeJson<{ v: BeatEntry[] }>(data, 'a version heartbeat');
  if (!Array.isArray(b?.v)) throw new Error('a version heartbeat needs a list v');
  return b.v.filter((e) => Array.isArray(e) && typeof e[0] === 'string' && Number.isSafeInteger(e[1]) && Number.isSafeInteger(e[2]));
}
