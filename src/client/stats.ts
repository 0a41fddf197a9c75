// The client's counters, readable as `client.stats`. Each counter is advanced
// by the one part of the SDK that owns the event: the connection (frames,
// reconnects, sequence gaps) or gap healing (everything about topics).

/** The client's counters (`client.stats`): gaps and how they healed, snapshots and deltas, frames, reconnects. */
export interface ClientStats {
  /** Gaps detected (delta base ≠ held version, other epoch, heartbeat ahead, frame sequence jump). */
  gaps: number;
  /** Gaps closed: the topic was exact again after its catch-up. */
  gapsHealed: number;
  /**
   * Catch-ups received, by kind: answers to a gap, a resume or a resume after
   * pause, and those the server sends on its own after holding updates back
   * (slow lane, topic recreated): a snapshot of a topic already held, or a
   * delta spanning several versions on a full-rate topic.
   */
  catchUps: number;
  catchUpDeltas: number;
  catchUpSnapshots: number;
  /** Snapshots applied (first images and catch-ups). */
  snapshots: number;
  /** Deltas applied. */
  deltas: number;
  /** Keyed views whose checksum did not match the server's (each healed by a snapshot; also counted in `gaps`). */
  checksumMismatches: number;
  /** Deltas ignored because everything they carried was already held. */
  duplicates: number;
  reconnects: number;
  /** Frames whose sequence number was not the next one. */
  sequenceGaps: number;
  frames: number;
}

export function newStats(): ClientStats {
  return {
    gaps: 0,
    gapsHealed: 0,
    catchUps: 0,
    catchUpDeltas: 0,
    catchUpSnapshots: 0,
    snapshots: 0,
    deltas: 0,
    checksumMismatches: 0,
    duplicates: 0,
    reconnects: 0,
    sequenceGaps: 0,
    frames: 0,
  };
}
