// The pace of a scenario. The demo runs at 20 requests/s like a quiet production service; its agent policy is the
// documented defaults scaled to that traffic (see README.md: "The demo's policy and why the statistics hold").
import type { AgentPolicy } from './cluster.ts';
import { DEFAULT_STEPS } from './controller.ts';
import type { Profile } from './run.ts';

/**
 * The sidecars' policy: the step gate `canary` judges the canary against the SLO (errors ≤ 1 %, p95 ≤ 250 ms) and
 * the rollback triggers; the built-in `promotion` gate adds the sequential comparison with the baseline pods
 * (non-inferiority: errors not worse by 1 pp, not slower by the latency margins, at α = 0.05).
 */
export function demoPolicy(options: {
  sloMinSamples: number;
  compareMinSamples: number;
  triggerForMs: number;
}): AgentPolicy {
  return {
    slo: {
      maxErrorRate: 0.01,
      latencyQuantile: 0.95,
      maxLatencyMs: 250,
      minSamples: options.sloMinSamples,
      windowMs: '5m',
    },
    // Margins a 20 requests/s service can prove within a step (see README.md): errors not worse by more than the
    // SLO's error budget (1 pp; ~330 requests per side at zero errors, where 0.5 pp needs ~690) and P(canary slower)
    // below 0.6 (a 10-point shift; 0.56 needs ~1 500 per side when the two are 2 points apart).
    compare: {
      alpha: 0.05,
      errorMargin: 0.01,
      latencyMargin: 0.1,
      tailMargin: 0.1,
      minSamples: options.compareMinSamples,
    },
    triggers: {
      errorRate: 0.01,
      errorRateForMs: options.triggerForMs,
      p95Ms: 2_000,
      latencyForMs: options.triggerForMs,
      evaluationWindowMs: '30s',
      minSamples: 20,
    },
    failAfter: 2,
    gates: {
      canary: { checks: ['holds', 'calendar', 'triggers', 'schema', 'slo'] },
    },
  };
}

/** `./gantry demo`: 20 requests/s, 2 stable pods, 10 s bake per step. */
export const DEMO_PROFILE: Profile = {
  rate: 20,
  replicas: 2,
  seedOrders: 2_000,
  readinessIntervalMs: 500,
  pods: {
    agentIntervalMs: 1_000,
    agentWarmupMs: 3_000,
    shutdownDelayMs: 1_500,
    drainTimeoutMs: 5_000,
    checkIntervalMs: 2_000,
    flagsRefreshMs: 500,
    heartbeatIntervalMs: 2_000,
    requestLogSampleRatio: 0.1,
    warmupRequests: 600,
  },
  rollout: {
    steps: DEFAULT_STEPS,
    bakeMs: 10_000,
    pollMs: 1_000,
    stepTimeoutMs: 90_000,
  },
  policy: demoPolicy({ sloMinSamples: 20, compareMinSamples: 200, triggerForMs: 10_000 }),
};

/** `./gantry demo --fast`: 50 requests/s and 5 s steps. */
export const FAST_PROFILE: Profile = {
  ...DEMO_PROFILE,
  rate: 50,
  rollout: { ...DEMO_PROFILE.rollout, bakeMs: 5_000 },
  policy: demoPolicy({ sloMinSamples: 40, compareMinSamples: 200, triggerForMs: 6_000 }),
};
