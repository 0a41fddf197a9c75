// Channel sets shared by many connections: one uWebSockets.js topic per set.
// On the native fast path every channel is a uWS topic, so a connection that
// follows ten busy channels is marked by ten native publishes a turn, each
// walking all of its channel's subscribers (≈ 0.1 µs per subscriber, issue
// 21). Connections that follow exactly the same two or more channels (a hot
// set every client takes, a desk's watchlist) share one more uWS topic once
// `minMembers` of them do: each turn the set gets ONE native publish holding
// the news of all its channels, and its members are off the channels' own
// topics. This file keeps the books (which sets wait for members, which have
// a group, who is in one); fast-path.ts moves sockets and counts frames.

import type { Channel, Conn } from './state.js';

/** A channel is in at most this many groups (a hot channel in many small sets would otherwise cost a native publish per set). */
export const MAX_GROUPS_PER_CHANNEL = 4;

/** Connections that follow the same channels, on one uWS topic. */
export class Group {
  /** Connections in it. */
  members = 0;
  /** Frames published on its uWS topic so far (a member counts those since it joined). */
  frames = 0;
  /** Has news this turn (listed for the turn's publish). */
  queued = false;
  readonly uwsTopic: string;
  constructor(
    readonly key: string,
    /** Its channels, in the order of their ids (the order of their messages in its frames). */
    readonly chans: readonly Channel[],
    id: number,
  ) {
    this.uwsTopic = `g${id}`;
  }
}

/** A connection in a group, and the group's frame count when it joined. */
export interface Membership {
  readonly group: Group;
  readonly base: number;
}

/** The connections following one set of channels that is not a group yet, or its group. */
interface Bucket {
  waiting: Conn[];
  group: Group | null;
}

/** The key of a connection's fast-path channel set: their ids, ascending. */
export function setKey(chans: readonly Channel[]): string {
  let key = '';
  for (const ch of chans) key += key ? `,${ch.id}` : `${ch.id}`;
  return key;
}

export class Groups {
  private readonly buckets = new Map<string, Bucket>();
  /** Per connection with two or more fast-path channels: its membership, or the key of the set it waits with. */
  private readonly state = new Map<Conn, Membership | string>();
  /** The groups each channel is in (only channels in one). */
  private readonly ofChannel = new Map<Channel, Group[]>();
  private nextId = 1;
  /** Groups with members (a gauge for stats). */
  count = 0;

  constructor(
    /** Connections a set needs before it becomes a group (0: never). */
    readonly minMembers: number,
  ) {}

  membership(conn: Conn): Membership | undefined {
    if (this.state.size === 0) return undefined;
    const s = this.state.get(conn);
    return typeof s === 'object' ? s : undefined;
  }

  /**
   * Files a connection (not in a group) under its set `chans` (ids ascending).
   * Returns the group it should join: the set's group, or a new one if it
   * now has `minMembers` waiting (then each of `joining` should join it too).
   */
  file(conn: Conn, chans: readonly Channel[], joining: Conn[]): Group | null {
    const key = setKey(chans);
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = { waiting: [], group: null }));
    if (b.group) return b.group;
    b.waiting.push(conn);
    this.state.set(conn, key);
    if (b.waiting.length < this.minMembers || chans.some((ch) => (this.ofChannel.get(ch)?.length ?? 0) >= MAX_GROUPS_PER_CHANNEL)) return null;
    const g = (b.group = new Group(key, chans, this.nextId++));
    for (const ch of chans) {
      const list = this.ofChannel.get(ch);
      if (list) list.push(g);
      else this.ofChannel.set(ch, [g]);
    }
    this.count++;
    for (const c of b.waiting) {
      this.state.delete(c);
      if (c !== conn) joining.push(c);
    }
    b.waiting = [];
    return g;
  }

  /** The groups a channel is in (undefined: none). */
  of(ch: Channel): readonly Group[] | undefined {
    return this.count === 0 ? undefined : this.ofChannel.get(ch);
  }

  /** The connection joins `g` (fast-path.ts has moved its socket). */
  enter(conn: Conn, g: Group): void {
    g.members++;
    this.state.set(conn, { group: g, base: g.frames });
  }

  /** The connection's set is changing: out of its group (fast-path.ts moves its socket) or off its bucket's waiting list. */
  forget(conn: Conn): void {
    const s = this.state.get(conn);
    if (s === undefined) return;
    this.state.delete(conn);
    if (typeof s === 'string') {
      const b = this.buckets.get(s)!;
      const i = b.waiting.indexOf(conn);
      b.waiting[i] = b.waiting[b.waiting.length - 1]!;
      b.waiting.pop();
      if (b.waiting.length === 0 && !b.group) this.buckets.delete(s);
      return;
    }
    const g = s.group;
    if (--g.members > 0) return;
    // Nobody left on its topic: the group goes (a set that comes back starts over).
    this.buckets.delete(g.key);
    for (const ch of g.chans) {
      const list = this.ofChannel.get(ch)!;
      list.splice(list.indexOf(g), 1);
      if (list.length === 0) this.ofChannel.delete(ch);
    }
    this.count--;
  }
}
