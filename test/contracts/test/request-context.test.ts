// ARCHITECTURE.md, "Request context": tenant and user travel as OpenTelemetry baggage entries `tenant.id` and
// `user.id`, set by telemetry's fastify plugin; flags reads them to evaluate per-tenant and per-user constraints
// without the handler passing a context. Telemetry resolves the user late (authentication runs after its hook),
// so a flag evaluated before authentication must not hide the user from evaluations after it.
import Fastify, { LogController, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createFlags } from '@gantry/flags';
import { fastifyTelemetry } from '@gantry/telemetry/fastify';
import { createTestTelemetry, type TestTelemetry } from '@gantry/telemetry/testing';

type AuthenticatedRequest = FastifyRequest & { user?: { id: string } };

const constrained = (name: string, contextName: string, values: string[]) => ({
  name,
  enabled: true,
  strategies: [{ name: 'default', parameters: {}, constraints: [{ contextName, operator: 'IN', values }] }],
});

/** Unleash's toggle format (its `Operator` type is an enum, hence the cast of these plain literals). */
const BOOTSTRAP = [
  { name: 'maintenance', enabled: false, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
  constrained('tenant-beta', 'tenantId', ['acme']),
  constrained('user-beta', 'userId', ['u-1']),
] as unknown as NonNullable<Parameters<typeof createFlags>[0]['bootstrap']>;

let telemetry: TestTelemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
});

describe("flags read telemetry's request context", () => {
  it('evaluates tenant and user constraints from the request, also after a flag was read before authentication', async () => {
    telemetry = createTestTelemetry({ serviceName: 'orders' });
    const flags = createFlags({
      appName: 'orders',
      offline: true,
      backupPath: false,
      registry: new Registry(),
      bootstrap: BOOTSTRAP,
    });
    await flags.ready({ timeoutMs: 5_000 });
    const app = Fastify({
      loggerInstance: telemetry.telemetry.logger,
      logController: new LogController({ disableRequestLogging: true }),
    });
    await app.register(fastifyTelemetry, {
      telemetry: telemetry.telemetry,
      userId: (request) => (request as AuthenticatedRequest).user?.id,
    });
    // A flag read before authentication (a maintenance switch), then authentication, then the handler.
    app.addHook('onRequest', async (request) => {
      (request as FastifyRequest & { maintenance?: boolean }).maintenance = flags.isEnabled('maintenance');
    });
    app.addHook('preHandler', async (request) => {
      const user = request.headers['x-test-user'];
      if (typeof user === 'string') (request as AuthenticatedRequest).user = { id: user };
    });
    app.get('/flags', async () => ({
      tenant: flags.isEnabled('tenant-beta'),
      user: flags.isEnabled('user-beta'),
    }));
    await app.ready();
    const ask = async (headers: Record<string, string>) => (await app.inject({ url: '/flags', headers })).json();
    expect(await ask({ 'x-tenant-id': 'acme', 'x-test-user': 'u-1' })).toEqual({ tenant: true, user: true });
    expect(await ask({ 'x-tenant-id': 'globex', 'x-test-user': 'u-2' })).toEqual({ tenant: false, user: false });
    expect(await ask({})).toEqual({ tenant: false, user: false });
    await app.close();
    await flags.close();
  });
});
