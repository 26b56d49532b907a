// Options in, frozen config out: every knob of initTelemetry() is validated here once, and the environment
// (OTEL_* as OpenTelemetry defines them, GANTRY_TELEMETRY_* for ours) is read only in telemetryOptionsFromEnv().
import { hostname } from 'node:os';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Registry } from 'prom-client';
import { TELEMETRY_ERROR_CODES, TelemetryError, invalidOption } from './errors.ts';
import type { Logger } from 'pino';
import type { LoggerOptions } from './logger.ts';

/** Default service name when neither the option nor `OTEL_SERVICE_NAME` gives one (OpenTelemetry's own default). */
export const DEFAULT_SERVICE_NAME = 'unknown_service:node';
/** @default '0.0.0' */
export const DEFAULT_SERVICE_VERSION = '0.0.0';
/** @default 'development' */
export const DEFAULT_ENVIRONMENT = 'development';
/** Default OTLP/HTTP traces endpoint (a collector on the same host or pod). */
export const DEFAULT_OTLP_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';
/** @default 10_000 */
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
/** Batch span processor: delay between two exports. @default 5_000 */
export const DEFAULT_BATCH_DELAY_MS = 5_000;
/** Batch span processor: spans kept before new ones are dropped. @default 2_048 */
export const DEFAULT_BATCH_MAX_QUEUE_SIZE = 2_048;
/** Batch span processor: spans per export request. @default 512 */
export const DEFAULT_BATCH_MAX_EXPORT_SIZE = 512;
/** Share of new traces sampled (parent-based: a sampled parent is always followed). @default 1 */
export const DEFAULT_SAMPLE_RATIO = 1;
/** @default ['tracecontext', 'baggage'] */
export const DEFAULT_PROPAGATORS: readonly PropagatorName[] = Object.freeze(['tracecontext', 'baggage']);
/** Instrumentations enabled by default (each only applies when the app loads the module). */
export const DEFAULT_INSTRUMENTATIONS: readonly InstrumentationName[] = Object.freeze(['http', 'pg', 'kafkajs']);
/** How many label combinations one metric may hold before new ones go to the overflow series. @default 2_000 */
export const DEFAULT_MAX_SERIES_PER_METRIC = 2_000;
/** The whole `shutdown()` (spans, logs) must finish within this. @default 5_000 */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
/** OpenTelemetry's recommended buckets for `http.server.request.duration`, in seconds. */
export const DEFAULT_HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
]);
/**
 * Requests on these paths (exact, or prefix when ending in `*`) get no span, no metric and no log line: the probes
 * and `/q/info` that @gantry/health serves (kubelets and the sidecar agent read them every few seconds; counted as
 * traffic they would dilute the error rate and latency the agent judges a rollout by).
 */
export const DEFAULT_IGNORED_PATHS: readonly string[] = Object.freeze(['/q/health*', '/q/info', '/livez', '/readyz']);
/** @default '/q/metrics' */
export const DEFAULT_METRICS_PATH = '/q/metrics';
/** @default 'x-tenant-id' */
export const DEFAULT_TENANT_HEADER = 'x-tenant-id';

/** Sampler names of `OTEL_TRACES_SAMPLER` that we support. */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';
/** Propagator names of `OTEL_PROPAGATORS` that we support. */
export type PropagatorName = 'tracecontext' | 'baggage' | 'b3' | 'b3multi';
/** The instrumentations Gantry ships (fastify is covered by the fastify plugin, without patching). */
export type InstrumentationName = 'http' | 'pg' | 'kafkajs';
/** OTLP/HTTP body encodings. */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** Where and how spans are exported. */
export interface ExporterOptions {
  /** Full traces URL (`.../v1/traces`). @default DEFAULT_OTLP_TRACES_ENDPOINT */
  readonly endpoint?: string;
  /** @default 'http/protobuf' */
  readonly protocol?: OtlpProtocol;
  /** Extra request headers (e.g. an API key). Never logged. */
  readonly headers?: Readonly<Record<string, string>>;
  /** @default DEFAULT_EXPORT_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** @default 'none' */
  readonly compression?: 'gzip' | 'none';
}

/** Batch span processor settings (OTEL_BSP_*). */
export interface BatchOptions {
  readonly scheduledDelayMs?: number;
  readonly maxQueueSize?: number;
  readonly maxExportBatchSize?: number;
}

/** HTTP server behaviour shared by the fastify plugin. */
export interface HttpOptions {
  /** Paths without span, metric or log line; `*` at the end makes a prefix. The metrics path is always added. */
  readonly ignorePaths?: readonly string[];
  /** Share of successful requests that get a request log line; 5xx are always logged. @default 1 */
  readonly requestLogSampleRatio?: number;
  /** Header carrying the tenant. @default DEFAULT_TENANT_HEADER */
  readonly tenantHeader?: string;
  /** Header carrying the user id (only when a trusted proxy sets it). @default undefined (no header) */
  readonly userHeader?: string;
  /**
   * Tenants that may appear as a `tenant` label on the HTTP metrics (e.g. a few big customers). Others, and all
   * tenants when the list is empty, are never a label. @default []
   */
  readonly tenantLabelAllowList?: readonly string[];
  /** Histogram buckets in seconds. @default DEFAULT_HTTP_DURATION_BUCKETS */
  readonly durationBuckets?: readonly number[];
}

/** Metrics settings. */
export interface MetricsOptions {
  /** prom-client registry. @default prom-client's global `register` */
  readonly registry?: Registry;
  /** Collect prom-client's process and runtime metrics. @default true */
  readonly processMetrics?: boolean;
  /** @default DEFAULT_MAX_SERIES_PER_METRIC */
  readonly maxSeriesPerMetric?: number;
  /** Add `service` and `version` labels to every series (the shared identity). @default true */
  readonly identityLabels?: boolean;
  /** Route serving the metrics in the fastify plugin, or `false`. @default DEFAULT_METRICS_PATH */
  readonly path?: string | false;
}

/** Options of {@link initTelemetry}. Every field is optional; `telemetryOptionsFromEnv()` fills them from env. */
export interface TelemetryOptions {
  /** `service.name`. @default DEFAULT_SERVICE_NAME */
  readonly serviceName?: string;
  /** `service.version`. @default DEFAULT_SERVICE_VERSION */
  readonly serviceVersion?: string;
  /** `deployment.environment.name`. @default DEFAULT_ENVIRONMENT */
  readonly environment?: string;
  /** `service.instance.id`. @default the host name (the pod name on Kubernetes) */
  readonly instanceId?: string;
  /** Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES). */
  readonly resourceAttributes?: Readonly<Record<string, string>>;
  /** Record and export traces. `false` keeps logs and metrics working. @default true */
  readonly tracing?: boolean;
  /** OTLP/HTTP export; `'none'` records spans (for logs' trace ids) without sending them. */
  readonly exporter?: ExporterOptions | 'none';
  /** Your own exporter instead of OTLP (tests use the in-memory one). Batched like OTLP. */
  readonly spanExporter?: SpanExporter;
  /** Extra span processors, run after the exporting one. */
  readonly spanProcessors?: readonly SpanProcessor[];
  readonly batch?: BatchOptions;
  /** @default 'parentbased_traceidratio' */
  readonly sampler?: SamplerName;
  /** Ratio for the `*traceidratio` samplers, 0..1. @default DEFAULT_SAMPLE_RATIO */
  readonly sampleRatio?: number;
  /** @default DEFAULT_PROPAGATORS */
  readonly propagators?: readonly PropagatorName[];
  /** @default DEFAULT_INSTRUMENTATIONS */
  readonly instrumentations?: readonly InstrumentationName[];
  /**
   * Let `http` instrumentation also create server spans for incoming requests. Leave it off with the fastify
   * plugin (it makes the server spans more cheaply); turn it on for plain `node:http` servers. @default false
   */
  readonly httpServerSpans?: boolean;
  /** Logger settings, or a pino-shaped logger of your own (then no mixin or redaction is added). */
  readonly logger?: LoggerOptions | Logger;
  /** Metrics settings; `false` turns metrics off. */
  readonly metrics?: MetricsOptions | false;
  readonly http?: HttpOptions;
  /** Deadline of `shutdown()`. @default DEFAULT_SHUTDOWN_TIMEOUT_MS */
  readonly shutdownTimeoutMs?: number;
}

/** The validated, frozen form of {@link TelemetryOptions}. */
export interface TelemetryConfig {
  readonly identity: ServiceIdentity;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly tracing: boolean;
  readonly exporter: Required<ExporterOptions> | 'none';
  readonly batch: Required<BatchOptions>;
  readonly sampler: SamplerName;
  readonly sampleRatio: number;
  readonly propagators: readonly PropagatorName[];
  readonly instrumentations: readonly InstrumentationName[];
  readonly httpServerSpans: boolean;
  readonly metrics: false | Readonly<Required<Omit<MetricsOptions, 'registry'>> & { registry: Registry | undefined }>;
  readonly http: Readonly<Required<HttpOptions>>;
  readonly shutdownTimeoutMs: number;
}

/** One identity for logs, the OpenTelemetry resource and metric labels. */
export interface ServiceIdentity {
  readonly name: string;
  readonly version: string;
  readonly environment: string;
  readonly instanceId: string;
}

const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];
const PROPAGATORS: readonly PropagatorName[] = ['tracecontext', 'baggage', 'b3', 'b3multi'];
const INSTRUMENTATIONS: readonly InstrumentationName[] = ['http', 'pg', 'kafkajs'];

function nonEmptyString(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '') throw invalidOption(name, 'a non-empty string', value);
  return value;
}

function finiteNumber(name: string, value: unknown, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `between ${min} and ${max}`;
    throw invalidOption(name, `a finite number ${range}`, value);
  }
  return value;
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  const result = finiteNumber(name, value, fallback, min);
  if (!Number.isInteger(result)) throw invalidOption(name, `an integer ≥ ${min}`, value);
  return result;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidOption(name, `one of ${allowed.map((item) => `"${item}"`).join(', ')}`, value);
  }
  return value as T;
}

function listOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value)) throw invalidOption(name, `an array of ${allowed.join(', ')}`, value);
  const result: T[] = [];
  for (const item of value) {
    const checked = oneOf(`${name}[]`, item, allowed, allowed[0]!);
    if (!result.includes(checked)) result.push(checked);
  }
  return result;
}

function stringRecord(name: string, value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return Object.freeze({});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption(name, 'an object of string values', value);
  }
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalidOption(`${name}.${key}`, 'a string', item);
    result[key] = item;
  }
  return Object.freeze(result);
}

function stringList(name: string, value: unknown, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
    throw invalidOption(name, 'an array of non-empty strings', value);
  }
  return Object.freeze([...(value as string[])]);
}

function url(name: string, value: unknown, fallback: string): string {
  const text = nonEmptyString(name, value, fallback);
  try {
    const parsed = new URL(text);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw invalidOption(name, 'an http(s) URL', value);
  }
  return text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates options once and returns the frozen config.
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` naming the option, what was expected and what was received.
 */
export function resolveTelemetryOptions(options: TelemetryOptions = {}): TelemetryConfig {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('options', 'an object', options);
  }
  const identity: ServiceIdentity = Object.freeze({
    name: nonEmptyString('serviceName', options.serviceName, DEFAULT_SERVICE_NAME),
    version: nonEmptyString('serviceVersion', options.serviceVersion, DEFAULT_SERVICE_VERSION),
    environment: nonEmptyString('environment', options.environment, DEFAULT_ENVIRONMENT),
    instanceId: nonEmptyString('instanceId', options.instanceId, hostname()),
  });
  let exporter: TelemetryConfig['exporter'];
  if (options.exporter === 'none') {
    exporter = 'none';
  } else {
    const raw: unknown = options.exporter ?? {};
    if (!isRecord(raw)) throw invalidOption('exporter', 'an object or "none"', raw);
    exporter = Object.freeze({
      endpoint: url('exporter.endpoint', raw['endpoint'], DEFAULT_OTLP_TRACES_ENDPOINT),
      protocol: oneOf('exporter.protocol', raw['protocol'], ['http/protobuf', 'http/json'], 'http/protobuf'),
      headers: stringRecord('exporter.headers', raw['headers']),
      timeoutMs: integer('exporter.timeoutMs', raw['timeoutMs'], DEFAULT_EXPORT_TIMEOUT_MS, 1),
      compression: oneOf('exporter.compression', raw['compression'], ['gzip', 'none'], 'none'),
    });
  }
  const batchRaw: unknown = options.batch ?? {};
  if (!isRecord(batchRaw)) throw invalidOption('batch', 'an object', batchRaw);
  const maxQueueSize = integer('batch.maxQueueSize', batchRaw['maxQueueSize'], DEFAULT_BATCH_MAX_QUEUE_SIZE, 1);
  const maxExportBatchSize = integer(
    'batch.maxExportBatchSize',
    batchRaw['maxExportBatchSize'],
    Math.min(DEFAULT_BATCH_MAX_EXPORT_SIZE, maxQueueSize),
    1,
  );
  if (maxExportBatchSize > maxQueueSize) {
    throw invalidOption(
      'batch.maxExportBatchSize',
      `an integer ≤ batch.maxQueueSize (${maxQueueSize})`,
      maxExportBatchSize,
    );
  }
  const batch = Object.freeze({
    scheduledDelayMs: integer('batch.scheduledDelayMs', batchRaw['scheduledDelayMs'], DEFAULT_BATCH_DELAY_MS, 0),
    maxQueueSize,
    maxExportBatchSize,
  });
  if (options.spanExporter !== undefined && typeof options.spanExporter?.export !== 'function') {
    throw invalidOption('spanExporter', 'a SpanExporter (with export() and shutdown())', options.spanExporter);
  }
  const metricsRaw: unknown = options.metrics ?? {};
  let metrics: TelemetryConfig['metrics'] = false;
  if (metricsRaw !== false) {
    if (!isRecord(metricsRaw)) throw invalidOption('metrics', 'an object or false', metricsRaw);
    const registry = metricsRaw['registry'];
    if (registry !== undefined && typeof (registry as { getMetricsAsJSON?: unknown }).getMetricsAsJSON !== 'function') {
      throw invalidOption('metrics.registry', 'a prom-client Registry', registry);
    }
    const path = metricsRaw['path'];
    if (path !== undefined && path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
      throw invalidOption('metrics.path', 'a path starting with "/" or false', path);
    }
    metrics = Object.freeze({
      registry: registry as Registry | undefined,
      processMetrics: bool('metrics.processMetrics', metricsRaw['processMetrics'], true),
      maxSeriesPerMetric: integer(
        'metrics.maxSeriesPerMetric',
        metricsRaw['maxSeriesPerMetric'],
        DEFAULT_MAX_SERIES_PER_METRIC,
        1,
      ),
      identityLabels: bool('metrics.identityLabels', metricsRaw['identityLabels'], true),
      path: path ?? DEFAULT_METRICS_PATH,
    });
  }
  const httpRaw: unknown = options.http ?? {};
  if (!isRecord(httpRaw)) throw invalidOption('http', 'an object', httpRaw);
  const buckets = httpRaw['durationBuckets'] ?? DEFAULT_HTTP_DURATION_BUCKETS;
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    buckets.some(
      (bound, index) =>
        typeof bound !== 'number' || !Number.isFinite(bound) || (index > 0 && bound <= (buckets[index - 1] as number)),
    )
  ) {
    throw invalidOption('http.durationBuckets', 'a non-empty array of increasing finite numbers', buckets);
  }
  const userHeader = httpRaw['userHeader'];
  if (userHeader !== undefined && (typeof userHeader !== 'string' || userHeader === '')) {
    throw invalidOption('http.userHeader', 'a header name', userHeader);
  }
  const http = Object.freeze({
    ignorePaths: stringList('http.ignorePaths', httpRaw['ignorePaths'], DEFAULT_IGNORED_PATHS),
    requestLogSampleRatio: finiteNumber('http.requestLogSampleRatio', httpRaw['requestLogSampleRatio'], 1, 0, 1),
    tenantHeader: nonEmptyString('http.tenantHeader', httpRaw['tenantHeader'], DEFAULT_TENANT_HEADER).toLowerCase(),
    userHeader: userHeader?.toLowerCase() as string,
    tenantLabelAllowList: stringList('http.tenantLabelAllowList', httpRaw['tenantLabelAllowList'], []),
    durationBuckets: Object.freeze([...(buckets as number[])]),
  });
  const logger = options.logger;
  if (logger !== undefined && !isRecord(logger)) throw invalidOption('logger', 'an object', logger);
  return Object.freeze({
    identity,
    resourceAttributes: stringRecord('resourceAttributes', options.resourceAttributes),
    tracing: bool('tracing', options.tracing, true),
    exporter,
    batch,
    sampler: oneOf('sampler', options.sampler, SAMPLERS, 'parentbased_traceidratio'),
    sampleRatio: finiteNumber('sampleRatio', options.sampleRatio, DEFAULT_SAMPLE_RATIO, 0, 1),
    propagators: Object.freeze(listOf('propagators', options.propagators, PROPAGATORS, DEFAULT_PROPAGATORS)),
    instrumentations: Object.freeze(
      listOf('instrumentations', options.instrumentations, INSTRUMENTATIONS, DEFAULT_INSTRUMENTATIONS),
    ),
    httpServerSpans: bool('httpServerSpans', options.httpServerSpans, false),
    metrics,
    http,
    shutdownTimeoutMs: integer('shutdownTimeoutMs', options.shutdownTimeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS, 1),
  });
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

type Env = Readonly<Record<string, string | undefined>>;

function envValue(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function envNumber(env: Env, name: string, expected: string): number | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw invalidOption(name, expected, value);
  return parsed;
}

function envBoolean(env: Env, name: string): boolean | undefined {
  const value = envValue(env, name)?.toLowerCase();
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalidOption(name, '"true" or "false"', value);
}

/** Parses `k=v,k2=v2` (W3C-baggage-like, values percent-decoded) as OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS use. */
export function parseKeyValueList(name: string, text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const index = part.indexOf('=');
    if (index <= 0)
      throw invalidOption(name, 'a list of key=value pairs separated by commas', text.includes('=') ? part : text);
    const key = part.slice(0, index).trim();
    let value = part.slice(index + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // Keep the raw value: an undecodable % is more likely literal than an error worth failing start-up over.
    }
    result[key] = value;
  }
  return result;
}

/**
 * Reads the OpenTelemetry environment variables (as OpenTelemetry defines them) and Gantry's own
 * `GANTRY_TELEMETRY_*` ones. Pass the result, possibly spread with your own options, to `initTelemetry()`.
 *
 * OTel: `OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` (service.name, service.version,
 * deployment.environment(.name), service.instance.id are taken as the identity), `OTEL_TRACES_EXPORTER`
 * (`otlp`|`none`), `OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,PROTOCOL,COMPRESSION}`,
 * `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_PROPAGATORS`, `OTEL_BSP_{SCHEDULE_DELAY,MAX_QUEUE_SIZE,MAX_EXPORT_BATCH_SIZE}`.
 * Gantry: `GANTRY_TELEMETRY_{SERVICE_VERSION,ENVIRONMENT,LOG_LEVEL,LOG_PRETTY,INSTRUMENTATIONS,HTTP_SERVER_SPANS,
 * REQUEST_LOG_SAMPLE_RATIO,MAX_SERIES_PER_METRIC,METRICS_PATH,PROCESS_METRICS,SHUTDOWN_TIMEOUT_MS,TENANT_HEADER,
 * USER_HEADER}`.
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` naming the variable when a value is malformed or names
 * a sampler, propagator, exporter or protocol we do not support.
 * @example
 * const telemetry = initTelemetry({ ...telemetryOptionsFromEnv(), serviceVersion: pkg.version });
 */
export function telemetryOptionsFromEnv(env: Env = process.env): TelemetryOptions {
  const options: Record<string, unknown> = {};
  const resource = parseKeyValueList('OTEL_RESOURCE_ATTRIBUTES', envValue(env, 'OTEL_RESOURCE_ATTRIBUTES') ?? '');
  const identityKeys: Record<string, string> = {
    'service.name': 'serviceName',
    'service.version': 'serviceVersion',
    'deployment.environment.name': 'environment',
    'deployment.environment': 'environment',
    'service.instance.id': 'instanceId',
  };
  const extra: Record<string, string> = {};
  for (const [key, value] of Object.entries(resource)) {
    const option = identityKeys[key];
    if (option === undefined) extra[key] = value;
    else if (options[option] === undefined || key === 'deployment.environment.name') options[option] = value;
  }
  if (Object.keys(extra).length > 0) options['resourceAttributes'] = extra;
  const serviceName = envValue(env, 'OTEL_SERVICE_NAME');
  if (serviceName !== undefined) options['serviceName'] = serviceName;
  const version = envValue(env, 'GANTRY_TELEMETRY_SERVICE_VERSION');
  if (version !== undefined) options['serviceVersion'] = version;
  const environment = envValue(env, 'GANTRY_TELEMETRY_ENVIRONMENT');
  if (environment !== undefined) options['environment'] = environment;

  if (envBoolean(env, 'OTEL_SDK_DISABLED') === true) options['tracing'] = false;
  const exporterName = envValue(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase();
  if (exporterName !== undefined) {
    const names = exporterName.split(',').map((item) => item.trim());
    if (names.includes('none')) options['exporter'] = 'none';
    else if (names.some((item) => item !== 'otlp')) {
      throw invalidOption(
        'OTEL_TRACES_EXPORTER',
        '"otlp" or "none" (zipkin and console are not supported)',
        exporterName,
      );
    }
  }
  if (options['exporter'] !== 'none') {
    const exporter: Record<string, unknown> = {};
    const tracesEndpoint = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    const baseEndpoint = envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    if (tracesEndpoint !== undefined) exporter['endpoint'] = tracesEndpoint;
    else if (baseEndpoint !== undefined) exporter['endpoint'] = `${baseEndpoint.replace(/\/+$/, '')}/v1/traces`;
    const headers = {
      ...parseKeyValueList('OTEL_EXPORTER_OTLP_HEADERS', envValue(env, 'OTEL_EXPORTER_OTLP_HEADERS') ?? ''),
      ...parseKeyValueList(
        'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
        envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') ?? '',
      ),
    };
    if (Object.keys(headers).length > 0) exporter['headers'] = headers;
    const timeoutVar =
      envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') !== undefined
        ? 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'
        : 'OTEL_EXPORTER_OTLP_TIMEOUT';
    const timeout = envNumber(env, timeoutVar, 'a number of milliseconds');
    if (timeout !== undefined) exporter['timeoutMs'] = timeout;
    const protocolVar =
      envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined
        ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
        : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    const protocol = envValue(env, protocolVar);
    if (protocol !== undefined) {
      if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
        throw invalidOption(protocolVar, '"http/protobuf" or "http/json" (grpc is not supported)', protocol);
      }
      exporter['protocol'] = protocol;
    }
    const compressionVar =
      envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') !== undefined
        ? 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'
        : 'OTEL_EXPORTER_OTLP_COMPRESSION';
    const compression = envValue(env, compressionVar);
    if (compression !== undefined) {
      if (compression !== 'gzip' && compression !== 'none')
        throw invalidOption(compressionVar, '"gzip" or "none"', compression);
      exporter['compression'] = compression;
    }
    if (Object.keys(exporter).length > 0) options['exporter'] = exporter;
  }
  const batch: Record<string, unknown> = {};
  const delay = envNumber(env, 'OTEL_BSP_SCHEDULE_DELAY', 'a number of milliseconds');
  if (delay !== undefined) batch['scheduledDelayMs'] = delay;
  const queue = envNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'an integer');
  if (queue !== undefined) batch['maxQueueSize'] = queue;
  const exportSize = envNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'an integer');
  if (exportSize !== undefined) batch['maxExportBatchSize'] = exportSize;
  if (Object.keys(batch).length > 0) options['batch'] = batch;

  const sampler = envValue(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  if (sampler !== undefined) {
    if (!(SAMPLERS as readonly string[]).includes(sampler)) {
      throw invalidOption('OTEL_TRACES_SAMPLER', `one of ${SAMPLERS.join(', ')}`, sampler);
    }
    options['sampler'] = sampler;
  }
  const samplerArg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (samplerArg !== undefined && (sampler === undefined || sampler.endsWith('traceidratio'))) {
    const ratio = Number(samplerArg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      throw invalidOption('OTEL_TRACES_SAMPLER_ARG', 'a number between 0 and 1', samplerArg);
    }
    options['sampleRatio'] = ratio;
  }
  const propagators = envValue(env, 'OTEL_PROPAGATORS');
  if (propagators !== undefined) {
    const names = propagators
      .split(',')
      .map((item) => item.trim().toLowerCase())
      .filter((item) => item !== '');
    if (names.includes('none')) options['propagators'] = [];
    else {
      for (const name of names) {
        if (!(PROPAGATORS as readonly string[]).includes(name)) {
          throw invalidOption('OTEL_PROPAGATORS', `a list of ${PROPAGATORS.join(', ')} or none`, name);
        }
      }
      options['propagators'] = names;
    }
  }

  const logger: Record<string, unknown> = {};
  const level = envValue(env, 'GANTRY_TELEMETRY_LOG_LEVEL');
  if (level !== undefined) logger['level'] = level;
  const pretty = envBoolean(env, 'GANTRY_TELEMETRY_LOG_PRETTY');
  if (pretty !== undefined) logger['pretty'] = pretty;
  if (Object.keys(logger).length > 0) options['logger'] = logger;

  const instrumentations = envValue(env, 'GANTRY_TELEMETRY_INSTRUMENTATIONS');
  if (instrumentations !== undefined) {
    const names = instrumentations
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '' && item !== 'none');
    for (const name of names) {
      if (!(INSTRUMENTATIONS as readonly string[]).includes(name)) {
        throw invalidOption(
          'GANTRY_TELEMETRY_INSTRUMENTATIONS',
          `a list of ${INSTRUMENTATIONS.join(', ')} or none`,
          name,
        );
      }
    }
    options['instrumentations'] = names;
  }
  const serverSpans = envBoolean(env, 'GANTRY_TELEMETRY_HTTP_SERVER_SPANS');
  if (serverSpans !== undefined) options['httpServerSpans'] = serverSpans;

  const metrics: Record<string, unknown> = {};
  const maxSeries = envNumber(env, 'GANTRY_TELEMETRY_MAX_SERIES_PER_METRIC', 'an integer ≥ 1');
  if (maxSeries !== undefined) metrics['maxSeriesPerMetric'] = maxSeries;
  const metricsPath = envValue(env, 'GANTRY_TELEMETRY_METRICS_PATH');
  if (metricsPath !== undefined) metrics['path'] = metricsPath === 'false' ? false : metricsPath;
  const processMetrics = envBoolean(env, 'GANTRY_TELEMETRY_PROCESS_METRICS');
  if (processMetrics !== undefined) metrics['processMetrics'] = processMetrics;
  if (Object.keys(metrics).length > 0) options['metrics'] = metrics;

  const http: Record<string, unknown> = {};
  const ratio = envNumber(env, 'GANTRY_TELEMETRY_REQUEST_LOG_SAMPLE_RATIO', 'a number between 0 and 1');
  if (ratio !== undefined) http['requestLogSampleRatio'] = ratio;
  const tenantHeader = envValue(env, 'GANTRY_TELEMETRY_TENANT_HEADER');
  if (tenantHeader !== undefined) http['tenantHeader'] = tenantHeader;
  const userHeader = envValue(env, 'GANTRY_TELEMETRY_USER_HEADER');
  if (userHeader !== undefined) http['userHeader'] = userHeader;
  if (Object.keys(http).length > 0) options['http'] = http;

  const shutdown = envNumber(env, 'GANTRY_TELEMETRY_SHUTDOWN_TIMEOUT_MS', 'a number of milliseconds');
  if (shutdown !== undefined) options['shutdownTimeoutMs'] = shutdown;
  return options;
}

/** Internal: the error for a second `initTelemetry()`. */
export function alreadyInitialized(): TelemetryError {
  return new TelemetryError(
    TELEMETRY_ERROR_CODES.alreadyInitialized,
    'initTelemetry() was already called in this process (perhaps by --import @gantry/telemetry/register); ' +
      'use getTelemetry() to reach that instance, or shut it down first',
  );
}
