// An exact one-sided rank-sum (Mann–Whitney) test for the benchmark's few
// interleaved rounds: is one system's figure (say tickfan's p99 at one offered
// rate, one value per round) larger than another's more often than chance
// would make it? On two shared cores a single round's p99 moves several-fold,
// so "median above the peer's" alone is a coin toss when two systems do the
// same work; the reports give this test's p-value beside the medians.
// Exact: every split of the pooled values into groups of the two sizes is
// enumerated (ties get mid-ranks), for up to 24 values in all. Many rates
// tested at once are read together with Tarone's correction for discrete
// tests (taroneReject): a rate measured in too few rounds to ever reach
// significance does not dilute the others.

/** Mid-ranks (1-based) of `values`, ties sharing the mean of their ranks. */
export function midRanks(values) {
  const order = values.map((v, i) => [v, i]).sort((a, b) => a[0] - b[0]);
  const ranks = new Array(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = r;
    i = j + 1;
  }
  return ranks;
}

/** Largest pooled sample enumerated exactly (C(24, 12) ≈ 2.7 M splits). */
export const MAX_EXACT = 24;

/**
 * One-sided p-value that values in `a` tend to be larger than those in `b`:
 * the share of all splits of the pooled values whose `a`-side rank sum is at
 * least the observed one. `null` when either side is empty or the pool is
 * larger than MAX_EXACT.
 */
export function rankSumGreaterP(a, b) {
  const n1 = a.length;
  const n = n1 + b.length;
  if (n1 === 0 || b.length === 0 || n > MAX_EXACT) return null;
  const ranks = midRanks([...a, ...b]);
  let observed = 0;
  for (let i = 0; i < n1; i++) observed += ranks[i];
  let atLeast = 0;
  let total = 0;
  const eps = 1e-9;
  // Every n1-subset of the n ranks, by recursion over positions.
  const walk = (from, left, sum) => {
    if (left === 0) {
      total++;
      if (sum >= observed - eps) atLeast++;
      return;
    }
    for (let i = from; i <= n - left; i++) walk(i + 1, left - 1, sum + ranks[i]);
  };
  walk(0, n1, 0);
  return atLeast / total;
}

/** The smallest p-value rankSumGreaterP can give for groups of `n1` and `n2` values: 1 / C(n1 + n2, n1). */
export function minRankSumP(n1, n2) {
  let c = 1;
  for (let i = 1; i <= n1; i++) c = (c * (n2 + i)) / i;
  return 1 / c;
}

/**
 * Tarone's correction (Bonferroni over the hypotheses that can count) for
 * discrete tests, family-wise error below `alpha`: K is the smallest number
 * such that at most K of the hypotheses can reach a p below alpha / K (their
 * smallest attainable p, `pmins`); those are tested at alpha / K, the others
 * cannot be rejected. Returns K (0 when none can: too few rounds anywhere),
 * which hypotheses were tested, and which were rejected.
 */
export function taroneReject(ps, pmins, alpha) {
  const m = ps.length;
  for (let k = 1; k <= m; k++) {
    const tested = pmins.map((q) => q < alpha / k);
    const n = tested.filter(Boolean).length;
    if (n > k) continue;
    if (n === 0) break;
    return { k, tested, rejected: ps.map((p, i) => tested[i] && p < alpha / k) };
  }
  return { k: 0, tested: ps.map(() => false), rejected: ps.map(() => false) };
}
