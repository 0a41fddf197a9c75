// The SSE resume journal: which (epoch, version) of each topic every event of
// a session left the client holding, so that a reconnect with Last-Event-ID
// resumes each subscription from exactly there. Bounded: old entries fold into a base.

import type { ResumePoint } from '../../protocol/index.js';

/** Journal entries (one per topic update sent) kept per session. */
export const SSE_JOURNAL_ENTRIES = 2_048;

/**
 * What each event of a session carried: entries (seq, topic, epoch, version)
 * in event order, the oldest folded into a base map once there are more than
 * `cap`. `pointsAt(seq)` answers "which (epoch, version) of each topic did the
 * client hold after event seq" while the entries reach back that far.
 */
export class SseJournal {
  private base = new Map<string, ResumePoint>();
  /** `base` holds every entry up to this sequence number. */
  private baseSeq = 0;
  private seqs: number[] = [];
  private topics: string[] = [];
  private epochs: number[] = [];
  private versions: number[] = [];
  private start = 0;

  constructor(private readonly cap: number = SSE_JOURNAL_ENTRIES) {}

  get size(): number {
    return this.seqs.length - this.start;
  }

  record(seq: number, topic: string, epoch: number, version: number): void {
    this.seqs.push(seq);
    this.topics.push(topic);
    this.epochs.push(epoch);
    this.versions.push(version);
    if (this.size > this.cap) {
      const i = this.start++;
      this.base.set(this.topics[i]!, { topic: this.topics[i]!, epoch: this.epochs[i]!, version: this.versions[i]! });
      this.baseSeq = this.seqs[i]!;
      if (this.start >= this.cap) {
        // Amortised compaction: drop the folded prefix in one go.
        for (const a of [this.seqs, this.topics, this.epochs, this.versions] as unknown[][]) a.splice(0, this.start);
        this.start = 0;
      }
    }
  }

  /** Resume points after event `seq`, or null when the journal no longer reaches back that far (or `seq` was never sent). */
  pointsAt(seq: number, lastSeq: number): Map<string, ResumePoint> | null {
    if (seq < this.baseSeq || seq > lastSeq) return null;
    const out = new Map(this.base);
    for (let i = this.start; i < this.seqs.length && this.seqs[i]! <= seq; i++) {
      out.set(this.topics[i]!, { topic: this.topics[i]!, epoch: this.epochs[i]!, version: this.versions[i]! });
    }
    return out;
  }
}
