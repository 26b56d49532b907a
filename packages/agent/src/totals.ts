// Request totals of one pod (or a group of pods): counts by status class and a latency histogram. Totals are
// cumulative and monotone; a window is the difference of two totals. Histograms keep their own bucket bounds, so
// any bucket layout works, and two layouts are compared on the bounds they share.
import { parseExposition } from './exposition.ts';

/** HTTP status classes counted separately; `5xx` are the errors. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'other';

/** Cumulative request counts and latency histogram (seconds). */
export interface Totals {
  readonly requests: number;
  readonly errors: number;
  readonly byClass: Readonly<Record<StatusClass, number>>;
  /** Finite upper bounds of the buckets in seconds, ascending. */
  readonly bounds: readonly number[];
  /** Non-cumulative count per bucket: `counts[i]` for `bounds[i]`, the last one for +Inf (length bounds+1). */
  readonly counts: readonly number[];
  /** Sum of observed durations in seconds. */
  readonly sum: number;
}

/** The histogram the app exposes (HTTP metrics contract). */
export const HTTP_DURATION_METRIC = 'http_server_request_duration_seconds';

const CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'];

function emptyClasses(): Record<StatusClass, number> {
  return { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 };
}

/**
 * Totals with no requests and the given bucket bounds.
 * @example emptyTotals([0.1, 0.5, 1])
 */
export function emptyTotals(bounds: readonly number[] = []): Totals {
  return {
    requests: 0,
    errors: 0,
    byClass: emptyClasses(),
    bounds: [...bounds],
    counts: new Array<number>(bounds.length + 1).fill(0),
    sum: 0,
  };
}

/** The status class of an `http_response_status_code` label value. */
export function statusClass(code: string | undefined): StatusClass {
  const digit = code !== undefined && /^[1-5]\d\d$/.test(code) ? code[0] : undefined;
  return digit === undefined ? 'other' : (`${digit}xx` as StatusClass);
}

interface SeriesAccumulator {
  cumulative: Map<number, number>;
  count: number;
  sum: number;
  code: string | undefined;
}

/**
 * Reads the HTTP request histogram out of a /q/metrics page: request counts by status class (from `_count` per
 * `http_response_status_code`) and the latency buckets summed over all series.
 * @throws AgentError `GANTRY_AGENT_METRICS_PARSE` on a malformed line of that metric.
 * @example const totals = totalsFromExposition(await (await fetch(`${app}/q/metrics`)).text());
 */
export function totalsFromExposition(text: string, metric: string = HTTP_DURATION_METRIC): Totals {
  const bucketName = `${metric}_bucket`;
  const countName = `${metric}_count`;
  const sumName = `${metric}_sum`;
  const samples = parseExposition(text, (name) => name === bucketName || name === countName || name === sumName);
  const series = new Map<string, SeriesAccumulator>();
  const keyOf = (labels: Readonly<Record<string, string>>): string =>
    Object.keys(labels)
      .filter((key) => key !== 'le')
      .sort()
      .map((key) => `${key}=${labels[key] ?? ''}`)
      .join('\u0000');
  for (const sample of samples) {
    if (!Number.isFinite(sample.value) || sample.value < 0) continue;
    const key = keyOf(sample.labels);
    let entry = series.get(key);
    if (entry === undefined) {
      entry = { cumulative: new Map(), count: 0, sum: 0, code: sample.labels['http_response_status_code'] };
      series.set(key, entry);
    }
    if (sample.name === bucketName) {
      const le = Number(sample.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : sample.labels['le']);
      if (!Number.isNaN(le)) entry.cumulative.set(le, sample.value);
    } else if (sample.name === countName) {
      entry.count = sample.value;
    } else {
      entry.sum = sample.value;
    }
  }
  const boundSet = new Set<number>();
  for (const entry of series.values()) {
    for (const le of entry.cumulative.keys()) if (Number.isFinite(le)) boundSet.add(le);
  }
  const bounds = [...boundSet].sort((a, b) => a - b);
  const counts = new Array<number>(bounds.length + 1).fill(0);
  const byClass = emptyClasses();
  let requests = 0;
  let sum = 0;
  for (const entry of series.values()) {
    const count = Math.max(entry.count, entry.cumulative.get(Number.POSITIVE_INFINITY) ?? 0);
    requests += count;
    sum += entry.sum;
    byClass[statusClass(entry.code)] += count;
    // Cumulative count of this series at each shared bound: its count at the largest own bound not above it.
    const own = [...entry.cumulative.entries()].filter(([le]) => Number.isFinite(le)).sort((a, b) => a[0] - b[0]);
    let ownIndex = 0;
    let cumulative = 0;
    let previous = 0;
    for (let index = 0; index < bounds.length; index += 1) {
      const bound = bounds[index]!;
      while (ownIndex < own.length && own[ownIndex]![0] <= bound) {
        cumulative = Math.max(cumulative, own[ownIndex]![1]);
        ownIndex += 1;
      }
      counts[index]! += Math.max(0, cumulative - previous);
      previous = Math.max(previous, cumulative);
    }
    counts[bounds.length]! += Math.max(0, count - previous);
  }
  return { requests, errors: byClass['5xx'], byClass, bounds, counts, sum };
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/** Re-buckets totals onto `bounds` (a subset of its own bounds gives exact counts; others are approximated). */
export function rebucket(totals: Totals, bounds: readonly number[]): Totals {
  if (sameBounds(totals.bounds, bounds)) return totals;
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let target = 0;
  for (let index = 0; index < totals.counts.length; index += 1) {
    const upper = index < totals.bounds.length ? totals.bounds[index]! : Number.POSITIVE_INFINITY;
    while (target < bounds.length && bounds[target]! < upper) target += 1;
    counts[target]! += totals.counts[index]!;
  }
  return { ...totals, bounds: [...bounds], counts };
}

/** Adds two totals (bounds: the first one's, unless it is empty). */
export function addTotals(a: Totals, b: Totals): Totals {
  if (a.requests === 0 && a.bounds.length === 0) return b;
  if (b.requests === 0 && b.bounds.length === 0) return a;
  const right = rebucket(b, a.bounds);
  const byClass = emptyClasses();
  for (const name of CLASSES) byClass[name] = a.byClass[name] + right.byClass[name];
  return {
    requests: a.requests + right.requests,
    errors: a.errors + right.errors,
    byClass,
    bounds: a.bounds,
    counts: a.counts.map((count, index) => count + (right.counts[index] ?? 0)),
    sum: a.sum + right.sum,
  };
}

/**
 * `later − earlier`. When a counter went down (the app restarted) or the bucket layout changed, `later` counts
 * from zero, the way Prometheus' `increase()` treats a reset.
 */
export function subtractTotals(later: Totals, earlier: Totals): Totals {
  const reset =
    later.requests < earlier.requests ||
    !sameBounds(later.bounds, earlier.bounds) ||
    CLASSES.some((name) => later.byClass[name] < earlier.byClass[name]) ||
    later.counts.some((count, index) => count < (earlier.counts[index] ?? 0));
  if (reset) return later;
  const byClass = emptyClasses();
  for (const name of CLASSES) byClass[name] = later.byClass[name] - earlier.byClass[name];
  return {
    requests: later.requests - earlier.requests,
    errors: later.errors - earlier.errors,
    byClass,
    bounds: later.bounds,
    counts: later.counts.map((count, index) => count - (earlier.counts[index] ?? 0)),
    sum: Math.max(0, later.sum - earlier.sum),
  };
}

/** Whether the delta looks like a counter reset (used to count app restarts). */
export function isReset(later: Totals, earlier: Totals): boolean {
  return later.requests < earlier.requests;
}

/**
 * The `q` quantile (0..1) in seconds from bucket counts, interpolating linearly inside the bucket as PromQL's
 * `histogram_quantile` does. `undefined` without observations; the largest finite bound when it falls in +Inf.
 * @example histogramQuantile(totals, 0.99) // seconds
 */
export function histogramQuantile(totals: Totals, q: number): number | undefined {
  const total = totals.counts.reduce((acc, count) => acc + count, 0);
  if (total <= 0) return undefined;
  const rank = q * total;
  let cumulative = 0;
  for (let index = 0; index < totals.counts.length; index += 1) {
    const count = totals.counts[index]!;
    if (cumulative + count >= rank && count > 0) {
      if (index >= totals.bounds.length) return totals.bounds[totals.bounds.length - 1];
      const upper = totals.bounds[index]!;
      const lower = index === 0 ? 0 : totals.bounds[index - 1]!;
      return lower + (upper - lower) * ((rank - cumulative) / count);
    }
    cumulative += count;
  }
  return totals.bounds[totals.bounds.length - 1];
}

/** A JSON-friendly copy of totals (for summaries exchanged between agents). */
export function totalsToJson(totals: Totals): Totals {
  return {
    requests: totals.requests,
    errors: totals.errors,
    byClass: { ...totals.byClass },
    bounds: [...totals.bounds],
    counts: [...totals.counts],
    sum: totals.sum,
  };
}

/** Validates totals received from a peer; `undefined` when the shape is wrong (never throws). */
export function totalsFromJson(value: unknown): Totals | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const isCount = (item: unknown): item is number => typeof item === 'number' && Number.isFinite(item) && item >= 0;
  const bounds = record['bounds'];
  const counts = record['counts'];
  const byClassValue = record['byClass'];
  if (!Array.isArray(bounds) || !bounds.every((item) => typeof item === 'number' && Number.isFinite(item))) {
    return undefined;
  }
  if (!Array.isArray(counts) || counts.length !== bounds.length + 1 || !counts.every(isCount)) return undefined;
  if (typeof byClassValue !== 'object' || byClassValue === null) return undefined;
  const byClass = emptyClasses();
  for (const name of CLASSES) {
    const count = (byClassValue as Record<string, unknown>)[name];
    if (!isCount(count)) return undefined;
    byClass[name] = count;
  }
  const requests = record['requests'];
  const errors = record['errors'];
  const sum = record['sum'];
  if (!isCount(requests) || !isCount(errors) || !isCount(sum)) return undefined;
  return { requests, errors, byClass, bounds: bounds as number[], counts: counts, sum };
}
