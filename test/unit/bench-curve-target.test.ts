// The fanout benchmark's "p99 at or below every peer's at every rate" target
// (bench/lib/peer-report.mjs curveTarget, applied by fanout's finish()):
// compared on medians over rounds at each rate a peer held in most of its
// rounds, tickfan's own step at that rate when it has one, else read off its
// median curve and marked as such. One round's worst ratio must not decide it.

import { describe, expect, it } from 'vitest';

interface Step {
  offeredRate: number;
  deliveriesPerSec: number;
  ok: boolean;
  round: number;
  latencyUs: { p99: number };
}
interface Target {
  shown?: string;
  name: string;
  measured: number;
  met: boolean;
  note: string;
  points: { peer: string; rate: number; tickfanP99: number; peerP99: number; interpolated: boolean; ratio: number }[];
}
type Doc = { repeats: number; systems: Record<string, { steps: Step[] }>; targets?: { name: string; spread?: number[]; metRounds?: number; rounds?: number }[]; curveMedians?: unknown[] };

const peerReport = new URL('../../bench/lib/peer-report.mjs', import.meta.url).href;
const fanout = new URL('../../bench/scenarios/fanout.mjs', import.meta.url).href;
const curveTarget = async (doc: Doc): Promise<Target | null> => ((await import(peerReport)) as { curveTarget: (d: Doc) => Target | null }).curveTarget(doc);

const step = (round: number, offeredRate: number, p99: number, ok = true): Step => ({ offeredRate, deliveriesPerSec: offeredRate * 1000, ok, round, latencyUs: { p99 } });

describe('fanout curve target', () => {
  it('compares medians per rate, so one bad round does not decide it, and says so', async () => {
    const doc: Doc = {
      repeats: 3,
      systems: {
        // tickfan at 400/s: 9, 30 (a bad round), 10 ms → median 10; uWS 11, 12, 13 → 12.
        tickfan: { steps: [step(1, 400, 9_000), step(2, 400, 30_000), step(3, 400, 10_000)] },
        uws: { steps: [step(1, 400, 11_000), step(2, 400, 12_000), step(3, 400, 13_000)] },
      },
    };
    const t = (await curveTarget(doc))!;
    expect(t.met).toBe(true);
    expect(t.measured).toBeCloseTo(10 / 12, 5);
    expect(t.note).toContain('medians of 3 rounds');
    // The same rounds with tickfan's median above the peer's: missed, at that rate.
    doc.systems.tickfan!.steps[2]!.latencyUs.p99 = 14_000;
    const worse = (await curveTarget(doc))!;
    expect(worse.met).toBe(false);
    expect(worse.measured).toBeCloseTo(14 / 12, 5);
    expect(worse.note).toContain('worst at 400 updates/s against raw uWebSockets.js');
  });

  it('skips rates the peer did not hold in most rounds, and marks rates read between two tickfan steps', async () => {
    const doc: Doc = {
      repeats: 3,
      systems: {
        tickfan: { steps: [1, 2, 3].flatMap((r) => [step(r, 100, 10_000), step(r, 400, 20_000)]) },
        uws: {
          steps: [
            ...[1, 2, 3].map((r) => step(r, 200, 30_000)),
            // 800/s broke down in 2 of 3 rounds: not a rate the peer sustains.
            step(1, 800, 1_000),
            step(2, 800, 1_000, false),
            step(3, 800, 1_000, false),
          ],
        },
      },
    };
    const t = (await curveTarget(doc))!;
    expect(t.points.map((p) => p.rate)).toEqual([200]);
    expect(t.points[0]!.interpolated).toBe(true);
    // log-log halfway between 10 ms at 100/s and 20 ms at 400/s
    expect(t.points[0]!.tickfanP99).toBeCloseTo(Math.SQRT2 * 10_000, 0);
    expect(t.note).toContain('between two of its steps');
    expect(t.met).toBe(true);
  });

  it("fanout's finish() replaces the per-round target with the medians' and keeps the rounds' range", async () => {
    const { finish } = (await import(fanout)) as { finish: (d: Doc) => Doc };
    const doc: Doc = {
      repeats: 3,
      systems: {
        tickfan: { steps: [step(1, 400, 9_000), step(2, 400, 30_000), step(3, 400, 10_000)] },
        uws: { steps: [step(1, 400, 11_000), step(2, 400, 12_000), step(3, 400, 13_000)] },
      },
      targets: [{ name: "p99 at or below every peer's at every rate the peer sustains (same updates/s offered)", spread: [0.8, 2.5], metRounds: 2, rounds: 3 }],
    };
    const out = finish(doc) as Doc & { targets: Target[] };
    // The medians' row; no rank-sum row over 3 rounds (its p cannot go below 0.05).
    expect(out.targets).toHaveLength(1);
    expect(out.targets[0]!.met).toBe(true);
    expect(out.targets[0]!.note).toContain("single rounds' worst 0.800×–2.50× (met in 2 of 3)");
    expect(out.curveMedians).toHaveLength(1);
  });

  it('reads the rounds with a rank-sum test: above in every round is a miss, a coin toss of the rounds is not', async () => {
    const { finish } = (await import(fanout)) as { finish: (d: Doc) => Doc };
    const rounds = [1, 2, 3, 4, 5];
    const doc = (tickfan: number[], uws: number[]): Doc => ({
      repeats: 5,
      systems: { tickfan: { steps: rounds.map((r, i) => step(r, 400, tickfan[i]!)) }, uws: { steps: rounds.map((r, i) => step(r, 400, uws[i]!)) } },
      targets: [{ name: "p99 at or below every peer's at every rate the peer sustains (same updates/s offered)", spread: [1, 1], metRounds: 0, rounds: 5 }],
    });
    const sig = (d: Doc): Target => (finish(d) as unknown as { targets: Target[] }).targets.find((t) => t.name.includes('not significantly above'))!;
    // Every tickfan round above every uWS round: p = 1/252.
    const above = sig(doc([20e3, 21e3, 22e3, 23e3, 24e3], [10e3, 11e3, 12e3, 13e3, 14e3]));
    expect(above.met).toBe(false);
    expect(above.measured).toBeCloseTo(1 / 252, 6);
    expect(above.note).toContain('5 rounds per rate, p < 0.05; above at 400 updates/s vs raw uWebSockets.js (p 0.0040)');
    // Interleaved (tickfan's median a little higher: the medians' row misses, the rounds do not say tickfan is slower).
    const mixed = sig(doc([10e3, 12.5e3, 13e3, 15e3, 16e3], [11e3, 12e3, 12.8e3, 14e3, 17e3]));
    expect(mixed.met).toBe(true);
    expect(mixed.measured).toBeGreaterThan(0.2);
  });

  it('reads many rates together: corrected (Tarone) when the rounds allow it, each alone (and said so) when they do not', async () => {
    const { finish } = (await import(fanout)) as { finish: (d: Doc) => Doc };
    const rates = [100, 200, 400, 800];
    // Per rate: tickfan's and uWS' p99 per round, as offsets from 10 ms.
    const doc = (rounds: number, perRate: Record<number, [number[], number[]]>): Doc => {
      const systems: Doc['systems'] = { tickfan: { steps: [] }, uws: { steps: [] } };
      for (const rate of Object.keys(perRate).map(Number)) {
        const [t, u] = perRate[rate]!;
        // A side may hold a rate in fewer rounds (a bisection step some rounds did not reach).
        t.forEach((v, r) => systems.tickfan!.steps.push(step(r + 1, rate, 10e3 + v)));
        u.forEach((v, r) => systems.uws!.steps.push(step(r + 1, rate, 10e3 + v)));
      }
      return { repeats: rounds, systems, targets: [{ name: "p99 at or below every peer's at every rate the peer sustains (same updates/s offered)", spread: [1, 1], metRounds: 0, rounds }] };
    };
    const sig = (d: Doc): Target => (finish(d) as unknown as { targets: Target[] }).targets.find((t) => t.name.includes('not significantly above'))!;
    const seq = (n: number, from: number, step = 1) => Array.from({ length: n }, (_, i) => from + i * step);
    // 9 rounds. 400/s: tickfan above in every round (p 1/48,620). 200/s: above in most (p ≈ 0.02: alone it would count; among 4 rates it does not).
    // 100 and 800/s: interleaved.
    const nine = {
      100: [seq(9, 0, 2), seq(9, 1, 2)] as [number[], number[]],
      200: [[3, 5, 7, 9, 11, 13, 15, 17, 19], [0, 1, 2, 4, 6, 8, 10, 12, 14]] as [number[], number[]],
      400: [seq(9, 100), seq(9, 0)] as [number[], number[]],
      800: [seq(9, 1, 2), seq(9, 0, 2)] as [number[], number[]],
    };
    const corrected = sig(doc(9, nine));
    expect(corrected.note).toContain('9 rounds per rate, corrected over the 4 rates tested (Tarone: each at p < 0.013; family-wise p < 0.05)');
    expect(corrected.met).toBe(false);
    expect(corrected.note).toContain('above at 400 updates/s vs raw uWebSockets.js (p 2.1e-5)');
    expect(corrected.note).not.toContain('200 updates/s');
    // Without the clear miss, the 200/s rate alone does not make one.
    const p200 = (await import(new URL('../../bench/lib/rank-test.mjs', import.meta.url).href)) as { rankSumGreaterP: (a: number[], b: number[]) => number };
    const p = p200.rankSumGreaterP(nine[200][0], nine[200][1]);
    expect(p).toBeLessThan(0.05);
    expect(p).toBeGreaterThan(0.05 / 3);
    const met = sig(doc(9, { ...nine, 400: [seq(9, 0, 2), seq(9, 1, 2)] }));
    expect(met.met).toBe(true);
    expect(met.shown).toBe('none of 4');
    // 4 rounds: no p can go below 1/70 > 0.05 / 4, so each rate is read alone, and the note says so.
    const cut = (n: number) => Object.fromEntries(rates.map((r) => [r, [nine[r as 100][0].slice(0, n), nine[r as 100][1].slice(0, n)]])) as typeof nine;
    const alone = sig(doc(4, cut(4)));
    expect(alone.note).toContain('4 rounds per rate, each rate alone at p < 0.05: too few rounds for a correction over 4 rates (about 0.2 expected below it by chance)');
    expect(alone.met).toBe(false);
    // Read alone, the 200/s rate counts too.
    expect(alone.note).toContain('above at 200 updates/s vs raw uWebSockets.js (p 0.029), 400 updates/s vs raw uWebSockets.js (p 0.014)');
    // 3 rounds: the smallest p is 0.05, a row that could never miss; there is none.
    expect(sig(doc(3, cut(3)))).toBeUndefined();
    // A rate the peer held in only 2 of 9 rounds (smallest p 1/55 = 0.018) cannot reach 0.05 / 3 (the 3 full rates'
    // threshold): tickfan above there in every round is not counted, where read alone it would be.
    const thin = { 100: nine[100], 200: nine[800], 800: nine[800], 1600: [seq(9, 100), [0, 1]] as [number[], number[]] };
    const partial = sig(doc(9, thin));
    expect(partial.note).toContain('corrected over the 4 rates tested (Tarone: the 3 with rounds enough at p < 0.017; family-wise p < 0.05)');
    expect(partial.met).toBe(true);
    expect(partial.measured).toBeCloseTo(1 / 55, 6);
  });
});

describe('rank-sum test (bench/lib/rank-test.mjs)', () => {
  const lib = new URL('../../bench/lib/rank-test.mjs', import.meta.url).href;
  type P = (a: number[], b: number[]) => number | null;
  it('gives the exact one-sided p-value, mid-ranks for ties, and null where it cannot', async () => {
    const { rankSumGreaterP, MAX_EXACT } = (await import(lib)) as { rankSumGreaterP: P; MAX_EXACT: number };
    expect(rankSumGreaterP([10, 11, 12, 13, 14], [1, 2, 3, 4, 5])).toBeCloseTo(1 / 252, 12);
    expect(rankSumGreaterP([1, 2, 3, 4, 5], [10, 11, 12, 13, 14])).toBe(1);
    // 3 vs 1 and 2: the a-side has the top rank in 1 of the 3 splits.
    expect(rankSumGreaterP([3], [1, 2])).toBeCloseTo(1 / 3, 12);
    // All tied: every split has the same rank sum.
    expect(rankSumGreaterP([5, 5], [5, 5])).toBe(1);
    // Ties across the groups: [2, 2] vs [1, 2] have mid-ranks 3, 3 | 1, 3 (observed sum 6); of the 6 splits, 3 sum to 6 and 3 to 4.
    expect(rankSumGreaterP([2, 2], [1, 2])).toBeCloseTo(3 / 6, 12);
    expect(rankSumGreaterP([], [1])).toBeNull();
    expect(rankSumGreaterP(Array.from({ length: MAX_EXACT }, (_, i) => i), [1])).toBeNull();
  });

  it("gives the smallest attainable p, and Tarone's correction over tests that can and cannot reach significance", async () => {
    type Tarone = { k: number; tested: boolean[]; rejected: boolean[] };
    const { minRankSumP, taroneReject, rankSumGreaterP } = (await import(lib)) as {
      minRankSumP: (a: number, b: number) => number;
      taroneReject: (ps: number[], pmins: number[], alpha: number) => Tarone;
      rankSumGreaterP: P;
    };
    expect(minRankSumP(5, 5)).toBeCloseTo(1 / 252, 12);
    expect(minRankSumP(9, 9)).toBeCloseTo(1 / 48_620, 15);
    expect(minRankSumP(3, 2)).toBeCloseTo(1 / 10, 12);
    expect(rankSumGreaterP([10, 11, 12], [1, 2])).toBeCloseTo(minRankSumP(3, 2), 12);
    // Every test can get low: Bonferroni over all 3 (0.05 / 3).
    expect(taroneReject([0.001, 0.2, 0.016], [1e-5, 1e-5, 1e-5], 0.05)).toEqual({ k: 3, tested: [true, true, true], rejected: [true, false, true] });
    // One cannot get below 0.025: the other two are tested at 0.05 / 2; it is not, whatever its p.
    expect(taroneReject([0.001, 0.2, 0.03], [1e-5, 1e-5, 0.03], 0.05)).toEqual({ k: 2, tested: [true, true, false], rejected: [true, false, false] });
    expect(taroneReject([0.02, 0.2], [1e-5, 1e-5], 0.05).rejected).toEqual([true, false]);
    // 21 tests of 5 rounds a side (smallest p 1/252 = 0.004): none can reach 0.05 / 13 — no correction is possible.
    const many = Array.from({ length: 21 }, () => 1 / 252);
    expect(taroneReject(many, many, 0.05)).toMatchObject({ k: 0, rejected: many.map(() => false) });
    expect(taroneReject([], [], 0.05).k).toBe(0);
  });
});
