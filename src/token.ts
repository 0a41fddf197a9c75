// Minting connection tokens (what `tickfan token` prints): a JWT with the
// grants the server checks (`subscribe`, `publish`, `serve`, `request`: arrays
// of topic patterns), signed HS256 with a shared secret or RS256 / ES256 with
// a PKCS#8 private key. The counterpart of server/auth.ts, which verifies
// them; no file or argv handling here (the CLI reads `@file` values).

import { createPrivateKey } from 'node:crypto';
import { SignJWT, importPKCS8, type CryptoKey } from 'jose';
import { TopicPattern } from './protocol/index.js';

/** The grant claims, in the order they are written and checked. */
export const GRANT_CLAIMS = ['subscribe', 'publish', 'serve', 'request'] as const;
export type GrantClaim = (typeof GRANT_CLAIMS)[number];

export interface MintOptions {
  /** HS256 shared secret (at least 32 characters; one trailing newline is dropped, as the server does). */
  secret?: string;
  /** PEM PKCS#8 private key: RSA (≥ 2048 bits) signs RS256, EC P-256 signs ES256. */
  privateKey?: string;
  /** The token's subject: the identity the server logs and responders see as the requester. */
  sub: string;
  /** Topic patterns per grant; a grant left out grants nothing. */
  subscribe?: readonly string[];
  publish?: readonly string[];
  serve?: readonly string[];
  request?: readonly string[];
  /** Lifetime: seconds, or "30s", "15m", "1h", "2d". Default 1 hour. */
  ttl?: number | string;
  /** `iss` and `aud` claims (for servers configured with auth.issuer / auth.audience). */
  issuer?: string;
  audience?: string;
  /** Clock, ms since 1970 (tests). Default: now. */
  now?: number;
}

/** A mint option that cannot make a token the server would accept; `option` names it, `problem` says why. */
export class TokenOptionError extends Error {
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`${option}: ${problem}`);
    this.name = 'TokenOptionError';
  }
}

export const DEFAULT_TTL_SEC = 3600;
const UNIT_SEC = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
/** Ten years: past this a token is as good as one that never expires, and is more likely a typo. */
const MAX_TTL_SEC = 3650 * 86_400;

/** Seconds in a TTL such as "30s", "15m", "1h", "2d" (a whole number and one unit). */
export function parseTtl(ttl: string | number): number {
  let sec: number;
  if (typeof ttl === 'number') sec = ttl;
  else {
    const m = /^\s*(\d+)\s*([smhd])\s*$/.exec(ttl);
    if (!m) throw new TokenOptionError('ttl', `"${ttl}" is not a lifetime: write a whole number and a unit s, m, h or d (30s, 15m, 1h, 2d)`);
    sec = Number(m[1]) * UNIT_SEC[m[2] as keyof typeof UNIT_SEC];
  }
  if (!Number.isSafeInteger(sec) || sec < 1) throw new TokenOptionError('ttl', `must be at least 1 second (got ${JSON.stringify(ttl)})`);
  if (sec > MAX_TTL_SEC) throw new TokenOptionError('ttl', `must be at most 3650d (got ${JSON.stringify(ttl)})`);
  return sec;
}

/** Checks every pattern of one grant with the protocol's TopicPattern; returns them without duplicates. */
export function checkPatterns(claim: string, patterns: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    if (typeof p !== 'string' || p.trim() === '') throw new TokenOptionError(claim, 'an empty pattern (a stray comma?)');
    try {
      TopicPattern.parse(p);
    } catch (err) {
      throw new TokenOptionError(claim, (err as Error).message);
    }
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

const CONVERT = 'convert it to PKCS#8 with: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pkcs8.pem';

/** The signing key and algorithm of a PEM private key, or a TokenOptionError saying what to do instead. */
export async function signingKey(pem: string): Promise<{ key: CryptoKey; alg: 'RS256' | 'ES256' }> {
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  const problem = (why: string): TokenOptionError => new TokenOptionError('privateKey', why);
  switch (label) {
    case undefined:
      throw problem('is not a PEM key (expected "-----BEGIN PRIVATE KEY-----"; to read a file, write @path/to/key.pem)');
    case 'PRIVATE KEY':
      break;
    case 'RSA PRIVATE KEY':
      throw problem(`is a PKCS#1 RSA key (BEGIN RSA PRIVATE KEY); ${CONVERT}`);
    case 'EC PRIVATE KEY':
      throw problem(`is a SEC1 EC key (BEGIN EC PRIVATE KEY); ${CONVERT}`);
    case 'ENCRYPTED PRIVATE KEY':
      throw problem('is encrypted; write a decrypted copy with: openssl pkcs8 -in key.pem -out key.plain.pem');
    case 'PUBLIC KEY':
    case 'RSA PUBLIC KEY':
    case 'CERTIFICATE':
      throw problem(`is a ${label.toLowerCase()}: tokens are signed with the private key (the server takes the public key, --auth-public-key)`);
    default:
      throw problem(`is a PEM "${label}", not a PKCS#8 private key (BEGIN PRIVATE KEY)`);
  }
  let alg: 'RS256' | 'ES256';
  try {
    const k = createPrivateKey({ key: pem, format: 'pem' });
    const d = k.asymmetricKeyDetails ?? {};
    if (k.asymmetricKeyType === 'rsa') {
      if ((d.modulusLength ?? 0) < 2048) throw problem(`is a ${d.modulusLength}-bit RSA key; RS256 needs at least 2048 bits`);
      alg = 'RS256';
    } else if (k.asymmetricKeyType === 'ec') {
      if (d.namedCurve !== 'prime256v1') throw problem(`is an EC key on curve ${d.namedCurve}; ES256 needs P-256 (prime256v1)`);
      alg = 'ES256';
    } else {
      throw problem(`is an ${k.asymmetricKeyType} key; tickfan tokens are RS256 (RSA) or ES256 (EC P-256)`);
    }
  } catch (err) {
    if (err instanceof TokenOptionError) throw err;
    throw problem(`cannot be read as a PKCS#8 private key (${(err as Error).message})`);
  }
  try {
    return { key: await importPKCS8(pem, alg), alg };
  } catch (err) {
    throw problem(`cannot be used for ${alg} (${(err as Error).message})`);
  }
}

/**
 * A signed connection token with these grants. Throws TokenOptionError when
 * an option would give a token the server refuses (short secret, unusable
 * key, bad pattern or lifetime).
 * @example
 * const jwt = await mintToken({ secret, sub: 'desk-42', subscribe: ['px.*', 'fx.>'], publish: ['px.DESK42'], ttl: '8h' });
 */
export async function mintToken(o: MintOptions): Promise<string> {
  if ((o.secret === undefined) === (o.privateKey === undefined)) {
    throw new TokenOptionError('secret', 'give either a secret (HS256) or a private key (RS256 / ES256), not both and not neither');
  }
  if (typeof o.sub !== 'string' || o.sub.trim() === '') {
    throw new TokenOptionError('sub', 'is needed: the identity the server logs and shows responders as the requester');
  }
  const claims: Record<string, string[]> = {};
  for (const c of GRANT_CLAIMS) {
    const list = o[c];
    if (list !== undefined) claims[c] = checkPatterns(c, list);
  }
  const ttl = parseTtl(o.ttl ?? DEFAULT_TTL_SEC);
  for (const opt of ['issuer', 'audience'] as const) {
    if (o[opt] !== undefined && (typeof o[opt] !== 'string' || o[opt] === '')) throw new TokenOptionError(opt, 'must be a non-empty string');
  }

  let key: CryptoKey | Uint8Array;
  let alg: 'HS256' | 'RS256' | 'ES256';
  if (o.secret !== undefined) {
    // Exactly as server/auth.ts reads auth.secret, so both sides hold the same bytes.
    const raw: unknown = o.secret;
    const secret = typeof raw === 'string' ? raw.replace(/\r?\n$/, '') : raw;
    if (typeof secret !== 'string' || secret.length < 32) {
      throw new TokenOptionError('secret', `must be at least 32 characters for HS256${typeof secret === 'string' ? ` (it has ${secret.length})` : ''}`);
    }
    key = new TextEncoder().encode(secret);
    alg = 'HS256';
  } else {
    ({ key, alg } = await signingKey(o.privateKey!));
  }

  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).setSubject(o.sub).setIssuedAt(iat).setExpirationTime(iat + ttl);
  if (o.issuer !== undefined) jwt.setIssuer(o.issuer);
  if (o.audience !== undefined) jwt.setAudience(o.audience);
  return jwt.sign(key);
}
