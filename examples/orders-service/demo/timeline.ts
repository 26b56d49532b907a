// Collects what the demo's clients saw, second by second, plus the controller's events, for the live view,
// the final summary and the HTML report.

/** One request as the client saw it. */
export interface Observation {
  readonly at: number;
  readonly status: number;
  readonly ms: number;
  readonly version: string | undefined;
  readonly error?: string;
}

/** A controller event: a traffic step, a verdict, a promotion, a rollback, a contract attempt. */
export interface TimelineEvent {
  readonly at: number;
  readonly kind: 'phase' | 'weight' | 'verdict' | 'promote' | 'rollback' | 'contract' | 'note';
  readonly text: string;
  readonly verdict?: string;
  readonly weight?: number;
}

/** One second of traffic. */
export interface Second {
  /** Seconds since the timeline started. */
  readonly t: number;
  readonly requests: number;
  /** Responses with status ≥ 500 plus requests that got no response at all. */
  readonly failed: number;
  /** Requests that got no HTTP response from the service (dropped connections, proxy errors). */
  readonly dropped: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly byVersion: Readonly<Record<string, number>>;
  readonly canaryWeight: number;
}

/** Per-second aggregation of observations and events. */
export class Timeline {
  readonly startedAt: number;
  readonly events: TimelineEvent[] = [];
  #buckets = new Map<
    number,
    { latencies: number[]; failed: number; dropped: number; byVersion: Map<string, number> }
  >();
  #weights = new Map<number, number>();
  #weight = 0;
  #total = { requests: 0, failed: 0, dropped: 0 };
  /** Failed observations (time and answering version): few, so kept one by one. */
  #failures: { at: number; version: string | undefined; status: number; error: string | undefined }[] = [];

  constructor(startedAt = Date.now()) {
    this.startedAt = startedAt;
  }

  /** Records one request outcome. A dropped request is one with no HTTP response (status 0) or a proxy 502. */
  observe(observation: Observation): void {
    const second = Math.floor((observation.at - this.startedAt) / 1000);
    let bucket = this.#buckets.get(second);
    if (bucket === undefined) {
      bucket = { latencies: [], failed: 0, dropped: 0, byVersion: new Map() };
      this.#buckets.set(second, bucket);
    }
    const dropped = observation.status === 0 || observation.error !== undefined;
    const failed = dropped || observation.status >= 500;
    bucket.latencies.push(observation.ms);
    if (failed) bucket.failed += 1;
    if (dropped) bucket.dropped += 1;
    const version = observation.version ?? 'none';
    bucket.byVersion.set(version, (bucket.byVersion.get(version) ?? 0) + 1);
    this.#weights.set(second, this.#weight);
    this.#total.requests += 1;
    if (failed) {
      this.#total.failed += 1;
      this.#failures.push({
        at: observation.at,
        version: observation.version,
        status: observation.status,
        error: observation.error,
      });
    }
    if (dropped) this.#total.dropped += 1;
  }

  /** What the failed requests in [from, to) were, counted by answering version, status and error. */
  failureKinds(from = 0, to = Number.POSITIVE_INFINITY): Record<string, number> {
    const kinds: Record<string, number> = {};
    for (const item of this.#failures) {
      if (item.at < from || item.at >= to) continue;
      const key = `${item.version ?? 'no version'} ${item.status}${item.error === undefined ? '' : ` ${item.error}`}`;
      kinds[key] = (kinds[key] ?? 0) + 1;
    }
    return kinds;
  }

  /** The failed requests in [from, to), each with the last controller event before it (for failure messages). */
  failuresBetween(
    from = 0,
    to = Number.POSITIVE_INFINITY,
  ): { at: number; version: string | undefined; status: number; error: string | undefined; after: string }[] {
    return this.#failures
      .filter((item) => item.at >= from && item.at < to)
      .map((item) => {
        const last = this.events.filter((event) => event.at <= item.at).at(-1);
        return {
          ...item,
          after: last === undefined ? 'start' : `${item.at - last.at} ms after "${last.text.slice(0, 60)}"`,
        };
      });
  }

  /** Failed requests answered by `version` whose time falls in [from, to). */
  failedByVersion(version: string, from: number, to: number): number {
    return this.#failures.filter((item) => item.version === version && item.at >= from && item.at < to).length;
  }

  /** Records a controller event (and the canary weight, when it carries one). */
  event(event: Omit<TimelineEvent, 'at'> & { at?: number }): TimelineEvent {
    const full: TimelineEvent = { ...event, at: event.at ?? Date.now() };
    this.events.push(full);
    if (full.weight !== undefined) this.#weight = full.weight;
    return full;
  }

  /** Totals since the start. */
  get totals(): { requests: number; failed: number; dropped: number } {
    return { ...this.#total };
  }

  /** Totals over the observations whose time falls in [from, to). */
  between(from: number, to: number): { requests: number; failed: number; dropped: number } {
    const result = { requests: 0, failed: 0, dropped: 0 };
    for (const second of this.seconds()) {
      const at = this.startedAt + second.t * 1000;
      if (at >= Math.floor(from / 1000) * 1000 && at < to) {
        result.requests += second.requests;
        result.failed += second.failed;
        result.dropped += second.dropped;
      }
    }
    return result;
  }

  /** The per-second series, in order, with empty seconds filled in. */
  seconds(): Second[] {
    const keys = [...this.#buckets.keys()];
    if (keys.length === 0) return [];
    const last = Math.max(...keys);
    const result: Second[] = [];
    let weight = 0;
    for (let t = 0; t <= last; t += 1) {
      const bucket = this.#buckets.get(t);
      weight = this.#weights.get(t) ?? weight;
      if (bucket === undefined) {
        result.push({ t, requests: 0, failed: 0, dropped: 0, p50Ms: 0, p99Ms: 0, byVersion: {}, canaryWeight: weight });
        continue;
      }
      const sorted = [...bucket.latencies].sort((a, b) => a - b);
      result.push({
        t,
        requests: sorted.length,
        failed: bucket.failed,
        dropped: bucket.dropped,
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        byVersion: Object.fromEntries(bucket.byVersion),
        canaryWeight: weight,
      });
    }
    return result;
  }
}

/** The q-quantile of an ascending array (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
