// `tickfan bench <scenario> --repeat N` for scenarios that do not repeat
// themselves: the runner calls the scenario's run() N times (each call runs
// its systems in order, so rounds interleave: tickfan, uws, …, tickfan, uws,
// …) and merges the N results into one of the same shape, where every number
// is the median of that number over the rounds. The spread — [min, max] per
// number — goes into `spread`, keyed by the number's dotted path
// ('systems.tickfan.best.deliveriesPerSec'), and renderers show it with
// withSpread(). Targets are taken from the round whose measured value is the
// median (so met, shown and note agree), with the other rounds' range in the note.
// Lists of steps whose shape differs per round (the fan-out ramp's `steps`)
// are concatenated, each step tagged with its round (and so are the fan-out's
// p99-vs-throughput comparison points, `curve`).

/** Keys whose arrays are concatenated across rounds instead of merged item by item. */
import { fmtRatio } from './common.mjs';

const CONCAT = new Set(['steps', 'curve']);

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Merges N results of one scenario (same parameters) into one.
 * @returns the merged result plus `repeats` (N) and `spread` ({ path: [min, max] }).
 */
export function mergeRounds(rounds) {
  const spread = {};
  const merge = (vals, path, key) => {
    const present = vals.filter((v) => v !== undefined && v !== null);
    if (present.length === 0) return vals.find((v) => v !== undefined);
    if (present.some(isNum)) {
      const nums = present.filter(isNum);
      if (path !== null) spread[path] = [Math.min(...nums), Math.max(...nums)];
      return median(nums);
    }
    if (key === 'targets' && present.every(Array.isArray)) return mergeTargets(present);
    if (present.every(Array.isArray)) {
      if (CONCAT.has(key) || !present.every((a) => a.length === present[0].length)) {
        return present.flatMap((a, round) => a.map((x) => (isObj(x) ? { ...x, round: round + 1 } : x)));
      }
      // Numbers in a list (a percentile curve's points) get medians but no spread entry.
      return present[0].map((_, i) => merge(present.map((a) => a[i]), isObj(present[0][i]) && path !== null ? `${path}.${i}` : null, undefined));
    }
    if (present.every(isObj)) {
      const out = {};
      const keys = new Set(present.flatMap((o) => Object.keys(o)));
      for (const k of keys) out[k] = merge(present.map((o) => o[k]), path === null ? null : path ? `${path}.${k}` : k, k);
      return out;
    }
    return present[0];
  };
  const merged = merge(rounds, '', undefined);
  return { ...merged, repeats: rounds.length, spread };
}

/** Target rows: the median round's row per target name, the range of the others in its note. */
function mergeTargets(lists) {
  const names = [...new Set(lists.flatMap((l) => l.map((t) => t.name)))];
  return names.map((name) => {
    const rows = lists.map((l) => l.find((t) => t.name === name)).filter(Boolean);
    const withNum = rows.filter((t) => isNum(t.measured)).sort((a, b) => a.measured - b.measured);
    if (withNum.length === 0) return rows[0];
    const mid = withNum[Math.floor((withNum.length - 1) / 2)];
    const lo = withNum[0];
    const hi = withNum[withNum.length - 1];
    const show = (t) => t.shown ?? (t.unit === '×' ? fmtRatio(t.measured) : `${+t.measured.toFixed(3)}${t.unit ?? ''}`);
    const metCount = rows.filter((t) => t.met).length;
    const range = `median of ${rows.length} rounds (min ${show(lo)}, max ${show(hi)}); met in ${metCount} of ${rows.length}`;
    return { ...mid, spread: [lo.measured, hi.measured], metRounds: metCount, rounds: rows.length, note: mid.note ? `${mid.note}; ${range}` : range };
  });
}

/**
 * A number as a table shows it: `fmt(median)` and, when the document has
 * several rounds that differ, ` (fmt(min)–fmt(max))`.
 * @param {object} doc  the scenario's document (its `spread` and `repeats`)
 * @param {string} path  dotted path of the number in the document
 * @param {(v: number) => string} fmt
 */
export function withSpread(doc, path, fmt) {
  const v = path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), doc);
  if (v === undefined || v === null) return '–';
  const r = doc.spread?.[path];
  if (!r || !(doc.repeats > 1) || !isNum(v)) return fmt(v);
  const [a, b] = [fmt(r[0]), fmt(r[1])];
  return a === b ? fmt(v) : `${fmt(v)} (${a}–${b})`;
}

/** One line for a table's caption: how many rounds, what the figures are. */
export function repeatNote(doc) {
  return doc.repeats > 1 ? `${doc.repeats} rounds, systems interleaved in every round; each figure is the median of the rounds, (min–max) beside it.` : 'One round (`--repeat N` for medians and spread).';
}
