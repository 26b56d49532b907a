// The Evaluator on its own, fed pod views built here (no app, no HTTP): run lifecycle across rollouts and the
// statistics as the gates apply them, with full control of the clock and of every count.
import { describe, expect, it } from 'vitest';
import { Evaluator, type EvaluationState, type EvaluatorOptions, type GateQuery, type PodView } from './gates.ts';
import { TotalsHistory } from './history.ts';
import { HoldStore } from './holds.ts';
import { SILENT_LOGGER } from './logger.ts';
import { resolvePolicy, type PolicyOptions } from './options.ts';
import { parseGateQuery } from './server.ts';
import { createRng } from './stats.ts';
import { OTEL_BUCKETS_FOR_TESTS, histogramFromSamples } from './stats-testing.ts';
import type { PodSummary } from './summary.ts';
import { addTotals, emptyTotals, type Totals } from './totals.ts';

const T0 = Date.parse('2026-06-01T10:00:00Z');

/** A pod whose cumulative totals the test advances; `view()` is what the agent would hand the evaluator. */
function fakePod(pod: string, hash: string, isSelf = false) {
  const history = new TotalsHistory(3_600_000);
  let totals: Totals = emptyTotals();
  let at = T0;
  const summary = (): PodSummary => ({
    schemaVersion: 1,
    pod,
    namespace: 'shop',
    podTemplateHash: hash,
    version: hash,
    service: 'orders',
    imageDigest: undefined,
    agentStartedAt: T0 - 60_000,
    appStartedAt: T0 - 60_000,
    at,
    live: 'UP',
    ready: 'UP',
    consecutiveHealthFailures: 0,
    totals,
    triggers: [],
    schema: null,
    restarts: 0,
  });
  history.add(at, totals);
  return {
    /** `requests` more requests at 20 ms, `errors` of them 5xx, observed at `now`. */
    serve(now: number, requests: number, errors = 0): void {
      at = now;
      totals = addTotals(
        totals,
        histogramFromSamples(new Array<number>(requests).fill(0.02), OTEL_BUCKETS_FOR_TESTS, errors),
      );
      history.add(at, totals);
    },
    view: (): PodView => ({ summary: summary(), history, isSelf }),
  };
}

function evaluator(policy: PolicyOptions = {}, hooks: Pick<EvaluatorOptions, 'onRunRestarted'> = {}): Evaluator {
  const resolved = resolvePolicy({ slo: { minSamples: 100 }, compare: { minSamples: 100 }, ...policy });
  return new Evaluator({
    policy: () => resolved,
    holds: new HoldStore({ now: () => T0, logger: SILENT_LOGGER }),
    intervalMs: 5_000,
    staleAfterMs: 30_000,
    warmupMs: 0,
    ...hooks,
  });
}

function query(parameters: Record<string, string>): GateQuery {
  const parsed = parseGateQuery([parameters], { gate: 'slo', maxWaitMs: 0 });
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
}

let dataVersion = 0;
function state(now: number, self: PodView, others: readonly PodView[] = []): EvaluationState {
  dataVersion += 1;
  return {
    now,
    cycle: dataVersion,
    dataVersion,
    self,
    pods: [self, ...others],
    metricsAgeMs: 0,
    lastShiftAt: undefined,
  };
}

describe('runs across rollouts (the default run id is hash:<expectHash>)', () => {
  const slo = query({ gate: 'slo', expectHash: 'c4n4' });

  it('regression: a second rollout of the same hash on new pods inherited the failed run (intervals, window)', () => {
    const restarted: string[] = [];
    const gates = evaluator(
      {},
      {
        onRunRestarted: (run, previous, reason) =>
          restarted.push(`${run.generation}/${previous.generation}: ${reason}`),
      },
    );
    const compare = query({ gate: 'compare', expectHash: 'c4n4', baselineHash: 'b4s3' });
    const baseline = fakePod('orders-b4s3-aaaaa', 'b4s3');
    // First rollout of c4n4: 5% errors against 0.5%, the compare gate fails and the controller aborts.
    const first = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
    let at = T0;
    let document = gates.evaluate(compare, state(at, first.view(), [baseline.view()]), 'hash:c4n4');
    for (let look = 0; look < 40 && document.verdict === 'pending'; look += 1) {
      at += 5_000;
      first.serve(at, 200, 10);
      baseline.serve(at, 200, 1);
      document = gates.evaluate(compare, state(at, first.view(), [baseline.view()]), 'hash:c4n4');
    }
    expect(document).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
    // A retry a minute later brings new canary pods of the same hash, as good as the baseline. The old run's
    // latched interval (and its start) must not decide: the new run waits for its own evidence, then passes.
    const second = fakePod('orders-c4n4-bbbbb', 'c4n4', true);
    at += 60_000;
    const verdicts: string[] = [];
    for (let look = 0; look < 40; look += 1) {
      document = gates.evaluate(compare, state(at, second.view(), [baseline.view()]), 'hash:c4n4');
      verdicts.push(document.verdict);
      if (document.verdict !== 'pending') break;
      at += 5_000;
      second.serve(at, 200, 1);
      baseline.serve(at, 200, 1);
    }
    expect(verdicts[0]).toBe('pending');
    expect(verdicts.at(-1)).toBe('pass');
    expect(gates.findRun('hash:c4n4')).toMatchObject({ generation: 2 });
    expect(restarted).toEqual(['2/1: the canary pods were replaced (orders-c4n4-bbbbb)']);
  });

  it('keeps the run while canary pods are added or replaced one by one during the rollout', () => {
    const gates = evaluator();
    const a = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
    const b = fakePod('orders-c4n4-bbbbb', 'c4n4');
    gates.evaluate(slo, state(T0, a.view()), 'hash:c4n4');
    gates.evaluate(slo, state(T0 + 5_000, a.view(), [b.view()]), 'hash:c4n4');
    // The self pod is a new one now, but b was part of this run: same rollout.
    const c = fakePod('orders-c4n4-ccccc', 'c4n4', true);
    gates.evaluate(slo, state(T0 + 10_000, c.view(), [b.view()]), 'hash:c4n4');
    expect(gates.findRun('hash:c4n4')).toMatchObject({ generation: 1, startedAt: T0 });
  });

  it('starts afresh after the run was closed, or sat idle longer than policy.runIdleMs', () => {
    const gates = evaluator({ runIdleMs: '10m' });
    const pod = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
    gates.evaluate(slo, state(T0, pod.view()), 'hash:c4n4');
    gates.evaluate(slo, state(T0 + 9 * 60_000, pod.view()), 'hash:c4n4');
    expect(gates.findRun('hash:c4n4')).toMatchObject({ generation: 1, startedAt: T0 });
    // Same pods, but nobody asked for 10 minutes and 1 second: the controller moved on to another rollout.
    gates.evaluate(slo, state(T0 + 19 * 60_000 + 1_000, pod.view()), 'hash:c4n4');
    expect(gates.findRun('hash:c4n4')).toMatchObject({ generation: 2, startedAt: T0 + 19 * 60_000 + 1_000 });
    gates.closeRun('hash:c4n4', T0 + 20 * 60_000, 'Succeeded');
    gates.evaluate(slo, state(T0 + 20 * 60_000 + 5_000, pod.view()), 'hash:c4n4');
    expect(gates.findRun('hash:c4n4')).toMatchObject({ generation: 3, closedAt: undefined, phase: undefined });
  });
});

describe('the compare gate through the Evaluator', () => {
  const compare = query({ gate: 'compare', expectHash: 'c4n4', baselineHash: 'b4s3' });

  it('fails a canary with 5% errors against a 0.5% baseline, and never fails an equal one', () => {
    for (const [canaryErrors, expected] of [
      [10, 'fail'],
      [1, 'pass'],
    ] as const) {
      const gates = evaluator();
      const canary = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
      const baseline = fakePod('orders-b4s3-aaaaa', 'b4s3');
      const runId = `cmp-${canaryErrors}`;
      let at = T0;
      gates.evaluate(compare, state(at, canary.view(), [baseline.view()]), runId);
      const verdicts: string[] = [];
      for (let look = 0; look < 40; look += 1) {
        at += 5_000;
        canary.serve(at, 200, canaryErrors);
        baseline.serve(at, 200, 1);
        const document = gates.evaluate(compare, state(at, canary.view(), [baseline.view()]), runId);
        verdicts.push(document.verdict);
        if (document.verdict !== 'pending') break;
      }
      expect(verdicts.at(-1)).toBe(expected);
      expect(verdicts.slice(0, -1).every((verdict) => verdict === 'pending')).toBe(true);
    }
  });
});

describe('A/A through the Evaluator (latching, margins and look-every-interval as the gate applies them)', () => {
  it('fails an equal canary in ≤ 5% of simulated rollouts polled every interval', () => {
    const rng = createRng(23);
    const compare = query({ gate: 'compare', expectHash: 'c4n4', baselineHash: 'b4s3' });
    const runs = 200;
    let fails = 0;
    for (let run = 0; run < runs; run += 1) {
      // Margin 0, the strictest setting: any error-rate difference the sequence is sure of fails.
      const gates = evaluator({ compare: { minSamples: 100, errorMargin: 0 } });
      const canary = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
      const baseline = fakePod('orders-b4s3-aaaaa', 'b4s3');
      let at = T0;
      gates.evaluate(compare, state(at, canary.view(), [baseline.view()]), 'aa');
      for (let look = 0; look < 40; look += 1) {
        at += 5_000;
        const errors = (n: number): number => {
          let x = 0;
          for (let index = 0; index < n; index += 1) if (rng() < 0.02) x += 1;
          return x;
        };
        canary.serve(at, 100, errors(100));
        baseline.serve(at, 100, errors(100));
        const verdict = gates.evaluate(compare, state(at, canary.view(), [baseline.view()]), 'aa').verdict;
        if (verdict === 'fail') fails += 1;
        if (verdict !== 'pending') break;
      }
    }
    expect(fails / runs).toBeLessThanOrEqual(0.05);
  });
});

describe('the slo gate decides on a lower confidence bound of the error rate', () => {
  const slo = query({ gate: 'slo', expectHash: 'c4n4' });

  /** Serves `requests` with `errors` on a fresh canary over `cycles` cycles; the verdicts of each cycle. */
  function verdicts(requests: number, errors: number, cycles = 3): { verdict: string; reason: string }[] {
    const gates = evaluator({ slo: { minSamples: 100, maxErrorRate: 0.01 } });
    const canary = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
    let at = T0;
    gates.evaluate(slo, state(at, canary.view()), 'slo-run');
    const result: { verdict: string; reason: string }[] = [];
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      at += 5_000;
      canary.serve(at, requests, errors);
      const document = gates.evaluate(slo, state(at, canary.view()), 'slo-run');
      result.push({ verdict: document.verdict, reason: document.reason });
    }
    return result;
  }

  it('regression: 3 errors in 200 requests (1.5%, a healthy 0.5% canary can show it) failed a 1% SLO', () => {
    const result = verdicts(200, 3, 1);
    expect(result[0]!.verdict).toBe('pass');
    expect(result[0]!.reason).toMatch(/^err 1\.50% \(≥ 0\.46% @95%\), p99 \d+ms, n=200 within SLO/);
  });

  it('still fails a canary whose errors are clearly above the SLO, after the hysteresis cycles', () => {
    const result = verdicts(200, 20);
    expect(result.map((entry) => entry.verdict)).toEqual(['pending', 'fail', 'fail']);
    expect(result[1]!.reason).toMatch(/^err 10\.00% \(≥ \d+\.\d+% @95%\) > 1\.00%, n=400$/);
  });

  it('uses policy.slo.alpha for the level', () => {
    const gates = evaluator({ slo: { minSamples: 100, maxErrorRate: 0.01, alpha: 0.4 } });
    const canary = fakePod('orders-c4n4-aaaaa', 'c4n4', true);
    gates.evaluate(slo, state(T0, canary.view()), 'alpha');
    canary.serve(T0 + 5_000, 400, 6);
    // 1.5% in 400 requests: above 1% at 60% confidence, not at 95%.
    expect(gates.evaluate(slo, state(T0 + 5_000, canary.view()), 'alpha').reasonCode).toBe('SLO_ERROR_RATE');
    expect(verdicts(400, 6, 1)[0]!.verdict).toBe('pass');
  });
});
