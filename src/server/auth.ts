// Connection tokens (JWT via `jose`) and per-topic grants. A token carries
// `subscribe` and `publish` arrays of topic patterns; a subscription is allowed
// only when every topic it could match lies inside one subscribe grant.

import { readFileSync } from 'node:fs';
import { createLocalJWKSet, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type CryptoKey, type JSONWebKeySet } from 'jose';
import { TopicPattern } from '../engine/index.js';
import { ErrorCode, TickfanError } from '../protocol/index.js';
import { OptionError, type AuthOptions } from './option-types.js';

/** What one connection may do, and until when. */
export interface Grants {
  subject: string;
  subscribe: readonly TopicPattern[];
  publish: readonly TopicPattern[];
  /** Services it may answer (Serve) and ask (Request), by name or pattern. */
  serve: readonly TopicPattern[];
  request: readonly TopicPattern[];
  /** ms since 1970, or null for no expiry. */
  expiresAt: number | null;
}

/** Grants of an open server (no auth configured): everything. */
export const OPEN_GRANTS: Grants = {
  subject: 'anonymous',
  subscribe: [TopicPattern.parse('>')],
  publish: [TopicPattern.parse('>')],
  serve: [TopicPattern.parse('>')],
  request: [TopicPattern.parse('>')],
  expiresAt: null,
};

/** `@/path` reads the file (for keys and secrets kept out of argv and the environment). */
function readMaybeFile(v: string, option: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8');
  } catch (err) {
    throw new OptionError(`options.${option}: cannot read ${v.slice(1)}: ${(err as Error).message}`, option, { cause: err });
  }
}

function patterns(list: unknown, claim: string): TopicPattern[] {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.some((p) => typeof p !== 'string')) {
    throw new TickfanError(ErrorCode.UNAUTHORIZED, `token claim "${claim}" must be an array of topic patterns`);
  }
  return list.map((p: string) => {
    try {
      return TopicPattern.parse(p);
    } catch (err) {
      throw new TickfanError(ErrorCode.UNAUTHORIZED, `token claim "${claim}": ${(err as Error).message}`, { cause: err });
    }
  });
}

export class Authenticator {
  private constructor(
    private readonly key: Uint8Array | CryptoKey | JWTVerifyGetKey | null,
    private readonly algorithms: string[],
    private readonly opts: AuthOptions,
    private readonly anon: Grants | null,
  ) {}

  /** Builds an authenticator; an empty options object means "no auth: open". */
  static async create(opts: AuthOptions = {}): Promise<Authenticator> {
    const configured = [opts.secret, opts.publicKey, opts.jwks].filter((x) => x !== undefined).length;
    if (configured > 1) {
      const which = opts.secret !== undefined ? (opts.publicKey !== undefined ? 'auth.publicKey' : 'auth.jwks') : 'auth.jwks';
      throw new OptionError(`options.${which}: configure only one of auth.secret, auth.publicKey or auth.jwks`, which);
    }
    let key: Uint8Array | CryptoKey | JWTVerifyGetKey | null = null;
    let algorithms: string[] = [];
    if (opts.secret !== undefined) {
      const secret = typeof opts.secret === 'string' ? readMaybeFile(opts.secret, 'auth.secret').replace(/\r?\n$/, '') : opts.secret;
      if (typeof secret !== 'string' || secret.length < 32) {
        throw new OptionError('options.auth.secret must be a string of at least 32 characters (HS256)', 'auth.secret');
      }
      key = new TextEncoder().encode(secret);
      algorithms = ['HS256'];
    } else if (opts.publicKey !== undefined) {
      const pem = readMaybeFile(opts.publicKey, 'auth.publicKey');
      algorithms = [];
      for (const alg of ['RS256', 'ES256'] as const) {
        try {
          key = await importSPKI(pem, alg);
          algorithms = [alg];
          break;
        } catch {
          // try the next algorithm
        }
      }
      if (!key) throw new OptionError('options.auth.publicKey is not a PEM (SPKI) RSA or P-256 public key', 'auth.publicKey');
    } else if (opts.jwks !== undefined) {
      let set: JSONWebKeySet;
      try {
        set = typeof opts.jwks === 'string' ? (JSON.parse(readMaybeFile(opts.jwks, 'auth.jwks')) as JSONWebKeySet) : opts.jwks;
      } catch (err) {
        if (err instanceof OptionError) throw err;
        throw new OptionError(`options.auth.jwks is not valid JSON: ${(err as Error).message}`, 'auth.jwks', { cause: err });
      }
      if (!set || !Array.isArray(set.keys) || set.keys.length === 0) throw new OptionError('options.auth.jwks must be a JWKS with at least one key: {"keys": [...]}', 'auth.jwks');
      try {
        key = createLocalJWKSet(set);
      } catch (err) {
        throw new OptionError(`options.auth.jwks: ${(err as Error).message}`, 'auth.jwks', { cause: err });
      }
      algorithms = ['RS256', 'ES256'];
    }
    let anon: Grants | null = null;
    if (!key || opts.anonymous) {
      // No key at all: open (anyone may subscribe and publish; the server then
      // answers loopback only). Anonymous access next to a key is read-only
      // unless anonymousGrants say otherwise; so is anonymous mode without a key.
      const g = opts.anonymousGrants;
      let grants: { subscribe: TopicPattern[]; publish: TopicPattern[]; serve: TopicPattern[]; request: TopicPattern[] };
      try {
        grants = {
          subscribe: patterns(g?.subscribe ?? ['>'], 'subscribe'),
          publish: patterns(g?.publish ?? [], 'publish'),
          serve: patterns(g?.serve ?? [], 'serve'),
          request: patterns(g?.request ?? [], 'request'),
        };
      } catch (err) {
        throw new OptionError(`options.auth.anonymousGrants: ${(err as Error).message}`, 'auth.anonymousGrants', { cause: err });
      }
      anon = key || opts.anonymous ? { subject: 'anonymous', ...grants, expiresAt: null } : OPEN_GRANTS;
    }
    return new Authenticator(key, algorithms, opts, anon);
  }

  /** True when tokens are checked (some key is configured). */
  get enabled(): boolean {
    return this.key !== null;
  }

  /** Grants for a connection without a token, or null when one is required. */
  get anonymous(): Grants | null {
    return this.anon;
  }

  /** Verifies a token; throws UNAUTHORIZED saying why (expired, bad signature, `alg: none`, …). */
  async verify(token: string): Promise<Grants> {
    // No key: tokens mean nothing, and must not lift anonymous (read-only) grants.
    // A copy, so that a connection that brought a token is told from one that
    // did not (Sessions.holdsToken: its next token Hello is a refresh, answered).
    if (!this.key) return { ...(this.anon ?? OPEN_GRANTS) };
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        ...(this.opts.issuer ? { issuer: this.opts.issuer } : {}),
        ...(this.opts.audience ? { audience: this.opts.audience } : {}),
      });
      payload = r.payload;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const why =
        code === 'ERR_JWT_EXPIRED'
          ? 'the token has expired'
          : code === 'ERR_JOSE_ALG_NOT_ALLOWED'
            ? `the token's algorithm is not accepted (use ${this.algorithms.join(' or ')})`
            : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
              ? 'the token signature does not verify'
              : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
                ? `a token claim is not valid (${(err as Error).message})`
                : `the token is not valid (${(err as Error).message})`;
      throw new TickfanError(ErrorCode.UNAUTHORIZED, why, { cause: err });
    }
    return {
      subject: typeof payload.sub === 'string' ? payload.sub : 'unknown',
      subscribe: patterns(payload.subscribe, 'subscribe'),
      publish: patterns(payload.publish, 'publish'),
      serve: patterns(payload.serve, 'serve'),
      request: patterns(payload.request, 'request'),
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
    };
  }
}

/** True when every topic `inner` can match is matched by `outer` (pattern containment). */
export function patternWithin(inner: TopicPattern, outer: TopicPattern): boolean {
  // On the parsed levels (a trailing `>` apart), without splitting either source.
  const p = inner.parts;
  const g = outer.parts;
  if (g.length > p.length) return false;
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== '*' && p[i] !== g[i]) return false;
  }
  // Past outer's levels: its `>` takes one or more further levels of inner's
  // (a level or inner's own `>`); without one, inner must end there too.
  return outer.trailing ? p.length > g.length || inner.trailing : p.length === g.length && !inner.trailing;
}

export function maySubscribe(grants: Grants, pattern: TopicPattern): boolean {
  return grants.subscribe.some((g) => patternWithin(pattern, g));
}

export function mayPublish(grants: Grants, topic: string): boolean {
  return grants.publish.some((g) => g.matches(topic));
}

/** May answer every service `pattern` names. */
export function mayServe(grants: Grants, pattern: TopicPattern): boolean {
  return grants.serve.some((g) => patternWithin(pattern, g));
}

export function mayRequest(grants: Grants, service: string): boolean {
  return grants.request.some((g) => g.matches(service));
}
