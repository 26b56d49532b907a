// Statistics of the `compare` gate. Every interval a controller polls the agent, so a fixed-horizon test re-run at
// each look would inflate false failures (Kayenta, Argo and Flagger all "peek"). We use always-valid confidence
// sequences instead: a normal-mixture boundary (Robbins; Johari et al., "Always valid inference") gives an
// interval that covers the true difference at every sample size simultaneously with probability ≥ 1 − α, so the
// agent may look as often as it likes. Error rates are compared as a difference of proportions; latency as the
// Mann-Whitney probability P(canary slower) on bucketed data (DeLong variance), plus a one-sided
// Kolmogorov-Smirnov-style tail check on bucket CDFs (per-bound sequential intervals, Bonferroni over bounds), which
// catches the variance and tail shifts a location test misses (kayenta#780).
import { rebucket, type Totals } from './totals.ts';

/**
 * A seeded pseudo-random generator (mulberry32), uniform in [0, 1). Deterministic for tests and simulations.
 * @example const random = createRng(42); random(); // 0.6011037519201636 on every run
 */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Half-width of the normal-mixture confidence sequence for an estimate with variance `variance` (of the
 * estimator, i.e. already divided by n), mixing scale `tau` and level `alpha`:
 * r² = 2V(V+τ²)/τ² · (ln(1/α) + ½ ln((V+τ²)/V)).
 * @example mixtureHalfWidth(0.05 / 500, 0.02, 0.05) // ≈ 0.031
 */
export function mixtureHalfWidth(variance: number, tau: number, alpha: number): number {
  if (!(variance > 0)) return 0;
  const tau2 = tau * tau;
  const factor = (2 * variance * (variance + tau2)) / tau2;
  return Math.sqrt(factor * (Math.log(1 / alpha) + 0.5 * Math.log((variance + tau2) / variance)));
}

/** An always-valid interval for a difference (canary − baseline). */
export interface Interval {
  readonly estimate: number;
  readonly lower: number;
  readonly upper: number;
}

/** Mixing scale for error-rate differences (about the size of the effects worth catching: 1–5 pp). */
export const ERROR_RATE_MIXTURE_SCALE = 0.02;
/** Mixing scale for the Mann-Whitney probability (0.5 = equal; 0.56 small, 0.64 medium effect). */
export const LATENCY_MIXTURE_SCALE = 0.1;

/**
 * Always-valid confidence interval for p_canary − p_baseline. Variances use (x+1)/(n+2) so that zero error counts
 * (sparse data, kayenta#426) do not give a zero-width interval.
 * @example errorRateInterval({ n: 800, x: 40 }, { n: 800, x: 4 }, 0.05).lower > 0.005 // true: canary worse
 */
export function errorRateInterval(
  canary: { n: number; x: number },
  baseline: { n: number; x: number },
  alpha: number,
  tau: number = ERROR_RATE_MIXTURE_SCALE,
): Interval {
  const rate = (side: { n: number; x: number }): number => (side.n > 0 ? side.x / side.n : 0);
  const smoothed = (side: { n: number; x: number }): number => (side.x + 1) / (side.n + 2);
  const estimate = rate(canary) - rate(baseline);
  const pc = smoothed(canary);
  const pb = smoothed(baseline);
  const variance = (pc * (1 - pc)) / Math.max(1, canary.n) + (pb * (1 - pb)) / Math.max(1, baseline.n);
  const half = mixtureHalfWidth(variance, tau, alpha);
  return { estimate, lower: estimate - half, upper: estimate + half };
}

/**
 * Two histograms on the bounds they share (exact for both: no interpolation).
 * @example const [canary, baseline] = alignHistograms(a, b);
 */
export function alignHistograms(a: Totals, b: Totals): [Totals, Totals] {
  const shared = a.bounds.filter((bound) => b.bounds.includes(bound));
  return [rebucket(a, shared), rebucket(b, shared)];
}

/**
 * Mann-Whitney probability A = P(canary > baseline) + ½ P(tie) on bucketed latencies (ties = same bucket), with
 * the DeLong variance (valid away from the null too). A > 0.5 means the canary is slower.
 * @example mannWhitney(canaryTotals, baselineTotals).auc // 0.5 = same latency
 */
export function mannWhitney(canary: Totals, baseline: Totals): { auc: number; variance: number } {
  const [c, b] = alignHistograms(canary, baseline);
  const nc = c.counts.reduce((acc, value) => acc + value, 0);
  const nb = b.counts.reduce((acc, value) => acc + value, 0);
  if (nc === 0 || nb === 0) return { auc: 0.5, variance: Number.POSITIVE_INFINITY };
  const buckets = c.counts.length;
  // Placement of a canary observation in bucket i among baselines, and of a baseline observation among canaries.
  const placementCanary = new Array<number>(buckets);
  const placementBaseline = new Array<number>(buckets);
  let baselineBelow = 0;
  let canaryBelow = 0;
  for (let index = 0; index < buckets; index += 1) {
    const ci = c.counts[index]!;
    const bi = b.counts[index]!;
    placementCanary[index] = (baselineBelow + 0.5 * bi) / nb;
    placementBaseline[index] = (nc - canaryBelow - ci + 0.5 * ci) / nc;
    baselineBelow += bi;
    canaryBelow += ci;
  }
  let auc = 0;
  for (let index = 0; index < buckets; index += 1) auc += c.counts[index]! * placementCanary[index]!;
  auc /= nc;
  let sc = 0;
  let sb = 0;
  for (let index = 0; index < buckets; index += 1) {
    sc += c.counts[index]! * (placementCanary[index]! - auc) ** 2;
    sb += b.counts[index]! * (placementBaseline[index]! - auc) ** 2;
  }
  // Floor the variance at the value for a tiny spread so that identical, single-bucket samples still get a
  // finite-width interval (the CS shrinks like 1/n anyway).
  const variance = Math.max(sc / Math.max(1, nc - 1) / nc + sb / Math.max(1, nb - 1) / nb, 1 / (12 * nc * nb));
  return { auc, variance };
}

/**
 * Always-valid interval for the Mann-Whitney probability A (see {@link mannWhitney}).
 * @example latencyInterval(canaryTotals, baselineTotals, 0.05).lower > 0.56 // canary slower
 */
export function latencyInterval(
  canary: Totals,
  baseline: Totals,
  alpha: number,
  tau = LATENCY_MIXTURE_SCALE,
): Interval {
  const { auc, variance } = mannWhitney(canary, baseline);
  if (!Number.isFinite(variance)) return { estimate: 0.5, lower: 0, upper: 1 };
  const half = mixtureHalfWidth(variance, tau, alpha);
  return { estimate: auc, lower: Math.max(0, auc - half), upper: Math.min(1, auc + half) };
}

/** Mixing scale for tail shifts (shares of requests above a bound: 5–20 pp matter). */
export const TAIL_MIXTURE_SCALE = 0.05;

/**
 * One-sided tail shift: the largest share of requests that moved above some bucket bound in the canary compared
 * with the baseline, max_b (P(canary > b) − P(baseline > b)), with an always-valid lower bound: each bound's
 * difference of exceedance proportions gets a confidence sequence at α / (number of bounds) (Bonferroni), so the
 * maximum over bounds and over looks stays within α. This is a one-sided Kolmogorov-Smirnov statistic on the
 * bucket CDFs with a per-bound sequential bound, far tighter than a DKW band.
 * @example tailShift(canaryTotals, baselineTotals, 0.05).lower > 0.1 // tail regression
 */
export function tailShift(
  canary: Totals,
  baseline: Totals,
  alpha: number,
): { shift: number; lower: number; at: number | undefined } {
  const [c, b] = alignHistograms(canary, baseline);
  const nc = c.counts.reduce((acc, value) => acc + value, 0);
  const nb = b.counts.reduce((acc, value) => acc + value, 0);
  if (nc === 0 || nb === 0 || c.bounds.length === 0) return { shift: 0, lower: -1, at: undefined };
  const perBound = alpha / c.bounds.length;
  let belowC = 0;
  let belowB = 0;
  let shift = 0;
  let lower = -1;
  let at: number | undefined;
  for (let index = 0; index < c.bounds.length; index += 1) {
    belowC += c.counts[index]!;
    belowB += b.counts[index]!;
    const interval = errorRateInterval(
      { n: nc, x: nc - belowC },
      { n: nb, x: nb - belowB },
      perBound,
      TAIL_MIXTURE_SCALE,
    );
    if (interval.estimate > shift) shift = interval.estimate;
    if (interval.lower > lower) {
      lower = interval.lower;
      at = c.bounds[index];
    }
  }
  return { shift, lower, at };
}

/**
 * Samples per arm at which the error-rate interval's half-width drops below `gap` (for ETAs and the documented
 * sample size). Infinity when `gap` ≤ 0.
 * @example samplesForErrorRateGap(0.05, 0.005, 0.04, 0.05) // 332 per side
 */
export function samplesForErrorRateGap(
  canaryRate: number,
  baselineRate: number,
  gap: number,
  alpha: number,
  tau: number = ERROR_RATE_MIXTURE_SCALE,
): number {
  if (!(gap > 0)) return Number.POSITIVE_INFINITY;
  const spread = Math.max(canaryRate * (1 - canaryRate), 1e-4) + Math.max(baselineRate * (1 - baselineRate), 1e-4);
  let low = 1;
  let high = 1;
  while (mixtureHalfWidth(spread / high, tau, alpha) > gap) {
    high *= 2;
    if (high > 1e9) return Number.POSITIVE_INFINITY;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (mixtureHalfWidth(spread / middle, tau, alpha) > gap) low = middle;
    else high = middle;
  }
  return high;
}

/**
 * The standard normal quantile Φ⁻¹(p) (Acklam's rational approximation, relative error < 1.2e-9).
 * @throws RangeError when `p` is not strictly between 0 and 1.
 * @example normalQuantile(0.95) // 1.6448536...
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`Expected a probability strictly between 0 and 1, got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/**
 * One-sided lower confidence bound (level 1 − α) of a proportion: the Wilson score bound with continuity correction
 * for `x` successes (here: errors) in `n` trials. Unlike x/n it accounts for how little a few errors in few requests
 * say: 3 errors in 200 requests (1.5 %) bound the rate below at 0.46 %, and 1 error in 21 at 0.33 %, not 4.8 %. The
 * correction matters at the small counts a canary step sees: without it one error in 21 requests would bound a
 * 1 % SLO's rate above 1 %, although a canary erring 1 % of the time shows that one error in a fifth of its steps.
 * 0 when `x` or `n` is 0.
 * @example wilsonLowerBound(3, 200, 0.05) // 0.00461
 */
export function wilsonLowerBound(x: number, n: number, alpha: number): number {
  if (!(n > 0) || !(x > 0)) return 0;
  const z = normalQuantile(1 - alpha);
  const p = Math.min(1, x / n);
  const z2 = z * z;
  const root = z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1);
  const lower = (2 * n * p + z2 - 1 - z * Math.sqrt(Math.max(0, root))) / (2 * (n + z2));
  return Math.min(p, Math.max(0, lower));
}
