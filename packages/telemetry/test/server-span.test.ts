// The plugin's server spans (made by ServerSpanStarter, not the SDK Tracer) over real HTTP: trace context in and out,
// the sampler's decision kept, OTel HTTP attributes on the exported span, logs and metric exemplars correlated.
import { context, propagation } from '@opentelemetry/api';
import Fastify, { LogController } from 'fastify';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import type { TelemetryOptions } from '../src/options.ts';
import { initTelemetry, type Telemetry } from '../src/telemetry.ts';
import { LogCapture } from '../src/testing.ts';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';

const SERVER = 2;
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

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

/** An app whose /downstream route answers with the headers an outgoing call from the handler would carry. */
async function startApp(options: TelemetryOptions = {}) {
  receiver = await startOtlpReceiver();
  const logs = new LogCapture();
  telemetry = initTelemetry({
    serviceName: 'checkout',
    exporter: { endpoint: receiver.url },
    batch: { scheduledDelayMs: 50 },
    instrumentations: [],
    logger: { destination: logs },
    metrics: { registry: new Registry(), processMetrics: false },
    ...options,
  });
  const server = Fastify({
    loggerInstance: telemetry.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app = server;
  await server.register(fastifyTelemetry, { telemetry });
  server.get('/downstream/:id', async (request) => {
    request.log.info({ event: 'checkout.calling' }, 'calling downstream');
    const outgoing: Record<string, string> = {};
    propagation.inject(context.active(), outgoing);
    return outgoing;
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, logs };
}

describe('server spans over HTTP', () => {
  it('continues the caller’s trace, hands it on downstream and correlates logs and exemplars', async () => {
    const { base, logs } = await startApp({ sampler: 'parentbased_always_on' });
    const response = await fetch(`${base}/downstream/7?debug=1`, {
      headers: {
        traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
        tracestate: 'vendor=opaque',
        baggage: 'region=eu-west',
      },
    });
    const outgoing = (await response.json()) as Record<string, string>;
    const [server] = await receiver!.waitFor((spans) => spans.some((span) => span.kind === SERVER));
    expect(server).toMatchObject({
      name: 'GET /downstream/:id',
      traceId: CALLER_TRACE,
      parentSpanId: CALLER_SPAN,
      scope: '@gantry/telemetry',
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/downstream/:id',
        'url.path': '/downstream/7',
        'url.scheme': 'http',
        'network.protocol.version': '1.1',
        'http.response.status_code': 200,
      },
    });
    expect(server!.spanId).toMatch(/^[0-9a-f]{16}$/);
    // Downstream sees this server span as its parent, with the caller's trace state and baggage.
    expect(outgoing['traceparent']).toBe(`00-${CALLER_TRACE}-${server!.spanId}-01`);
    expect(outgoing['tracestate']).toBe('vendor=opaque');
    expect(outgoing['baggage']).toContain('region=eu-west');

    const lines = logs.lines;
    expect(lines.find((line) => line['event'] === 'checkout.calling')).toMatchObject({
      trace_id: CALLER_TRACE,
      span_id: server!.spanId,
      trace_flags: '01',
    });
    expect(lines.find((line) => line['event'] === 'http.request.completed')).toMatchObject({
      trace_id: CALLER_TRACE,
      span_id: server!.spanId,
      http_route: '/downstream/:id',
      http_response_status_code: 200,
    });
    const metrics = await fetch(`${base}/q/metrics`, { headers: { accept: 'application/openmetrics-text' } });
    const text = await metrics.text();
    expect(text).toMatch(
      /http_server_request_duration_seconds_bucket\{[^}]*http_route="\/downstream\/:id"[^}]*\} 1 # \{trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="[0-9a-f]{16}"\}/,
    );
    expect(text).toContain(`span_id="${server!.spanId}"`);
  });

  it('starts a new trace for a request without context, each request its own', async () => {
    const { base } = await startApp({ sampler: 'always_on' });
    const first = (await (await fetch(`${base}/downstream/1`)).json()) as Record<string, string>;
    const second = (await (await fetch(`${base}/downstream/2`)).json()) as Record<string, string>;
    const spans = await receiver!.waitFor((received) => received.length >= 2);
    const byPath = new Map(spans.map((span) => [span.attributes['url.path'], span]));
    for (const [path, outgoing] of [
      ['/downstream/1', first],
      ['/downstream/2', second],
    ] as const) {
      const span = byPath.get(path)!;
      expect(span.parentSpanId).toBe('');
      expect(outgoing['traceparent']).toBe(`00-${span.traceId}-${span.spanId}-01`);
    }
    expect(byPath.get('/downstream/1')!.traceId).not.toBe(byPath.get('/downstream/2')!.traceId);
  });

  it('keeps a caller’s “not sampled”: no span exported, yet the trace id travels on', async () => {
    const { base, logs } = await startApp({ sampler: 'parentbased_always_on' });
    const unsampledTrace = '5bf92f3577b34da6a3ce929d0e0e4736';
    const outgoing = (await (
      await fetch(`${base}/downstream/1`, { headers: { traceparent: `00-${unsampledTrace}-${CALLER_SPAN}-00` } })
    ).json()) as Record<string, string>;
    expect(outgoing['traceparent']).toMatch(new RegExp(`^00-${unsampledTrace}-[0-9a-f]{16}-00$`));
    expect(outgoing['traceparent']).not.toContain(CALLER_SPAN);
    // A sampled request afterwards: once its span arrives, the unsampled one would have too.
    await fetch(`${base}/downstream/2`, { headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` } });
    const spans = await receiver!.waitFor((received) => received.some((span) => span.traceId === CALLER_TRACE));
    // Still measured; no exemplar points at a trace nobody kept.
    const metrics = await fetch(`${base}/q/metrics`, { headers: { accept: 'application/openmetrics-text' } });
    const text = await metrics.text();
    expect(text).toMatch(/http_server_request_duration_seconds_count\{[^}]*http_route="\/downstream\/:id"[^}]*\} 2/);
    expect(text).toContain(CALLER_TRACE);
    expect(text).not.toContain(unsampledTrace);
    await telemetry!.shutdown();
    expect(spans.map((span) => span.traceId)).toEqual([CALLER_TRACE]);
    expect(receiver!.spans.map((span) => span.traceId)).toEqual([CALLER_TRACE]);
    // Still logged with the trace id it carries on.
    const calling = logs.lines.filter((line) => line['event'] === 'checkout.calling');
    expect(calling[0]!['trace_flags']).toBe('00');
    expect(calling[0]!['trace_id']).toBe(unsampledTrace);
  });

  it('extracts B3 (multi-header) context when OTEL_PROPAGATORS names b3multi', async () => {
    const { base } = await startApp({ sampler: 'parentbased_always_on', propagators: ['b3multi'] });
    const outgoing = (await (
      await fetch(`${base}/downstream/1`, {
        headers: { 'x-b3-traceid': CALLER_TRACE, 'x-b3-spanid': CALLER_SPAN, 'x-b3-sampled': '1' },
      })
    ).json()) as Record<string, string>;
    const [server] = await receiver!.waitFor((spans) => spans.length > 0);
    expect(server).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN });
    expect(outgoing).toMatchObject({
      'x-b3-traceid': CALLER_TRACE,
      'x-b3-spanid': server!.spanId,
      'x-b3-sampled': '1',
    });
  });
});
