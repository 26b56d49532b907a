// Liveness: how long the event loop was blocked since the previous run.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Check } from '../contracts.ts';
import { numberOption, stringOption } from '../options.ts';

/** Options of {@link createEventLoopDelayCheck}. */
export interface EventLoopDelayCheckOptions {
  /** @default 'event-loop' */
  readonly name?: string;
  /** DOWN when the loop was blocked longer than this since the previous run. @default 1_000 */
  readonly maxDelayMs?: number;
  /** Sampling resolution of the delay histogram. @default 20 */
  readonly resolutionMs?: number;
  /** @default true */
  readonly critical?: boolean;
}

/** Default `maxDelayMs` of the event-loop check. @default 1_000 */
export const DEFAULT_MAX_EVENT_LOOP_DELAY_MS = 1_000;

const round = (value: number): number => Math.round(value * 10) / 10;

/**
 * Measures event-loop delay with `monitorEventLoopDelay` and reports, per run, how long the loop was blocked at
 * worst (`blockedMs`), its p99 and mean. DOWN when `blockedMs` exceeds `maxDelayMs`. Meant for liveness: a loop
 * stuck for seconds is a process that needs a restart. Sampling starts at the first run.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for bad options.
 * @example
 * health.addCheck(createEventLoopDelayCheck({ maxDelayMs: 2_000 }), { groups: ['liveness'] });
 */
export function createEventLoopDelayCheck(options: EventLoopDelayCheckOptions = {}): Check {
  const name = stringOption('name', options.name) ?? 'event-loop';
  const maxDelayMs = numberOption('maxDelayMs', options.maxDelayMs, DEFAULT_MAX_EVENT_LOOP_DELAY_MS, { min: 1 });
  const resolutionMs = numberOption('resolutionMs', options.resolutionMs, 20, { min: 1, integer: true });
  let histogram: ReturnType<typeof monitorEventLoopDelay> | undefined;
  return {
    name,
    critical: options.critical ?? true,
    run: async () => {
      if (histogram === undefined) {
        histogram = monitorEventLoopDelay({ resolution: resolutionMs });
        histogram.enable();
        return { status: 'UP', data: { blockedMs: 0, p99DelayMs: 0, meanDelayMs: 0, maxDelayMs } };
      }
      // The histogram records how late each sampling timer fired, so delay above the resolution is blocked time.
      const blockedMs = Math.max(0, histogram.max / 1e6 - resolutionMs);
      const p99 = Math.max(0, histogram.percentile(99) / 1e6 - resolutionMs);
      const mean = Number.isNaN(histogram.mean) ? 0 : Math.max(0, histogram.mean / 1e6 - resolutionMs);
      histogram.reset();
      return {
        status: blockedMs > maxDelayMs ? 'DOWN' : 'UP',
        data: { blockedMs: round(blockedMs), p99DelayMs: round(p99), meanDelayMs: round(mean), maxDelayMs },
      };
    },
  };
}
