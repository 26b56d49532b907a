// The fastify plugin through the ./testing kit, the way a service team would test their own app.
import { context, propagation } from '@opentelemetry/api';
import Fastify, { LogController } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { createTestTelemetry, type TestTelemetry } from '../src/testing.ts';

let t: TestTelemetry | undefined;
afterEach(async () => {
  await t?.shutdown();
  t = undefined;
});

async function appWith(options: Parameters<typeof createTestTelemetry>[0] = {}, pluginOptions: object = {}) {
  t = createTestTelemetry(options);
  const app = Fastify({
    loggerInstance: t.telemetry.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(fastifyTelemetry, { telemetry: t.telemetry, ...pluginOptions });
  return app;
}

describe('fastify plugin', () => {
  it('records nothing for probes and the metrics route', async () => {
    const app = await appWith();
    app.get('/q/health/live', async () => ({ status: 'UP' }));
    app.get('/livez', async () => 'ok');
    app.get('/api', async () => 'ok');
    await app.ready();
    await app.inject('/q/health/live');
    await app.inject('/livez');
    await app.inject('/q/metrics');
    await app.inject('/api');
    expect(t!.spans().map((span) => span.name)).toEqual(['GET /api']);
    expect(await t!.metricValue('http_server_request_duration_seconds_count')).toBe(1);
    expect(t!.logs.lines.filter((line) => line['event'] === 'http.request.completed')).toHaveLength(1);
    const head = await app.inject({ method: 'HEAD', url: '/q/metrics' });
    expect(head.statusCode).toBe(200);
    const text = await app.inject({ url: '/q/metrics' });
    expect(text.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text.headers['cache-control']).toBe('no-store');
    await app.close();
  });

  it("records none of @gantry/health's routes, /q/info included (the agent reads it every cycle)", async () => {
    // Regression: /q/info was recorded, so every sidecar scrape counted as a request of the app and diluted the
    // error rate and latency the agent gates rollouts on.
    const { createHealth, DEFAULT_HEALTH_PATHS } = await import('@gantry/health');
    const { healthPlugin } = await import('@gantry/health/fastify');
    const app = await appWith();
    const health = createHealth({ service: 'orders', registry: t!.registry });
    await app.register(healthPlugin, { health, closeOnShutdown: false, drain: false });
    app.get('/api', async () => 'ok');
    await app.ready();
    for (const path of [...Object.values(DEFAULT_HEALTH_PATHS), '/livez', '/readyz']) {
      expect((await app.inject(path)).statusCode).toBeLessThan(600);
      await app.inject({ method: 'HEAD', url: `${path}?probe=1` });
    }
    await app.inject('/api');
    expect(t!.spans().map((span) => span.name)).toEqual(['GET /api']);
    expect(await t!.metricValue('http_server_request_duration_seconds_count')).toBe(1);
    await app.close();
    await health.close();
  });

  it('records HTTP metrics by route template with tracing off', async () => {
    const app = await appWith({ tracing: false });
    app.get('/users/:id', async () => ({ ok: true }));
    await app.ready();
    for (const id of [1, 2, 3]) await app.inject(`/users/${id}`);
    expect(t!.spans()).toEqual([]);
    expect(
      await t!.metricValue('http_server_request_duration_seconds_count', {
        http_route: '/users/:id',
        http_request_method: 'GET',
        http_response_status_code: '200',
      }),
    ).toBe(3);
    await app.close();
  });

  it('puts tenant and a late-authenticated user into baggage, logs and the span (not the metrics)', async () => {
    const app = await appWith({}, { userId: (request: { user?: { id: string } }) => request.user?.id });
    app.decorateRequest('user', null);
    // An auth hook registered after telemetry: the user is known only from here on.
    app.addHook('preHandler', async (request) => {
      (request as unknown as { user: { id: string } }).user = { id: 'u-42' };
    });
    let seen: { tenant?: string | undefined; user?: string | undefined } = {};
    app.post('/orders', async (request) => {
      const baggage = propagation.getBaggage(context.active());
      seen = { tenant: baggage?.getEntry('tenant.id')?.value, user: baggage?.getEntry('user.id')?.value };
      request.log.info({ event: 'orders.created' }, 'created');
      return { ok: true };
    });
    await app.ready();
    const response = await app.inject({
      method: 'POST',
      url: '/orders',
      headers: { 'x-tenant-id': 'acme' },
      payload: { item: 1 },
    });
    expect(response.statusCode).toBe(200);
    expect(seen).toEqual({ tenant: 'acme', user: 'u-42' });
    expect(t!.logs.lines.find((line) => line['event'] === 'orders.created')).toMatchObject({
      tenant_id: 'acme',
      user_id: 'u-42',
    });
    expect(t!.logs.lines.find((line) => line['event'] === 'http.request.completed')).toMatchObject({
      tenant_id: 'acme',
      user_id: 'u-42',
    });
    expect(t!.spansNamed('POST /orders')[0]!.attributes['tenant.id']).toBe('acme');
    expect((await app.inject('/q/metrics')).body).not.toContain('acme');
    await app.close();
  });

  it('samples request log lines but always logs server errors', async () => {
    const app = await appWith({ http: { requestLogSampleRatio: 0 } });
    app.get('/ok', async () => 'ok');
    app.get('/fail', async () => {
      throw new Error('broken');
    });
    await app.ready();
    for (let index = 0; index < 20; index += 1) await app.inject('/ok');
    await app.inject('/fail');
    const completed = t!.logs.lines.filter((line) => line['event'] === 'http.request.completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({ http_route: '/fail', http_response_status_code: 500, level: 50 });
    expect(await t!.metricValue('http_server_request_duration_seconds_count')).toBe(21);
    expect(t!.spansNamed('GET /fail')[0]!.events.map((event) => event.name)).toEqual(['exception']);
    await app.close();
  });

  it('fails registration clearly when no telemetry is running', async () => {
    const app = Fastify();
    await expect(app.register(fastifyTelemetry, {}).ready()).rejects.toThrow(/Expected `telemetry`/);
  });
});
