// The fan-out unit tests' stand-in for uWebSockets.js's topic registry (the
// app's publish, a socket's subscribe/unsubscribe). By default a publish reaches
// every subscribed socket at once. With `drainLater` set it plays the timing of
// uWebSockets.js 20.30's pub/sub instead: what fan-out's frame counting must
// match, since a frame counted for a socket has to be a frame the socket gets.

/** What the registry needs of a socket (FakeSink). */
export interface UwsSocket {
  /** The uWS topics the socket is subscribed to (updated before the registry hears of a change). */
  readonly uwsTopics: ReadonlySet<string>;
  /** A published frame reaches the socket; `drained`: it was queued while the socket was in `uwsTopic`. */
  receivePublished(uwsTopic: string, frame: Uint8Array, drained?: boolean): void;
}

/** uWS drains a socket at once when this many publishes wait for it (TopicTree's per-subscriber limit). */
const MAX_UNDRAINED = 32;

/** Plays uWebSockets.js's topic registry: `publish` delivers a frame to every socket subscribed to the topic. */
export class FakeUws {
  private readonly members = new Map<string, Set<UwsSocket>>();
  /** Native publishes made (one per channel per turn with news). */
  publishes = 0;
  /**
   * Set: uWebSockets.js 20.30's timing. A publish only queues the frame for
   * each subscriber; the frames reach a socket when uWS drains — at the end
   * of the loop iteration (the registry asks `drainLater` to run the drain
   * then), or before a direct send to that socket (FakeSink.send calls
   * `drainSocket`) — and a socket that unsubscribes from its last topic is
   * freed with every frame still queued for it (they never reach it), as
   * WebSocket::unsubscribe frees the subscriber in that version.
   */
  drainLater: ((drain: () => void) => void) | null = null;
  /** Frames published but not drained yet, per socket, with the topic each came through. */
  private readonly undrained = new Map<UwsSocket, { topic: string; frame: Uint8Array }[]>();
  /** Frames freed with their socket before they were drained (never delivered). */
  lost = 0;

  /** Pass to `fanout.setBroadcaster`: uWS's `app.publish(topic, frame)`. */
  readonly broadcast = (uwsTopic: string, frame: Uint8Array): void => {
    this.publishes++;
    // The frame view is reused by its writer: take a copy, as uWS does.
    const copy = frame.slice();
    for (const sock of [...(this.members.get(uwsTopic) ?? [])]) {
      if (!this.drainLater) {
        sock.receivePublished(uwsTopic, copy);
        continue;
      }
      let queue = this.undrained.get(sock);
      if (queue && queue.length >= MAX_UNDRAINED) {
        this.drainSocket(sock);
        queue = undefined;
      }
      if (!queue) this.undrained.set(sock, (queue = []));
      queue.push({ topic: uwsTopic, frame: copy });
      if (!this.drainScheduled) {
        this.drainScheduled = true;
        this.drainLater(this.drain);
      }
    }
  };

  private drainScheduled = false;

  /** The end of a loop iteration: every queued frame reaches its socket. */
  readonly drain = (): void => {
    this.drainScheduled = false;
    for (const sock of [...this.undrained.keys()]) this.drainSocket(sock);
  };

  /** What uWS does before a direct send to a socket: its queued frames go out first, in order. */
  drainSocket(sock: UwsSocket): void {
    const queue = this.undrained.get(sock);
    if (!queue) return;
    this.undrained.delete(sock);
    for (const { topic, frame } of queue) sock.receivePublished(topic, frame, true);
  }

  join(sock: UwsSocket, uwsTopic: string): void {
    let set = this.members.get(uwsTopic);
    if (!set) this.members.set(uwsTopic, (set = new Set()));
    set.add(sock);
  }

  leave(sock: UwsSocket, uwsTopic: string): void {
    const set = this.members.get(uwsTopic);
    if (set?.delete(sock) && set.size === 0) this.members.delete(uwsTopic);
    if (sock.uwsTopics.size === 0) this.free(sock);
  }

  /** The socket's subscriber is gone (its last topic left, or the socket closed): what was queued for it is lost. */
  free(sock: UwsSocket): void {
    const queue = this.undrained.get(sock);
    if (!queue) return;
    this.lost += queue.length;
    this.undrained.delete(sock);
  }

  subscribers(uwsTopic: string): number {
    return this.members.get(uwsTopic)?.size ?? 0;
  }
}
