// A demo-only token issuer for the desk page: a small HTTP server on loopback
// that mints short-lived desk tokens (HS256, 60 s by default) with the
// server's own secret, so that the page (opened with ?tokenUrl=) shows its
// token's remaining lifetime being refreshed in session. `tickfan serve
// --demo` starts it when auth.secret is configured. It stands in for a real
// deployment's login-backed token endpoint and checks nobody: anyone who can
// reach it on loopback gets any desk's token — never run it beyond a demo.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mintToken } from '../token.js';

/** What a desk's token grants: its own blotter, the books and the demo's flat topics; the order services. */
export function deskGrants(desk: string): { subscribe: string[]; request: string[] } {
  return { subscribe: [`blotter.${desk}`, 'book.>', 'px.*', 'fx.*'], request: ['orders.*'] };
}

/** A desk name: one topic level (letters, digits, `-`, `_`), at most 64 characters. */
const DESK_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface DeskTokenIssuerOptions {
  /** The server's HS256 secret (at least 32 characters). */
  secret: string;
  /** Lifetime of each token, seconds (default 60). */
  ttlSec?: number;
  /** `iss` / `aud` claims, when the server requires them. */
  issuer?: string;
  audience?: string;
  /** Port on 127.0.0.1 (default 0: any free one). */
  port?: number;
}

/** `GET /desk-token?desk=<name>`: a fresh token for that desk, as text (CORS open: the page is served from another port). */
export class DeskTokenIssuer {
  /** Tokens minted so far. */
  minted = 0;

  private constructor(
    private readonly server: Server,
    /** The token URL the page is given as ?tokenUrl= (without the desk). */
    readonly url: string,
  ) {}

  static async start(opts: DeskTokenIssuerOptions): Promise<DeskTokenIssuer> {
    const ttl = opts.ttlSec ?? 60;
    let issuer: DeskTokenIssuer | undefined;
    const server = createServer((req, res) => void issuer!.answer(req, res, opts, ttl));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    issuer = new DeskTokenIssuer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/desk-token`);
    return issuer;
  }

  private async answer(req: IncomingMessage, res: ServerResponse, opts: DeskTokenIssuerOptions, ttl: number): Promise<void> {
    const headers = { 'access-control-allow-origin': '*', 'cache-control': 'no-store' };
    const fail = (status: number, code: string, message: string) =>
      void res.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message } }));
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/desk-token') return fail(404, 'NOT_FOUND', 'the demo token issuer answers GET /desk-token?desk=<desk> only');
    const desk = url.searchParams.get('desk') ?? '';
    if (!DESK_NAME.test(desk)) return fail(400, 'BAD_DESK', `desk must be one topic level of letters, digits, - and _ (at most 64), e.g. /desk-token?desk=desk-1 (got ${JSON.stringify(desk)})`);
    try {
      const token = await mintToken({ secret: opts.secret, sub: desk, ...deskGrants(desk), ttl, issuer: opts.issuer, audience: opts.audience });
      this.minted++;
      res.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(token);
    } catch (err) {
      fail(500, 'MINT_FAILED', `could not mint a token: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Beside `tickfan serve --demo`: with auth.secret configured (a value or
 * `@file`), starts the issuer and returns the desk page's URL that uses it;
 * null without a secret (an open server needs no token; RS256/ES256 keys
 * cannot be minted with here).
 */
export async function startDeskTokens(
  auth: { secret?: string; issuer?: string; audience?: string } | undefined,
  pageUrl: string,
  opts: { ttlSec?: number; port?: number } = {},
): Promise<{ issuer: DeskTokenIssuer; pageUrl: string } | null> {
  if (auth?.secret === undefined) return null;
  const secret = auth.secret.startsWith('@') ? readFileSync(auth.secret.slice(1), 'utf8').replace(/\r?\n$/, '') : auth.secret;
  const issuer = await DeskTokenIssuer.start({ secret, issuer: auth.issuer, audience: auth.audience, ...opts });
  const desk = `desk-${Math.random().toString(36).slice(2, 8)}`;
  return { issuer, pageUrl: `${pageUrl}?tokenUrl=${encodeURIComponent(`${issuer.url}?desk=${desk}`)}` };
}
