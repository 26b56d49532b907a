// initTelemetry(): one call wires the identity into logs, the OpenTelemetry resource and metric labels, installs
// tracing and the few instrumentations asked for, and offers one ordered shutdown within a deadline.
import type { ShutdownHook } from '@gantry/health';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { TELEMETRY_ERROR_CODES, TelemetryError } from './errors.ts';
import {
  installInstrumentations,
  type InstalledInstrumentations,
  type InstrumentationStatus,
} from './instrumentations.ts';
import { createLogger, requestLineWriter } from './logger.ts';
import { createMetrics, type TelemetryMetrics } from './metrics.ts';
import {
  alreadyInitialized,
  resolveTelemetryOptions,
  type ServiceIdentity,
  type TelemetryConfig,
  type TelemetryOptions,
} from './options.ts';
import { registerInternals } from './internals.ts';
import { installTracing, type Tracing } from './tracing.ts';

/** One step of {@link Telemetry.shutdown}. */
export interface ShutdownStep {
  readonly name: 'spans' | 'logs' | 'metrics';
  readonly ok: boolean;
  readonly durationMs: number;
  readonly error?: string;
}

/** What {@link Telemetry.shutdown} did. */
export interface ShutdownReport {
  readonly ok: boolean;
  readonly steps: readonly ShutdownStep[];
}

/** Options of {@link Telemetry.shutdown}. */
export interface ShutdownOptions {
  /** @default the `shutdownTimeoutMs` option */
  readonly timeoutMs?: number;
  /** Aborting stops waiting for the remaining steps. */
  readonly signal?: AbortSignal;
}

/** A running telemetry instance. */
export interface Telemetry {
  readonly config: TelemetryConfig;
  readonly identity: ServiceIdentity;
  /** The service logger (pino), correlated with traces and tenants. */
  readonly logger: Logger;
  /** Tracer for your own spans (or use {@link traceOperation}). */
  readonly tracer: Tracer;
  /** Metrics, or `undefined` when `metrics: false`. */
  readonly metrics: TelemetryMetrics | undefined;
  /**
   * Checks which instrumentations applied; logs an error (event `telemetry.instrumentation.missing`), emits a
   * process warning and sets `gantry_telemetry_instrumentation_active` to 0 for each loaded-but-unpatched module.
   */
  verifyInstrumentation(): InstrumentationStatus[];
  /**
   * Flushes spans, then logs, then releases metrics and the global providers, within the deadline. Never throws;
   * idempotent (a second call returns the first call's report).
   */
  shutdown(options?: ShutdownOptions): Promise<ShutdownReport>;
  /** {@link Telemetry.shutdown} as a `@gantry/health` shutdown hook (rejects when a step did not finish). */
  readonly shutdownHook: ShutdownHook;
}

const ACTIVE = Symbol.for('gantry.telemetry.active');
type GlobalWithTelemetry = typeof globalThis & { [ACTIVE]?: Telemetry };
const EXPORT_ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * The instance started by `initTelemetry()` (for example by `--import @gantry/telemetry/register`), if any.
 * @example
 * const telemetry = getTelemetry() ?? initTelemetry(telemetryOptionsFromEnv());
 */
export function getTelemetry(): Telemetry | undefined {
  return (globalThis as GlobalWithTelemetry)[ACTIVE];
}

function isLogger(value: unknown): value is Logger {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { info?: unknown }).info === 'function' &&
    typeof (value as { child?: unknown }).child === 'function'
  );
}

function withDeadline<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new Error('aborted'));
      return;
    }
    const timer = setTimeout(
      () => reject(new Error(`did not finish within ${Math.max(0, Math.round(ms))} ms`)),
      Math.max(0, ms),
    );
    timer.unref();
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * Starts telemetry: logger, tracing (OTLP/HTTP with batching, parent-based ratio sampling), the http/pg/kafkajs
 * instrumentations and the metrics. Call it once, before the app imports what should be instrumented — or use
 * `node --import @gantry/telemetry/register app.ts`, which calls it from the environment.
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` on a bad option; `GANTRY_TELEMETRY_ALREADY_INITIALIZED`
 * when an instance is already running in this process.
 * @example
 * const telemetry = initTelemetry({ ...telemetryOptionsFromEnv(), serviceName: 'orders', serviceVersion: '1.4.0' });
 * telemetry.logger.info({ event: 'orders.started' }, 'orders service started');
 */
export function initTelemetry(options: TelemetryOptions = {}): Telemetry {
  const config = resolveTelemetryOptions(options);
  if (getTelemetry() !== undefined) throw alreadyInitialized();
  const loggerOption = options.logger;
  const logger = isLogger(loggerOption) ? loggerOption : createLogger(config.identity, loggerOption ?? {});
  const internal = logger.child({ component: 'telemetry' });
  const metrics =
    config.metrics === false
      ? undefined
      : createMetrics(config.identity, {
          registry: config.metrics.registry,
          processMetrics: config.metrics.processMetrics,
          maxSeriesPerMetric: config.metrics.maxSeriesPerMetric,
          identityLabels: config.metrics.identityLabels,
          durationBuckets: config.http.durationBuckets,
          tenantLabel: config.http.tenantLabelAllowList.length > 0,
        });
  let lastExportErrorLog = -Infinity;
  let suppressedExportErrors = 0;
  let lastDropLog = -Infinity;
  let droppedSpans = 0;
  let tracing: Tracing;
  try {
    tracing = installTracing(config, options.spanExporter, options.spanProcessors ?? [], {
      onExportError: (error, spans) => {
        metrics?.countExportFailure();
        const now = Date.now();
        if (now - lastExportErrorLog < EXPORT_ERROR_LOG_INTERVAL_MS) {
          suppressedExportErrors += 1;
          return;
        }
        lastExportErrorLog = now;
        internal.error(
          {
            event: 'telemetry.export.failed',
            code: TELEMETRY_ERROR_CODES.exportFailed,
            spans,
            suppressed: suppressedExportErrors,
            err: { message: error.message },
          },
          `span export failed; ${spans} spans lost (further failures logged at most once a minute)`,
        );
        suppressedExportErrors = 0;
      },
      onSpansDropped: (spans) => {
        metrics?.countDroppedSpans(spans);
        droppedSpans += spans;
        const now = Date.now();
        if (now - lastDropLog < EXPORT_ERROR_LOG_INTERVAL_MS) return;
        lastDropLog = now;
        internal.warn(
          { event: 'telemetry.spans.dropped', spans: droppedSpans },
          `dropped ${droppedSpans} sampled spans: the export queue was full (raise OTEL_BSP_MAX_EXPORT_BATCH_SIZE ` +
            'and OTEL_BSP_MAX_QUEUE_SIZE, or sample less); logged at most once a minute',
        );
        droppedSpans = 0;
      },
    });
  } catch (error) {
    metrics?.close();
    throw error;
  }
  const instrumentations: InstalledInstrumentations = installInstrumentations(config, tracing.provider);
  const reported = new Set<string>();
  let shutdownRun: Promise<ShutdownReport> | undefined;

  const shutdown = (shutdownOptions: ShutdownOptions = {}): Promise<ShutdownReport> => {
    shutdownRun ??= (async () => {
      const deadline = Date.now() + (shutdownOptions.timeoutMs ?? config.shutdownTimeoutMs);
      const steps: ShutdownStep[] = [];
      const step = async (name: ShutdownStep['name'], work: () => Promise<void>): Promise<void> => {
        const begin = performance.now();
        try {
          await withDeadline(work(), deadline - Date.now(), shutdownOptions.signal);
          steps.push({ name, ok: true, durationMs: Math.round(performance.now() - begin) });
        } catch (error) {
          steps.push({
            name,
            ok: false,
            durationMs: Math.round(performance.now() - begin),
            error: error instanceof Error ? error.message : String(error),
          });
        }
      };
      await step('spans', async () => {
        await tracing.forceFlush(Math.max(1, deadline - Date.now()));
        await tracing.shutdown();
      });
      if (steps[0]?.ok !== true) tracing.abortExports();
      const ok = steps.every((item) => item.ok);
      internal[ok ? 'info' : 'warn'](
        { event: 'telemetry.shutdown.completed', steps: steps.map((item) => ({ ...item })) },
        ok ? 'telemetry flushed' : 'telemetry did not flush everything before its deadline',
      );
      await step('logs', async () => {
        requestLineWriter(logger).flush();
        await new Promise<void>((resolve, reject) => {
          const flush = (logger as { flush?: (callback?: (error?: Error) => void) => void }).flush;
          if (typeof flush !== 'function') {
            resolve();
            return;
          }
          flush.call(logger, (error?: Error) => (error ? reject(error) : resolve()));
        });
      });
      await step('metrics', async () => {
        metrics?.close();
      });
      instrumentations.disable();
      tracing.uninstall();
      if (getTelemetry() === telemetry) delete (globalThis as GlobalWithTelemetry)[ACTIVE];
      return { ok: steps.every((item) => item.ok), steps };
    })();
    return shutdownRun;
  };

  const telemetry: Telemetry = {
    config,
    identity: config.identity,
    logger,
    tracer: tracing.tracer,
    metrics,
    verifyInstrumentation() {
      const statuses = instrumentations.status();
      for (const status of statuses) {
        if (status.state === 'applied') metrics?.setInstrumentationActive(status.name, true);
        if (status.state !== 'not-applied') continue;
        metrics?.setInstrumentationActive(status.name, false);
        if (reported.has(status.name)) continue;
        reported.add(status.name);
        const message = `${status.name} instrumentation did NOT apply: ${status.reason ?? 'unknown reason'}`;
        internal.error(
          {
            event: 'telemetry.instrumentation.missing',
            code: TELEMETRY_ERROR_CODES.instrumentationNotApplied,
            instrumentation: status.name,
          },
          message,
        );
        process.emitWarning(message, { code: TELEMETRY_ERROR_CODES.instrumentationNotApplied });
      }
      return statuses;
    },
    shutdown,
    shutdownHook: {
      name: 'telemetry',
      timeoutMs: config.shutdownTimeoutMs + 1_000,
      run: async (signal) => {
        const report = await shutdown({ signal });
        if (!report.ok) {
          const failed = report.steps.filter((item) => !item.ok);
          throw new TelemetryError(
            TELEMETRY_ERROR_CODES.shutdownIncomplete,
            `telemetry shutdown incomplete: ${failed.map((item) => `${item.name} (${item.error ?? 'failed'})`).join(', ')}`,
          );
        }
      },
    },
  };
  Object.freeze(telemetry);
  registerInternals(telemetry, { serverSpans: tracing.serverSpans });
  (globalThis as GlobalWithTelemetry)[ACTIVE] = telemetry;
  internal.debug(
    {
      event: 'telemetry.started',
      tracing: config.tracing,
      exporter: config.exporter === 'none' ? 'none' : config.exporter.protocol,
      sampler: config.sampler,
      sample_ratio: config.sampleRatio,
      instrumentations: config.instrumentations,
    },
    'telemetry started',
  );
  return telemetry;
}
