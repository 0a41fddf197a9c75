// A failover TCP proxy for the cluster fault suite (cluster-fault-suite.ts).
// Each lane is a listening port with an ordered list of backend ports (edges):
// a new connection goes to the first backend that accepts it, so when an edge
// dies its clients' reconnections land on the next one. `failback()` cuts the
// lane's connections that are not on its first backend once that one is back;
// `stall()` stops reading from the backends of a lane (a reader that stalls:
// the edge's socket buffers fill, as for a client that stopped reading).

import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  backend: number;
}

class Lane {
  readonly pairs = new Set<Pair>();
  stalled = false;
  accepted = 0;
  /** Connections refused because no backend answered. */
  refused = 0;
  constructor(
    readonly server: Server,
    readonly port: number,
    readonly backends: readonly number[],
  ) {}
}

/** Connects to the first backend that accepts, each within `timeoutMs`; null when none does. */
async function firstAccepting(backends: readonly number[], timeoutMs: number): Promise<{ sock: Socket; backend: number } | null> {
  for (const backend of backends) {
    const sock = await new Promise<Socket | null>((resolve) => {
      const s = connect(backend, '127.0.0.1');
      const timer = setTimeout(() => {
        s.destroy();
        resolve(null);
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', () => {
        clearTimeout(timer);
        s.destroy();
        resolve(null);
      });
    });
    if (sock) return { sock, backend };
  }
  return null;
}

export class FailoverProxy {
  private readonly lanes = new Map<string, Lane>();

  /** Opens a lane on a free loopback port; returns its port. */
  async lane(name: string, backends: readonly number[]): Promise<number> {
    let lane: Lane | undefined;
    const server = createServer((client) => void this.accept(lane!, client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    lane = new Lane(server, (server.address() as AddressInfo).port, backends);
    this.lanes.set(name, lane);
    return lane.port;
  }

  private async accept(lane: Lane, client: Socket): Promise<void> {
    lane.accepted++;
    client.pause();
    client.on('error', () => client.destroy());
    const up = await firstAccepting(lane.backends, 1_000);
    if (!up || client.destroyed) {
      lane.refused += up ? 0 : 1;
      up?.sock.destroy();
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: up.sock, backend: up.backend };
    lane.pairs.add(pair);
    const drop = () => {
      lane.pairs.delete(pair);
      client.destroy();
      up.sock.destroy();
    };
    client.on('close', drop);
    up.sock.on('error', drop).on('close', drop);
    client.pipe(up.sock);
    up.sock.pipe(client);
    if (lane.stalled) up.sock.pause();
    client.resume();
  }

  private get(name: string): Lane {
    const lane = this.lanes.get(name);
    if (!lane) throw new Error(`no proxy lane ${name}`);
    return lane;
  }

  /** The backends the lane's open connections go to right now. */
  targets(name: string): number[] {
    return [...new Set([...this.get(name).pairs].map((p) => p.backend))];
  }

  counts(name: string): { accepted: number; refused: number; open: number } {
    const l = this.get(name);
    return { accepted: l.accepted, refused: l.refused, open: l.pairs.size };
  }

  /** Cuts the lane's connections that are not on its first backend (they reconnect, and land there if it is up). */
  failback(name: string): number {
    const lane = this.get(name);
    let n = 0;
    for (const p of [...lane.pairs]) {
      if (p.backend === lane.backends[0]) continue;
      p.client.destroy();
      p.upstream.destroy();
      lane.pairs.delete(p);
      n++;
    }
    return n;
  }

  /** Stops reading from the backends of the lane (the edge sees a reader that stalls). */
  stall(name: string): void {
    const lane = this.get(name);
    lane.stalled = true;
    for (const p of lane.pairs) {
      p.upstream.unpipe(p.client);
      p.upstream.pause();
    }
  }

  unstall(name: string): void {
    const lane = this.get(name);
    lane.stalled = false;
    for (const p of lane.pairs) {
      p.upstream.pipe(p.client);
      p.upstream.resume();
    }
  }

  async close(): Promise<void> {
    for (const lane of this.lanes.values()) {
      for (const p of lane.pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      lane.pairs.clear();
      await new Promise<void>((resolve) => lane.server.close(() => resolve()));
    }
    this.lanes.clear();
  }
}
