// Configuration parsing: JSON and YAML files, environment and flags, merged
// file < env < flags, every bad setting refused with its name and source.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_SETTINGS, SETTINGS, envLayer, fileLayer, flagsLayer, loadConfig, readConfigFile, resolveConfig } from '../../src/server/config.js';
import { DEFAULT_OPTIONS, OptionError, resolveOptions } from '../../src/server/options.js';

const dir = mkdtempSync(join(tmpdir(), 'tickfan-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(OptionError);
    expect((err as OptionError).code).toBe('TICKFAN_ERR_BAD_OPTION');
    return (err as Error).message;
  }
  throw new Error('expected an OptionError');
}

describe('config files', () => {
  it('reads JSON and YAML (by extension) into the same settings', () => {
    const json = readConfigFile(file('a.json', '{"port": 9000, "rateTiers": [10, 1], "limits": {"maxTopics": 5}, "auth": {"anonymous": true}}'));
    const yaml = readConfigFile(file('a.yaml', 'port: 9000\nrateTiers: [10, 1]\nlimits:\n  maxTopics: 5\nauth:\n  anonymous: true\n'));
    expect(yaml).toEqual(json);
    expect(readConfigFile(file('empty.yml', ''))).toEqual({});
  });

  it('names the file when it is missing, not JSON/YAML, or not an object', () => {
    expect(refusal(() => readConfigFile(join(dir, 'nope.json')))).toMatch(/config file .*nope\.json: ENOENT/);
    expect(refusal(() => readConfigFile(file('b.json', '{port: 1}')))).toMatch(/config file .*b\.json is not valid JSON/);
    expect(refusal(() => readConfigFile(file('b.yaml', 'a: [1,')))).toMatch(/config file .*b\.yaml is not valid YAML/);
    expect(refusal(() => readConfigFile(file('c.yaml', '- 1\n- 2\n')))).toMatch(/must hold an object of settings \(got a list\)/);
  });

  it('resolves @relative key paths next to the file, and demo: true', () => {
    const layer = fileLayer(file('d.yaml', 'auth:\n  publicKey: "@keys/pub.pem"\n  jwks: "@/abs/jwks.json"\ndemo: true\n'));
    expect(layer.config.auth).toEqual({ publicKey: `@${join(dir, 'keys/pub.pem')}`, jwks: '@/abs/jwks.json' });
    expect(layer.config.demo).toEqual({ enabled: true });
  });
});

describe('environment and flags', () => {
  it('every setting has an environment variable and a flag, with distinct names', () => {
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(new Set(SETTINGS.map((s) => s.flag)).size).toBe(SETTINGS.length);
    for (const s of SETTINGS) expect(s.env).toMatch(/^TICKFAN_[A-Z_]+$/);
    expect(ENV_SETTINGS.TICKFAN_MAX_CONNECTIONS_PER_IP).toEqual(['maxConnectionsPerIp', 'int']);
  });

  it('converts ints, booleans, lists and number lists', () => {
    const env = envLayer({
      TICKFAN_PORT: '9001',
      TICKFAN_AUTH_ANONYMOUS: 'true',
      TICKFAN_ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443',
      TICKFAN_RATE_TIERS: '20,5,0.5',
      TICKFAN_HISTORY: '32',
      TICKFAN_TOPIC_TTL_MS: '',
    }).config;
    expect(env).toEqual({
      port: 9001,
      auth: { anonymous: true },
      allowedOrigins: ['https://a.example', 'https://b.example:8443'],
      rateTiers: [20, 5, 0.5],
      limits: { historySize: 32 },
    });
    expect(flagsLayer({ 'max-connections': '10', anonymous: true, 'auth-secret': '@/run/secret', 'topic-ttl-ms': '500' }).config).toEqual({
      maxConnections: 10,
      auth: { anonymous: true, secret: '@/run/secret' },
      topicTtlMs: 500,
    });
  });

  it.each([
    [{ TICKFAN_PORT: '80x' }, /environment variable TICKFAN_PORT must be an integer \(got "80x"\)/],
    [{ TICKFAN_PORT: ' ' }, /environment variable TICKFAN_PORT must be an integer/],
    [{ TICKFAN_AUTH_ANONYMOUS: 'yes' }, /environment variable TICKFAN_AUTH_ANONYMOUS must be true or false/],
    [{ TICKFAN_RATE_TIERS: '10,,x' }, /environment variable TICKFAN_RATE_TIERS must be a comma-separated list of numbers/],
  ])('refuses %j naming the variable', (env, pattern) => {
    expect(refusal(() => envLayer(env))).toMatch(pattern);
  });
});

describe('merging and validation', () => {
  it('file < environment < flags, merged deeply', () => {
    const cfg = loadConfig({
      file: file('m.yaml', 'port: 1000\nhost: 0.0.0.0\nlimits:\n  maxTopics: 10\n  historySize: 8\nauth:\n  anonymous: true\n'),
      env: { TICKFAN_PORT: '2000', TICKFAN_HISTORY: '16', TICKFAN_AUTH_SECRET: 'x'.repeat(32) },
      flags: { port: '3000' },
    });
    expect(cfg.options).toMatchObject({ port: 3000, host: '0.0.0.0', limits: { maxTopics: 10, historySize: 16 }, auth: { anonymous: true, secret: 'x'.repeat(32) } });
    expect(cfg.demo).toBeNull();
  });

  it('TICKFAN_CONFIG names the file when --config does not', () => {
    const p = file('env.json', '{"maxConnections": 42}');
    expect(loadConfig({ env: { TICKFAN_CONFIG: p } }).options).toMatchObject({ maxConnections: 42 });
  });

  it('the demo: on with a flag or the file, with its rate and size, and its page unless told otherwise', () => {
    expect(loadConfig({ env: {}, flags: { demo: true, 'demo-rate': '500' } })).toMatchObject({ demo: { rate: 500, symbols: 300 }, options: { demoPage: true } });
    const p = file('demo.yaml', 'demo:\n  symbols: 20\ndemoPage: false\n');
    expect(loadConfig({ file: p, env: {} })).toMatchObject({ demo: { rate: 2000, symbols: 20 }, options: { demoPage: false } });
    expect(loadConfig({ env: {}, flags: {} }).demo).toBeNull();
  });

  it.each([
    ['unknown key', 'u.json', '{"prot": 1}', {}, {}, /^prot in config file .*u\.json: options\.prot is not a tickfan option/],
    ['unknown limit', 'u2.yaml', 'limits:\n  maxTopic: 1\n', {}, {}, /^limits\.maxTopic in config file .*: options\.limits\.maxTopic is not a tickfan option/],
    ['unknown auth key', 'u3.yaml', 'auth:\n  key: x\n', {}, {}, /^auth\.key in config file .*: options\.auth\.key is not a tickfan option/],
    ['unknown demo key', 'u4.yaml', 'demo:\n  speed: 1\n', {}, {}, /^demo\.speed in config file .*: options\.demo\.speed is not a tickfan option/],
    ['wrong type in file', 'w.yaml', 'maxConnections: lots\n', {}, {}, /^maxConnections in config file .*: options\.maxConnections must be an integer/],
    ['bad value from env', null, '', { TICKFAN_MAX_TOPICS: '0' }, {}, /^environment variable TICKFAN_MAX_TOPICS: options\.limits\.maxTopics must be an integer between 1/],
    ['bad value from a flag', null, '', {}, { 'idle-timeout-sec': '3' }, /^flag --idle-timeout-sec: options\.idleTimeoutSec must be 0 \(off\) or between 8 and 960/],
    ['hard cap below the threshold (flag)', null, '', {}, { 'hard-cap-bytes': '2048' }, /^flag --hard-cap-bytes: options\.hardCapBytes must be an integer between 262144/],
    ['bad origin from env', null, '', { TICKFAN_ALLOWED_ORIGINS: 'https://a.example/' }, {}, /^environment variable TICKFAN_ALLOWED_ORIGINS: options\.allowedOrigins/],
    ['bad demo rate', null, '', {}, { 'demo-rate': '0' }, /^flag --demo-rate: options\.demo\.rate must be an integer/],
  ] as const)('%s: refused naming the setting and its source', (_label, name, text, env, flags, pattern) => {
    const layers = [...(name ? [fileLayer(file(name, text))] : []), envLayer(env), flagsLayer(flags)];
    expect(refusal(() => resolveConfig(layers))).toMatch(pattern);
  });
});

describe('resolveOptions', () => {
  it('fills defaults, and an option given as undefined takes its default', () => {
    const o = resolveOptions({ port: undefined, log: () => {} });
    expect(o.port).toBe(DEFAULT_OPTIONS.port);
    expect(o.topicTtlMs).toBe(0);
    expect(o.authTimeoutMs).toBe(10_000);
  });

  it.each([
    [{ idleTimeoutSec: 4 }, /options\.idleTimeoutSec must be 0 \(off\) or between 8 and 960/, 'idleTimeoutSec'],
    [{ logLevel: 'loud' }, /options\.logLevel must be one of debug, info, warn, error, silent/, 'logLevel'],
    [{ topicTtlMs: -1 }, /options\.topicTtlMs must be an integer/, 'topicTtlMs'],
    [{ rateTiers: [] }, /options\.rateTiers must be a non-empty array/, 'rateTiers'],
    [{ allowedOrigins: ['*'] }, /options\.allowedOrigins must be an array of origins/, 'allowedOrigins'],
    [{ auth: { secret: '' } }, /options\.auth\.secret must be a non-empty string/, 'auth.secret'],
    [{ auth: { anonymous: 'yes' } }, /options\.auth\.anonymous must be true or false/, 'auth.anonymous'],
    [{ auth: { anonymousGrants: { publish: 'px.>' } } }, /options\.auth\.anonymousGrants must be/, 'auth.anonymousGrants'],
    [{ auth: { jwks: { nokeys: true } } }, /options\.auth\.jwks must be a JWKS/, 'auth.jwks'],
    [{ limits: { maxTopics: 0 } }, /options\.limits\.maxTopics must be an integer between 1/, 'limits.maxTopics'],
    [{ demoPage: 'yes' }, /options\.demoPage must be true or false/, 'demoPage'],
  ])('refuses %j with the option named (and its path on the error)', (given, pattern, path) => {
    let caught: unknown;
    try {
      resolveOptions({ ...(given as object), log: () => {} });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OptionError);
    expect((caught as Error).message).toMatch(pattern);
    expect((caught as OptionError).option).toBe(path);
  });
});
