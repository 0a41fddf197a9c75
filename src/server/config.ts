// Configuration from a file (JSON or YAML), the environment and flags — later
// sources win — checked before the server starts, with messages that name the
// bad setting and where it came from.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { OptionError, type ServerOptions } from './options.js';

export type Config = Partial<ServerOptions> & { demo?: { rate?: number; symbols?: number } | boolean };

/** Environment variables tickfan reads: name → option path and type. */
export const ENV_SETTINGS: Record<string, [path: string, type: 'int' | 'string' | 'bool' | 'list']> = {
  TICKFAN_PORT: ['port', 'int'],
  TICKFAN_HOST: ['host', 'string'],
  TICKFAN_HEARTBEAT_MS: ['heartbeatMs', 'int'],
  TICKFAN_RATE_TIERS: ['rateTiers', 'list'],
  TICKFAN_HISTORY: ['limits.historySize', 'int'],
  TICKFAN_MAX_CONNECTIONS: ['maxConnections', 'int'],
  TICKFAN_MAX_CONNECTIONS_PER_IP: ['maxConnectionsPerIp', 'int'],
  TICKFAN_ALLOWED_ORIGINS: ['allowedOrigins', 'list'],
  TICKFAN_AUTH_SECRET: ['auth.secret', 'string'],
  TICKFAN_AUTH_PUBLIC_KEY: ['auth.publicKey', 'string'],
  TICKFAN_AUTH_JWKS: ['auth.jwks', 'string'],
  TICKFAN_AUTH_ANONYMOUS: ['auth.anonymous', 'bool'],
  TICKFAN_LOG_LEVEL: ['logLevel', 'string'],
};

function convert(raw: string, type: 'int' | 'string' | 'bool' | 'list', where: string): unknown {
  switch (type) {
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new OptionError(`${where} must be an integer (got "${raw}")`);
      return n;
    }
    case 'bool':
      if (!['true', 'false', '1', '0'].includes(raw)) throw new OptionError(`${where} must be true or false (got "${raw}")`);
      return raw === 'true' || raw === '1';
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : s));
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]!] = value;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && old && typeof old === 'object' && !Array.isArray(old)
        ? merge(old as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Reads a JSON or YAML config file (by extension; `.yml`/`.yaml` are YAML). */
export function readConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new OptionError(`config file ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new OptionError(`config file ${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new OptionError(`config file ${path} must hold an object of settings`);
  return data as Config;
}

/** Settings from the environment (see ENV_SETTINGS). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [name, [path, type]] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(out, path, convert(raw, type, `environment variable ${name}`));
  }
  return out as Config;
}

/** file < environment < flags. */
export function mergeConfig(...layers: Config[]): Config {
  return layers.reduce<Record<string, unknown>>((acc, l) => merge(acc, l as Record<string, unknown>), {}) as Config;
}
