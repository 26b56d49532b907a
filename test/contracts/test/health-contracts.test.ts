// The shared contracts of ARCHITECTURE.md, across packages: every package's Check, InfoContributor and
// ShutdownHook registered in one real @gantry/health registry, the way a service wires them (the READMEs'
// examples): names do not collide, checks run and report flat data, /q/info has the `flags` and `schema` sections
// in the documented shape, and one shutdown runs every hook without a failure.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createHealth, createPoolEndHook, type ShutdownOutcome } from '@gantry/health';
import { createFlags, createMigrationFlag } from '@gantry/flags';
import { createMigrator, createSchemaMonitor, registerAppVersion } from '@gantry/migrations';
import { createVault } from '@gantry/secrets';
import { createVaultDevServer } from '@gantry/secrets/testing';
import { createTestTelemetry } from '@gantry/telemetry/testing';
import { createDatabase } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('one health registry with every package', () => {
  it('registers, runs and shuts down the checks, info sections and hooks of flags, secrets, migrations, telemetry', async () => {
    const registry = new Registry();
    let outcome: ShutdownOutcome | undefined;
    const health = createHealth({
      service: 'orders',
      version: '2.0.0',
      registry,
      checkIntervalMs: 200,
      shutdown: {
        signals: [],
        delayMs: 0,
        terminate: (result) => {
          outcome = result;
        },
      },
    });

    // Telemetry first: hooks run in reverse, so its flush comes last.
    const telemetry = createTestTelemetry({ serviceName: 'orders' });
    health.addShutdownHook(telemetry.telemetry.shutdownHook);

    // Migrations: a real database at version 1, the schema monitor and the heartbeat of this instance.
    const database = await createDatabase(server('postgres'), 'contracts');
    const directory = mkdtempSync(join(tmpdir(), 'gantry-contracts-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    writeFileSync(
      join(directory, 'V1__orders.sql'),
      '-- gantry:phase expand\nCREATE TABLE orders (id bigint PRIMARY KEY);\n',
    );
    await createMigrator({ directory, connectionString: database.url }).migrate();
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const supports = { min: '1', max: '1' };
    const monitor = createSchemaMonitor({ pool, directory, schemaSupports: supports, registry, refreshIntervalMs: 0 });
    await monitor.start();
    const heartbeat = await registerAppVersion(pool, { service: 'orders', version: '2.0.0', schemaSupports: supports });
    health.addShutdownHook(createPoolEndHook(pool));
    health.addShutdownHook({ name: 'schema-heartbeat', run: () => heartbeat.stop() });
    health.addCheck(monitor.check, { groups: ['startup', 'readiness'] });
    health.addInfoContributor(monitor.info);

    // Secrets: a Vault client against the dev server.
    const vaultServer = await createVaultDevServer();
    cleanups.push(() => vaultServer.close());
    const vault = createVault({
      endpoint: vaultServer.address,
      auth: { method: 'token', token: vaultServer.rootToken },
    });
    await vault.start();
    health.addCheck(vault.check());
    health.addShutdownHook(vault.shutdownHook());

    // Flags: an offline client from a bootstrap, and a dual-write migration flag on it.
    const flags = createFlags({
      appName: 'orders',
      offline: true,
      backupPath: false,
      registry,
      bootstrap: [
        {
          name: 'dual-write-orders',
          enabled: true,
          strategies: [{ name: 'default', parameters: {}, constraints: [] }],
          variants: [{ name: 'shadow', weight: 1000, stickiness: 'default' }],
        },
      ],
    });
    await flags.ready({ timeoutMs: 5_000 });
    const orders = createMigrationFlag(flags, 'dual-write-orders', {
      readOld: async (id: string) => ({ id }),
      readNew: async (id: string) => ({ id }),
      writeOld: async (order: { id: string }) => order.id,
      writeNew: async (order: { id: string }) => order.id,
    });
    health.addCheck(flags.check());
    health.addInfoContributor(flags.info());
    health.addShutdownHook(flags.shutdownHook());
    health.addCheck(orders.check());
    health.addShutdownHook(orders.shutdownHook());

    health.start();
    cleanups.push(() => health.close());
    const deadline = Date.now() + 15_000;
    let readiness = await health.probe('readiness');
    while (readiness.status !== 'UP' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      readiness = await health.probe('readiness');
    }
    expect(readiness.status, JSON.stringify(readiness)).toBe('UP');
    const names = readiness.checks.map((check) => check.name).sort();
    expect(names).toEqual(['flags', 'migration:dual-write-orders', 'migrations', 'vault']);
    for (const check of readiness.checks) {
      expect(check.status, check.name).toBe('UP');
      for (const value of Object.values(check.data ?? {})) {
        expect(['string', 'number', 'boolean'], check.name).toContain(typeof value);
      }
    }
    expect((await health.probe('startup')).status).toBe('UP');

    // /q/info: the sections the agent reads, in the shapes ARCHITECTURE.md gives.
    const info = health.info();
    expect(info).toMatchObject({ service: 'orders', version: '2.0.0' });
    expect(info['schema']).toEqual({
      current: '1',
      phase: 'expand',
      supports: { min: '1', max: '1' },
      pending: 0,
      failed: [],
      lastContract: null,
    });
    const flagsSection = info['flags'] as { hash: unknown; source: unknown; updatedAt: unknown };
    expect(Object.keys(flagsSection).sort()).toEqual(['hash', 'source', 'updatedAt']);
    expect(flagsSection.hash).toMatch(/^[0-9a-f]+$/);
    expect(['unleash', 'bootstrap', 'none']).toContain(flagsSection.source);
    expect(Number.isNaN(Date.parse(String(flagsSection.updatedAt)))).toBe(false);

    // One shutdown runs every hook, none fails; then the heartbeat row is gone and the pool is ended.
    const result = await health.shutdown('contract test');
    expect(outcome).toBe(result);
    expect(result).toMatchObject({ exitCode: 0, failedHooks: [], deadlineExceeded: false });
    expect(pool.ended).toBe(true);
    const check = new pg.Client({ connectionString: database.url });
    await check.connect();
    const rows = await check.query('SELECT count(*)::int AS n FROM gantry_migrations.app_versions');
    await check.end();
    expect(rows.rows[0]).toEqual({ n: 0 });
  });
});
