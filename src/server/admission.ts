// Admission: who may open a connection or make a request at all. With no
// authentication configured the server is open and then answers loopback
// only; origins outside the allow-list are refused; connection caps (global
// and per IP) are counted here. Shared by WebSocket, SSE and HTTP.

import { ErrorCode, TickfanError } from '../protocol/index.js';
import type { ServerStats } from './stats.js';
import type { UWS } from './uws.js';

/** What a request brings, copied before any await (uWS headers die with the callback). */
export interface Caller {
  remote: string;
  origin: string;
  token: string;
}

/** A refused request: HTTP status, protocol error code, and why. */
export interface Refusal {
  status: string;
  code: number;
  message: string;
}

export interface AdmissionOptions {
  allowRemoteWithoutAuth: boolean;
  allowedOrigins: readonly string[];
  maxConnections: number;
  maxConnectionsPerIp: number;
}

/** True for 127.0.0.0/8 and ::1, in any of the forms uWebSockets.js prints. */
export function isLoopback(addr: string): boolean {
  const a = addr.toLowerCase();
  return a.startsWith('127.') || a === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(a) || /^(::ffff:|(0{4}:){5}ffff:)127\./.test(a) || /^(0{4}:){5}ffff:7f/.test(a);
}

function bearer(header: string): string {
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1]!.trim() : '';
}

/** Copies who is asking from a request (remote address, Origin, token from ?token= or Authorization). */
export function callerOf(res: UWS.HttpResponse, req: UWS.HttpRequest): Caller {
  const query = new URLSearchParams(req.getQuery() ?? '');
  return {
    remote: Buffer.from(res.getRemoteAddressAsText()).toString(),
    origin: req.getHeader('origin'),
    token: query.get('token') || bearer(req.getHeader('authorization')),
  };
}

/** Open connections from one address, and the address's string they share. */
interface PerIp {
  remote: string;
  n: number;
}

export class Admission {
  private readonly perIp = new Map<string, PerIp>();

  constructor(
    private readonly opts: AdmissionOptions,
    private readonly authEnabled: boolean,
    private readonly stats: ServerStats,
  ) {}

  /** An open server (no auth) answers loopback only, unless allowRemoteWithoutAuth. */
  private loopbackOnly(remote: string): boolean {
    return !this.authEnabled && !this.opts.allowRemoteWithoutAuth && !isLoopback(remote);
  }

  /** Loopback-only-when-open and the origin allow-list (WebSocket, SSE). */
  access(a: Pick<Caller, 'remote' | 'origin'>): Refusal | null {
    if (this.loopbackOnly(a.remote)) {
      return {
        status: '403 Forbidden',
        code: ErrorCode.UNAUTHORIZED,
        message: 'no authentication is configured, so this server accepts loopback connections only (configure auth, or allowRemoteWithoutAuth)',
      };
    }
    if (this.opts.allowedOrigins.length && a.origin && !this.opts.allowedOrigins.includes(a.origin)) {
      return { status: '403 Forbidden', code: ErrorCode.PERMISSION_DENIED, message: `origin ${a.origin} is not allowed` };
    }
    return null;
  }

  /** Why a new connection from `a` is refused (access, then connection caps), or null. */
  connection(a: Caller): Refusal | null {
    const no = this.access(a);
    if (no) return no;
    if (this.stats.connections >= this.opts.maxConnections) {
      return { status: '503 Service Unavailable', code: ErrorCode.TOO_MANY_CONNECTIONS, message: `the server holds its maximum of ${this.opts.maxConnections} connections` };
    }
    if ((this.perIp.get(a.remote)?.n ?? 0) >= this.opts.maxConnectionsPerIp) {
      return { status: '429 Too Many Requests', code: ErrorCode.TOO_MANY_CONNECTIONS, message: `${this.opts.maxConnectionsPerIp} connections from ${a.remote} already` };
    }
    return null;
  }

  /** Plain HTTP requests: loopback only when open (origins are not checked). */
  http(remote: string): TickfanError | null {
    if (this.loopbackOnly(remote)) return new TickfanError(ErrorCode.UNAUTHORIZED, 'no authentication is configured, so this server answers loopback only');
    return null;
  }

  /**
   * The string an open connection from this address already holds (or
   * `remote` itself): thousands of connections from one address (a proxy,
   * a NAT, a load generator) share one string instead of one each.
   */
  canonical(remote: string): string {
    return this.perIp.get(remote)?.remote ?? remote;
  }

  opened(remote: string): void {
    const e = this.perIp.get(remote);
    if (e) e.n++;
    else this.perIp.set(remote, { remote, n: 1 });
  }

  closed(remote: string): void {
    const e = this.perIp.get(remote);
    if (!e || --e.n <= 0) this.perIp.delete(remote);
  }
}
