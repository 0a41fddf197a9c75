// The one place tickfan loads uWebSockets.js (and listens with it). The npm
// build we pin falls back to a slow pure-JavaScript server when its native
// binary fails to load (upstream builds throw instead); we detect either and
// refuse to start rather than run degraded in silence, saying what to install
// for this runtime (uws-builds.ts).

import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { ErrorCode, TickfanError } from '../protocol/index.js';
import { freePort } from './free-port.js';
import { currentRuntime, uwsAdvice, type Runtime } from './uws-builds.js';

const require = createRequire(import.meta.url);

/** Thrown at startup when uWebSockets.js is not running natively; the message says what to install for this runtime. */
export class NativeUwsMissingError extends Error {
  readonly code = 'TICKFAN_ERR_UWS_NOT_NATIVE';
  constructor(detail: string, runtime: Runtime = currentRuntime()) {
    super(`uWebSockets.js did not load its native binary (${detail}). tickfan refuses to run on a slow pure-JavaScript fallback. ${uwsAdvice(runtime, detail)}`);
    this.name = 'NativeUwsMissingError';
  }
}

let loaded: typeof UWS | undefined;

const NATIVE_BINARY = /uws_[a-z0-9]+_[a-z0-9]+_\d+\.node$/;

/** True when uWebSockets.js loads from its native `.node` binary. */
export function isNativeUws(): boolean {
  try {
    loadUws();
    return true;
  } catch {
    return false;
  }
}

/** Loads uWebSockets.js; throws NativeUwsMissingError unless it is native. */
export function loadUws(): typeof UWS {
  if (loaded) return loaded;
  // The package prints its own warning and falls back silently: silence the
  // warning (we say something clearer) and check what actually loaded.
  const warn = console.warn;
  const log = console.log;
  const said: string[] = [];
  console.warn = (...a: unknown[]) => void said.push(a.join(' '));
  console.log = (...a: unknown[]) => void said.push(a.join(' '));
  let mod: typeof UWS;
  try {
    mod = require('uWebSockets.js') as typeof UWS;
  } catch (err) {
    // Upstream builds throw when no binary matches (or the binary needs a newer glibc).
    throw new NativeUwsMissingError(String((err as Error)?.message ?? err).replace(/\s+/g, ' ').trim().slice(0, 400));
  } finally {
    console.warn = warn;
    console.log = log;
  }
  if (!Object.keys(require.cache).some((p) => NATIVE_BINARY.test(p))) {
    const why = said.join(' ').replace(/\s+/g, ' ').trim().slice(0, 300) || 'no native module in the require cache';
    throw new NativeUwsMissingError(why);
  }
  loaded = mod;
  return mod;
}

export type { UWS };

/** The backlog uSockets passes to listen(2): fixed in its C code. */
export const USOCKETS_BACKLOG = 512;

/** How many listen sockets give a kernel accept queue of at least `backlog` connections. */
export function listenSocketsFor(backlog: number): number {
  return Math.max(1, Math.ceil(backlog / USOCKETS_BACKLOG));
}

/**
 * Listens on host:port with `sockets` listen sockets (SO_REUSEPORT, which
 * uSockets sets on a named port: the kernel spreads new connections over
 * their accept queues), so a connect storm overflows 512 × sockets rather
 * than 512. Port 0 with several sockets: a free port is picked and named
 * (retried if another process takes it first). Resolves with the listen
 * sockets and the bound port.
 */
export async function listen(uws: typeof UWS, app: UWS.TemplatedApp, host: string, port: number, sockets = 1): Promise<{ sockets: UWS.us_listen_socket[]; port: number }> {
  let first: { socket: UWS.us_listen_socket; port: number } | undefined;
  for (let attempt = 0; !first; attempt++) {
    const named = port || sockets === 1 ? port : await freePort(host);
    try {
      first = await listenOne(uws, app, host, named);
    } catch (err) {
      if (port || sockets === 1 || attempt >= 4) throw err;
    }
  }
  const all = [first.socket];
  try {
    for (let i = 1; i < sockets; i++) all.push((await listenOne(uws, app, host, first.port)).socket);
  } catch (err) {
    for (const s of all) uws.us_listen_socket_close(s);
    throw err;
  }
  return { sockets: all, port: first.port };
}

function listenOne(uws: typeof UWS, app: UWS.TemplatedApp, host: string, port: number): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (s) resolve({ socket: s, port: uws.us_socket_local_port(s as unknown as UWS.us_socket) });
      else reject(new TickfanError(ErrorCode.INTERNAL, `cannot listen on ${host}:${port} (in use, or not an address of this machine)`));
    });
  });
}
