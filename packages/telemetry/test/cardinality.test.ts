// Scanners and unbounded label values must not blow up /q/metrics: 10 000 distinct raw paths stay a handful of
// series, and a metric over its series cap sends new combinations to one overflow series, counted.
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { OVERFLOW_LABEL_VALUE, UNMATCHED_ROUTE } from '../src/http-metrics.ts';
import { createTestTelemetry, readMetric, type TestTelemetry } from '../src/testing.ts';

let t: TestTelemetry | undefined;
afterEach(async () => {
  await t?.shutdown();
  t = undefined;
});

const DISTINCT_PATHS = 10_000;

describe('cardinality cap', () => {
  it(`keeps ${DISTINCT_PATHS} distinct raw paths to a few series (route templates, one unmatched value)`, async () => {
    t = createTestTelemetry({ tracing: false, http: { requestLogSampleRatio: 0 } });
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry: t.telemetry });
    app.get('/items/:id', async () => ({ ok: true }));
    await app.ready();
    for (let index = 0; index < DISTINCT_PATHS; index += 1) {
      // Half hit a parameterised route with a distinct id, half are scanner paths that match nothing.
      const url = index % 2 === 0 ? `/items/${index}` : `/wp-admin/${index}/setup.php?x=${index}`;
      const response = await app.inject({ url });
      expect(response.statusCode).toBe(index % 2 === 0 ? 200 : 404);
    }
    const counts = await readMetric(t.registry, 'http_server_request_duration_seconds_count');
    expect(
      counts
        .map((sample) => [sample.labels['http_route'], sample.labels['http_response_status_code'], sample.value])
        .sort(),
    ).toEqual([
      ['/items/:id', '200', DISTINCT_PATHS / 2],
      [UNMATCHED_ROUTE, '404', DISTINCT_PATHS / 2],
    ]);
    const body = (await app.inject({ url: '/q/metrics' })).body;
    expect(body).not.toContain('wp-admin');
    expect(body).not.toMatch(/\/items\/\d/);
    expect(body.length).toBeLessThan(20_000);
    await app.close();
  }, 120_000);

  it('sends routes beyond the series cap to the overflow series and counts them', async () => {
    t = createTestTelemetry({
      tracing: false,
      metrics: { maxSeriesPerMetric: 20 },
      http: { requestLogSampleRatio: 0 },
    });
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry: t.telemetry });
    for (let index = 0; index < 60; index += 1) app.get(`/r${index}`, async () => 'ok');
    await app.ready();
    for (let round = 0; round < 3; round += 1) {
      for (let index = 0; index < 60; index += 1) await app.inject({ url: `/r${index}` });
    }
    const counts = await readMetric(t.registry, 'http_server_request_duration_seconds_count');
    expect(counts).toHaveLength(21);
    const overflow = counts.filter((sample) => sample.labels['http_route'] === OVERFLOW_LABEL_VALUE);
    expect(overflow).toHaveLength(1);
    expect(overflow[0]!.value).toBe(40 * 3);
    expect(overflow[0]!.labels['http_response_status_code']).toBe('200');
    expect(counts.reduce((sum, sample) => sum + sample.value, 0)).toBe(180);
    expect(
      await t.metricValue('gantry_telemetry_series_dropped_total', { metric: 'http_server_request_duration_seconds' }),
    ).toBe(120);
    await app.close();
  });

  it(`caps a business counter fed ${DISTINCT_PATHS} distinct label values`, async () => {
    t = createTestTelemetry({ tracing: false, metrics: { maxSeriesPerMetric: 100 } });
    const counter = t.telemetry.metrics!.counter({
      name: 'shop_orders_total',
      help: 'Orders placed.',
      labelNames: ['sku'],
    });
    for (let index = 0; index < DISTINCT_PATHS; index += 1) counter.inc({ sku: `sku-${index}` });
    const samples = await readMetric(t.registry, 'shop_orders_total');
    expect(samples).toHaveLength(101);
    expect(samples.find((sample) => sample.labels['sku'] === OVERFLOW_LABEL_VALUE)?.value).toBe(DISTINCT_PATHS - 100);
    expect(samples.reduce((sum, sample) => sum + sample.value, 0)).toBe(DISTINCT_PATHS);
    expect(await t.metricValue('gantry_telemetry_series_dropped_total', { metric: 'shop_orders_total' })).toBe(
      DISTINCT_PATHS - 100,
    );
  });

  it('refuses unbounded label names on business metrics unless a tenant label is explicitly allowed', () => {
    t = createTestTelemetry({ tracing: false });
    const metrics = t.telemetry.metrics!;
    expect(() => metrics.counter({ name: 'a_total', help: 'a', labelNames: ['user_id'] })).toThrow(
      expect.objectContaining({ code: 'GANTRY_TELEMETRY_FORBIDDEN_LABEL' }),
    );
    expect(() => metrics.histogram({ name: 'b_seconds', help: 'b', labelNames: ['tenant'] })).toThrow(
      /allowTenantLabel/,
    );
    expect(() => metrics.gauge({ name: 'c', help: 'c', labelNames: ['le'] })).toThrow(/reserved/);
    expect(() => metrics.counter({ name: 'bad name', help: 'x' })).toThrow(/Expected `counter.name`/);
    expect(() =>
      metrics.counter({ name: 'd_total', help: 'd', labelNames: ['tenant'], allowTenantLabel: true }),
    ).not.toThrow();
  });

  it('never puts the tenant on HTTP metrics unless it is allow-listed', async () => {
    t = createTestTelemetry({ tracing: false, http: { tenantLabelAllowList: ['bigco'], requestLogSampleRatio: 0 } });
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry: t.telemetry });
    app.get('/x', async () => 'ok');
    await app.ready();
    await app.inject({ url: '/x', headers: { 'x-tenant-id': 'bigco' } });
    for (let index = 0; index < 50; index += 1)
      await app.inject({ url: '/x', headers: { 'x-tenant-id': `small-${index}` } });
    const counts = await readMetric(t.registry, 'http_server_request_duration_seconds_count');
    expect(counts.map((sample) => [sample.labels['tenant'], sample.value]).sort()).toEqual([
      ['', 50],
      ['bigco', 1],
    ]);
    await app.close();
  });
});
