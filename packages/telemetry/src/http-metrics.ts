// The HTTP server request histogram, written for the hot path: no key string per request, buckets as a typed
// array, the series cap and trace-id exemplars built in. It registers in a prom-client Registry like any metric
// (prom-client only calls get() and reset()), so it shows up in /q/metrics with everything else.

/** Label value for requests that matched no route: one shared series, whatever the raw path. */
export const UNMATCHED_ROUTE = '__unmatched__';
/** Label value that replaces every label of a new series once a metric reached its series cap. */
export const OVERFLOW_LABEL_VALUE = '__overflow__';
/** Name of the request duration histogram (OpenTelemetry's `http.server.request.duration` in Prometheus form). */
export const HTTP_SERVER_DURATION_METRIC = 'http_server_request_duration_seconds';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
// Small numbers for the normalised methods (`_OTHER` last): with the status code they key a route's series.
const METHOD_NUMBERS = new Map([...KNOWN_METHODS, '_OTHER'].map((method, index) => [method, index]));
const METHOD_SLOTS = 16;

/** Normalises a request method as the OpenTelemetry conventions say: unknown methods become `_OTHER`. */
export function normaliseMethod(method: string): string {
  if (KNOWN_METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER';
}

interface Series {
  readonly labels: Record<string, string>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
  // Latest exemplar per bucket (index buckets.length is +Inf); trace ids only when the span was sampled.
  readonly exemplarTrace: (string | undefined)[];
  readonly exemplarSpan: (string | undefined)[];
  readonly exemplarValue: Float64Array;
  readonly exemplarTime: Float64Array;
}

/** What prom-client expects from `get()`. */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
  exemplar?: { labelSet: Record<string, string>; value: number; timestamp: number } | null;
}

/** Options of {@link HttpServerDurationMetric}. */
export interface HttpServerDurationOptions {
  readonly buckets: readonly number[];
  readonly maxSeries: number;
  /** Add a `tenant` label (values from the allow-list only). */
  readonly tenantLabel: boolean;
  /** Called once per series that went to overflow. */
  readonly onOverflow: (metric: string) => void;
}

/**
 * `http_server_request_duration_seconds{http_request_method, http_route, http_response_status_code}` histogram.
 * @example
 * metric.record('GET', '/orders/:id', 200, 0.012, traceId, spanId);
 */
export class HttpServerDurationMetric {
  readonly name = HTTP_SERVER_DURATION_METRIC;
  readonly help = 'Duration of HTTP server requests.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
  readonly #buckets: Float64Array;
  readonly #series = new Map<string, Series>();
  // Without a tenant label: route template -> (status code · 16 + method number) -> series, the same series objects
  // as #series (never an overflow one), so a request finds its series without building a key string.
  readonly #byRoute = new Map<string, Map<number, Series>>();
  readonly #maxSeries: number;
  readonly #tenantLabel: boolean;
  readonly #onOverflow: (metric: string) => void;

  constructor(options: HttpServerDurationOptions) {
    this.#buckets = Float64Array.from(options.buckets);
    this.#maxSeries = options.maxSeries;
    this.#tenantLabel = options.tenantLabel;
    this.#onOverflow = options.onOverflow;
    this.labelNames = options.tenantLabel
      ? ['http_request_method', 'http_route', 'http_response_status_code', 'tenant']
      : ['http_request_method', 'http_route', 'http_response_status_code'];
  }

  /** Number of label combinations held. */
  get seriesCount(): number {
    return this.#series.size;
  }

  /**
   * Records one request. `route` is the route template (or {@link UNMATCHED_ROUTE}); `tenant` only when
   * allow-listed. Never throws.
   */
  record(
    method: string,
    route: string,
    statusCode: number,
    seconds: number,
    traceId?: string,
    spanId?: string,
    tenant?: string,
  ): void {
    const methodLabel = normaliseMethod(method);
    let series: Series | undefined;
    if (this.#tenantLabel || !Number.isInteger(statusCode)) {
      const key = this.#tenantLabel
        ? `${methodLabel} ${statusCode} ${tenant ?? ''} ${route}`
        : `${methodLabel} ${statusCode} ${route}`;
      series =
        this.#series.get(key) ??
        this.#createSeries(key, methodLabel, route, statusCode, this.#tenantLabel ? (tenant ?? '') : undefined);
    } else {
      const slot = statusCode * METHOD_SLOTS + METHOD_NUMBERS.get(methodLabel)!;
      let byStatus = this.#byRoute.get(route);
      series = byStatus?.get(slot);
      if (series === undefined) {
        const key = `${methodLabel} ${statusCode} ${route}`;
        series = this.#series.get(key) ?? this.#createSeries(key, methodLabel, route, statusCode, undefined);
        if (this.#series.get(key) === series) {
          if (byStatus === undefined) {
            byStatus = new Map();
            this.#byRoute.set(route, byStatus);
          }
          byStatus.set(slot, series);
        }
      }
    }
    const value = seconds >= 0 && Number.isFinite(seconds) ? seconds : 0;
    const buckets = this.#buckets;
    let index = 0;
    while (index < buckets.length && value > buckets[index]!) index += 1;
    series.counts[index]! += 1;
    series.sum += value;
    series.count += 1;
    if (traceId !== undefined) {
      series.exemplarTrace[index] = traceId;
      series.exemplarSpan[index] = spanId;
      series.exemplarValue[index] = value;
      series.exemplarTime[index] = Date.now() / 1000;
    }
  }

  #createSeries(key: string, method: string, route: string, statusCode: number, tenant: string | undefined): Series {
    let labels: Record<string, string>;
    let seriesKey = key;
    if (this.#series.size >= this.#maxSeries) {
      // Keep method and status (error rates stay right); only the route (and tenant) collapse.
      seriesKey = `${method} ${statusCode} ${OVERFLOW_LABEL_VALUE}`;
      const existing = this.#series.get(seriesKey);
      this.#onOverflow(this.name);
      if (existing !== undefined) return existing;
      labels = {
        http_request_method: method,
        http_route: OVERFLOW_LABEL_VALUE,
        http_response_status_code: String(statusCode),
      };
      if (tenant !== undefined) labels['tenant'] = OVERFLOW_LABEL_VALUE;
    } else {
      labels = { http_request_method: method, http_route: route, http_response_status_code: String(statusCode) };
      if (tenant !== undefined) labels['tenant'] = tenant;
    }
    const size = this.#buckets.length + 1;
    const series: Series = {
      labels,
      counts: new Float64Array(size),
      sum: 0,
      count: 0,
      exemplarTrace: new Array<string | undefined>(size).fill(undefined),
      exemplarSpan: new Array<string | undefined>(size).fill(undefined),
      exemplarValue: new Float64Array(size),
      exemplarTime: new Float64Array(size),
    };
    this.#series.set(seriesKey, series);
    return series;
  }

  /** prom-client's collection entry point. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (let index = 0; index <= this.#buckets.length; index += 1) {
        cumulative += series.counts[index]!;
        const traceId = series.exemplarTrace[index];
        values.push({
          labels: { ...series.labels, le: index < this.#buckets.length ? this.#buckets[index]! : '+Inf' },
          value: cumulative,
          metricName: bucketName,
          exemplar:
            traceId === undefined
              ? null
              : {
                  labelSet: { trace_id: traceId, span_id: series.exemplarSpan[index] ?? '' },
                  value: series.exemplarValue[index]!,
                  timestamp: series.exemplarTime[index]!,
                },
        });
      }
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
    this.#byRoute.clear();
  }
}
