// Field-level conflation: merging consecutive deltas so that applying the
// merge equals applying each one. Latest value wins; deletes stay deletes.

import type { Changes, State } from '../protocol/index.js';

/** Merges `next` (a later delta) into `acc` in place and returns `acc`. */
export function mergeChanges(acc: Changes, next: Changes): Changes {
  for (const [k, v] of next) acc.set(k, v);
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
  for (const [k, v] of changes) {
    if (v === null) state.delete(k);
    else state.set(k, v);
  }
  return state;
}
