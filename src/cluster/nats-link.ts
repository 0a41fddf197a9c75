// This node's one NATS connection: the official client, reconnecting for
// ever, with its state (connected / reconnecting) for /healthz and listeners
// for "down" and "up again" — an edge heals every replica when it comes back,
// whether the server restarted or cut this node as a slow consumer.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, TickfanError } from '../protocol/index.js';
import type { LogFn } from '../server/options.js';

export type NatsState = 'connected' | 'reconnecting' | 'closed';

export class NatsLink {
  state: NatsState = 'connected';
  disconnects = 0;
  reconnects = 0;
  /** Times the server reported this connection a slow consumer (seen in its error text) or the client saw a subscription fall behind. */
  slowConsumers = 0;
  private readonly downs: (() => void)[] = [];
  private readonly ups: (() => void)[] = [];

  private constructor(
    readonly nc: NatsConnection,
    private readonly log: LogFn,
  ) {
    void this.watch();
  }

  static async open(servers: string[], name: string, log: LogFn): Promise<NatsLink> {
    try {
      // Pings every 2 s, 2 unanswered → the connection is stale: a NATS server that hangs (not only one that dies) is noticed in seconds.
      const nc = await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 100, pingInterval: 2_000, maxPingOut: 2, timeout: 5_000 });
      return new NatsLink(nc, log);
    } catch (err) {
      throw new TickfanError(ErrorCode.INTERNAL, `cannot reach NATS at ${servers.join(', ')}: ${(err as Error).message} (start nats-server -js, or check options.nats)`, { cause: err });
    }
  }

  /** `down`: the connection is lost (the client reconnects by itself); `up`: it is back, subscriptions renewed. */
  on(event: 'down' | 'up', fn: () => void): void {
    (event === 'down' ? this.downs : this.ups).push(fn);
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.disconnects++;
          this.state = 'reconnecting';
          this.log('warn', `NATS connection to ${s.server} lost: topics are flagged stale until it is back`, { server: s.server });
          for (const f of this.downs) f();
          break;
        case 'reconnect':
          this.reconnects++;
          this.state = 'connected';
          this.log('info', `NATS connection back (${s.server}): healing every replica by version`, { server: s.server });
          for (const f of this.ups) f();
          break;
        case 'slowConsumer':
          this.slowConsumers++;
          break;
        case 'error':
          if (/slow consumer/i.test(s.error.message)) this.slowConsumers++;
          this.log('warn', `NATS: ${s.error.message}`);
          break;
        case 'close':
          this.state = 'closed';
          return;
        default:
          break;
      }
    }
  }

  /** NATS traffic of this connection so far. */
  traffic(): { inMsgs: number; outMsgs: number; inBytes: number; outBytes: number } {
    return this.nc.stats();
  }

  /**
   * Diagnostics for tests: stops reading from the NATS socket for `ms`, as a
   * stalled node would; the server then cuts it as a slow consumer.
   */
  stall(ms: number): void {
    const socket = (this.nc as unknown as { protocol?: { transport?: { socket?: { pause(): void; resume(): void } } } }).protocol?.transport?.socket;
    if (!socket) throw new TickfanError(ErrorCode.INTERNAL, 'no NATS socket to stall');
    socket.pause();
    setTimeout(() => socket.resume(), ms).unref();
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
