// A TCP proxy a test controls: clients connect to it instead of the server,
// `cut()` destroys every connection through it at once — to the client and to
// the server it looks like the network dropped them — `offline()` also refuses
// new connections until `online()`, and `retarget()` sends the next ones to
// another server (a load balancer moving a client to another cluster edge).

import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  /** Connections accepted so far (refused ones while offline not counted). */
  accepted = 0;
  /** Connections refused while offline. */
  refused = 0;
  private blocked = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: { port: number; host: string },
  ) {}

  static async start(targetPort: number, host = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client));
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    proxy = new TcpProxy(server, (server.address() as AddressInfo).port, { port: targetPort, host });
    return proxy;
  }

  private accept(client: Socket): void {
    if (this.blocked) {
      // The network is down: the connection is reset at once.
      this.refused++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    this.accepted++;
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Connections open right now. */
  get open(): number {
    return this.pairs.size;
  }

  /** True between offline() and online(). */
  get isOffline(): boolean {
    return this.blocked;
  }

  /** Drops every connection through the proxy (new ones are still accepted). */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    return n;
  }

  /** The network goes down: every connection dropped, new ones refused until online(). Returns how many were dropped. */
  offline(): number {
    this.blocked = true;
    return this.cut();
  }

  /** The network is back: new connections go through again. */
  online(): void {
    this.blocked = false;
  }

  /** New connections go to another server from now on (those open stay where they are). */
  retarget(port: number, host = '127.0.0.1'): void {
    this.target = { port, host };
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
