// The scalar part of a connection's fan-out record (Conn, state.ts): its
// sink, frame counters, flags, outbox and rarely used fields, laid out for
// memory (issue 21): the booleans and the protocol share one small integer,
// the outbox (messages and their bytes) exists only while messages wait, the rare fields sit in a
// side record made on first use, and the frame counters are folded into one.

import type { Sink } from '../sink.js';

/** Flags (the protocol number lives above them). */
const C_CLOSED = 1;
const C_JSON = 2;
const C_HOLDING = 4;
const C_QUEUED = 8;
const C_SLOW = 16;
const C_PROTOCOL_SHIFT = 8;

/** A connection's rarely used state, allocated on first use (most connections never need it). */
interface ConnRare<TS> {
  dirtySubs: Set<TS> | null;
  published: Set<string> | null;
  slowSince: number;
}

/** `TS`: its topic subscriptions' type (TopicSub: this file knows no records). */
export class ConnState<TS> {
  /** Frames this connection was sent, as of its last direct frame. */
  seq = 0;
  /**
   * Published frames received since its last direct frame, less those still
   * counted by the channels it is on (fast-path.ts#frames adds theirs). One
   * field for two: fast-path.ts adds a channel's frames as it leaves it
   * (retiredFrames), outbox.ts subtracts the count at each direct frame
   * (fastAtLastSend), and only their difference was ever read.
   */
  private frameDebt = 0;
  /** Its topic subscriptions on the fast path. */
  fastCount = 0;
  /** closed, json, holding, queued, slow, and the protocol number. */
  private bits = 1 << C_PROTOCOL_SHIFT;
  /** Where its frames go (a WebSocket connection keeps its socket here: ws-conn.ts). */
  protected out: unknown = null;
  /** Messages queued for its next direct frame and their bytes (null: none; made by the first). */
  private pending: { msgs: Uint8Array[]; bytes: number } | null = null;
  private rare: ConnRare<TS> | null = null;

  /** Where its frames go; null before it opens and once it closed. */
  get sink(): Sink | null {
    return this.out as Sink | null;
  }
  set sink(v: Sink | null) {
    this.out = v;
  }

  /** Published frames received through channels it has since left (see frameDebt). */
  get retiredFrames(): number {
    return this.frameDebt;
  }
  set retiredFrames(v: number) {
    this.frameDebt = v;
  }

  /** What fast-path.ts#frames counted when its last direct frame went out: folded into frameDebt (so always 0 here). */
  get fastAtLastSend(): number {
    return 0;
  }
  set fastAtLastSend(v: number) {
    this.frameDebt -= v;
  }

  private setFlag(bit: number, v: boolean): void {
    this.bits = v ? this.bits | bit : this.bits & ~bit;
  }

  get closed(): boolean {
    return (this.bits & C_CLOSED) !== 0;
  }
  set closed(v: boolean) {
    this.setFlag(C_CLOSED, v);
  }

  /** The wire protocol of its frames: 1 until a Hello asks for 2 (before any subscription). */
  get protocol(): number {
    return this.bits >>> C_PROTOCOL_SHIFT;
  }
  set protocol(v: number) {
    this.bits = (this.bits & ((1 << C_PROTOCOL_SHIFT) - 1)) | (v << C_PROTOCOL_SHIFT);
  }

  /** Its sink writes JSON (SSE, STOMP): keyed topics reach it in the keyed JSON form (wire.ts, Form.JSON). */
  get json(): boolean {
    return (this.bits & C_JSON) !== 0;
  }
  set json(v: boolean) {
    this.setFlag(C_JSON, v);
  }

  /** Its socket holds fast-path.ts's HOLD_TOPIC (it left its last channel and has not joined one since). */
  get holding(): boolean {
    return (this.bits & C_HOLDING) !== 0;
  }
  set holding(v: boolean) {
    this.setFlag(C_HOLDING, v);
  }

  /** In the outbox's list of connections to flush this turn. */
  get queued(): boolean {
    return (this.bits & C_QUEUED) !== 0;
  }
  set queued(v: boolean) {
    this.setFlag(C_QUEUED, v);
  }

  /** In the slow lane (off the fast path, owed catch-ups). */
  get slow(): boolean {
    return (this.bits & C_SLOW) !== 0;
  }
  set slow(v: boolean) {
    this.setFlag(C_SLOW, v);
  }

  /** Messages for its next direct frame (outbox.ts). Reading makes the array; assigning an empty one gives it back. */
  get outbox(): Uint8Array[] {
    return (this.pending ??= { msgs: [], bytes: 0 }).msgs;
  }
  set outbox(v: Uint8Array[]) {
    if (v.length === 0) this.pending = null;
    else if (this.pending) this.pending.msgs = v;
    else this.pending = { msgs: v, bytes: 0 };
  }

  /** Bytes of the messages waiting in its outbox. */
  get outboxBytes(): number {
    return this.pending ? this.pending.bytes : 0;
  }
  set outboxBytes(v: number) {
    if (this.pending) this.pending.bytes = v;
    else if (v !== 0) this.pending = { msgs: [], bytes: v };
  }

  private more(): ConnRare<TS> {
    return (this.rare ??= { dirtySubs: null, published: null, slowSince: 0 });
  }

  /** Topic subscriptions owed a catch-up (allocated when first needed). */
  get dirtySubs(): Set<TS> | null {
    return this.rare ? this.rare.dirtySubs : null;
  }
  set dirtySubs(v: Set<TS> | null) {
    if (v || this.rare) this.more().dirtySubs = v;
  }

  /** Topics this connection published to (checked for "publisher gone" when it closes). */
  get published(): Set<string> | null {
    return this.rare ? this.rare.published : null;
  }
  set published(v: Set<string> | null) {
    if (v || this.rare) this.more().published = v;
  }

  /** When it entered the slow lane (clock.now()). */
  get slowSince(): number {
    return this.rare ? this.rare.slowSince : 0;
  }
  set slowSince(v: number) {
    if (v || this.rare) this.more().slowSince = v;
  }
}
