// SSE across fan-out workers: the kernel spreads connections over the workers
// sharing a port, so a command POST or a reconnect may land on a worker other
// than the one holding the session. Workers ask each other on a BroadcastChannel.

import { randomBytes } from 'node:crypto';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import type { Answer } from './answers.js';
import type { Handover } from './sessions.js';

/**
 * How long a worker waits for its peers before it gives up: every peer says
 * whether it holds the session, so this is only reached when one is stalled
 * or gone (a busy worker answers late, never wrongly "unknown").
 */
const PEER_TIMEOUT_MS = 10_000;
/** Before the first peer has said hello (a worker just started, or the only one): silence this long means nobody. */
const NO_PEERS_WAIT_MS = 250;

export type CommandMethod = 'POST' | 'DELETE';

/** Between the fan-out workers of one server: a session lives in the worker its stream landed on. `from` names the sender. */
type Wire =
  | { kind: 'hello' | 'here'; from: string }
  | { kind: 'cmd'; id: string; from: string; sid: string; method: CommandMethod; body: string }
  | ({ kind: 'answer'; id: string; from: string } & Answer)
  | { kind: 'claim'; id: string; from: string; sid: string; seq: number }
  | ({ kind: 'claimed'; id: string; from: string } & Handover)
  /** Not held here (a peer's answer, so that the asker need not wait for silence). */
  | { kind: 'none'; id: string; from: string };

type Reply = Extract<Wire, { kind: 'answer' | 'claimed' }>;

/** What asking the peers came to: one's reply, none holds it, or some peer did not answer in time. */
export type PeerOutcome<T> = { held: T } | 'unknown' | 'silent';

/** What this worker does for its peers; each returns null when the session is not held here. */
export interface PeerHandlers {
  /** Runs a command on a session held here. */
  command(sid: string, method: CommandMethod, body: string): Answer | null;
  /** Hands over a session held here to a stream resuming it (from event `seq`) in another worker. */
  claim(sid: string, seq: number): Handover | null;
}

export class SsePeers {
  private readonly waiting = new Map<string, (m: Wire) => void>();
  private readonly me = randomBytes(6).toString('hex');
  /** The other workers on this channel, learnt from their hello (or their answer to ours). */
  private readonly known = new Set<string>();
  private nextId = 0;

  /** The channel of the workers serving host:port; null on the main thread (a single-thread server has no peers). */
  static open(host: string, port: number): SsePeers | null {
    return isMainThread ? null : new SsePeers(new BroadcastChannel(`tickfan-sse:${host}:${port}`));
  }

  private constructor(private readonly channel: BroadcastChannel) {
    (channel as unknown as { unref(): void }).unref();
  }

  /** Answers the peers' requests for sessions held here, and says hello to them. */
  serve(h: PeerHandlers): void {
    this.channel.onmessage = (ev) => {
      const m = (ev as { data: Wire }).data;
      switch (m.kind) {
        case 'hello':
          this.known.add(m.from);
          return this.post({ kind: 'here', from: this.me });
        case 'here':
          return void this.known.add(m.from);
        case 'answer':
        case 'claimed':
        case 'none':
          this.known.add(m.from);
          return this.waiting.get(m.id)?.(m);
        case 'cmd': {
          const a = h.command(m.sid, m.method, m.body);
          return this.post(a ? { kind: 'answer', id: m.id, from: this.me, ...a } : { kind: 'none', id: m.id, from: this.me });
        }
        case 'claim': {
          const handed = h.claim(m.sid, m.seq);
          return this.post(handed ? { kind: 'claimed', id: m.id, from: this.me, ...handed } : { kind: 'none', id: m.id, from: this.me });
        }
      }
    };
    this.post({ kind: 'hello', from: this.me });
  }

  /** Runs a command on whichever worker holds the session. */
  command(sid: string, method: CommandMethod, body: string, done: (a: PeerOutcome<Answer>) => void): void {
    this.ask({ kind: 'cmd', id: this.newId(), from: this.me, sid, method, body }, (m) => done(typeof m === 'string' ? m : m.kind === 'answer' ? { held: { status: m.status, body: m.body } } : 'unknown'));
  }

  /** Takes over a session another worker holds; null when none does (or none answered in time: the stream starts afresh). */
  claim(sid: string, seq: number, done: (h: Handover | null) => void): void {
    this.ask({ kind: 'claim', id: this.newId(), from: this.me, sid, seq }, (m) => done(typeof m !== 'string' && m.kind === 'claimed' ? { seq: m.seq, subs: m.subs, points: m.points } : null));
  }

  private newId(): string {
    return `${this.me}.${this.nextId++}`;
  }

  private post(m: Wire): void {
    this.channel.postMessage(m);
  }

  /** Asks every peer; ends with the holder's reply, 'unknown' once every known peer said none, or 'silent' at the timeout. */
  private ask(m: Extract<Wire, { kind: 'cmd' | 'claim' }>, done: (reply: Reply | 'unknown' | 'silent') => void): void {
    const pending = new Set(this.known);
    // Peers not yet known: only a holder's reply or the short wait ends the question.
    const blind = pending.size === 0;
    const finish = (r: Reply | 'unknown' | 'silent') => {
      clearTimeout(timer);
      this.waiting.delete(m.id);
      done(r);
    };
    const timer = setTimeout(() => finish(blind || pending.size === 0 ? 'unknown' : 'silent'), blind ? NO_PEERS_WAIT_MS : PEER_TIMEOUT_MS);
    this.waiting.set(m.id, (reply) => {
      if (reply.kind === 'answer' || reply.kind === 'claimed') return finish(reply);
      pending.delete(reply.from);
      if (!blind && pending.size === 0) finish('unknown');
    });
    this.post(m);
  }
}
