// Field-level conflation: merging consecutive deltas so that applying the
// merge equals applying each one. Latest value wins; deletes stay deletes.

import type { Changes, State } from '../protocol/index.js';

/** Merges `next` (a later delta) into `acc` in place and returns `acc`. */
export function mergeChanges(acc: Changes, next: Changes): Changes {
  // keys() + get() rather than entries: no [k, v] array per field on a hot path.
  for (const k of next.keys()) acc.set(k, next.get(k)!);
  return acc;
}

/** Merges a sequence of deltas, oldest first, into a new change set. */
export function mergeAll(deltas: Iterable<Changes>): Changes {
  const acc: Changes = new Map();
  for (const d of deltas) mergeChanges(acc, d);
  return acc;
}

/** Applies `changes` to `state` in place (null deletes) and returns it. */
export function applyChanges(state: State, changes: Changes): State {
  for (const k of changes.keys()) {
    const v = changes.get(k)!;
    if (v === null) state.delete(k);
    else state.set(k, v);
  }
  return state;
}
