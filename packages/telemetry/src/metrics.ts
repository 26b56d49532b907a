// Metrics on prom-client: the HTTP histogram, process metrics, the identity, guarded business metrics with a
// series cap, and a serializer that negotiates OpenMetrics (with exemplars) or the Prometheus text format per
// scrape, without switching the registry's global content type.
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  register as globalRegistry,
  type Registry,
} from 'prom-client';
import { TELEMETRY_ERROR_CODES, TelemetryError, invalidOption } from './errors.ts';
import { HttpServerDurationMetric, OVERFLOW_LABEL_VALUE } from './http-metrics.ts';
import type { ServiceIdentity } from './options.ts';

/** Prometheus text format content type. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** OpenMetrics content type (exemplars are only written in this format). */
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/**
 * Label names refused on business metrics: unbounded values (ids, paths, tenants) belong in logs and spans.
 * Tenant labels are allowed only through `allowTenantLabel`.
 */
export const FORBIDDEN_LABEL_NAMES: readonly string[] = Object.freeze([
  'tenant',
  'tenant_id',
  'user',
  'user_id',
  'email',
  'path',
  'raw_path',
  'url',
  'uri',
  'query',
  'trace_id',
  'span_id',
  'request_id',
  'session_id',
  'ip',
  'client_ip',
]);

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TENANT_LABELS = new Set(['tenant', 'tenant_id']);

/** Options of the business metric helpers. */
export interface BusinessMetricOptions<L extends string> {
  /** snake_case, with a unit suffix (`_seconds`, `_bytes`) and `_total` for counters. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  /** Permit a `tenant`/`tenant_id` label (only when the set of tenants is small and known). @default false */
  readonly allowTenantLabel?: boolean;
}

/** Histogram helper options. */
export interface BusinessHistogramOptions<L extends string> extends BusinessMetricOptions<L> {
  /** @default OpenTelemetry's duration buckets (seconds) */
  readonly buckets?: readonly number[];
}

/** A capped counter. */
export interface CappedCounter<L extends string> {
  inc(labels?: Partial<Record<L, string | number>>, value?: number): void;
}
/** A capped histogram. */
export interface CappedHistogram<L extends string> {
  observe(labels: Partial<Record<L, string | number>>, value: number): void;
  /** Starts a timer; calling the result observes the elapsed seconds and returns them. */
  startTimer(labels?: Partial<Record<L, string | number>>): (labels?: Partial<Record<L, string | number>>) => number;
}
/** A capped gauge. */
export interface CappedGauge<L extends string> {
  set(labels: Partial<Record<L, string | number>>, value: number): void;
  inc(labels?: Partial<Record<L, string | number>>, value?: number): void;
  dec(labels?: Partial<Record<L, string | number>>, value?: number): void;
}

/** What the metrics part of telemetry offers. */
export interface TelemetryMetrics {
  /** The prom-client registry everything is registered in. */
  readonly registry: Registry;
  /** The HTTP server request histogram. */
  readonly http: HttpServerDurationMetric;
  /** A counter with guarded label names and the series cap. @throws TelemetryError on a bad name or label. */
  counter<L extends string = never>(options: BusinessMetricOptions<L>): CappedCounter<L>;
  /** A histogram with guarded label names and the series cap. @throws TelemetryError on a bad name or label. */
  histogram<L extends string = never>(options: BusinessHistogramOptions<L>): CappedHistogram<L>;
  /** A gauge with guarded label names and the series cap. @throws TelemetryError on a bad name or label. */
  gauge<L extends string = never>(options: BusinessMetricOptions<L>): CappedGauge<L>;
  /** Sets `gantry_telemetry_instrumentation_active{instrumentation}`. */
  setInstrumentationActive(name: string, active: boolean): void;
  /** Counts a failed span export. */
  countExportFailure(): void;
  /** Counts sampled spans dropped before export (queue full, or a span that could not be encoded). */
  countDroppedSpans(spans: number): void;
  /** Serializes the registry, OpenMetrics when `accept` asks for it. Never throws. */
  serialize(accept?: string): Promise<{ status: 200 | 500; contentType: string; body: string }>;
  /** Unregisters the metrics telemetry created (process metrics stay: other code may share them). */
  close(): void;
}

/** Internal settings of {@link createMetrics}. */
export interface MetricsSettings {
  readonly registry: Registry | undefined;
  readonly processMetrics: boolean;
  readonly maxSeriesPerMetric: number;
  readonly identityLabels: boolean;
  readonly durationBuckets: readonly number[];
  readonly tenantLabel: boolean;
}

function checkNames(kind: string, options: BusinessMetricOptions<string>): readonly string[] {
  if (typeof options !== 'object' || options === null) throw invalidOption(kind, 'an options object', options);
  if (typeof options.name !== 'string' || !METRIC_NAME.test(options.name)) {
    throw invalidOption(`${kind}.name`, 'a Prometheus metric name (letters, digits, _ and :)', options.name);
  }
  if (typeof options.help !== 'string' || options.help === '') {
    throw invalidOption(`${kind}.help`, 'a non-empty string', options.help);
  }
  const labelNames = options.labelNames ?? [];
  for (const label of labelNames) {
    if (
      typeof label !== 'string' ||
      !LABEL_NAME.test(label) ||
      label.startsWith('__') ||
      label === 'le' ||
      label === 'quantile'
    ) {
      throw new TelemetryError(
        TELEMETRY_ERROR_CODES.forbiddenLabel,
        `Label ${JSON.stringify(label)} of metric ${options.name} is not a valid label name (reserved: le, quantile, __*)`,
      );
    }
    if (TENANT_LABELS.has(label) && options.allowTenantLabel === true) continue;
    if (FORBIDDEN_LABEL_NAMES.includes(label)) {
      throw new TelemetryError(
        TELEMETRY_ERROR_CODES.forbiddenLabel,
        `Label ${JSON.stringify(label)} of metric ${options.name} has unbounded values; put it in logs or span ` +
          'attributes instead' +
          (TENANT_LABELS.has(label) ? ' (or pass allowTenantLabel: true when the tenants are few and known)' : ''),
      );
    }
  }
  return labelNames;
}

/** Keeps the set of label combinations of one metric under the cap; over it, labels become `__overflow__`. */
class SeriesGuard {
  readonly #seen = new Set<string>();
  readonly #max: number;
  readonly #labelNames: readonly string[];
  readonly #overflow: Record<string, string>;
  readonly #onOverflow: () => void;

  constructor(labelNames: readonly string[], max: number, onOverflow: () => void) {
    this.#labelNames = labelNames;
    this.#max = max;
    this.#onOverflow = onOverflow;
    this.#overflow = Object.fromEntries(labelNames.map((name) => [name, OVERFLOW_LABEL_VALUE]));
  }

  admit(labels: Record<string, string | number> | undefined): Record<string, string | number> {
    if (this.#labelNames.length === 0 || labels === undefined) return labels ?? {};
    let key = '';
    for (const name of this.#labelNames) key += `${labels[name] ?? ''}\u0000`;
    if (this.#seen.has(key)) return labels;
    if (this.#seen.size < this.#max) {
      this.#seen.add(key);
      return labels;
    }
    this.#onOverflow();
    return this.#overflow;
  }
}

const escapeLabel = (value: string): string => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface JsonMetric {
  name: string;
  help: string;
  type: string;
  values?: {
    labels?: Record<string, string | number>;
    value: number;
    metricName?: string;
    exemplar?: { labelSet: Record<string, string>; value: number; timestamp?: number } | null;
  }[];
}

function formatLabels(labels: Record<string, string | number> | undefined): string {
  if (labels === undefined) return '';
  let out = '';
  for (const name in labels) {
    const value = labels[name];
    if (value === undefined) continue;
    out += `${out === '' ? '' : ','}${name}="${escapeLabel(typeof value === 'number' ? formatNumber(value) : value)}"`;
  }
  return out === '' ? '' : `{${out}}`;
}

/**
 * Writes metrics in the Prometheus text format (0.0.4) or OpenMetrics 1.0 (with exemplars) from prom-client's
 * JSON form. Exported for tests and for users serving metrics from their own route.
 */
export function formatMetrics(metrics: readonly JsonMetric[], openMetrics: boolean): string {
  const lines: string[] = [];
  for (const metric of metrics) {
    let family = metric.name;
    let type = metric.type;
    if (openMetrics) {
      if (type === 'counter' && family.endsWith('_total')) family = family.slice(0, -'_total'.length);
      if (type !== 'counter' && type !== 'gauge' && type !== 'histogram' && type !== 'summary') type = 'unknown';
      lines.push(`# TYPE ${family} ${type}`, `# HELP ${family} ${escapeLabel(metric.help)}`);
    } else {
      lines.push(
        `# HELP ${family} ${metric.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
        `# TYPE ${family} ${type}`,
      );
    }
    for (const value of metric.values ?? []) {
      let name = value.metricName ?? metric.name;
      if (openMetrics && metric.type === 'counter' && value.metricName === undefined) name = `${family}_total`;
      let line = `${name}${formatLabels(value.labels)} ${formatNumber(value.value)}`;
      const exemplar = value.exemplar;
      if (openMetrics && exemplar !== undefined && exemplar !== null && Object.keys(exemplar.labelSet).length > 0) {
        line += ` # ${formatLabels(exemplar.labelSet)} ${formatNumber(exemplar.value)}`;
        if (exemplar.timestamp !== undefined) line += ` ${exemplar.timestamp.toFixed(3)}`;
      }
      lines.push(line);
    }
  }
  return openMetrics ? `${lines.join('\n')}\n# EOF\n` : `${lines.join('\n')}\n`;
}

/** Whether an Accept header prefers OpenMetrics over the text format. */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined || !accept.includes('application/openmetrics-text')) return false;
  let openMetricsQ = -1;
  let textQ = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...parameters] = part.trim().split(';');
    const qParameter = parameters.find((parameter) => parameter.trim().startsWith('q='));
    const q = qParameter === undefined ? 1 : Number(qParameter.trim().slice(2));
    const mediaType = type.trim().toLowerCase();
    if (mediaType === 'application/openmetrics-text') openMetricsQ = Math.max(openMetricsQ, q);
    else if (mediaType === 'text/plain') textQ = Math.max(textQ, q);
  }
  return openMetricsQ > 0 && openMetricsQ >= textQ;
}

/**
 * Creates telemetry's metrics in a prom-client registry.
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` when a metric of the same name but another kind exists.
 */
export function createMetrics(identity: ServiceIdentity, settings: MetricsSettings): TelemetryMetrics {
  const registry = settings.registry ?? globalRegistry;
  const owned: string[] = [];
  const take = <T>(name: string, metric: T): T => {
    owned.push(name);
    return metric;
  };
  const existing = (name: string): unknown => registry.getSingleMetric(name);
  const dropped =
    (existing('gantry_telemetry_series_dropped_total') as Counter<'metric'> | undefined) ??
    take(
      'gantry_telemetry_series_dropped_total',
      new Counter({
        name: 'gantry_telemetry_series_dropped_total',
        help: 'Observations sent to the overflow series because their metric reached its series cap.',
        labelNames: ['metric'],
        registers: [registry],
      }),
    );
  const instrumentation =
    (existing('gantry_telemetry_instrumentation_active') as Gauge<'instrumentation'> | undefined) ??
    take(
      'gantry_telemetry_instrumentation_active',
      new Gauge({
        name: 'gantry_telemetry_instrumentation_active',
        help: '1 when an instrumentation applied to its loaded module, 0 when the module was loaded but not patched.',
        labelNames: ['instrumentation'],
        registers: [registry],
      }),
    );
  const exportFailures =
    (existing('gantry_telemetry_span_export_failures_total') as Counter | undefined) ??
    take(
      'gantry_telemetry_span_export_failures_total',
      new Counter({
        name: 'gantry_telemetry_span_export_failures_total',
        help: 'Span export requests that failed after retries (the spans of that batch are lost).',
        registers: [registry],
      }),
    );
  const droppedSpans =
    (existing('gantry_telemetry_spans_dropped_total') as Counter | undefined) ??
    take(
      'gantry_telemetry_spans_dropped_total',
      new Counter({
        name: 'gantry_telemetry_spans_dropped_total',
        help: 'Sampled spans dropped before export: the export queue was full (see OTEL_BSP_*) or a span could not be encoded.',
        registers: [registry],
      }),
    );
  const targetInfo =
    (existing('target_info') as Gauge | undefined) ??
    take(
      'target_info',
      new Gauge({
        name: 'target_info',
        help: 'Service identity (OpenTelemetry resource attributes).',
        labelNames: ['service_name', 'service_version', 'deployment_environment_name', 'service_instance_id'],
        registers: [registry],
      }),
    );
  targetInfo.set(
    {
      service_name: identity.name,
      service_version: identity.version,
      deployment_environment_name: identity.environment,
      service_instance_id: identity.instanceId,
    },
    1,
  );
  if (settings.identityLabels) registry.setDefaultLabels({ service: identity.name, version: identity.version });
  if (settings.processMetrics && registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  const overflowed = (metric: string) => () => dropped.inc({ metric });
  const http = new HttpServerDurationMetric({
    buckets: settings.durationBuckets,
    maxSeries: settings.maxSeriesPerMetric,
    tenantLabel: settings.tenantLabel,
    onOverflow: (metric) => dropped.inc({ metric }),
  });
  if (registry.getSingleMetric(http.name) !== undefined) {
    throw invalidOption(
      'metrics.registry',
      `a registry without ${http.name} (another telemetry instance or library already registered it)`,
      'a registry that has it',
    );
  }
  registry.registerMetric(http as never);
  owned.push(http.name);

  let scrapeLock: Promise<unknown> = Promise.resolve();
  return {
    registry,
    http,
    counter<L extends string = never>(options: BusinessMetricOptions<L>): CappedCounter<L> {
      const labelNames = checkNames('counter', options);
      const counter = take(
        options.name,
        new Counter({ name: options.name, help: options.help, labelNames, registers: [registry] }),
      );
      const guard = new SeriesGuard(labelNames, settings.maxSeriesPerMetric, overflowed(options.name));
      return {
        inc: (labels, value = 1) => {
          if (!(value >= 0)) return;
          if (labelNames.length === 0) counter.inc(value);
          else counter.inc(guard.admit(labels as Record<string, string | number>), value);
        },
      };
    },
    histogram<L extends string = never>(options: BusinessHistogramOptions<L>): CappedHistogram<L> {
      const labelNames = checkNames('histogram', options);
      const histogram = take(
        options.name,
        new Histogram({
          name: options.name,
          help: options.help,
          labelNames,
          buckets: [...(options.buckets ?? settings.durationBuckets)],
          registers: [registry],
        }),
      );
      const guard = new SeriesGuard(labelNames, settings.maxSeriesPerMetric, overflowed(options.name));
      const observe = (labels: Partial<Record<L, string | number>> | undefined, value: number): void => {
        if (!Number.isFinite(value)) return;
        if (labelNames.length === 0) histogram.observe(value);
        else histogram.observe(guard.admit(labels as Record<string, string | number>), value);
      };
      return {
        observe,
        startTimer: (startLabels) => {
          const start = performance.now();
          return (endLabels) => {
            const seconds = (performance.now() - start) / 1000;
            observe({ ...startLabels, ...endLabels }, seconds);
            return seconds;
          };
        },
      };
    },
    gauge<L extends string = never>(options: BusinessMetricOptions<L>): CappedGauge<L> {
      const labelNames = checkNames('gauge', options);
      const gauge = take(
        options.name,
        new Gauge({ name: options.name, help: options.help, labelNames, registers: [registry] }),
      );
      const guard = new SeriesGuard(labelNames, settings.maxSeriesPerMetric, overflowed(options.name));
      const admit = (labels: Partial<Record<L, string | number>> | undefined) =>
        guard.admit(labels as Record<string, string | number>);
      return {
        set: (labels, value) => {
          if (labelNames.length === 0) gauge.set(value);
          else gauge.set(admit(labels), value);
        },
        inc: (labels, value = 1) => {
          if (labelNames.length === 0) gauge.inc(value);
          else gauge.inc(admit(labels), value);
        },
        dec: (labels, value = 1) => {
          if (labelNames.length === 0) gauge.dec(value);
          else gauge.dec(admit(labels), value);
        },
      };
    },
    setInstrumentationActive: (name, active) => instrumentation.set({ instrumentation: name }, active ? 1 : 0),
    countExportFailure: () => exportFailures.inc(),
    countDroppedSpans: (spans) => droppedSpans.inc(spans),
    async serialize(accept) {
      const openMetrics = acceptsOpenMetrics(accept);
      // One scrape at a time: collectors of process metrics are not written for overlapping collection.
      const run = scrapeLock.then(async () => (await registry.getMetricsAsJSON()) as unknown as JsonMetric[]);
      scrapeLock = run.catch(() => undefined);
      try {
        const json = await run;
        return {
          status: 200,
          contentType: openMetrics ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
          body: formatMetrics(json, openMetrics),
        };
      } catch (error) {
        return {
          status: 500,
          contentType: PROMETHEUS_CONTENT_TYPE,
          body: `# metrics collection failed: ${error instanceof Error ? error.message.replace(/\n/g, ' ') : 'unknown error'}\n`,
        };
      }
    },
    close() {
      for (const name of owned) registry.removeSingleMetric(name);
      owned.length = 0;
    },
  };
}
