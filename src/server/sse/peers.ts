// SSE across fan-out workers: the kernel spreads connections over the workers
// sharing a port, so a command POST or a reconnect may land on a worker other
// than the one holding the session. Workers ask each other on a BroadcastChannel.

import { randomBytes } from 'node:crypto';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import type { Answer } from './answers.js';
import type { Handover } from './sessions.js';

/** How long a worker waits for the owner of a session it does not hold. */
const PEER_TIMEOUT_MS = 1_000;

export type CommandMethod = 'POST' | 'DELETE';

/** Between the fan-out workers of one server: a session lives in the worker its stream landed on. */
type Wire =
  | { kind: 'cmd'; id: string; sid: string; method: CommandMethod; body: string }
  | ({ kind: 'answer'; id: string } & Answer)
  | { kind: 'claim'; id: string; sid: string; seq: number }
  | ({ kind: 'claimed'; id: string } & Handover);

/** What this worker does for its peers; each returns null when the session is not held here. */
export interface PeerHandlers {
  /** Runs a command on a session held here. */
  command(sid: string, method: CommandMethod, body: string): Answer | null;
  /** Hands over a session held here to a stream resuming it (from event `seq`) in another worker. */
  claim(sid: string, seq: number): Handover | null;
}

export class SsePeers {
  private readonly waiting = new Map<string, (m: Wire | null) => void>();
  private readonly idPrefix = randomBytes(6).toString('hex');
  private nextId = 0;

  /** The channel of the workers serving host:port; null on the main thread (a single-thread server has no peers). */
  static open(host: string, port: number): SsePeers | null {
    return isMainThread ? null : new SsePeers(new BroadcastChannel(`tickfan-sse:${host}:${port}`));
  }

  private constructor(private readonly channel: BroadcastChannel) {
    (channel as unknown as { unref(): void }).unref();
  }

  /** Answers the peers' requests for sessions held here. */
  serve(h: PeerHandlers): void {
    this.channel.onmessage = (ev) => {
      const m = (ev as { data: Wire }).data;
      if (m.kind === 'answer' || m.kind === 'claimed') return this.waiting.get(m.id)?.(m);
      if (m.kind === 'cmd') {
        const a = h.command(m.sid, m.method, m.body);
        if (a) this.post({ kind: 'answer', id: m.id, ...a });
      } else {
        const handed = h.claim(m.sid, m.seq);
        if (handed) this.post({ kind: 'claimed', id: m.id, ...handed });
      }
    };
  }

  /** Runs a command on whichever worker holds the session; null when none answers in time. */
  command(sid: string, method: CommandMethod, body: string, done: (a: Answer | null) => void): void {
    this.ask({ kind: 'cmd', id: this.newId(), sid, method, body }, (m) => done(m?.kind === 'answer' ? { status: m.status, body: m.body } : null));
  }

  /** Takes over a session another worker holds; null when none does. */
  claim(sid: string, seq: number, done: (h: Handover | null) => void): void {
    this.ask({ kind: 'claim', id: this.newId(), sid, seq }, (m) => done(m?.kind === 'claimed' ? { seq: m.seq, subs: m.subs, points: m.points } : null));
  }

  private newId(): string {
    return `${this.idPrefix}.${this.nextId++}`;
  }

  private post(m: Wire): void {
    this.channel.postMessage(m);
  }

  private ask(m: Wire, done: (reply: Wire | null) => void): void {
    const timer = setTimeout(() => {
      this.waiting.delete(m.id);
      done(null);
    }, PEER_TIMEOUT_MS);
    this.waiting.set(m.id, (reply) => {
      clearTimeout(timer);
      this.waiting.delete(m.id);
      done(reply);
    });
    this.post(m);
  }
}
