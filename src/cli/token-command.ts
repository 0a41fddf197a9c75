// `tickfan token`: mints a signed connection token with the grants asked for
// (src/token.ts does the signing), printing the token alone on stdout.

import { decodeJwt, decodeProtectedHeader } from 'jose';
import { readFileSync } from 'node:fs';
import { GRANT_CLAIMS, TokenOptionError, mintToken, type MintOptions } from '../token.js';
import { commandHelp, fail, parse, usage } from './usage.js';

function readValue(flag: string, v: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8');
  } catch (err) {
    fail(`token: --${flag}: cannot read ${v.slice(1)}: ${(err as Error).message}`);
  }
}

const TOKEN_FLAG: Record<string, string> = { secret: 'secret', privateKey: 'private-key', sub: 'sub', ttl: 'ttl', issuer: 'issuer', audience: 'audience' };

export async function token(argv: string[]): Promise<void> {
  const patternFlag = { type: 'string', multiple: true } as const;
  const { values, positionals } = parse('token', {
    args: argv,
    allowPositionals: true,
    options: {
      secret: { type: 'string' },
      'private-key': { type: 'string' },
      sub: { type: 'string' },
      subscribe: patternFlag,
      publish: patternFlag,
      serve: patternFlag,
      request: patternFlag,
      ttl: { type: 'string' },
      issuer: { type: 'string', default: process.env.TICKFAN_AUTH_ISSUER },
      audience: { type: 'string', default: process.env.TICKFAN_AUTH_AUDIENCE },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(commandHelp('token'));
  if (positionals.length) usage('token', `unexpected argument "${positionals[0]}" (every setting is a flag, e.g. --sub ${positionals[0]})`);
  if (values.secret !== undefined && values['private-key'] !== undefined) usage('token', 'give --secret (HS256) or --private-key (RS256 / ES256), not both');
  // The server's own setting, when it is in the environment and no flag says otherwise.
  const secret = values.secret ?? (values['private-key'] === undefined ? process.env.TICKFAN_AUTH_SECRET : undefined);
  if (secret === undefined && values['private-key'] === undefined) {
    usage('token', 'needs --secret SECRET|@file (HS256, the server\'s auth.secret) or --private-key @key.pem (RS256 / ES256)');
  }
  if (values.sub === undefined) usage('token', 'needs --sub NAME: who the token is for (logged by the server, shown to responders as the requester)');
  const grants: Partial<Record<(typeof GRANT_CLAIMS)[number], string[]>> = {};
  for (const c of GRANT_CLAIMS) {
    const given = values[c];
    if (given !== undefined) grants[c] = given.flatMap((v) => v.split(',')).map((p) => p.trim());
  }
  const opts: MintOptions = {
    sub: values.sub,
    ...grants,
    ...(secret !== undefined ? { secret: readValue('secret', secret) } : { privateKey: readValue('private-key', values['private-key']!) }),
    ...(values.ttl !== undefined ? { ttl: values.ttl } : {}),
    ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
    ...(values.audience !== undefined ? { audience: values.audience } : {}),
  };
  let jwt: string;
  try {
    jwt = await mintToken(opts);
  } catch (err) {
    if (!(err instanceof TokenOptionError)) throw err;
    const flag = TOKEN_FLAG[err.option] ?? err.option;
    fail(`token: --${flag}: ${err.problem}`);
  }
  console.log(jwt);
  const { alg } = decodeProtectedHeader(jwt);
  const { exp } = decodeJwt(jwt);
  const granted = GRANT_CLAIMS.map((c) => `${c} ${grants[c]?.length ? grants[c]!.join(',') : '-'}`).join('; ');
  console.error(`tickfan: ${alg} token for "${values.sub}", expires ${new Date(exp! * 1000).toISOString().replace('.000Z', 'Z')}; ${granted}`);
  if (!GRANT_CLAIMS.some((c) => grants[c]?.length)) console.error('tickfan: note: this token grants nothing (no --subscribe, --publish, --serve or --request)');
}
