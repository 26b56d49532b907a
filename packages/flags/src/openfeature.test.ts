import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createFlags } from './flags.ts';
import { createOpenFeatureProvider } from './openfeature.ts';
import { createTestFlags } from './testing.ts';

afterEach(async () => {
  await OpenFeature.close();
});

describe('createOpenFeatureProvider', () => {
  it('resolves booleans, strings, numbers and objects with reasons and variants', async () => {
    const flags = createTestFlags({
      'checkout-v2': true,
      'switched-off': false,
      'per-tenant': (context) => context.tenantId === 'acme',
      banner: { variant: 'blue', payload: { type: 'string', value: 'Hello' } },
      plain: 'control',
      limit: { variant: 'high', payload: { type: 'number', value: '250' } },
      layout: { variant: 'compact', payload: { type: 'json', value: '{"rows":3}' } },
    });
    await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
    const client = OpenFeature.getClient();
    expect(await client.getBooleanDetails('checkout-v2', false)).toMatchObject({
      value: true,
      reason: 'TARGETING_MATCH',
    });
    expect(await client.getBooleanDetails('switched-off', true)).toMatchObject({ value: false, reason: 'DISABLED' });
    expect(await client.getBooleanValue('per-tenant', false, { tenantId: 'acme' })).toBe(true);
    expect(await client.getBooleanValue('per-tenant', false, { tenantId: 'globex', targetingKey: 'u1' })).toBe(false);
    expect(await client.getStringDetails('banner', 'none')).toMatchObject({
      value: 'Hello',
      variant: 'blue',
      reason: 'SPLIT',
    });
    expect(await client.getStringValue('plain', 'none')).toBe('control');
    expect(await client.getNumberValue('limit', 10)).toBe(250);
    expect(await client.getObjectValue('layout', {})).toEqual({ rows: 3 });
  });

  it('reports unknown flags as FLAG_NOT_FOUND and wrong payload types as TYPE_MISMATCH', async () => {
    const flags = createTestFlags({ banner: { variant: 'blue', payload: { type: 'string', value: 'Hello' } } });
    await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
    const client = OpenFeature.getClient();
    expect(await client.getBooleanDetails('missing', true)).toMatchObject({ value: true, errorCode: 'FLAG_NOT_FOUND' });
    expect(await client.getNumberDetails('banner', 7)).toMatchObject({ value: 7, errorCode: 'TYPE_MISMATCH' });
  });

  it('emits CONFIGURATION_CHANGED when the flags change', async () => {
    const flags = createTestFlags({ a: false });
    await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
    const client = OpenFeature.getClient();
    const changed = new Promise<void>((resolve) =>
      client.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()),
    );
    flags.set('a', true);
    await changed;
    expect(await client.getBooleanValue('a', false)).toBe(true);
  });
});

describe('createOpenFeatureProvider events', () => {
  it('emits STALE while Unleash fails and READY when it answers again', async () => {
    let down = false;
    const features = JSON.stringify({
      version: 2,
      features: [{ name: 'a', enabled: true, strategies: [{ name: 'default', parameters: {}, constraints: [] }] }],
    });
    const server = createServer((request, response) => {
      if (!request.url?.startsWith('/api/client/features')) return void response.writeHead(202).end();
      if (down) return void response.writeHead(503).end();
      response.writeHead(200, { 'content-type': 'application/json' }).end(features);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const flags = createFlags({
      url: `http://127.0.0.1:${port}/api`,
      appName: 'of-events',
      refreshIntervalMs: 100,
      backupPath: false,
      sendUsageMetrics: false,
      registry: new Registry(),
    });
    try {
      await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
      const client = OpenFeature.getClient();
      const stale = new Promise<void>((resolve) => client.addHandler(ProviderEvents.Stale, () => resolve()));
      down = true;
      await stale;
      expect(client.providerStatus).toBe('STALE');
      expect(await client.getBooleanValue('a', false)).toBe(true);
      const ready = new Promise<void>((resolve) => client.addHandler(ProviderEvents.Ready, () => resolve()));
      down = false;
      await ready;
      expect(client.providerStatus).toBe('READY');
    } finally {
      server.close();
      await flags.close();
    }
  });
});
