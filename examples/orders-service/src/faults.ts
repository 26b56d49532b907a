// The faults a version injects (version 3's bug): some order requests fail with a 500, some are slower. Decided
// per request from an injectable random source, so tests can make them deterministic.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Faults } from './config.ts';

/** What happens to one request. */
export interface FaultDecision {
  /** Answer with a 500 after doing the work. */
  readonly fail: boolean;
  /** Extra latency in milliseconds (0 = none). */
  readonly delayMs: number;
}

/** Decides and applies the faults of one version. */
export interface FaultInjector {
  readonly faults: Faults;
  /** Draws the decision for the next request (none while `suspended`, e.g. during the warm-up). */
  decide(suspended?: boolean): FaultDecision;
  /** Waits the decided delay (if any). */
  delay(decision: FaultDecision): Promise<void>;
}

/** Thrown (and answered with a 500) by a request the injector decided to fail. */
export class InjectedFault extends Error {
  readonly statusCode = 500;
  constructor() {
    super('pricing lookup failed (version 3 regression)');
    this.name = 'InjectedFault';
  }
}

/**
 * Creates the injector of a version's faults.
 * @example const injector = createFaultInjector(V3_FAULTS); const decision = injector.decide();
 */
export function createFaultInjector(faults: Faults, random: () => number = Math.random): FaultInjector {
  const none: FaultDecision = { fail: false, delayMs: 0 };
  const active = faults.errorRate > 0 || faults.slowRate > 0;
  return {
    faults,
    decide(suspended = false) {
      if (!active || suspended) return none;
      const fail = random() < faults.errorRate;
      const slow = random() < faults.slowRate;
      const [low, high] = faults.slowMs;
      return { fail, delayMs: slow ? Math.round(low + random() * (high - low)) : 0 };
    },
    async delay(decision) {
      if (decision.delayMs > 0) await sleep(decision.delayMs);
    },
  };
}
