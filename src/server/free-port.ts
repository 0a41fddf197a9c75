// A free TCP port, for when tickfan must name its port to share it: uSockets
// lets several listen sockets (threads, or accept queues of one thread) share
// a port through SO_REUSEPORT only when the port is named, not for port 0.

import { createServer, type AddressInfo } from 'node:net';

/** A port the kernel had free on `host` a moment ago (another process may still take it). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
