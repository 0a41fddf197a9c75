// mintToken (what `tickfan token` prints) against the server's own verifier
// (Authenticator): HS256 secrets, RS256 / ES256 PKCS#8 keys, grants, lifetimes,
// issuer and audience; and every option that would give a token the server
// refuses is refused with the option named.

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/server/auth.js';
import { DEFAULT_TTL_SEC, TokenOptionError, mintToken, parseTtl } from '../../src/token.js';

const SECRET = 'unit-test-secret-of-32-characters!!';

type Pem = { publicKey: string; privateKey: string };

function pair(type: 'rsa' | 'ec' | 'ed25519', opts: { modulusLength?: number; namedCurve?: string; privateType?: 'pkcs8' | 'pkcs1' | 'sec1'; passphrase?: string } = {}): Pem {
  const encoding = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: opts.privateType ?? 'pkcs8', format: 'pem', ...(opts.passphrase ? { cipher: 'aes-256-cbc', passphrase: opts.passphrase } : {}) },
  } as const;
  if (type === 'rsa') return generateKeyPairSync('rsa', { modulusLength: opts.modulusLength ?? 2048, ...encoding }) as unknown as Pem;
  if (type === 'ec') return generateKeyPairSync('ec', { namedCurve: opts.namedCurve ?? 'P-256', ...encoding }) as unknown as Pem;
  return generateKeyPairSync('ed25519', encoding) as unknown as Pem;
}

const rsa = pair('rsa');
const ec = pair('ec');

/** The TokenOptionError a mint throws (fails the test when it does not throw one). */
async function refusal(p: Promise<unknown>): Promise<TokenOptionError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenOptionError);
  return err as TokenOptionError;
}

const grants = { subscribe: ['px.*', 'fx.>'], publish: ['px.DESK42'], serve: ['orders.*'], request: ['orders.>'] };

describe('mintToken: signed tokens the server accepts', () => {
  it('HS256: the server with that secret verifies it and reads exactly the grants, subject and expiry', async () => {
    const now = Date.now();
    const jwt = await mintToken({ secret: SECRET, sub: 'desk-42', ...grants, ttl: '2h', now });
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'HS256', typ: 'JWT' });
    const g = await (await Authenticator.create({ secret: SECRET })).verify(jwt);
    expect(g.subject).toBe('desk-42');
    expect(g.subscribe.map((p) => p.source)).toEqual(['px.*', 'fx.>']);
    expect(g.publish.map((p) => p.source)).toEqual(['px.DESK42']);
    expect(g.serve.map((p) => p.source)).toEqual(['orders.*']);
    expect(g.request.map((p) => p.source)).toEqual(['orders.>']);
    const iat = Math.floor(now / 1000);
    expect(decodeJwt(jwt)).toMatchObject({ iat, exp: iat + 7200, sub: 'desk-42' });
    expect(g.expiresAt).toBe((iat + 7200) * 1000);
  });

  it('another secret does not verify it', async () => {
    const jwt = await mintToken({ secret: SECRET, sub: 'x', subscribe: ['>'] });
    await expect((await Authenticator.create({ secret: `${SECRET}-other` })).verify(jwt)).rejects.toThrow(/signature does not verify/);
  });

  it('a grant left out is absent from the token and grants nothing; duplicates are written once', async () => {
    const jwt = await mintToken({ secret: SECRET, sub: 'reader', subscribe: ['px.*', 'px.*'] });
    const claims = decodeJwt(jwt);
    expect(claims.subscribe).toEqual(['px.*']);
    for (const c of ['publish', 'serve', 'request']) expect(claims).not.toHaveProperty(c);
    const g = await (await Authenticator.create({ secret: SECRET })).verify(jwt);
    expect([g.publish, g.serve, g.request]).toEqual([[], [], []]);
  });

  it('a secret with one trailing newline (a secret file) signs as the server reads that file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickfan-mint-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
    const jwt = await mintToken({ secret: `${SECRET}\n`, sub: 'x', subscribe: ['>'] });
    await expect((await Authenticator.create({ secret: `@${join(dir, 'secret')}` })).verify(jwt)).resolves.toMatchObject({ subject: 'x' });
    await expect((await Authenticator.create({ secret: SECRET })).verify(jwt)).resolves.toMatchObject({ subject: 'x' });
  });

  it.each([
    ['RS256', rsa, ec],
    ['ES256', ec, rsa],
  ] as const)('%s: a PKCS#8 private key signs it; the server with the SPKI public key verifies it, another key does not', async (alg, keys, other) => {
    const jwt = await mintToken({ privateKey: keys.privateKey, sub: 'svc', ...grants, ttl: '15m' });
    expect(decodeProtectedHeader(jwt).alg).toBe(alg);
    const g = await (await Authenticator.create({ publicKey: keys.publicKey })).verify(jwt);
    expect(g.subject).toBe('svc');
    expect(g.serve.map((p) => p.source)).toEqual(['orders.*']);
    expect(g.request.map((p) => p.source)).toEqual(['orders.>']);
    await expect((await Authenticator.create({ publicKey: other.publicKey })).verify(jwt)).rejects.toThrow(/algorithm is not accepted|signature does not verify/);
    await expect((await Authenticator.create({ secret: SECRET })).verify(jwt)).rejects.toThrow(/algorithm is not accepted/);
  });

  it('issuer and audience: a server that requires them accepts the token that has them, refuses one without', async () => {
    const auth = await Authenticator.create({ secret: SECRET, issuer: 'desk-auth', audience: 'md' });
    const good = await mintToken({ secret: SECRET, sub: 'x', subscribe: ['>'], issuer: 'desk-auth', audience: 'md' });
    expect(decodeJwt(good)).toMatchObject({ iss: 'desk-auth', aud: 'md' });
    await expect(auth.verify(good)).resolves.toMatchObject({ subject: 'x' });
    await expect(auth.verify(await mintToken({ secret: SECRET, sub: 'x', subscribe: ['>'] }))).rejects.toThrow(/claim/);
    await expect(auth.verify(await mintToken({ secret: SECRET, sub: 'x', subscribe: ['>'], issuer: 'desk-auth', audience: 'other' }))).rejects.toThrow(/claim/);
  });

  it('expired: a token minted an hour and a second ago with ttl 1h is refused as expired', async () => {
    const jwt = await mintToken({ secret: SECRET, sub: 'x', subscribe: ['>'], now: Date.now() - 3601_000 });
    await expect((await Authenticator.create({ secret: SECRET })).verify(jwt)).rejects.toThrow(/expired/);
  });

  it(`lifetime defaults to ${DEFAULT_TTL_SEC} s`, async () => {
    const c = decodeJwt(await mintToken({ secret: SECRET, sub: 'x' }));
    expect(c.exp! - c.iat!).toBe(DEFAULT_TTL_SEC);
  });
});

describe('parseTtl', () => {
  it.each([
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['2d', 172_800],
    [' 8h ', 28_800],
    [45, 45],
    ['3650d', 3650 * 86_400],
  ] as const)('%j is %d s', (ttl, sec) => expect(parseTtl(ttl)).toBe(sec));

  it.each(['1w', '1.5h', '0s', '', 'h', '-1h', '90', '1h30m', '3651d', 0, -5, 1.5])('%j is refused, naming ttl', (ttl) => {
    expect(() => parseTtl(ttl)).toThrow(TokenOptionError);
    try {
      parseTtl(ttl);
    } catch (err) {
      expect((err as TokenOptionError).option).toBe('ttl');
    }
  });
});

describe('mintToken: options that would give a token the server refuses', () => {
  it('a secret shorter than 32 characters (after its trailing newline), and 32 exactly is fine', async () => {
    const e = await refusal(mintToken({ secret: 'x'.repeat(31), sub: 'x' }));
    expect(e.option).toBe('secret');
    expect(e.problem).toMatch(/at least 32 characters.*it has 31/);
    expect((await refusal(mintToken({ secret: `${'x'.repeat(31)}\n`, sub: 'x' }))).problem).toMatch(/it has 31/);
    await expect(mintToken({ secret: 'x'.repeat(32), sub: 'x' })).resolves.toMatch(/^ey/);
  });

  it('both a secret and a key, or neither', async () => {
    expect((await refusal(mintToken({ secret: SECRET, privateKey: ec.privateKey, sub: 'x' }))).problem).toMatch(/either a secret .* or a private key/);
    expect((await refusal(mintToken({ sub: 'x' }))).problem).toMatch(/either a secret/);
  });

  it('no subject', async () => {
    expect((await refusal(mintToken({ secret: SECRET, sub: ' ' }))).option).toBe('sub');
  });

  it.each([
    ['subscribe', 'px.>.x', /">" may only be the last level/],
    ['publish', 'px..DESK', /level "" must be/],
    ['serve', 'orders.a b', /level "a b" must be/],
    ['request', '', /empty pattern/],
    ['subscribe', 'x'.repeat(257), /limit is 256/],
  ] as const)('a bad %s pattern %j, with the protocol\'s reason', async (claim, pattern, why) => {
    const e = await refusal(mintToken({ secret: SECRET, sub: 'x', [claim]: ['ok.*', pattern] }));
    expect(e.option).toBe(claim);
    expect(e.problem).toMatch(why);
  });

  it.each([
    ['a PKCS#1 RSA key', () => pair('rsa', { privateType: 'pkcs1' }).privateKey, /PKCS#1 .*openssl pkcs8 -topk8/],
    ['a SEC1 EC key', () => pair('ec', { privateType: 'sec1' }).privateKey, /SEC1 .*openssl pkcs8 -topk8/],
    ['an encrypted key', () => pair('ec', { passphrase: 'pw' }).privateKey, /encrypted.*openssl pkcs8 -in/],
    ['a P-384 key', () => pair('ec', { namedCurve: 'P-384' }).privateKey, /curve secp384r1; ES256 needs P-256/],
    ['a 1024-bit RSA key', () => pair('rsa', { modulusLength: 1024 }).privateKey, /1024-bit RSA key; RS256 needs at least 2048/],
    ['an Ed25519 key', () => pair('ed25519').privateKey, /ed25519 key; tickfan tokens are RS256 .* or ES256/],
    ['a public key', () => ec.publicKey, /public key: tokens are signed with the private key/],
    ['a file name without @', () => 'key.pem', /not a PEM key .*write @path/],
    ['a damaged PEM', () => '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /cannot be read as a PKCS#8 private key/],
  ])('%s', async (_label, key, why) => {
    const e = await refusal(mintToken({ privateKey: key(), sub: 'x' }));
    expect(e.option).toBe('privateKey');
    expect(e.problem).toMatch(why);
  });

  it('issuer or audience given empty', async () => {
    expect((await refusal(mintToken({ secret: SECRET, sub: 'x', issuer: '' }))).option).toBe('issuer');
    expect((await refusal(mintToken({ secret: SECRET, sub: 'x', audience: '' }))).option).toBe('audience');
  });
});
