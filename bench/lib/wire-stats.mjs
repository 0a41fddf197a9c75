// Medians and spreads over the wire scenario's rounds (bytes and deflate
// parts, bench/scenarios/wire.mjs and wire-deflate.mjs): non-finite values
// (a round that measured nothing) are left out of both.

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** { median, min, max, runs } of a list of numbers. */
export function spread(xs) {
  const f = xs.filter((x) => Number.isFinite(x));
  return { median: median(f), min: f.length ? Math.min(...f) : NaN, max: f.length ? Math.max(...f) : NaN, runs: xs };
}
