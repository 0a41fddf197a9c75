// SSE sessions: an id that outlives any one stream, so that a reconnect with
// Last-Event-ID resumes the session (its subscriptions, from the points its
// journal gives); sessions without a stream are kept for a TTL, then swept.

import { randomBytes } from 'node:crypto';
import type { ResumePoint, TableViewRequest } from '../../protocol/index.js';
import type { Session } from '../session.js';
import { SseJournal } from './journal.js';
import type { SseEventLog, SseSink } from './sink.js';

/** A stream whose session is not resumed within this long is forgotten. */
export const SSE_SESSION_TTL_MS = 30_000;
/** Sessions without a stream kept at most (the oldest go first). */
export const SSE_MAX_DETACHED_SESSIONS = 1_000;

/** A subscription of a session, kept while no stream is attached so that a resume restores it. */
export interface SubDef {
  id: number;
  topics: string[];
  maxRate: number;
  fields: string[];
  paused: boolean;
  /** Keyed topics: its table views and checksums (absent: whole tables, none). */
  tables?: TableViewRequest[];
  checksums?: boolean;
}

/** What a session hands to the stream that resumes it (possibly in another worker). */
export interface Handover {
  /** The last event the session sent. */
  seq: number;
  subs: SubDef[];
  /** What the client held after the event it resumes from; null: the journal no longer reaches back that far. */
  points: ResumePoint[] | null;
}

/** A session taken over from an earlier stream (here or in another worker), resumed after event `from`. */
export type Resumed = Handover & { sid: string; from: number };

export class SseSession implements SseEventLog {
  /** The stream attached now: its Session (whose conn is in fan-out) and its sink. */
  stream: Session | null = null;
  sink: SseSink | null = null;
  subs: SubDef[] = [];
  seq = 0;
  detachedAt = 0;
  readonly journal = new SseJournal();
  constructor(readonly id: string) {}
}

export function newSessionId(): string {
  return randomBytes(12).toString('base64url');
}

/** `<session>.<seq>`, as this server writes event ids; null for anything else. */
export function parseLastEventId(id: string): { sid: string; seq: number } | null {
  const m = /^([A-Za-z0-9_-]{16})\.(\d{1,15})$/.exec(id.trim());
  return m ? { sid: m[1]!, seq: Number(m[2]) } : null;
}

/** The SSE sessions this worker holds, attached or detached. */
export class SseSessions {
  private readonly all = new Map<string, SseSession>();
  /** Sessions without a stream, oldest detached first. */
  private readonly detached = new Map<string, SseSession>();
  private expiryTimer: NodeJS.Timeout | null = null;

  get(sid: string): SseSession | undefined {
    return this.all.get(sid);
  }

  has(sid: string): boolean {
    return this.all.has(sid);
  }

  /** A session for a new stream: fresh, or continuing one handed over (resumed from event `from`). */
  create(resumed: Resumed | null): SseSession {
    const session = new SseSession(resumed ? resumed.sid : newSessionId());
    this.all.set(session.id, session);
    if (resumed) {
      // Event ids keep growing across the streams of one session; the journal
      // starts again from what the client holds after the event it resumes
      // from (so that resuming from it once more works too).
      session.seq = resumed.seq;
      for (const p of resumed.points ?? []) session.journal.record(resumed.from, p.topic, p.epoch, p.version);
    }
    return session;
  }

  forget(s: SseSession): void {
    this.all.delete(s.id);
    this.detached.delete(s.id);
  }

  /**
   * The stream of a session ended: keep its subscriptions for a resume, for a
   * while. Call before fan-out forgets the connection (its subscriptions are read here).
   */
  detach(session: SseSession, stream: Session): void {
    if (session.stream !== stream) return;
    session.subs = [...stream.conn.subs.values()].map((cs) => ({
      id: cs.id,
      topics: cs.patterns.map((p) => p.source),
      maxRate: cs.tier,
      fields: cs.fields ? [...cs.fields] : [],
      paused: cs.paused,
      ...(cs.views ? { tables: [...cs.views.tables].map(([table, t]) => ({ table, depth: t.depth, fields: [...t.fields] })), checksums: cs.views.checksums } : {}),
    }));
    session.stream = null;
    session.sink = null;
    session.detachedAt = Date.now();
    if (this.all.get(session.id) === session) {
      this.detached.set(session.id, session);
      while (this.detached.size > SSE_MAX_DETACHED_SESSIONS) this.forget(this.detached.values().next().value!);
      this.armExpiry();
    }
  }

  /** Hands a session over to the stream resuming it from event `seq`: the old stream (if any) is dropped, the session forgotten here. */
  release(session: SseSession, seq: number): Handover {
    // The old stream may not have noticed yet that its client left.
    session.sink?.replaced();
    this.forget(session);
    const points = session.journal.pointsAt(seq, session.seq);
    return { seq: session.seq, subs: session.subs, points: points ? [...points.values()] : null };
  }

  private sweep(): void {
    this.expiryTimer = null;
    const before = Date.now() - SSE_SESSION_TTL_MS;
    for (const s of this.detached.values()) {
      if (s.detachedAt > before) break;
      this.forget(s);
    }
    this.armExpiry();
  }

  // Runs only while there is something to sweep: a closed server leaves no timer behind.
  private armExpiry(): void {
    if (this.expiryTimer || this.detached.size === 0) return;
    this.expiryTimer = setTimeout(() => this.sweep(), SSE_SESSION_TTL_MS / 4);
    this.expiryTimer.unref();
  }
}
