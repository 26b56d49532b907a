// Helpers for statistical tests and benchmarks: build histogram totals from raw latencies.
import type { Totals } from './totals.ts';

/** OTel's default HTTP duration buckets (seconds). */
export const OTEL_BUCKETS_FOR_TESTS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** Totals of successful requests with these latencies (seconds) on these bucket bounds. */
export function histogramFromSamples(samples: readonly number[], bounds: readonly number[], errors = 0): Totals {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let sum = 0;
  for (const value of samples) {
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index += 1;
    counts[index]! += 1;
    sum += value;
  }
  return {
    requests: samples.length,
    errors,
    byClass: { '1xx': 0, '2xx': samples.length - errors, '3xx': 0, '4xx': 0, '5xx': errors, other: 0 },
    bounds: [...bounds],
    counts,
    sum,
  };
}
