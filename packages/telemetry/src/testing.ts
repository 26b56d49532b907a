// Test kit for services that use @gantry/telemetry: telemetry wired to in-memory spans, captured log lines and a
// private metrics registry, plus readers to assert on them.
import { Registry } from 'prom-client';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { requestLineWriter } from './logger.ts';
import { initTelemetry, type Telemetry } from './telemetry.ts';
import type { TelemetryOptions } from './options.ts';

/** A log line as parsed JSON. */
export type CapturedLog = Readonly<Record<string, unknown>>;

/**
 * A pino destination that keeps every line in memory.
 * @example
 * const logs = new LogCapture();
 * const logger = createLogger(identity, { destination: logs });
 */
export class LogCapture {
  readonly #lines: string[] = [];
  /** Called before every read: {@link createTestTelemetry} flushes the request lines written this turn. */
  beforeRead: (() => void) | undefined;

  /** pino's destination contract. */
  write(chunk: string): boolean {
    this.#lines.push(chunk);
    return true;
  }

  /** Raw output, exactly as written (for grepping). */
  get text(): string {
    this.beforeRead?.();
    return this.#lines.join('');
  }

  /** Parsed lines. */
  get lines(): CapturedLog[] {
    this.beforeRead?.();
    return this.#lines
      .join('')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as CapturedLog);
  }

  clear(): void {
    this.beforeRead?.();
    this.#lines.length = 0;
  }
}

/** One sample read from a registry. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * Reads samples of a metric from a registry (histograms: `_bucket`, `_sum`, `_count` samples by their names).
 * @example
 * const [count] = await readMetric(registry, 'http_server_request_duration_seconds_count', { http_route: '/orders' });
 */
export async function readMetric(
  registry: Registry,
  name: string,
  labels: Readonly<Record<string, string | number>> = {},
): Promise<MetricSample[]> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as {
    name: string;
    values?: { labels?: Record<string, string | number>; value: number; metricName?: string }[];
  }[];
  const samples: MetricSample[] = [];
  for (const metric of metrics) {
    for (const value of metric.values ?? []) {
      const sampleName = value.metricName ?? metric.name;
      if (sampleName !== name) continue;
      const sampleLabels = value.labels ?? {};
      if (Object.entries(labels).every(([key, expected]) => String(sampleLabels[key]) === String(expected))) {
        samples.push({ name: sampleName, labels: sampleLabels, value: value.value });
      }
    }
  }
  return samples;
}

/** What {@link createTestTelemetry} returns. */
export interface TestTelemetry {
  readonly telemetry: Telemetry;
  readonly registry: Registry;
  readonly logs: LogCapture;
  /** Finished spans so far (exported synchronously on end). */
  spans(): ReadableSpan[];
  /** Spans with this name. */
  spansNamed(name: string): ReadableSpan[];
  /** Sum of the samples of a metric matching the labels (0 when none). */
  metricValue(name: string, labels?: Readonly<Record<string, string | number>>): Promise<number>;
  /** Forgets spans and log lines and resets metric values. */
  reset(): void;
  /** Shuts telemetry down (call in afterEach/afterAll). */
  shutdown(): Promise<void>;
}

/**
 * Starts telemetry for a test: every span sampled and kept in memory, logs captured at debug level, metrics in a
 * fresh registry without process metrics. Only one can run at a time (like the real one); shut it down after.
 * @throws TelemetryError `GANTRY_TELEMETRY_ALREADY_INITIALIZED` when telemetry is already running.
 * @example
 * const t = createTestTelemetry({ serviceName: 'orders' });
 * await app.register(fastifyTelemetry, { telemetry: t.telemetry });
 * await app.inject('/orders/1');
 * expect(t.spansNamed('GET /orders/:id')).toHaveLength(1);
 * await t.shutdown();
 */
export function createTestTelemetry(options: TelemetryOptions = {}): TestTelemetry {
  const exporter = new InMemorySpanExporter();
  const registry = new Registry();
  const logs = new LogCapture();
  const telemetry = initTelemetry({
    sampler: 'always_on',
    exporter: 'none',
    instrumentations: [],
    ...options,
    spanProcessors: [new SimpleSpanProcessor({ exporter }), ...(options.spanProcessors ?? [])],
    logger: { level: 'debug', destination: logs },
    metrics: { processMetrics: false, ...(options.metrics === false ? {} : options.metrics), registry },
  });
  const lineWriter = requestLineWriter(telemetry.logger);
  logs.beforeRead = () => lineWriter.flush();
  return {
    telemetry,
    registry,
    logs,
    spans: () => exporter.getFinishedSpans(),
    spansNamed: (name) => exporter.getFinishedSpans().filter((span) => span.name === name),
    async metricValue(name, labels = {}) {
      const samples = await readMetric(registry, name, labels);
      return samples.reduce((sum, sample) => sum + sample.value, 0);
    },
    reset() {
      exporter.reset();
      logs.clear();
      registry.resetMetrics();
    },
    async shutdown() {
      await telemetry.shutdown();
    },
  };
}
