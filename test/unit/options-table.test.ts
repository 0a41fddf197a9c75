// The option table (src/server/option-table.ts) is the one description of every
// setting: these tests check that validation, the environment and flag layers,
// `serve --help` and the configuration reference (docs/configuration.md) all follow it.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_LIMITS } from '../../src/engine/index.js';
import { SETTINGS, envLayer, flagsLayer, resolveConfig } from '../../src/server/config.js';
import { optionsMarkdown, serveOptionsHelp } from '../../src/server/option-docs.js';
import { DEMO_OPTION, OPTION_ENTRIES, SERVER_OPTION_TABLE, type OptionEntry } from '../../src/server/option-table.js';
import { DEFAULT_OPTIONS, OptionError, resolveOptions } from '../../src/server/options.js';

const CONFIG_DOC = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));
const SECURITY_DOC = fileURLToPath(new URL('../../docs/security.md', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** README.md and every page of docs/. */
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const CLI_DIR = fileURLToPath(new URL('../../src/cli', import.meta.url));
const BEGIN = /<!-- options:begin[^>]*-->\n/;
const END = '<!-- options:end -->';

/** `{a: {b: v}}` for path `a.b`. */
function at(path: string, v: unknown): Record<string, unknown> {
  return path
    .split('.')
    .reverse()
    .reduce<unknown>((inner, k) => ({ [k]: inner }), v) as Record<string, unknown>;
}

/**
 * Validates one setting the way `tickfan serve` would (server options and the
 * demo feed alike). The hard cap is raised to its maximum so that the slow
 * threshold, which must not pass it, can be tried at its own maximum.
 */
function check(e: OptionEntry, v: unknown): void {
  resolveConfig([{ config: { hardCapBytes: 2 ** 31, ...at(e.path, v) }, names: new Map() }]);
}

function refusal(f: () => unknown): OptionError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(OptionError);
    return err as OptionError;
  }
  throw new Error('expected an OptionError');
}

describe('the option table', () => {
  it('covers the engine limits and gives the same defaults as DEFAULT_OPTIONS', () => {
    expect(SERVER_OPTION_TABLE.limits.type === 'group' && Object.keys(SERVER_OPTION_TABLE.limits.fields)).toEqual(Object.keys(DEFAULT_ENGINE_LIMITS));
    expect(DEFAULT_OPTIONS.limits).toEqual(DEFAULT_ENGINE_LIMITS);
    expect(DEFAULT_OPTIONS).toMatchObject({ port: 8080, rateTiers: [50, 10, 4, 1], auth: {}, allowedOrigins: [] });
    expect(Object.keys(DEFAULT_OPTIONS)).toEqual(Object.keys(SERVER_OPTION_TABLE).filter((k) => k !== 'log'));
  });

  it('has flags and environment variables in pairs, each name used once', () => {
    const withFlag = OPTION_ENTRIES.filter((e) => e.flag || e.env);
    for (const e of withFlag) {
      expect(e.flag, e.path).toMatch(/^[a-z][a-z-]*$/);
      expect(e.env, e.path).toMatch(/^TICKFAN_[A-Z_]+$/);
    }
    expect(new Set(withFlag.map((e) => e.flag)).size).toBe(withFlag.length);
    expect(new Set(withFlag.map((e) => e.env)).size).toBe(withFlag.length);
    expect(SETTINGS.map((s) => s.path)).toEqual(withFlag.map((e) => e.path));
  });

  it('every default passes its own check', () => {
    for (const e of OPTION_ENTRIES) if (e.default !== undefined) expect(() => check(e, e.default), e.path).not.toThrow();
    expect(() => resolveOptions({ log: () => {} })).not.toThrow();
  });

  it.each(OPTION_ENTRIES.filter((e) => e.type === 'int').map((e) => [e.path, e] as const))('%s: its bounds from the table decide what is refused', (path, e) => {
    if (e.type !== 'int') return;
    const min = typeof e.min === 'string' ? (DEFAULT_OPTIONS as unknown as Record<string, number>)[e.min]! : e.min;
    for (const v of [min, e.max]) expect(() => check(e, v), `${path} = ${v}`).not.toThrow();
    for (const v of [min - 1, e.max + 1, 1.5, '1']) {
      const err = refusal(() => check(e, v));
      expect(err.option).toBe(path);
      expect(err.message).toContain(`options.${path} must be an integer between ${min} and ${e.max}`);
    }
  });

  it.each(OPTION_ENTRIES.filter((e) => e.type === 'bool' || e.type === 'enum' || e.type === 'string').map((e) => [e.path, e] as const))('%s: a value of the wrong type is refused, naming it', (path, e) => {
    const err = refusal(() => check(e, e.type === 'bool' ? 'yes' : e.type === 'enum' ? 'nonsense' : ''));
    expect(err.option).toBe(path);
    expect(err.message).toMatch(new RegExp(`^options\\.${path.replace('.', '\\.')} must be `));
  });

  it('groups refuse keys the table does not list, naming the ones it does', () => {
    expect(refusal(() => resolveOptions({ limits: { maxTopic: 1 } as never, log: () => {} })).message).toBe(
      `options.limits.maxTopic is not a tickfan option (known: ${Object.keys(DEFAULT_ENGINE_LIMITS).join(', ')})`,
    );
    expect(refusal(() => resolveOptions({ auth: { key: 'x' } as never, log: () => {} })).message).toMatch(/^options\.auth\.key is not a tickfan option \(known: secret, publicKey, jwks, /);
    expect(refusal(() => check(OPTION_ENTRIES.find((e) => e.path === 'demo.rate')!, 0)).option).toBe('demo.rate');
    expect(Object.keys(DEMO_OPTION.fields)).toEqual(['enabled', 'rate', 'symbols']);
  });

  it('every environment variable and flag of the table reaches its option', () => {
    const sample = (e: OptionEntry) => (e.type === 'int' ? '42' : e.type === 'bool' ? 'true' : e.type === 'numbers' ? '5,1' : e.type === 'list' ? 'https://a.example' : 'x');
    const parsed = (e: OptionEntry) => (e.type === 'int' ? 42 : e.type === 'bool' ? true : e.type === 'numbers' ? [5, 1] : e.type === 'list' ? ['https://a.example'] : 'x');
    for (const e of OPTION_ENTRIES.filter((x) => x.env)) {
      expect(envLayer({ [e.env!]: sample(e) }).config, e.env).toEqual(at(e.path, parsed(e)));
      expect(flagsLayer({ [e.flag!]: e.type === 'bool' ? true : sample(e) }).config, e.flag).toEqual(at(e.path, parsed(e)));
    }
  });
});

describe('what people read', () => {
  it('`tickfan serve --help` has a line per flag with its environment variable, then the file-only settings', () => {
    const help = serveOptionsHelp();
    for (const e of OPTION_ENTRIES.filter((x) => x.flag)) expect(help).toMatch(new RegExp(`^  --${e.flag}\\b.*\\b${e.env}\\]$`, 'm'));
    const fileOnly = /config file only: (.*)$/m.exec(help)?.[1]?.split(', ');
    expect(fileOnly).toEqual(OPTION_ENTRIES.filter((e) => !e.flag && e.type !== 'function').map((e) => e.path));
  });

  it('the configuration doc\'s table is the one the option table makes (TICKFAN_UPDATE_DOCS=1 rewrites it)', () => {
    const text = readFileSync(CONFIG_DOC, 'utf8');
    const begin = BEGIN.exec(text);
    const end = text.indexOf(END);
    expect(begin && end > begin.index, 'docs/configuration.md has the <!-- options:begin --> … <!-- options:end --> markers').toBe(true);
    const from = begin!.index + begin![0].length;
    const want = `${optionsMarkdown()}\n`;
    // TICKFAN_UPDATE_README is the name this switch had while the table lived in the README.
    const update = process.env.TICKFAN_UPDATE_DOCS === '1' || process.env.TICKFAN_UPDATE_README === '1';
    if (update && text.slice(from, end) !== want) writeFileSync(CONFIG_DOC, text.slice(0, from) + want + text.slice(end));
    else expect(text.slice(from, end), 'docs/configuration.md is out of date: run TICKFAN_UPDATE_DOCS=1 npx vitest run test/unit/options-table.test.ts').toBe(want);
  });

  it('the limits table (docs/security.md) names the flag and environment variable the option table gives', () => {
    const text = readFileSync(SECURITY_DOC, 'utf8');
    const from = text.indexOf('\n## Limits\n');
    expect(from).toBeGreaterThan(-1);
    const next = text.indexOf('\n## ', from + 1);
    const limits = text.slice(from, next === -1 ? undefined : next);
    const byPath = new Map(OPTION_ENTRIES.map((e) => [e.path, e]));
    let rows = 0;
    for (const line of limits.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      const path = /^`([\w.]+)`$/.exec(cells[2] ?? '')?.[1];
      const e = path ? byPath.get(path) : undefined;
      if (!e) continue;
      rows++;
      expect(cells[3], path).toBe(e.flag ? `\`--${e.flag}\` / \`${e.env}\`` : '—');
    }
    expect(rows).toBeGreaterThan(10);
  });

  it('every TICKFAN_* setting the README and docs/ mention is in the option table', () => {
    // Besides the server's settings: the variables the command line reads itself (TICKFAN_URL, TICKFAN_TOKEN, …).
    const cliEnv = [...readdirSync(CLI_DIR)].flatMap((f) => [...readFileSync(join(CLI_DIR, f), 'utf8').matchAll(/process\.env\.(TICKFAN_[A-Z_]+)/g)].map((m) => m[1]!));
    const known = new Set([...OPTION_ENTRIES.map((e) => e.env), 'TICKFAN_CONFIG', 'TICKFAN_QUIET', 'TICKFAN_UPDATE_DOCS', ...cliEnv]);
    for (const doc of DOCS) {
      const named = [...readFileSync(join(ROOT, doc), 'utf8').matchAll(/\bTICKFAN_[A-Z_]*[A-Z]\b/g)].map((m) => m[0]).filter((n) => !n.startsWith('TICKFAN_ERR_'));
      expect(named.filter((n) => !known.has(n)), doc).toEqual([]);
    }
  });
});
