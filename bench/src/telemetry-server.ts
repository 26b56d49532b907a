// One server variant of the telemetry benchmark, in its own process so instrumentation loads before fastify.
// Usage: node telemetry-server.ts <variant> <otlp-sink-url>; prints "READY <port>" when listening.
import type { TelemetryOptions } from '@gantry/telemetry';
import type { FastifyInstance } from 'fastify';

const [variant = 'bare', sink = 'http://127.0.0.1:4318/v1/traces'] = process.argv.slice(2);
const NULL_LOG = '/dev/null';

async function fastify(options: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify');
  return Fastify(options);
}

let flush: () => Promise<unknown> = () => Promise.resolve();

/** The OTEL_BSP_* settings the benchmark gives every traced variant (the usual stack's NodeSDK reads them itself). */
async function batchFromEnv(): Promise<Pick<TelemetryOptions, 'batch'>> {
  const { telemetryOptionsFromEnv } = await import('@gantry/telemetry');
  const batch = telemetryOptionsFromEnv().batch;
  return batch === undefined ? {} : { batch };
}

async function build(): Promise<FastifyInstance> {
  switch (variant) {
    case 'bare':
      return fastify();
    case 'gantry': {
      // Gantry full: 100% sampled traces batched to the sink, metrics, one request log line per request.
      const { initTelemetry } = await import('@gantry/telemetry');
      const telemetry = initTelemetry({
        serviceName: 'bench-gantry',
        sampler: 'always_on',
        exporter: { endpoint: sink },
        ...(await batchFromEnv()),
        logger: { destination: NULL_LOG },
      });
      flush = () => telemetry.shutdown();
      const { fastifyTelemetry } = await import('@gantry/telemetry/fastify');
      const app = await fastify();
      await app.register(fastifyTelemetry, { telemetry });
      return app;
    }
    case 'gantry-spans': {
      const { initTelemetry } = await import('@gantry/telemetry');
      const telemetry = initTelemetry({
        serviceName: 'bench-gantry-spans',
        sampler: 'always_on',
        exporter: { endpoint: sink },
        ...(await batchFromEnv()),
        logger: { level: 'silent' },
        metrics: false,
      });
      flush = () => telemetry.shutdown();
      const { fastifyTelemetry } = await import('@gantry/telemetry/fastify');
      const app = await fastify();
      await app.register(fastifyTelemetry, { telemetry, requestLogs: false, metricsPath: false });
      return app;
    }
    case 'fastify-otel-spans': {
      // Same SDK setup as gantry-spans, but the server spans come from @fastify/otel instead of our hooks.
      const { initTelemetry } = await import('@gantry/telemetry');
      const telemetry = initTelemetry({
        serviceName: 'bench-fastify-otel',
        sampler: 'always_on',
        exporter: { endpoint: sink },
        ...(await batchFromEnv()),
        logger: { level: 'silent' },
        metrics: false,
      });
      flush = () => telemetry.shutdown();
      const { FastifyOtelInstrumentation } = await import('@fastify/otel');
      const instrumentation = new FastifyOtelInstrumentation();
      const app = await fastify();
      await app.register(instrumentation.plugin());
      return app;
    }
    case 'usual': {
      // What teams wire by hand today: NodeSDK + auto-instrumentations + @fastify/otel + fastify-metrics + pino-http.
      const { NodeSDK } = await import('@opentelemetry/sdk-node');
      const { getNodeAutoInstrumentations } = await import('@opentelemetry/auto-instrumentations-node');
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
      const { FastifyOtelInstrumentation } = await import('@fastify/otel');
      const sdk = new NodeSDK({
        serviceName: 'bench-usual',
        traceExporter: new OTLPTraceExporter({ url: sink }),
        instrumentations: [
          getNodeAutoInstrumentations(),
          new FastifyOtelInstrumentation({ registerOnInitialization: true }),
        ],
      });
      sdk.start();
      flush = () => sdk.shutdown();
      const { pino } = await import('pino');
      const { pinoHttp } = await import('pino-http');
      const requestLogger = pinoHttp({ logger: pino(pino.destination({ dest: NULL_LOG, sync: true })) });
      const { default: metrics } = await import('fastify-metrics');
      const app = await fastify();
      await app.register(metrics as never, { endpoint: '/metrics' });
      app.addHook('onRequest', (request, reply, done) => {
        requestLogger(request.raw, reply.raw);
        done();
      });
      return app;
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
}

const app = await build();
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.stdout.write(`READY ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
// Flush the spans still queued so the bench can check every request's span reached the sink.
process.once('SIGTERM', () => {
  void app
    .close()
    .then(flush)
    .finally(() => process.exit(0));
});
