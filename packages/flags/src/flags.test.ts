import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineFlags } from './definitions.ts';
import { isFlagsError } from './errors.ts';
import { createFlags, type Flags } from './flags.ts';
import type { FlagsLogger } from './logger.ts';

const on = (name: string, constraints: unknown[] = [], variants: unknown[] = []) => ({
  name,
  enabled: true,
  strategies: [{ name: 'default', parameters: {}, constraints }],
  variants,
});

const FEATURES = [
  on('checkout-v2'),
  { name: 'switched-off', enabled: false, strategies: [{ name: 'default', parameters: {} }] },
  on('tenant-beta', [{ contextName: 'tenantId', operator: 'IN', values: ['acme'] }]),
  on('user-beta', [{ contextName: 'userId', operator: 'IN', values: ['u-1'] }]),
  on(
    'layout',
    [],
    [{ name: 'compact', weight: 1000, stickiness: 'default', payload: { type: 'json', value: '{"rows":3}' } }],
  ),
];

function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown> }[] = [];
  const make = (): FlagsLogger => ({
    debug: (fields) => lines.push({ level: 'debug', fields }),
    info: (fields) => lines.push({ level: 'info', fields }),
    warn: (fields) => lines.push({ level: 'warn', fields }),
    error: (fields) => lines.push({ level: 'error', fields }),
    child: () => make(),
  });
  return { lines, logger: make(), events: () => lines.map((line) => line.fields['event']) };
}

const directory = mkdtempSync(join(tmpdir(), 'gantry-flags-unit-'));
const bootstrapPath = join(directory, 'bootstrap.json');
writeFileSync(bootstrapPath, JSON.stringify({ version: 2, features: FEATURES }));
const clients: Flags[] = [];
const offline = <N extends string>(options: Partial<Parameters<typeof createFlags<N>>[0]> = {}): Flags<N> => {
  const flags = createFlags<N>({
    offline: true,
    appName: 'unit',
    bootstrapPath,
    backupPath: false,
    registry: new Registry(),
    ...options,
  });
  clients.push(flags);
  return flags;
};

const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(async () => {
  context.disable();
  await Promise.all(clients.map((flags) => flags.close()));
});

describe('createFlags offline start from a bootstrap file', () => {
  it('evaluates the bootstrap and reports source, hash and updatedAt for /q/info', async () => {
    const flags = offline();
    expect(flags.status.source).toBe('none');
    await flags.ready({ timeoutMs: 5_000 });
    expect(flags.isEnabled('checkout-v2')).toBe(true);
    expect(flags.isEnabled('switched-off')).toBe(false);
    const info = flags.info();
    expect(info.name).toBe('flags');
    const section = info.contribute();
    expect(section).toEqual({
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
      source: 'bootstrap',
      updatedAt: expect.any(String),
    });
    const check = await flags.check().run(AbortSignal.timeout(1_000));
    expect(check).toMatchObject({ status: 'UP', data: { source: 'bootstrap', toggles: 5, offline: true } });
  });

  it('hashes the configuration, not the order Unleash sent it in', async () => {
    const reversed = join(directory, 'reversed.json');
    writeFileSync(reversed, JSON.stringify({ features: [...FEATURES].reverse() }));
    const a = offline();
    const b = offline({ bootstrapPath: reversed });
    await Promise.all([a.ready(), b.ready()]);
    expect(a.status.hash).toBe(b.status.hash);
  });

  it('returns the registry default before values are loaded, and the call fallback over it', () => {
    const flags = offline({ definitions: defineFlags({ 'checkout-v2': { default: true }, 'switched-off': {} }) });
    expect(flags.isEnabled('checkout-v2')).toBe(true);
    expect(flags.isEnabled('checkout-v2', {}, false)).toBe(false);
    expect(flags.variant('switched-off')).toEqual({ name: 'disabled', enabled: false, featureEnabled: false });
  });

  it('logs a broken bootstrap with its code, stays DOWN and times out ready() clearly', async () => {
    const broken = join(directory, 'broken.json');
    writeFileSync(broken, '{"features": "nope"}');
    const log = recordingLogger();
    const flags = offline({ bootstrapPath: broken, logger: log.logger });
    const error = await flags.ready({ timeoutMs: 200 }).catch((caught: unknown) => caught);
    expect(isFlagsError(error, 'GANTRY_FLAGS_READY_TIMEOUT')).toBe(true);
    expect(log.lines.find((line) => line.fields['event'] === 'flags.bootstrap.failed')?.fields).toMatchObject({
      code: 'GANTRY_FLAGS_BOOTSTRAP_INVALID',
      bootstrapPath: broken,
    });
    const check = await flags.check().run(AbortSignal.timeout(1_000));
    expect(check).toMatchObject({ status: 'DOWN', data: { source: 'none', reason: 'no flag values loaded yet' } });
  });

  it('falls back to memory when the backup folder is not writable, and says so once', async () => {
    const log = recordingLogger();
    const notADirectory = join(directory, 'bootstrap.json', 'backups');
    const flags = offline({ backupPath: notADirectory, logger: log.logger });
    await flags.ready({ timeoutMs: 5_000 });
    expect(flags.isEnabled('checkout-v2')).toBe(true);
    expect(log.events().filter((event) => event === 'flags.backup.unwritable')).toHaveLength(1);
  });

  it('rejects ready() after close() and closes only once', async () => {
    const flags = offline();
    await flags.close();
    await flags.close();
    await expect(flags.ready()).rejects.toMatchObject({ code: 'GANTRY_FLAGS_CLOSED' });
  });
});

describe('createFlags tenant and user context', () => {
  it('sends the tenant as a context property that Unleash constraints match', async () => {
    const flags = offline();
    await flags.ready();
    expect(flags.isEnabled('tenant-beta', { tenantId: 'acme' })).toBe(true);
    expect(flags.isEnabled('tenant-beta', { tenantId: 'globex' })).toBe(false);
    expect(flags.isEnabled('tenant-beta')).toBe(false);
  });

  it('reads tenant.id and user.id from OpenTelemetry baggage when the caller passes none', async () => {
    const flags = offline();
    await flags.ready();
    const baggage = propagation.createBaggage({ 'tenant.id': { value: 'acme' }, 'user.id': { value: 'u-1' } });
    const [tenant, user, explicit] = context.with(propagation.setBaggage(context.active(), baggage), () => [
      flags.isEnabled('tenant-beta'),
      flags.isEnabled('user-beta'),
      flags.isEnabled('tenant-beta', { tenantId: 'globex' }),
    ]);
    expect([tenant, user, explicit]).toEqual([true, true, false]);
    expect(flags.isEnabled('tenant-beta')).toBe(false);
  });

  it('sees a user that joins the baggage after an earlier evaluation in the same context', async () => {
    // Regression: entries were cached per context, and @gantry/telemetry's baggage resolves user.id only after
    // authentication ran, so a flag read before authentication hid the user for the rest of the request.
    const flags = offline();
    await flags.ready();
    const entries = new Map<string, { value: string }>([['tenant.id', { value: 'acme' }]]);
    const lateBaggage = {
      getEntry: (key: string) => entries.get(key),
      getAllEntries: () => [...entries],
      setEntry: () => lateBaggage,
      removeEntry: () => lateBaggage,
      removeEntries: () => lateBaggage,
      clear: () => lateBaggage,
    };
    const [before, after] = context.with(propagation.setBaggage(context.active(), lateBaggage), () => {
      const early = flags.isEnabled('user-beta');
      entries.set('user.id', { value: 'u-1' });
      return [early, flags.isEnabled('user-beta')];
    });
    expect([before, after]).toEqual([false, true]);
  });

  it('uses a custom tenant property name and can turn the baggage lookup off', async () => {
    const flags = offline({ tenantProperty: 'tenant', ambientContext: false });
    await flags.ready();
    expect(flags.isEnabled('tenant-beta', { tenantId: 'acme' })).toBe(false);
    expect(flags.isEnabled('tenant-beta', { properties: { tenantId: 'acme' } })).toBe(true);
    const baggage = propagation.createBaggage({ 'tenant.id': { value: 'acme' } });
    expect(flags.identity({})).toEqual({ tenantId: undefined, userId: undefined });
    context.with(propagation.setBaggage(context.active(), baggage), () => {
      expect(flags.identity({})).toEqual({ tenantId: undefined, userId: undefined });
    });
  });
});

describe('createFlags variants and metrics', () => {
  it('returns variants with their payload, and counts evaluations per flag and result', async () => {
    const registry = new Registry();
    const flags = offline({ registry });
    await flags.ready();
    expect(flags.variant('layout')).toEqual({
      name: 'compact',
      enabled: true,
      featureEnabled: true,
      payload: { type: 'json', value: '{"rows":3}' },
    });
    flags.isEnabled('checkout-v2');
    flags.isEnabled('checkout-v2');
    flags.isEnabled('switched-off');
    const text = await registry.metrics();
    expect(text).toContain('gantry_flags_evaluations_total{flag="checkout-v2",value="true"} 2');
    expect(text).toContain('gantry_flags_evaluations_total{flag="switched-off",value="false"} 1');
    expect(text).toContain('gantry_flags_evaluations_total{flag="layout",value="compact"} 1');
    expect(text).toContain('gantry_flags_ready{app="unit"} 1');
  });

  it('reports expired flags in the log, the check and the gauge', async () => {
    const registry = new Registry();
    const log = recordingLogger();
    const flags = offline({
      registry,
      logger: log.logger,
      clock: { now: () => Date.parse('2027-01-01T00:00:00Z') },
      definitions: defineFlags({ 'checkout-v2': { owner: 'payments', expires: '2026-12-01' } }),
    });
    await flags.ready();
    expect(flags.expired()).toEqual([
      { name: 'checkout-v2', owner: 'payments', expires: '2026-12-01', daysOverdue: 31 },
    ]);
    expect(log.lines.find((line) => line.fields['event'] === 'flags.flag.expired')?.fields).toMatchObject({
      owner: 'payments',
    });
    expect((await flags.check().run(AbortSignal.timeout(1_000))).data).toMatchObject({ expiredFlags: 1 });
    expect(await registry.metrics()).toContain('gantry_flags_expired_flags{app="unit"} 1');
  });
});

describe('createFlags lifecycle', () => {
  it('regression: close() during start() leaves no client polling in the background', async () => {
    let polls = 0;
    const server = createServer((request, response) => {
      if (request.url?.startsWith('/api/client/features')) polls += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"version":2,"features":[]}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const flags = createFlags({
        url: `http://127.0.0.1:${port}/api`,
        appName: 'closing',
        refreshIntervalMs: 100,
        backupPath: false,
        sendUsageMetrics: false,
        registry: new Registry(),
      });
      const starting = flags.start();
      await flags.close();
      await starting;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(polls).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe('createFlags behind a proxy that answers 503', () => {
  it('regression: 5xx answers (reported by unleash-client as warnings) count as failed polls', async () => {
    let down = false;
    const features = JSON.stringify({ version: 2, features: FEATURES });
    const server = createServer((request, response) => {
      if (!request.url?.startsWith('/api/client/features')) return void response.writeHead(202).end();
      if (down) return void response.writeHead(503).end('upstream unavailable');
      response.writeHead(200, { 'content-type': 'application/json' }).end(features);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const log = recordingLogger();
    const flags = createFlags({
      url: `http://127.0.0.1:${port}/api`,
      appName: 'proxied',
      refreshIntervalMs: 100,
      backupPath: false,
      sendUsageMetrics: false,
      registry: new Registry(),
      logger: log.logger,
    });
    clients.push(flags);
    try {
      await flags.ready({ timeoutMs: 10_000, require: 'sync' });
      down = true;
      await waitUntil(() => flags.status.consecutiveFailures >= 2);
      expect(flags.isEnabled('checkout-v2')).toBe(true);
      expect(flags.status.lastError).toMatch(/503/);
      expect(log.events()).toContain('flags.sync.failed');
      down = false;
      await waitUntil(() => flags.status.consecutiveFailures === 0);
      expect(log.events()).toContain('flags.sync.recovered');
    } finally {
      server.close();
    }
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
