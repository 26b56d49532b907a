import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HTTP_DURATION_BUCKETS,
  DEFAULT_OTLP_TRACES_ENDPOINT,
  resolveTelemetryOptions,
  telemetryOptionsFromEnv,
} from './options.ts';

describe('resolveTelemetryOptions', () => {
  it('fills defaults and freezes the result', () => {
    const config = resolveTelemetryOptions({ serviceName: 'orders' });
    expect(config.identity.name).toBe('orders');
    expect(config.sampler).toBe('parentbased_traceidratio');
    expect(config.sampleRatio).toBe(1);
    expect(config.propagators).toEqual(['tracecontext', 'baggage']);
    expect(config.exporter).toMatchObject({ endpoint: DEFAULT_OTLP_TRACES_ENDPOINT, protocol: 'http/protobuf' });
    expect(config.http.durationBuckets).toEqual(DEFAULT_HTTP_DURATION_BUCKETS);
    expect(config.http.ignorePaths).toEqual(['/q/health*', '/q/info', '/livez', '/readyz']);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.identity)).toBe(true);
  });

  it.each([
    [{ sampleRatio: 2 }, 'Expected `sampleRatio` to be a finite number between 0 and 1, got 2'],
    [{ serviceName: '' }, 'Expected `serviceName` to be a non-empty string, got ""'],
    [{ sampler: 'xray' }, 'Expected `sampler` to be one of'],
    [{ exporter: { endpoint: 'ftp://x' } }, 'Expected `exporter.endpoint` to be an http(s) URL, got "ftp://x"'],
    [{ exporter: { timeoutMs: 'abc' } }, 'Expected `exporter.timeoutMs` to be a finite number ≥ 1, got "abc"'],
    [{ batch: { maxQueueSize: 10, maxExportBatchSize: 20 } }, 'batch.maxExportBatchSize'],
    [{ http: { durationBuckets: [1, 0.5] } }, 'Expected `http.durationBuckets`'],
    [
      { metrics: { path: 'metrics' } },
      'Expected `metrics.path` to be a path starting with "/" or false, got "metrics"',
    ],
    [{ propagators: ['jaeger'] }, 'Expected `propagators[]` to be one of'],
  ])('rejects %j with a message naming the option', (options, message) => {
    expect(() => resolveTelemetryOptions(options as never)).toThrow(
      expect.objectContaining({ code: 'GANTRY_TELEMETRY_INVALID_OPTION', message: expect.stringContaining(message) }),
    );
  });
});

describe('telemetryOptionsFromEnv', () => {
  it('honours the OpenTelemetry variables as OpenTelemetry defines them', () => {
    const options = telemetryOptionsFromEnv({
      OTEL_SERVICE_NAME: 'checkout',
      OTEL_RESOURCE_ATTRIBUTES:
        'service.name=ignored,service.version=3.1.0,deployment.environment.name=prod,team=payments,k8s.pod.name=checkout%2D1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc,x-org=1',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-org=2',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_PROPAGATORS: 'tracecontext,baggage,b3multi',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      GANTRY_TELEMETRY_LOG_LEVEL: 'debug',
      GANTRY_TELEMETRY_INSTRUMENTATIONS: 'http,pg',
      GANTRY_TELEMETRY_REQUEST_LOG_SAMPLE_RATIO: '0.1',
    });
    expect(options).toMatchObject({
      serviceName: 'checkout',
      serviceVersion: '3.1.0',
      environment: 'prod',
      resourceAttributes: { team: 'payments', 'k8s.pod.name': 'checkout-1' },
      exporter: {
        endpoint: 'http://collector:4318/v1/traces',
        headers: { 'x-api-key': 'abc', 'x-org': '2' },
        protocol: 'http/json',
        compression: 'gzip',
        timeoutMs: 2500,
      },
      sampler: 'parentbased_traceidratio',
      sampleRatio: 0.25,
      propagators: ['tracecontext', 'baggage', 'b3multi'],
      batch: { scheduledDelayMs: 200 },
      logger: { level: 'debug' },
      instrumentations: ['http', 'pg'],
      http: { requestLogSampleRatio: 0.1 },
    });
    expect(() => resolveTelemetryOptions(options)).not.toThrow();
  });

  it('uses the traces endpoint as is, and turns export or the SDK off', () => {
    expect(telemetryOptionsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' }).exporter).toEqual({
      endpoint: 'http://c:4318/custom',
    });
    expect(telemetryOptionsFromEnv({ OTEL_TRACES_EXPORTER: 'none' }).exporter).toBe('none');
    expect(telemetryOptionsFromEnv({ OTEL_SDK_DISABLED: 'true' }).tracing).toBe(false);
    expect(telemetryOptionsFromEnv({ OTEL_PROPAGATORS: 'none' }).propagators).toEqual([]);
  });

  it.each([
    [{ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER'],
    [
      { OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'Expected `OTEL_TRACES_SAMPLER_ARG` to be a number between 0 and 1, got "1.5"',
    ],
    [{ OTEL_PROPAGATORS: 'tracecontext,xray' }, 'OTEL_PROPAGATORS'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'grpc is not supported'],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'novalue' }, 'OTEL_RESOURCE_ATTRIBUTES'],
    [{ GANTRY_TELEMETRY_LOG_PRETTY: 'yes' }, 'GANTRY_TELEMETRY_LOG_PRETTY'],
    [{ OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY'],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => telemetryOptionsFromEnv(env)).toThrow(
      expect.objectContaining({ message: expect.stringContaining(message) }),
    );
  });
});
