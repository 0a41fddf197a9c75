// Configuration from a file (JSON or YAML), the environment and flags — later
// sources win — checked before the server starts, with messages that name the
// bad setting and where it came from.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEMO_OPTION, OPTION_ENTRIES, checkGroup, defaultOf, type OptionEntry } from './option-table.js';
import { OptionError, type DemoConfig, type ServerOptions } from './option-types.js';
import { resolveOptions } from './options.js';

export type { DemoConfig };

export type Config = Partial<ServerOptions> & { demo?: DemoConfig | boolean };

/** How a setting's text (environment variable, flag value) is read. */
type SettingType = 'int' | 'string' | 'bool' | 'list' | 'numbers';

/** One setting reachable from the environment and/or a flag. */
interface Setting {
  path: string;
  type: SettingType;
  env?: string;
  flag?: string;
}

function settingType(e: OptionEntry): SettingType {
  return e.type === 'int' || e.type === 'bool' || e.type === 'list' || e.type === 'numbers' ? e.type : 'string';
}

/** Every setting the environment and flags can carry (a config file can carry any option); from option-table.ts. */
export const SETTINGS: readonly Setting[] = OPTION_ENTRIES.filter((e) => e.env || e.flag).map((e) => ({
  path: e.path,
  type: settingType(e),
  ...(e.env ? { env: e.env } : {}),
  ...(e.flag ? { flag: e.flag } : {}),
}));

/** Environment variables tickfan reads: name → option path and type. */
export const ENV_SETTINGS: Record<string, [path: string, type: SettingType]> = Object.fromEntries(
  SETTINGS.filter((s) => s.env).map((s) => [s.env!, [s.path, s.type]]),
);

/** `node:util` parseArgs options for every setting flag (all strings but the booleans). */
export function flagSpec(): Record<string, { type: 'string' | 'boolean' }> {
  return Object.fromEntries(SETTINGS.filter((s) => s.flag).map((s) => [s.flag!, { type: s.type === 'bool' ? 'boolean' : 'string' }]));
}

function convert(raw: string, type: SettingType, where: string, path: string): unknown {
  switch (type) {
    case 'int': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isInteger(n)) throw new OptionError(`${where} must be an integer (got "${raw}")`, path);
      return n;
    }
    case 'bool':
      if (!['true', 'false', '1', '0'].includes(raw)) throw new OptionError(`${where} must be true or false (got "${raw}")`, path);
      return raw === 'true' || raw === '1';
    case 'numbers':
      return raw.split(',').map((s) => {
        const n = s.trim() === '' ? NaN : Number(s);
        if (!Number.isFinite(n)) throw new OptionError(`${where} must be a comma-separated list of numbers (got "${raw}")`, path);
        return n;
      });
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = isPlainObject(v) && isPlainObject(old) && k !== 'jwks' ? merge(old, v) : v;
  }
  return out;
}

/** Leaf paths of a config object (objects are walked, except a JWKS; arrays are leaves). */
function leaves(o: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v) && k !== 'jwks' && k !== 'anonymousGrants') out.push(...leaves(v, p));
    else out.push(p);
  }
  return out;
}

/** One source of settings and, per option path, how that source names it. */
export interface ConfigLayer {
  config: Config;
  names: Map<string, string>;
}

/** Reads a JSON or YAML config file (by extension; `.yml`/`.yaml` are YAML). */
export function readConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new OptionError(`config file ${path}: ${(err as Error).message}`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  let data: unknown;
  try {
    data = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new OptionError(`config file ${path} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (!isPlainObject(data)) throw new OptionError(`config file ${path} must hold an object of settings (got ${Array.isArray(data) ? 'a list' : typeof data})`);
  return data as Config;
}

/** A config file as a layer; `@relative/path` key files are taken relative to the file. */
export function fileLayer(path: string): ConfigLayer {
  const config = readConfigFile(path);
  const auth = config.auth as Record<string, unknown> | undefined;
  if (isPlainObject(auth)) {
    for (const k of ['secret', 'publicKey', 'jwks']) {
      const v = auth[k];
      if (typeof v === 'string' && v.startsWith('@') && !isAbsolute(v.slice(1))) auth[k] = `@${resolve(dirname(path), v.slice(1))}`;
    }
  }
  if (config.demo === true || config.demo === false) config.demo = { enabled: config.demo };
  else if (isPlainObject(config.demo) && config.demo.enabled === undefined) config.demo = { ...config.demo, enabled: true };
  const names = new Map(leaves(config as Record<string, unknown>).map((p) => [p, `${p} in config file ${path}`]));
  return { config, names };
}

/** Settings from the environment (see SETTINGS). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  return envLayer(env).config;
}

export function envLayer(env: NodeJS.ProcessEnv = process.env): ConfigLayer {
  const out: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const s of SETTINGS) {
    const raw = s.env ? env[s.env] : undefined;
    if (raw === undefined || raw === '') continue;
    const where = `environment variable ${s.env}`;
    setPath(out, s.path, convert(raw, s.type, where, s.path));
    names.set(s.path, where);
  }
  return { config: out as Config, names };
}

/** Settings from parsed flags (`parseArgs` values keyed by flag name). */
export function flagsLayer(values: Record<string, string | boolean | undefined>): ConfigLayer {
  const out: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const s of SETTINGS) {
    const raw = s.flag ? values[s.flag] : undefined;
    if (raw === undefined) continue;
    const where = `flag --${s.flag}`;
    setPath(out, s.path, typeof raw === 'boolean' ? raw : convert(raw, s.type, where, s.path));
    names.set(s.path, where);
  }
  return { config: out as Config, names };
}

/** file < environment < flags. */
export function mergeConfig(...layers: Config[]): Config {
  return layers.reduce<Record<string, unknown>>((acc, l) => merge(acc, l as Record<string, unknown>), {}) as Config;
}

/**
 * Adds to an OptionError the source of the setting it names (the last layer
 * that set it), e.g. `flag --port: options.port must be …`.
 */
export function explain(err: unknown, layers: readonly ConfigLayer[]): unknown {
  if (!(err instanceof OptionError) || !err.option) return err;
  const path = err.option;
  for (let i = layers.length - 1; i >= 0; i--) {
    for (const [p, name] of layers[i]!.names) {
      if (p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`)) {
        return new OptionError(`${name}: ${err.message}`, path, { cause: err });
      }
    }
  }
  return err;
}

export interface ResolvedConfig {
  /** Server options, validated (defaults not yet filled: pass to startServer). */
  options: Partial<ServerOptions>;
  /** The demo feed, or null when off. */
  demo: { rate: number; symbols: number } | null;
  layers: ConfigLayer[];
}

/**
 * Merges the layers (later wins) and validates the result as `startServer`
 * would; throws an OptionError naming the setting and its source.
 */
export function resolveConfig(layers: ConfigLayer[]): ResolvedConfig {
  try {
    const { demo: rawDemo, ...options } = mergeConfig(...layers.map((l) => l.config));
    let demo: ResolvedConfig['demo'] = null;
    if (rawDemo !== undefined) {
      checkGroup(DEMO_OPTION, 'demo', rawDemo, {}, true);
      // Like a server option, a demo setting given as undefined takes its default.
      const given = Object.fromEntries(Object.entries(rawDemo).filter(([, v]) => v !== undefined)) as DemoConfig;
      const d = { ...(defaultOf(DEMO_OPTION) as Required<DemoConfig>), ...given };
      checkGroup(DEMO_OPTION, 'demo', d, {});
      if (d.enabled) demo = { rate: d.rate, symbols: d.symbols };
    }
    // The demo serves its page unless told otherwise.
    if (demo && options.demoPage === undefined) options.demoPage = true;
    resolveOptions({ ...options, log: () => {} });
    return { options, demo, layers };
  } catch (err) {
    throw explain(err, layers);
  }
}

/** Everything `tickfan serve` reads: `--config` file (or TICKFAN_CONFIG), environment, flags. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, string | boolean | undefined> }): ResolvedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.TICKFAN_CONFIG || undefined);
  const layers: ConfigLayer[] = [];
  if (file) layers.push(fileLayer(file));
  layers.push(envLayer(env));
  if (opts.flags) layers.push(flagsLayer(opts.flags));
  return resolveConfig(layers);
}
