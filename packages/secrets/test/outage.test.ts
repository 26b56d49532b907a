// Vault sealed, hung or refusing connections: the current pool keeps serving, the readiness check turns DOWN
// before the credentials' effective expiry, and the pool recovers by itself once Vault is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRotatingPool, createVault, type Vault } from '../src/index.ts';
import { captureLogger, createTestBed, delay, events, runLoad, until, type TestBed } from './helpers.ts';

const LEASE_SECONDS = 8;

type Outage = (bed: TestBed) => Promise<() => Promise<void>>;

const outages: Record<string, Outage> = {
  sealed: async (bed) => {
    bed.vault.seal();
    return () => bed.vault.unseal();
  },
  hung: async (bed) => {
    const fault = bed.vault.inject({ kind: 'hang' });
    return async () => fault.clear();
  },
  refused: async (bed) => {
    await bed.vault.refuse();
    return () => bed.vault.accept();
  },
};

describe('Vault outage', () => {
  let bed: TestBed;
  let vault: Vault;

  beforeAll(async () => {
    bed = await createTestBed({ defaultTtlSeconds: LEASE_SECONDS, maxTtlSeconds: LEASE_SECONDS });
    const { roleId, secretId } = bed.vault.addAppRole('orders', { tokenTtlSeconds: 600 });
    vault = createVault({
      endpoint: bed.vault.address,
      auth: { method: 'approle', roleId, secretId },
      requestTimeoutMs: 400,
      retryInitialDelayMs: 100,
      retryMaxDelayMs: 400,
      registry: null,
    });
    await vault.start();
  });
  afterAll(async () => {
    await vault.close();
    await bed.close();
  });

  for (const [name, begin] of Object.entries(outages)) {
    it(
      `${name} Vault: traffic keeps flowing, readiness goes DOWN before expiry, then recovers`,
      { timeout: 30_000 },
      async () => {
        const logger = captureLogger();
        const pool = createRotatingPool({
          vault,
          role: 'app',
          pool: { ...bed.pgSettings, max: 8 },
          rotationLeadMs: 5_000,
          readinessLeadMs: 2_500,
          // Room for a query starved by a busy machine; the drain still ends by the expiry minus the margin.
          drainTimeoutMs: 1_000,
          warmupTimeoutMs: 500,
          safetyMarginMs: 200,
          registry: null,
          logger,
        });
        const expiring: number[] = [];
        pool.on('expiring', ({ msLeft }) => expiring.push(msLeft));
        await pool.start();
        const readiness = pool.check();
        const signal = AbortSignal.timeout(20_000);
        expect((await readiness.run(signal)).status).toBe('UP');
        const first = pool.state();
        const end = await begin(bed);

        let stopLoad!: () => void;
        const loadDone = new Promise<void>((resolve) => (stopLoad = resolve));
        const load = runLoad(pool, 10, loadDone);
        let downAt: number | undefined;
        // Keep Vault down until readiness turns DOWN (2.5 s before the effective expiry), and a little longer.
        while (downAt === undefined && Date.now() < first.effectiveExpiresAt!) {
          if ((await readiness.run(signal)).status === 'DOWN') downAt = Date.now();
          else await delay(50);
        }
        await delay(300);
        expect(pool.state().generation).toBe(1); // no rotation was possible during the outage
        await end();
        await until(() => pool.state().generation >= 2, 10_000, 'a rotation after the outage');
        await until(async () => (await readiness.run(signal)).status === 'UP', 5_000, 'readiness UP again');
        await delay(300);
        stopLoad();
        const result = await load;
        await pool.close();

        expect(downAt, 'readiness never went DOWN').toBeDefined();
        expect(downAt!).toBeLessThan(first.effectiveExpiresAt!);
        expect(expiring.length).toBeGreaterThan(0);
        expect(events(logger.lines, 'secrets.lease.expiring').length).toBeGreaterThan(0);
        expect(events(logger.lines, 'secrets.rotation.failed').length).toBeGreaterThan(0);
        expect(result.failed, [...result.errors.keys()].join('\n')).toBe(0);
        expect(result.ok).toBeGreaterThan(100);
        // The old lease was revoked by the pool after the drain, not by Vault's expiry.
        const old = bed.vault.leases().find((lease) => lease.username === first.username);
        expect(old?.revoked).toBe(true);
        expect(old!.revokedAt!).toBeLessThan(old!.expireTime);
      },
    );
  }
});
