// The option table (option-table.ts) as people read it: the settings part of
// `tickfan serve --help`, and the configuration reference's table (a test keeps
// docs/configuration.md equal to optionsMarkdown()).

import { OPTION_ENTRIES, type OptionEntry } from './option-table.js';

function shownDefault(e: OptionEntry): string | undefined {
  if (e.shown !== undefined) return e.shown;
  if (e.default === undefined) return undefined;
  return Array.isArray(e.default) ? e.default.join(',') : String(e.default);
}

function accepts(e: OptionEntry): string {
  if (e.accepts) return e.accepts;
  switch (e.type) {
    case 'int':
      return `${typeof e.min === 'string' ? `\`${e.min}\`` : e.min}–${e.max}`;
    case 'bool':
      return 'true, false';
    case 'enum':
      return e.values.join(', ');
    case 'string':
      return 'non-empty string';
    default:
      return e.type;
  }
}

function placeholder(e: OptionEntry): string {
  if (e.arg) return e.arg;
  switch (e.type) {
    case 'bool':
      return '';
    case 'int':
      return 'N';
    case 'numbers':
      return 'N,N,…';
    case 'enum':
      return e.values.join('|');
    default:
      return 'TEXT';
  }
}

const plain = (s: string) => s.replaceAll('`', '');

/** The settings part of `tickfan serve --help`: one line per flag, then the settings only a config file can carry. */
export function serveOptionsHelp(): string {
  const line = (flag: string, doc: string, extra: string[]) => `  ${flag.padEnd(34)} ${doc}${extra.length ? ` [${extra.join('; ')}]` : ''}`;
  const lines = [
    'serve options (file < environment < flags; [default; environment variable]):',
    line('--config FILE', 'JSON or YAML file: any startServer() option, nested (docs/configuration.md)', ['TICKFAN_CONFIG']),
  ];
  for (const e of OPTION_ENTRIES) {
    if (!e.flag) continue;
    const arg = placeholder(e);
    const def = shownDefault(e);
    lines.push(line(`--${e.flag}${arg ? ` ${arg}` : ''}`, plain(e.doc), [...(def && def !== 'none' ? [`default ${plain(def)}`] : []), ...(e.env ? [e.env] : [])]));
  }
  const fileOnly = OPTION_ENTRIES.filter((e) => !e.flag && !e.env && e.type !== 'function').map((e) => e.path);
  lines.push(`  config file only: ${fileOnly.join(', ')}`);
  return lines.join('\n');
}

const cell = (s: string) => s.replaceAll('|', '\\|');

/** The configuration table of docs/configuration.md: every setting, with its flag, environment variable, default and accepted values. */
export function optionsMarkdown(): string {
  const rows = OPTION_ENTRIES.map((e) =>
    [`\`${e.path}\``, e.flag ? `\`--${e.flag}\`` : '—', e.env ? `\`${e.env}\`` : '—', shownDefault(e) ?? '—', accepts(e), e.doc].map(cell).join(' | '),
  );
  return ['| option | flag | environment | default | accepts | meaning |', '| --- | --- | --- | --- | --- | --- |', ...rows.map((r) => `| ${r} |`)].join('\n');
}
