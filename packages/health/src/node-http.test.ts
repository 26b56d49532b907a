import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createCheck } from './checks/custom.ts';
import { createHealth, type Health } from './health.ts';
import { createHealthHandler, healthServerOptionsFromEnv, startHealthServer } from './node-http.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(health: Health, options: Parameters<typeof createHealthHandler>[1] = {}): Promise<number> {
  const probes = createHealthHandler(health, options);
  const server: Server = createServer((req, res) => {
    if (!probes(req, res)) res.end('app');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

function registry(checks: { ready: boolean }): Health {
  const health = createHealth({ registry: new Registry(), service: 'orders', shutdown: { signals: [] } });
  health.addCheck(
    createCheck('db', () => checks.ready, {}),
    { mode: 'on-demand', cacheMs: 0 },
  );
  health.addCheck(
    createCheck('loop', () => true),
    { groups: ['liveness'] },
  );
  health.start();
  cleanups.push(() => health.close());
  return health;
}

function head(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'HEAD' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('node:http handler', () => {
  it('answers MicroProfile JSON with 200 UP / 503 DOWN, no-store, and tolerates query strings', async () => {
    const state = { ready: true };
    const port = await serve(registry(state));
    const up = await fetch(`http://127.0.0.1:${port}/q/health/ready?verbose=1`);
    expect(up.status).toBe(200);
    expect(up.headers.get('cache-control')).toBe('no-store');
    expect(up.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await up.json()).toEqual({ status: 'UP', checks: [{ name: 'db', status: 'UP' }] });
    state.ready = false;
    const down = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'DOWN', checks: [{ name: 'db', status: 'DOWN' }] });
    const live = await fetch(`http://127.0.0.1:${port}/livez`);
    expect(live.status).toBe(200);
  });

  it('answers HEAD with the status and headers but no body', async () => {
    const port = await serve(registry({ ready: false }));
    const reply = await head(port, '/q/health/ready');
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('');
    expect(Number(reply.headers['content-length'])).toBeGreaterThan(0);
  });

  it('leaves other paths to the application and refuses other methods on probe paths', async () => {
    const port = await serve(registry({ ready: true }));
    expect(await (await fetch(`http://127.0.0.1:${port}/orders`)).text()).toBe('app');
    const post = await fetch(`http://127.0.0.1:${port}/q/health`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves /q/info and custom paths, and can drop the aliases', async () => {
    const port = await serve(registry({ ready: true }), {
      paths: { readiness: '/health/ready', info: '/about' },
      aliases: false,
    });
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).text()).toBe('app');
    const info = (await (await fetch(`http://127.0.0.1:${port}/about`)).json()) as Record<string, unknown>;
    expect(info['service']).toBe('orders');
  });

  it('rejects bad paths at construction', () => {
    const health = registry({ ready: true });
    expect(() => createHealthHandler(health, { paths: { readiness: 'ready' } })).toThrow(
      'Expected `paths.readiness` to be a path starting with \'/\' and without a query string, got "ready"',
    );
    expect(() => createHealthHandler(health, { paths: { readiness: '/q/health' } })).toThrow(/paths.health/);
  });
});

describe('node:http handler failures', () => {
  it('answers 500 only when no report can be produced at all', async () => {
    const broken = {
      [Symbol.for('@gantry/health.internals')]: {
        respond: () => {
          throw new Error('state unavailable');
        },
        addFinalCloser: () => () => undefined,
        logger: {
          debug() {},
          info() {},
          warn() {},
          error() {},
          child() {
            return this;
          },
        },
      },
    } as unknown as Health;
    const port = await serve(broken);
    const response = await fetch(`http://127.0.0.1:${port}/q/health/ready`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ status: 'DOWN', checks: [] });
  });

  it('isolates an info contributor whose section cannot be serialized', async () => {
    const health = registry({ ready: true });
    health.addInfoContributor({ name: 'broken', contribute: () => ({ big: 10n }) });
    const port = await serve(health);
    const response = await fetch(`http://127.0.0.1:${port}/q/info`);
    expect(response.status).toBe(200);
    const info = (await response.json()) as Record<string, unknown>;
    expect(info['service']).toBe('orders');
    expect(info['broken']).toEqual({ error: 'Do not know how to serialize a BigInt' });
  });
});

describe('separate probe server', () => {
  it('serves probes on its own port, 404 elsewhere, and is closed by the shutdown after the hooks', async () => {
    const order: string[] = [];
    const health = createHealth({
      registry: new Registry(),
      shutdownHooks: [{ name: 'pool', run: async () => void order.push('hook') }],
      shutdown: { signals: [], delayMs: 0, terminate: () => void order.push('terminate') },
    });
    health.start();
    cleanups.push(() => health.close());
    const probes = await startHealthServer(health, { port: 0, host: '127.0.0.1' });
    probes.server.on('close', () => order.push('probe-server-closed'));
    expect((await fetch(`http://127.0.0.1:${probes.port}/q/health/live`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${probes.port}/nope`)).status).toBe(404);
    await health.shutdown();
    expect(order).toEqual(['hook', 'probe-server-closed', 'terminate']);
  });

  it('reports a port that cannot be bound with a coded error', async () => {
    const health = createHealth({ registry: new Registry(), shutdown: { signals: [] } });
    const first = await startHealthServer(health, { port: 0, host: '127.0.0.1' });
    cleanups.push(() => first.close());
    await expect(startHealthServer(health, { port: first.port, host: '127.0.0.1' })).rejects.toMatchObject({
      code: 'GANTRY_HEALTH_SERVER_FAILED',
    });
  });

  it('reads GANTRY_HEALTH_PORT and GANTRY_HEALTH_HOST', () => {
    expect(healthServerOptionsFromEnv({ GANTRY_HEALTH_PORT: '9100', GANTRY_HEALTH_HOST: '127.0.0.1' })).toEqual({
      port: 9100,
      host: '127.0.0.1',
    });
    expect(healthServerOptionsFromEnv({})).toEqual({});
    expect(() => healthServerOptionsFromEnv({ GANTRY_HEALTH_PORT: 'http' })).toThrow('`GANTRY_HEALTH_PORT`');
  });
});
