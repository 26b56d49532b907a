// Against the harness's real Unleash: toggles, context fields, constraints and variants are created through the
// admin API, and the client must see exactly what the server decides.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, unleashAdmin } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { OpenFeature } from '@openfeature/server-sdk';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFlags, defineFlags, isFlagsError, type Flags, type FlagsOptions } from '../src/index.ts';
import { createOpenFeatureProvider } from '../src/openfeature.ts';
import { recordingLogger, tempDirectory, uniqueName, visibleToClients, waitFor } from './helpers.ts';

const unleash = server('unleash');
const admin = unleashAdmin(unleash);
const clients: Flags[] = [];

function client<N extends string = string>(options: Partial<FlagsOptions<N>> = {}): Flags<N> {
  const flags = createFlags<N>({
    url: `${unleash.url}/api`,
    token: unleash.clientToken,
    appName: uniqueName('flags-it'),
    refreshIntervalMs: 200,
    sendUsageMetrics: false,
    backupPath: false,
    registry: new Registry(),
    ...options,
  });
  clients.push(flags);
  return flags;
}

const names = {
  plain: uniqueName('plain'),
  tenant: uniqueName('tenant-beta'),
  variants: uniqueName('layout'),
};

beforeAll(async () => {
  await admin.createContextField('tenantId', 'Gantry tenant');
  await admin.createToggle(names.plain);
  await admin.addStrategy(names.plain, { name: 'default' });
  await admin.enable(names.plain);
  await admin.createToggle(names.tenant);
  await admin.addStrategy(names.tenant, {
    name: 'default',
    constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme'] }],
  });
  await admin.enable(names.tenant);
  await admin.createToggle(names.variants);
  await admin.addStrategy(names.variants, {
    name: 'flexibleRollout',
    variants: [{ name: 'compact', weight: 1000, payload: { type: 'json', value: '{"rows":3}' } }],
  });
  await admin.enable(names.variants);
  await visibleToClients(unleash, Object.values(names));
});

afterAll(async () => {
  await OpenFeature.close();
  await Promise.all(clients.map((flags) => flags.close()));
});

describe('createFlags against a real Unleash', () => {
  it('evaluates toggles, tenant constraints and variants as configured through the admin API', async () => {
    const flags = client();
    await flags.ready({ timeoutMs: 20_000, require: 'sync' });
    expect(flags.isEnabled(names.plain)).toBe(true);
    expect(flags.isEnabled(names.tenant, { tenantId: 'acme' })).toBe(true);
    expect(flags.isEnabled(names.tenant, { tenantId: 'globex' })).toBe(false);
    expect(flags.variant(names.variants, { userId: 'u-1' })).toEqual({
      name: 'compact',
      enabled: true,
      featureEnabled: true,
      payload: { type: 'json', value: '{"rows":3}' },
    });
    expect(flags.isEnabled(uniqueName('never-created'))).toBe(false);
    expect(flags.info().contribute()).toMatchObject({
      source: 'unleash',
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    const check = await flags.check().run(AbortSignal.timeout(1_000));
    expect(check).toMatchObject({ status: 'UP', data: { source: 'unleash', synchronized: true, failures: 0 } });
  });

  it('sees a toggle change within a few polls, with a new hash and a change notification', async () => {
    const toggle = uniqueName('switch');
    await admin.createToggle(toggle);
    await admin.addStrategy(toggle, { name: 'default' });
    await admin.enable(toggle);
    const flags = client();
    await flags.ready({ timeoutMs: 20_000, require: 'sync' });
    await waitFor('the new toggle', () => flags.isEnabled(toggle));
    const before = flags.status;
    const notified: string[] = [];
    flags.onChange((status) => notified.push(status.hash ?? ''));
    await admin.disable(toggle);
    await waitFor('the toggle to turn off', () => !flags.isEnabled(toggle));
    expect(flags.status.hash).not.toBe(before.hash);
    expect(notified.at(-1)).toBe(flags.status.hash);
  });

  it('changes a tenant override by editing the Unleash constraint, without touching the code', async () => {
    const toggle = uniqueName('tenant-override');
    await admin.createToggle(toggle);
    const strategyId = await admin.addStrategy(toggle, {
      name: 'default',
      constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme'] }],
    });
    await admin.enable(toggle);
    const flags = client();
    await flags.ready({ timeoutMs: 20_000, require: 'sync' });
    await waitFor('acme enabled', () => flags.isEnabled(toggle, { tenantId: 'acme' }));
    expect(flags.isEnabled(toggle, { tenantId: 'initech' })).toBe(false);
    await admin.updateStrategy(toggle, strategyId, {
      name: 'default',
      constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme', 'initech'] }],
    });
    await waitFor('initech enabled', () => flags.isEnabled(toggle, { tenantId: 'initech' }));
  });

  it('warns about flags the code defines but Unleash does not know', async () => {
    const log = recordingLogger();
    const missing = uniqueName('not-in-unleash');
    const flags = client({
      logger: log.logger,
      definitions: defineFlags({ [names.plain]: {}, [missing]: { default: true } }),
    });
    await flags.ready({ timeoutMs: 20_000, require: 'sync' });
    expect(log.lines.find((line) => line.fields['event'] === 'flags.flag.missing')?.fields['flags']).toEqual([missing]);
    expect(flags.isEnabled(missing)).toBe(true);
  });

  it('writes a backup that a later start uses while Unleash is unreachable', async () => {
    const backupPath = tempDirectory('backup');
    const appName = uniqueName('backup-app');
    const first = client({ appName, backupPath });
    await first.ready({ timeoutMs: 20_000, require: 'sync' });
    const file = join(backupPath, `gantry-flags-${appName}.json`);
    await waitFor('the backup file', () => existsSync(file));
    expect(JSON.parse(readFileSync(file, 'utf8')).features.map((feature: { name: string }) => feature.name)).toContain(
      names.plain,
    );
    await first.close();

    const unreachable = `http://127.0.0.1:${await freePort()}/api`;
    const second = client({ appName, backupPath, url: unreachable });
    await second.ready({ timeoutMs: 10_000 });
    expect(second.isEnabled(names.tenant, { tenantId: 'acme' })).toBe(true);
    expect(second.status).toMatchObject({ source: 'unleash', synchronized: false });
    await waitFor('a failed poll', () => second.status.consecutiveFailures > 0);
    const check = await second.check().run(AbortSignal.timeout(1_000));
    expect(check.status).toBe('UP');
    expect(String(check.data?.['error'])).toMatch(/ECONNREFUSED|connect/i);
    // Staleness can be made to matter: with a bound and no successful poll ever, the check goes DOWN.
    expect((await second.check({ maxStalenessMs: 60_000 }).run(AbortSignal.timeout(1_000))).status).toBe('DOWN');
  });
});

describe('a wrong Unleash token', () => {
  it('rejects ready() with GANTRY_FLAGS_UNAUTHORIZED, turns the check DOWN and never logs the token', async () => {
    const log = recordingLogger();
    const token = `*:development.${'f'.repeat(32)}`;
    const flags = client({ token, logger: log.logger });
    const error = await flags.ready({ timeoutMs: 15_000 }).catch((caught: unknown) => caught);
    expect(isFlagsError(error, 'GANTRY_FLAGS_UNAUTHORIZED')).toBe(true);
    expect((error as Error).message).toMatch(/refused the API token \(401\/403\)/);
    const check = await flags.check().run(AbortSignal.timeout(1_000));
    expect(check).toMatchObject({ status: 'DOWN', data: { reason: 'Unleash refused the API token' } });
    expect(log.events()).toContain('flags.sync.unauthorized');
    expect(JSON.stringify(log.lines)).not.toContain(token);
    expect((error as Error).message).not.toContain(token);
  });

  it('still serves a bootstrap, but the check stays DOWN', async () => {
    const flags = client({
      token: 'not-a-token',
      bootstrap: [
        { name: names.plain, enabled: true, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
      ],
    });
    await flags.ready({ timeoutMs: 10_000 });
    expect(flags.isEnabled(names.plain)).toBe(true);
    await waitFor('the 401', () => flags.status.unauthorized);
    expect((await flags.check().run(AbortSignal.timeout(1_000))).status).toBe('DOWN');
    expect(flags.info().contribute()).toMatchObject({ source: 'bootstrap' });
  });
});

describe('the OpenFeature provider against a real Unleash', () => {
  it('answers OpenFeature clients from the same client, tenant constraints included', async () => {
    const flags = client();
    await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
    const of = OpenFeature.getClient();
    expect(await of.getBooleanValue(names.tenant, false, { targetingKey: 'u-1', tenantId: 'acme' })).toBe(true);
    expect(await of.getBooleanValue(names.tenant, false, { targetingKey: 'u-1', tenantId: 'globex' })).toBe(false);
    expect(await of.getObjectValue(names.variants, {}, { targetingKey: 'u-1' })).toEqual({ rows: 3 });
    expect(await of.getBooleanDetails(uniqueName('absent'), true)).toMatchObject({
      value: true,
      errorCode: 'FLAG_NOT_FOUND',
    });
  });
});
