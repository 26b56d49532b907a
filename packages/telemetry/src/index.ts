// @gantry/telemetry: one call gives logs, traces and metrics that agree.
export {
  getRequestContext,
  RequestBaggage,
  TENANT_BAGGAGE_KEY,
  USER_BAGGAGE_KEY,
  withRequestContext,
} from './context.ts';
export type { RequestContext } from './context.ts';
export { isTelemetryError, TELEMETRY_ERROR_CODES, TelemetryError } from './errors.ts';
export type { TelemetryErrorCode } from './errors.ts';
export {
  HTTP_SERVER_DURATION_METRIC,
  HttpServerDurationMetric,
  normaliseMethod,
  OVERFLOW_LABEL_VALUE,
  UNMATCHED_ROUTE,
} from './http-metrics.ts';
export type { InstrumentationState, InstrumentationStatus } from './instrumentations.ts';
export { correlationFields, createLogger, silentLogger } from './logger.ts';
export type { LoggerIdentity, LoggerOptions, TelemetryLogger } from './logger.ts';
export {
  acceptsOpenMetrics,
  FORBIDDEN_LABEL_NAMES,
  formatMetrics,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
} from './metrics.ts';
export type {
  BusinessHistogramOptions,
  BusinessMetricOptions,
  CappedCounter,
  CappedGauge,
  CappedHistogram,
  TelemetryMetrics,
} from './metrics.ts';
export {
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_BATCH_MAX_EXPORT_SIZE,
  DEFAULT_BATCH_MAX_QUEUE_SIZE,
  DEFAULT_ENVIRONMENT,
  DEFAULT_EXPORT_TIMEOUT_MS,
  DEFAULT_HTTP_DURATION_BUCKETS,
  DEFAULT_IGNORED_PATHS,
  DEFAULT_INSTRUMENTATIONS,
  DEFAULT_MAX_SERIES_PER_METRIC,
  DEFAULT_METRICS_PATH,
  DEFAULT_OTLP_TRACES_ENDPOINT,
  DEFAULT_PROPAGATORS,
  DEFAULT_SAMPLE_RATIO,
  DEFAULT_SERVICE_NAME,
  DEFAULT_SERVICE_VERSION,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_TENANT_HEADER,
  resolveTelemetryOptions,
  telemetryOptionsFromEnv,
} from './options.ts';
export type {
  BatchOptions,
  ExporterOptions,
  HttpOptions,
  InstrumentationName,
  MetricsOptions,
  OtlpProtocol,
  PropagatorName,
  SamplerName,
  ServiceIdentity,
  TelemetryConfig,
  TelemetryOptions,
} from './options.ts';
export { OtlpHttpSpanExporter } from './otlp-exporter.ts';
export type { OtlpHttpSpanExporterOptions } from './otlp-exporter.ts';
export { createRedactor, DEFAULT_REDACT_PATTERN, REDACTED } from './redact.ts';
export type { Redactor } from './redact.ts';
export { getTelemetry, initTelemetry } from './telemetry.ts';
export type { ShutdownOptions, ShutdownReport, ShutdownStep, Telemetry } from './telemetry.ts';
export { traceOperation } from './trace-operation.ts';
export { createPropagator, createResource, createSampler, TRACER_NAME } from './tracing.ts';
