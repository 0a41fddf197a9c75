// The client's copy of one topic: (epoch, version) and state. Applies a delta
// only when its base is the held version in the same epoch (no blind apply).

import type { Changes, FieldValue, State } from '../protocol/index.js';

export type ApplyResult = 'applied' | 'duplicate' | 'gap';

export class TopicReplica {
  epoch = 0;
  /** -1 until the first snapshot. */
  version = -1;
  readonly state: State = new Map();
  stale = false;
  /** The epoch the server's last status named (a stale flag holds for that history only). */
  staleEpoch = 0;
  /** A catch-up was asked for and has not arrived yet (ms timestamp, 0 if none). */
  healingSince = 0;
  /** The next applied snapshot/delta answers a catch-up or resume. */
  expectCatchUp = false;

  constructor(readonly topic: string) {}

  get held(): boolean {
    return this.version >= 0;
  }

  snapshot(epoch: number, version: number, fields: State): void {
    this.epoch = epoch;
    this.version = version;
    this.state.clear();
    for (const [k, v] of fields) this.state.set(k, v);
    this.healingSince = 0;
  }

  /** Applies a delta if and only if `base` is the held version of the same epoch. */
  delta(epoch: number, base: number, version: number, changes: Changes): ApplyResult {
    if (this.held && epoch === this.epoch) {
      if (base === this.version) {
        for (const [k, v] of changes) {
          if (v === null) this.state.delete(k);
          else this.state.set(k, v);
        }
        this.version = version;
        this.healingSince = 0;
        return 'applied';
      }
      // Everything it carries is already held: not a gap, nothing to apply.
      if (version <= this.version) return 'duplicate';
    }
    return 'gap';
  }

  /** A plain object of the state, restricted to `fields` when given. */
  view(fields: ReadonlySet<string> | null): Record<string, FieldValue> {
    const out: Record<string, FieldValue> = Object.create(null);
    for (const [k, v] of this.state) if (!fields || fields.has(k)) out[k] = v;
    return out;
  }
}
