// Simulations that prove the compare gate's statistics: A/A traffic polled every interval must rarely fail
// (≤ 5 %), and a real regression (5 % vs 0.5 % errors) must be caught within the documented sample size. The RNG is
// seeded, so every run sees the same numbers.
import { describe, expect, it } from 'vitest';
import { OTEL_BUCKETS_FOR_TESTS, histogramFromSamples } from './stats-testing.ts';
import {
  createRng,
  errorRateInterval,
  latencyInterval,
  mannWhitney,
  mixtureHalfWidth,
  normalQuantile,
  samplesForErrorRateGap,
  tailShift,
  wilsonLowerBound,
} from './stats.ts';
import { addTotals, emptyTotals, type Totals } from './totals.ts';

const ALPHA = 0.05;

function binomial(rng: () => number, n: number, p: number): number {
  let x = 0;
  for (let index = 0; index < n; index += 1) if (rng() < p) x += 1;
  return x;
}

/** Share of simulated runs in which the error-rate test ever declares the canary worse by > margin. */
function errorFalseFailRate(options: {
  p: number;
  perInterval: number;
  looks: number;
  runs: number;
  margin: number;
  seed: number;
}) {
  const rng = createRng(options.seed);
  let sequentialFails = 0;
  let naiveFails = 0;
  for (let run = 0; run < options.runs; run += 1) {
    const canary = { n: 0, x: 0 };
    const baseline = { n: 0, x: 0 };
    let sequential = false;
    let naive = false;
    for (let look = 0; look < options.looks; look += 1) {
      canary.n += options.perInterval;
      canary.x += binomial(rng, options.perInterval, options.p);
      baseline.n += options.perInterval;
      baseline.x += binomial(rng, options.perInterval, options.p);
      if (canary.n < 100) continue;
      if (errorRateInterval(canary, baseline, ALPHA).lower > options.margin) sequential = true;
      // The fixed-horizon one-sided z-test everybody re-runs at every look (what Kayenta/Argo/Flagger do).
      const pooled = (canary.x + baseline.x) / (canary.n + baseline.n);
      const se = Math.sqrt(pooled * (1 - pooled) * (1 / canary.n + 1 / baseline.n));
      if (se > 0 && (canary.x / canary.n - baseline.x / baseline.n - options.margin) / se > 1.645) naive = true;
    }
    if (sequential) sequentialFails += 1;
    if (naive) naiveFails += 1;
  }
  return { sequential: sequentialFails / options.runs, naive: naiveFails / options.runs };
}

describe('error-rate sequential test', () => {
  it.each([0.005, 0.01, 0.05])(
    'keeps the A/A false-fail rate ≤ 5%% at a %s error rate despite a look every interval (margin 0, strictest)',
    (p) => {
      const result = errorFalseFailRate({ p, perInterval: 50, looks: 100, runs: 400, margin: 0, seed: 7 });
      expect(result.sequential).toBeLessThanOrEqual(0.05);
      // The same data judged by a re-run fixed-horizon test fails far more often: the peeking problem is real.
      expect(result.naive).toBeGreaterThan(0.15);
    },
  );

  it('catches 5% vs 0.5% errors within 800 requests per side in ≥ 95% of runs (documented sample size)', () => {
    const rng = createRng(11);
    const runs = 400;
    const detectedAt: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      const canary = { n: 0, x: 0 };
      const baseline = { n: 0, x: 0 };
      let found = Number.POSITIVE_INFINITY;
      while (canary.n < 2_000) {
        canary.n += 20;
        canary.x += binomial(rng, 20, 0.05);
        baseline.n += 20;
        baseline.x += binomial(rng, 20, 0.005);
        if (canary.n >= 100 && errorRateInterval(canary, baseline, ALPHA).lower > 0.005) {
          found = canary.n;
          break;
        }
      }
      detectedAt.push(found);
    }
    detectedAt.sort((a, b) => a - b);
    expect(detectedAt[Math.floor(runs * 0.95)]).toBeLessThanOrEqual(800);
    expect(detectedAt[Math.floor(runs / 2)]).toBeLessThanOrEqual(500);
  });

  it('proves non-inferiority of an equal canary eventually (pass needs the interval below the margin)', () => {
    const rng = createRng(3);
    const canary = { n: 0, x: 0 };
    const baseline = { n: 0, x: 0 };
    for (let look = 0; look < 200; look += 1) {
      canary.n += 50;
      canary.x += binomial(rng, 50, 0.01);
      baseline.n += 50;
      baseline.x += binomial(rng, 50, 0.01);
    }
    const interval = errorRateInterval(canary, baseline, ALPHA);
    expect(interval.upper).toBeLessThan(0.005);
    expect(interval.lower).toBeLessThan(0);
  });

  it('gives sparse, all-zero error counts a finite non-zero width (kayenta#426)', () => {
    const interval = errorRateInterval({ n: 200, x: 2 }, { n: 200, x: 0 }, ALPHA);
    expect(interval.upper - interval.lower).toBeGreaterThan(0.01);
    expect(interval.lower).toBeLessThan(0);
  });

  it('estimates the samples needed for a gap consistently with the interval width', () => {
    const needed = samplesForErrorRateGap(0.05, 0.005, 0.04, ALPHA);
    const width = mixtureHalfWidth((0.05 * 0.95 + 0.005 * 0.995) / needed, 0.02, ALPHA);
    expect(width).toBeLessThanOrEqual(0.04);
    expect(needed).toBeGreaterThan(100);
    expect(needed).toBeLessThan(1_000);
  });
});

function lognormal(rng: () => number, median: number, sigma: number): number {
  const u = Math.max(rng(), 1e-12);
  const v = rng();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return median * Math.exp(sigma * z);
}

function batch(rng: () => number, count: number, draw: () => number): Totals {
  const samples = Array.from({ length: count }, draw);
  void rng;
  return histogramFromSamples(samples, OTEL_BUCKETS_FOR_TESTS);
}

describe('latency comparison on bucketed histograms', () => {
  it('keeps the A/A false-fail rate ≤ 5% with a look every interval (location and tail tests)', () => {
    const rng = createRng(21);
    const runs = 200;
    let fails = 0;
    for (let run = 0; run < runs; run += 1) {
      let canary = emptyTotals(OTEL_BUCKETS_FOR_TESTS);
      let baseline = emptyTotals(OTEL_BUCKETS_FOR_TESTS);
      let failed = false;
      let lower = -1;
      for (let look = 0; look < 60 && !failed; look += 1) {
        canary = addTotals(
          canary,
          batch(rng, 40, () => lognormal(rng, 0.04, 0.6)),
        );
        baseline = addTotals(
          baseline,
          batch(rng, 40, () => lognormal(rng, 0.04, 0.6)),
        );
        if (look < 4) continue;
        lower = Math.max(lower, latencyInterval(canary, baseline, ALPHA).lower);
        if (lower > 0.56 || tailShift(canary, baseline, ALPHA).lower > 0.1) failed = true;
      }
      if (failed) fails += 1;
    }
    expect(fails / runs).toBeLessThanOrEqual(0.05);
  });

  it('detects a canary that is 60% slower across the board', () => {
    const rng = createRng(5);
    let canary = emptyTotals(OTEL_BUCKETS_FOR_TESTS);
    let baseline = emptyTotals(OTEL_BUCKETS_FOR_TESTS);
    let detected = Number.POSITIVE_INFINITY;
    for (let look = 1; look <= 60; look += 1) {
      canary = addTotals(
        canary,
        batch(rng, 40, () => lognormal(rng, 0.064, 0.6)),
      );
      baseline = addTotals(
        baseline,
        batch(rng, 40, () => lognormal(rng, 0.04, 0.6)),
      );
      if (latencyInterval(canary, baseline, ALPHA).lower > 0.56) {
        detected = look * 40;
        break;
      }
    }
    expect(detected).toBeLessThanOrEqual(1_200);
  });

  it('catches a tail regression that leaves the median alone (kayenta#780: variance change)', () => {
    const rng = createRng(9);
    // 20% of canary requests take 1 s (a cold dependency), the rest are like the baseline.
    const canaryDraw = (): number => (rng() < 0.2 ? lognormal(rng, 1, 0.2) : lognormal(rng, 0.04, 0.5));
    const canary = batch(rng, 3_000, canaryDraw);
    const baseline = batch(rng, 3_000, () => lognormal(rng, 0.04, 0.5));
    const shift = tailShift(canary, baseline, ALPHA);
    expect(shift.lower).toBeGreaterThan(0.1);
    expect(shift.at).toBeDefined();
  });

  it('computes the Mann-Whitney probability with ties inside buckets', () => {
    const a = histogramFromSamples([0.001, 0.001], [0.005, 0.01]);
    const b = histogramFromSamples([0.001, 0.02], [0.005, 0.01]);
    // canary obs both in bucket 0; baseline one in bucket 0 (tie), one above: A = (0.5 + 0) / 2 = 0.25.
    expect(mannWhitney(a, b).auc).toBeCloseTo(0.25, 10);
  });

  it('compares histograms with different bucket layouts on their shared bounds', () => {
    const a = histogramFromSamples([0.003, 0.02, 0.2], [0.005, 0.01, 0.05, 0.1, 0.5]);
    const b = histogramFromSamples([0.003, 0.02, 0.2], [0.005, 0.05, 0.5]);
    expect(mannWhitney(a, b).auc).toBeCloseTo(0.5, 10);
  });
});

describe('the SLO error-rate bound (one-sided Wilson)', () => {
  it('inverts the normal distribution', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.95)).toBeCloseTo(1.644854, 5);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });

  it('bounds a few errors in few requests well below their point estimate, many errors close to it', () => {
    expect(wilsonLowerBound(3, 200, 0.05)).toBeCloseTo(0.00461, 4);
    // One error in a 21-request canary step says little: a 1 % error rate shows it in 19 % of such steps.
    expect(wilsonLowerBound(1, 21, 0.05)).toBeLessThan(0.01);
    expect(wilsonLowerBound(3, 21, 0.05)).toBeGreaterThan(0.01);
    expect(wilsonLowerBound(3, 200, 0.05)).toBeLessThan(0.01);
    expect(wilsonLowerBound(300, 20_000, 0.05)).toBeGreaterThan(0.013);
    expect(wilsonLowerBound(0, 200, 0.05)).toBe(0);
    expect(wilsonLowerBound(0, 0, 0.05)).toBe(0);
  });

  it('exceeds the true rate in at most about α of samples (a healthy canary rarely breaches)', () => {
    const rng = createRng(5);
    for (const [p, n] of [
      [0.01, 21],
      [0.01, 200],
      [0.01, 2_000],
      [0.05, 300],
    ] as const) {
      let above = 0;
      const samples = 2_000;
      for (let sample = 0; sample < samples; sample += 1)
        if (wilsonLowerBound(binomial(rng, n, p), n, ALPHA) > p) above += 1;
      // The point estimate exceeds p in roughly half of the samples; the bound in at most ≈ α, small n included.
      expect(above / samples).toBeLessThanOrEqual(ALPHA + 0.02);
    }
  });
});
