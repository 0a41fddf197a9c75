// startServer(): resolves the options, checks uWebSockets.js and the
// authentication settings, and picks the layout — one thread, a sequencer
// with fan-out workers, or a node of a NATS cluster. The one module that
// knows every layout.

import { startCluster } from './cluster/index.js';
import { Authenticator } from './server/auth.js';
import { resolveOptions, type ServerOptions } from './server/options.js';
import { startSingleThread, type TickfanServer } from './server/server.js';
import { loadUws } from './server/uws.js';
import { keepYoungGenerationSmall } from './server/young-generation.js';
import { startWorkerPool } from './workers/pool.js';

/**
 * Starts a tickfan server.
 * @example
 * const server = await startServer({ port: 0 });
 * server.publish('px.AAPL', { bid: 101.25, ask: 101.27 });
 * await server.close();
 */
export async function startServer(given: Partial<ServerOptions> = {}): Promise<TickfanServer> {
  const opts = resolveOptions(given);
  loadUws(); // refuses to go on without the native binary
  keepYoungGenerationSmall(opts.youngGeneration);
  const auth = await Authenticator.create(opts.auth);
  if (!auth.enabled) {
    opts.log(
      'warn',
      opts.allowRemoteWithoutAuth
        ? 'no authentication is configured and allowRemoteWithoutAuth is on: anyone who can reach this server may subscribe and publish'
        : 'no authentication is configured: the server answers loopback connections only (configure auth.secret, auth.publicKey or auth.jwks to serve beyond it)',
      { host: opts.host },
    );
  }
  // With NATS: one node of a cluster, in its role (origin, edge or both).
  if ([opts.nats].flat().length > 0) return startCluster(opts, auth);
  return opts.workers > 0 ? startWorkerPool(opts, auth) : startSingleThread(opts, auth);
}
