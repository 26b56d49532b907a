// The fastify plugin against a real fastify instance listening on loopback.
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createCheck, createHealth, type Health, type ShutdownOutcome } from '@gantry/health';
import { healthPlugin } from '@gantry/health/fastify';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function app(
  health: Health,
  options: Partial<Parameters<typeof healthPlugin>[1]> = {},
  before: (instance: FastifyInstance) => void = () => undefined,
): Promise<{ app: FastifyInstance; url: string }> {
  const instance = Fastify();
  instance.get('/orders', async () => ({ orders: [] }));
  before(instance);
  await instance.register(healthPlugin, { health, ...options });
  await instance.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => instance.close());
  const address = instance.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { app: instance, url: `http://127.0.0.1:${address.port}` };
}

describe('fastify plugin', () => {
  it('rejects register() with a coded error on bad options instead of crashing the process', async () => {
    // Regression: the plugin threw inside avvio, which turned a bad path into an uncaught exception.
    const health = createHealth({ registry: new Registry(), shutdown: { signals: [] } });
    cleanups.push(() => health.close());
    for (const options of [
      { health, paths: { liveness: 'no-slash' } },
      { health, logLevel: 42 as unknown as 'info' },
      { health: {} as Health },
    ]) {
      const instance = Fastify();
      await expect(instance.register(healthPlugin, options).ready()).rejects.toMatchObject({
        code: 'GANTRY_HEALTH_INVALID_OPTION',
      });
      await instance.close();
    }
  });

  it('serves every probe with MicroProfile JSON, 200/503, no-store, HEAD and query strings', async () => {
    const state = { ready: true };
    const health = createHealth({
      registry: new Registry(),
      service: 'orders',
      version: '2.0.0',
      shutdown: { signals: [] },
    });
    health.addCheck(
      createCheck('db', () => state.ready),
      { mode: 'on-demand', cacheMs: 0 },
    );
    health.addCheck(
      createCheck('loop', () => true),
      { groups: ['liveness'] },
    );
    health.addInfoContributor({ name: 'schema', contribute: () => ({ current: '1.2.10' }) });
    health.start();
    cleanups.push(() => health.close());
    const { app: instance, url } = await app(health);
    expect(instance.health).toBe(health);

    const ready = await fetch(`${url}/q/health/ready?probe=kubelet`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(ready.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await ready.json()).toEqual({ status: 'UP', checks: [{ name: 'db', status: 'UP' }] });

    state.ready = false;
    const down = await fetch(`${url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'DOWN', checks: [{ name: 'db', status: 'DOWN' }] });
    const headDown = await fetch(`${url}/q/health/ready`, { method: 'HEAD' });
    expect(headDown.status).toBe(503);
    expect(await headDown.text()).toBe('');

    expect((await fetch(`${url}/q/health/live`)).status).toBe(200);
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    expect((await fetch(`${url}/q/health/started`)).status).toBe(200);
    const all = (await (await fetch(`${url}/q/health`)).json()) as { status: string; checks: { name: string }[] };
    expect(all.status).toBe('DOWN');
    expect(all.checks.map((check) => check.name)).toEqual(['loop', 'db']);
    const info = (await (await fetch(`${url}/q/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ service: 'orders', version: '2.0.0', commit: null, schema: { current: '1.2.10' } });
    expect(await (await fetch(`${url}/orders`)).json()).toEqual({ orders: [] });
  });

  it('runs fastify.close() (and so the app onClose hooks) as a shutdown hook after the drain', async () => {
    const order: string[] = [];
    let outcome: ShutdownOutcome | undefined;
    const health = createHealth({
      registry: new Registry(),
      shutdownHooks: [{ name: 'telemetry', run: async () => void order.push('telemetry') }],
      // The idle keep-alive socket of the fetch below must close by its grace, well before the drain timeout: with
      // both at 1 s (the default grace), whichever timer fired first decided, and a forced socket made exit code 1.
      shutdown: {
        signals: [],
        delayMs: 0,
        drainTimeoutMs: 10_000,
        idleSocketGraceMs: 100,
        terminate: (result) => void (outcome = result),
      },
    });
    health.start();
    const { app: instance, url } = await app(health, {}, (fastify) =>
      fastify.addHook('onClose', async () => void order.push('fastify onClose')),
    );
    expect((await fetch(`${url}/orders`)).status).toBe(200);
    await health.shutdown('test');
    expect(order).toEqual(['fastify onClose', 'telemetry']);
    expect(outcome?.exitCode).toBe(0);
    expect(instance.server.listening).toBe(false);
  });

  it('can leave draining and closing to the application', async () => {
    const health = createHealth({
      registry: new Registry(),
      shutdown: { signals: [], delayMs: 0, terminate: () => undefined },
    });
    health.start();
    const { app: instance } = await app(health, {
      drain: false,
      closeOnShutdown: false,
      paths: { readiness: '/ready' },
      aliases: false,
    });
    await health.shutdown();
    expect(instance.server.listening).toBe(true);
    expect((await instance.inject('/ready')).statusCode).toBe(503);
    expect((await instance.inject('/readyz')).statusCode).toBe(404);
  });

  it('lets two apps share one registry: both are drained and both closed', async () => {
    const closed: string[] = [];
    const health = createHealth({
      registry: new Registry(),
      shutdown: { signals: [], delayMs: 0, terminate: () => undefined },
    });
    health.start();
    const api = await app(health, {}, (fastify) => fastify.addHook('onClose', async () => void closed.push('api')));
    const admin = await app(health, { aliases: false }, (fastify) =>
      fastify.addHook('onClose', async () => void closed.push('admin')),
    );
    expect((await health.shutdown()).failedHooks).toEqual([]);
    expect(closed).toEqual(['admin', 'api']);
    expect(api.app.server.listening).toBe(false);
    expect(admin.app.server.listening).toBe(false);
  });
});
