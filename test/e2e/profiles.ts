// The pace of the end-to-end scenarios, tuned to fit the suite's budget (whole suite under 15 min on 2 cores) while
// keeping the statistics honest. Why each number holds is in README.md beside this file.
import type { RolloutSettings } from '../../examples/orders-service/demo/controller.ts';
import { DEFAULT_STEPS } from '../../examples/orders-service/demo/controller.ts';
import { DEMO_PROFILE, demoPolicy } from '../../examples/orders-service/demo/profiles.ts';
import type { Profile } from '../../examples/orders-service/demo/run.ts';

/**
 * Good rollouts back to back: 150 requests/s, one stable pod, one-second bakes, a 250 ms agent interval. The
 * gates are the demo's (same margins, α = 0.05), with 30 requests before the SLO judges. The bakes at 10 and 25 %
 * are also the canary's warm-up on real traffic (writes included) before the comparison at 50 %.
 */
export const ROLLOUTS_PROFILE: Profile = {
  rate: 150,
  replicas: 1,
  seedOrders: 2_000,
  readinessIntervalMs: 150,
  pods: {
    agentIntervalMs: 250,
    agentWarmupMs: 500,
    shutdownDelayMs: 600,
    drainTimeoutMs: 3_000,
    checkIntervalMs: 1_000,
    flagsRefreshMs: 500,
    heartbeatIntervalMs: 1_000,
    requestLogSampleRatio: 0.01,
    warmupRequests: 600,
  },
  rollout: { steps: DEFAULT_STEPS, bakeMs: 1_000, pollMs: 250, stepTimeoutMs: 30_000 },
  policy: demoPolicy({ sloMinSamples: 30, compareMinSamples: 200, triggerForMs: 5_000 }),
  // Every request still gets a trace id in its log line; one in twenty spans is kept (CPU on a 2-core machine).
  appEnv: { OTEL_TRACES_SAMPLER_ARG: '0.05' },
};

/**
 * The bad canary at the demo's 20 requests/s, with the demo's policy and steps (a 5 s bake per step instead of
 * 10 s) and one stable pod: the canary's share of the traffic, and so the time to detect, is the demo's.
 */
export const BAD_CANARY_PROFILE: Profile = {
  ...DEMO_PROFILE,
  replicas: 1,
  readinessIntervalMs: 250,
  pods: { ...DEMO_PROFILE.pods, shutdownDelayMs: 800, heartbeatIntervalMs: 1_000 },
  rollout: { ...DEMO_PROFILE.rollout, bakeMs: 5_000 },
};

/**
 * The switch from v1 to v2 before the contract: the canary's SLO at 100 % (no baseline comparison —
 * what this scenario checks is the schema gate, not the statistics).
 */
export const SWITCH_SETTINGS: RolloutSettings = {
  steps: [{ weight: 100, gate: 'canary', window: 'rollout' }],
  bakeMs: 1_000,
  pollMs: 500,
  stepTimeoutMs: 60_000,
};
