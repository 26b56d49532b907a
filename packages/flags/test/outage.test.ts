// A private Unleash (never the shared one) is stopped in the middle of a run: the client must keep its last values,
// report the outage, retry in the background and pick up changes once the server is back on the same port.
import { createRunDirectory, startUnleash, unleashAdmin, type UnleashServer } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFlags, type Flags } from '../src/index.ts';
import { recordingLogger, uniqueName, visibleToClients, waitFor } from './helpers.ts';

let unleash: UnleashServer;
let flags: Flags | undefined;

beforeAll(async () => {
  unleash = await startUnleash({
    runDirectory: createRunDirectory('flags-outage'),
    postgres: server('postgres'),
    name: 'unleash-outage',
  });
}, 120_000);

afterAll(async () => {
  await flags?.close();
  await unleash.stop();
});

describe('Unleash stopped mid-run', () => {
  it('keeps the last values, reports the outage, and recovers when the server is back', async () => {
    const admin = unleashAdmin(unleash);
    const toggle = uniqueName('outage');
    await admin.createContextField('tenantId');
    await admin.createToggle(toggle);
    await admin.addStrategy(toggle, {
      name: 'default',
      constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme'] }],
    });
    await admin.enable(toggle);
    await visibleToClients(unleash, [toggle]);

    const log = recordingLogger();
    const registry = new Registry();
    flags = createFlags({
      url: `${unleash.url}/api`,
      token: unleash.clientToken,
      appName: uniqueName('outage-app'),
      refreshIntervalMs: 200,
      requestTimeoutMs: 1_000,
      sendUsageMetrics: false,
      backupPath: false,
      logger: log.logger,
      registry,
    });
    const client = flags;
    await client.ready({ timeoutMs: 20_000, require: 'sync' });
    expect(client.isEnabled(toggle, { tenantId: 'acme' })).toBe(true);
    const hashBefore = client.status.hash;

    await unleash.stop();
    await waitFor('three failed polls', () => client.status.consecutiveFailures >= 3, 30_000);
    expect(client.isEnabled(toggle, { tenantId: 'acme' })).toBe(true);
    expect(client.isEnabled(toggle, { tenantId: 'globex' })).toBe(false);
    expect(client.status.hash).toBe(hashBefore);
    const during = await client.check().run(AbortSignal.timeout(1_000));
    expect(during.status).toBe('UP');
    expect(during.data).toMatchObject({ source: 'unleash', failures: expect.any(Number), error: expect.any(String) });
    // The first failure is a warning; the next ones only debug lines, so an outage does not flood the logs.
    expect(
      log.lines.filter((line) => line.fields['event'] === 'flags.sync.failed' && line.level === 'warn'),
    ).toHaveLength(1);
    expect(await registry.getSingleMetricAsString('gantry_flags_syncs_total')).toMatch(
      /outcome="failed"} [3-9]|outcome="failed"} \d\d/,
    );

    await unleash.start();
    await admin.updateStrategy(
      toggle,
      (
        (await admin.request(
          'GET',
          `projects/default/features/${toggle}/environments/${unleash.environment}/strategies`,
        )) as { id: string }[]
      )[0]!.id,
      { name: 'default', constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme', 'globex'] }] },
    );
    await waitFor('the change made after the restart', () => client.isEnabled(toggle, { tenantId: 'globex' }), 30_000);
    expect(client.status).toMatchObject({ consecutiveFailures: 0, lastError: null });
    expect(client.status.hash).not.toBe(hashBefore);
    expect(log.events()).toContain('flags.sync.recovered');
  });
});
