// Server options with their defaults, validated when given so a bad setting
// fails at start with a message that names it. Defaults and checks come from
// option-table.ts; this file applies them (and makes the default logger).

import { pino, type Logger } from 'pino';
import { SERVER_OPTION_TABLE, checkGroup, checkOption, defaultOf } from './option-table.js';
import { LOG_LEVELS, OptionError, type AuthOptions, type LogFn, type LogLevel, type ServerOptions } from './option-types.js';

export { LOG_LEVELS, OptionError, type AuthOptions, type LogFn, type LogLevel, type ServerOptions };

const TABLE = Object.entries(SERVER_OPTION_TABLE);

/** Every server option's default (from the option table; docs/configuration.md lists them). */
export const DEFAULT_OPTIONS: Readonly<Omit<ServerOptions, 'log'>> = Object.fromEntries(
  TABLE.filter(([name]) => name !== 'log').map(([name, spec]) => [name, defaultOf(spec)]),
) as unknown as Omit<ServerOptions, 'log'>;

/** Groups with defaults (limits): given ones are merged with the defaults, so they are checked to be objects of known keys first. */
const MERGED_GROUPS = TABLE.flatMap(([name, spec]) => (spec.type === 'group' && Object.keys(defaultOf(spec) as object).length > 0 ? [[name, spec] as const] : []));

const loggers = new Map<LogLevel, LogFn>();

/**
 * The default `log`: a pino logger writing JSON lines to stderr (fd 2,
 * synchronously, so nothing is lost on exit and it works in worker threads).
 * One per level, shared by every server in the process.
 */
export function pinoLog(level: LogLevel): LogFn {
  let fn = loggers.get(level);
  if (!fn) {
    const logger: Logger = pino({ name: 'tickfan', level }, pino.destination({ fd: 2, sync: true }));
    fn = (lvl, msg, fields) => (fields ? logger[lvl](fields, msg) : logger[lvl](msg));
    loggers.set(level, fn);
  }
  return fn;
}

/** Fills defaults and checks every option; throws OptionError naming the first bad one. */
export function resolveOptions(options: Partial<ServerOptions> = {}): ServerOptions {
  for (const k of Object.keys(options)) if (!Object.hasOwn(SERVER_OPTION_TABLE, k)) throw new OptionError(`options.${k} is not a tickfan option`, k);
  // An option given as undefined takes its default.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<ServerOptions> & Record<string, unknown>;
  const merged: Record<string, unknown> = {};
  for (const [name, spec] of MERGED_GROUPS) {
    if (given[name] !== undefined) checkGroup(spec, name, given[name], given, true);
    merged[name] = { ...(defaultOf(spec) as object), ...(given[name] as object | undefined) };
  }
  // The level is needed for the default logger, before the rest is checked.
  if (given.logLevel !== undefined) checkOption(SERVER_OPTION_TABLE.logLevel, 'logLevel', given.logLevel, given);
  const logLevel: LogLevel = given.logLevel ?? (process.env.TICKFAN_QUIET === '1' ? 'warn' : DEFAULT_OPTIONS.logLevel);
  const o = { ...DEFAULT_OPTIONS, logLevel, log: given.log ?? pinoLog(logLevel), ...given, ...merged } as ServerOptions & Record<string, unknown>;
  for (const [name, spec] of TABLE) {
    checkOption(spec, name, o[name], o);
    if (spec.normalize) o[name] = spec.normalize(o[name]);
  }
  return o;
}
