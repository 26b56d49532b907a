// Spans leave the process over OTLP/HTTP and are decoded for real by a receiver in the test; a log line written
// inside a request carries the trace id of that request's exported server span.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { initTelemetry, type Telemetry } from '../src/telemetry.ts';
import { LogCapture } from '../src/testing.ts';
import { traceOperation } from '../src/trace-operation.ts';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';
import { Registry } from 'prom-client';

const SERVER = 2;
const INTERNAL = 1;

let receiver: OtlpReceiver | undefined;
let telemetry: Telemetry | undefined;
let app: { close(): Promise<unknown> } | undefined;

afterEach(async () => {
  await app?.close();
  await telemetry?.shutdown();
  await receiver?.close();
  app = undefined;
  telemetry = undefined;
  receiver = undefined;
});

async function startApp(options: { protocol: 'http/protobuf' | 'http/json'; compression: 'gzip' | 'none' }) {
  receiver = await startOtlpReceiver();
  const logs = new LogCapture();
  telemetry = initTelemetry({
    serviceName: 'orders',
    serviceVersion: '1.4.0',
    environment: 'test',
    instanceId: 'orders-7d9f-abc',
    exporter: { endpoint: receiver.url, protocol: options.protocol, compression: options.compression },
    batch: { scheduledDelayMs: 100 },
    instrumentations: [],
    logger: { destination: logs },
    metrics: { registry: new Registry(), processMetrics: false },
  });
  const server = Fastify({ loggerInstance: telemetry.logger });
  app = server;
  await server.register(fastifyTelemetry, { telemetry });
  server.get('/orders/:id', async (request) => {
    request.log.info({ event: 'orders.read', order_id: (request.params as { id: string }).id }, 'reading order');
    await traceOperation('orders.load', { 'orders.id': 7 }, async () => {
      telemetry!.logger.info({ event: 'orders.loaded' }, 'loaded');
    });
    return { id: 7 };
  });
  server.get('/boom', async () => {
    throw new Error('kaput');
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, logs };
}

describe('OTLP export', () => {
  it.each([
    { protocol: 'http/protobuf' as const, compression: 'none' as const },
    { protocol: 'http/json' as const, compression: 'gzip' as const },
  ])(
    'exports the server span with route, status and the incoming parent ($protocol, $compression)',
    async (options) => {
      const { base, logs } = await startApp(options);
      const parentTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const parentSpan = '00f067aa0ba902b7';
      const response = await fetch(`${base}/orders/42`, {
        headers: { traceparent: `00-${parentTrace}-${parentSpan}-01`, 'x-tenant-id': 'acme' },
      });
      expect(response.status).toBe(200);
      const spans = await receiver!.waitFor((received) => received.some((span) => span.kind === SERVER));
      const server = spans.find((span) => span.kind === SERVER)!;
      expect(server.name).toBe('GET /orders/:id');
      expect(server.traceId).toBe(parentTrace);
      expect(server.parentSpanId).toBe(parentSpan);
      expect(server.attributes['http.route']).toBe('/orders/:id');
      expect(server.attributes['http.response.status_code']).toBe(200);
      expect(server.attributes['url.path']).toBe('/orders/42');
      expect(server.attributes['tenant.id']).toBe('acme');
      expect(server.resource['service.name']).toBe('orders');
      expect(server.resource['service.version']).toBe('1.4.0');
      expect(server.resource['deployment.environment.name']).toBe('test');
      expect(server.resource['service.instance.id']).toBe('orders-7d9f-abc');
      const child = spans.find((span) => span.name === 'orders.load')!;
      expect(child.kind).toBe(INTERNAL);
      expect(child.parentSpanId).toBe(server.spanId);
      expect(child.attributes['orders.id']).toBe(7);
      expect(receiver!.requests[0]!.contentType).toBe(
        options.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      );
      expect(receiver!.requests[0]!.encoding).toBe(options.compression === 'gzip' ? 'gzip' : undefined);

      // Log lines written inside the request carry the exported server span's trace id (and the tenant).
      const lines = logs.lines;
      const read = lines.find((line) => line['event'] === 'orders.read')!;
      expect(read['trace_id']).toBe(server.traceId);
      expect(read['span_id']).toBe(server.spanId);
      expect(read['trace_flags']).toBe('01');
      expect(read['tenant_id']).toBe('acme');
      expect(read['service']).toBe('orders');
      const loaded = lines.find((line) => line['event'] === 'orders.loaded')!;
      expect(loaded['trace_id']).toBe(server.traceId);
      expect(loaded['span_id']).toBe(child.spanId);
      const completed = lines.filter((line) => line['event'] === 'http.request.completed');
      expect(completed).toHaveLength(1);
      expect(completed[0]!['trace_id']).toBe(server.traceId);
      expect(completed[0]!['http_route']).toBe('/orders/:id');
    },
  );

  it('marks a failing request as an error span and logs it at error level', async () => {
    const { base, logs } = await startApp({ protocol: 'http/protobuf', compression: 'none' });
    expect((await fetch(`${base}/boom`)).status).toBe(500);
    const spans = await receiver!.waitFor((received) => received.some((span) => span.name === 'GET /boom'));
    const server = spans.find((span) => span.name === 'GET /boom')!;
    expect(server.statusCode).toBe(2);
    expect(server.attributes['error.type']).toBe('500');
    const failed = logs.lines.find((line) => line['event'] === 'http.request.completed')!;
    expect(failed['level']).toBe(50);
    expect(failed['trace_id']).toBe(server.traceId);
  });

  it('retries an export the collector turned away with 503 and delivers it, on one kept-alive connection', async () => {
    const { base } = await startApp({ protocol: 'http/protobuf', compression: 'none' });
    receiver!.respondWith(503, 1);
    expect((await fetch(`${base}/orders/1`)).status).toBe(200);
    const spans = await receiver!.waitFor((received) => received.some((span) => span.name === 'GET /orders/:id'));
    expect(spans.filter((span) => span.name === 'GET /orders/:id')).toHaveLength(1);
    expect(receiver!.requests.length).toBeGreaterThanOrEqual(2);
    expect(receiver!.connections).toBe(1);
    const metric = await telemetry!.metrics!.registry.getSingleMetricAsString(
      'gantry_telemetry_span_export_failures_total',
    );
    expect(metric).toMatch(/ 0$/m);
  });

  it('counts and logs (once) an export that fails, without throwing into the app', async () => {
    const { base, logs } = await startApp({ protocol: 'http/protobuf', compression: 'none' });
    receiver!.respondWith(400);
    for (let index = 0; index < 3; index += 1) expect((await fetch(`${base}/orders/${index}`)).status).toBe(200);
    const deadline = Date.now() + 15_000;
    let failures = 0;
    while (Date.now() < deadline) {
      const metric = await telemetry!.metrics!.registry.getSingleMetricAsString(
        'gantry_telemetry_span_export_failures_total',
      );
      failures = Number(/ (\d+)$/m.exec(metric)?.[1] ?? 0);
      if (failures > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(failures).toBeGreaterThan(0);
    const errors = logs.lines.filter((line) => line['event'] === 'telemetry.export.failed');
    expect(errors).toHaveLength(1);
    expect(errors[0]!['code']).toBe('GANTRY_TELEMETRY_EXPORT_FAILED');
  });

  it('counts and logs spans dropped on a full export queue (regression: they were dropped silently)', async () => {
    receiver = await startOtlpReceiver();
    receiver.blackHole();
    const logs = new LogCapture();
    telemetry = initTelemetry({
      serviceName: 'orders',
      exporter: { endpoint: receiver.url, timeoutMs: 1_000 },
      batch: { maxQueueSize: 4, maxExportBatchSize: 2 },
      instrumentations: [],
      logger: { destination: logs },
      metrics: { registry: new Registry(), processMetrics: false },
    });
    // 2 spans go out in an export the collector never answers, 4 wait in the queue, the other 14 are dropped.
    for (let index = 0; index < 20; index += 1) traceOperation('orders.tick', () => index);
    const metric = await telemetry.metrics!.registry.getSingleMetricAsString('gantry_telemetry_spans_dropped_total');
    expect(metric).toMatch(/^gantry_telemetry_spans_dropped_total(\{[^}]*\})? 14$/m);
    const warnings = logs.lines.filter((line) => line['event'] === 'telemetry.spans.dropped');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!['level']).toBe(40);
    await telemetry.shutdown({ timeoutMs: 500 });
  });
});
