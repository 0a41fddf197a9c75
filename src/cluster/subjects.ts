// The NATS subjects of one cluster, all under its prefix. Topic names and
// tickfan patterns are NATS subjects and wildcards as they are (same levels,
// same `*` and `>`), so an edge's interest maps one to one.

export class Subjects {
  constructor(readonly prefix: string) {}

  /** Sequenced updates (and status changes) of one topic, or of a pattern's topics. */
  update(topicOrPattern: string): string {
    return `${this.prefix}.u.${topicOrPattern}`;
  }

  /**
   * Requests forwarded to a node with a responder for the service (a name, or
   * a pattern: a node offering `orders.*` subscribes to `<prefix>.svc.orders.*`).
   */
  service(nameOrPattern: string): string {
    return `${this.prefix}.svc.${nameOrPattern}`;
  }

  /** The queue group of the service subjects: NATS hands each forwarded request to one node. */
  readonly serviceQueue = 'svc';

  /** The topic of an update subject. */
  topicOf(subject: string): string {
    return subject.slice(this.prefix.length + 3);
  }

  /** Publishes forwarded to the origin of shard `i` (request-reply). */
  publish(i: number): string {
    return `${this.prefix}.pub.${i}`;
  }

  /** Image requests to the origin of shard `i` (request, several replies, an empty one last). */
  images(i: number): string {
    return `${this.prefix}.img.${i}`;
  }

  /** An edge tells the origin of shard `i` that a topic went stale there (its publisher left). */
  stale(i: number): string {
    return `${this.prefix}.stale.${i}`;
  }

  /** Version heartbeats of the origin of shard `i` (`*`: every shard's). */
  beat(i: number | '*'): string {
    return `${this.prefix}.beat.${i}`;
  }

  /** Origins announce themselves here every few seconds (and when they leave). */
  get origins(): string {
    return `${this.prefix}.origins`;
  }

  /** Every origin answers with its announcement. */
  get layout(): string {
    return `${this.prefix}.layout`;
  }

  /** The JetStream KV bucket of shard leases (bucket names take no dots). */
  get leaseBucket(): string {
    return `${this.prefix.replaceAll('.', '_')}_shards`;
  }
}
