// Token ↔ lease coupling: a lease dies with the token that created it. The client re-logs in before the token's
// max TTL and the pool rotates under the new token with no failed query; when the token expires anyway (Vault
// sealed through its expiry), its leases are revoked with it and the pool recovers by re-login. Also: 429s are
// retried no sooner than their Retry-After.
import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock, createRotatingPool, createVault, type Vault } from '../src/index.ts';
import { captureLogger, createTestBed, delay, liveRoles, runLoad, until, type TestBed } from './helpers.ts';

describe('token expiry and leases', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(tokenTtlSeconds: number, leaseSeconds = 60): Promise<{ bed: TestBed; vault: Vault }> {
    const bed = await createTestBed({ defaultTtlSeconds: leaseSeconds, maxTtlSeconds: leaseSeconds });
    cleanups.push(() => bed.close());
    const { roleId, secretId } = bed.vault.addAppRole('orders', {
      tokenTtlSeconds,
      tokenMaxTtlSeconds: tokenTtlSeconds,
    });
    const vault = createVault({
      endpoint: bed.vault.address,
      auth: { method: 'approle', roleId, secretId },
      requestTimeoutMs: 500,
      retryInitialDelayMs: 100,
      retryMaxDelayMs: 500,
      registry: null,
    });
    cleanups.push(() => vault.close());
    return { bed, vault };
  }

  it(
    're-logs in before the token max TTL and rotates under the new token with zero failed queries',
    { timeout: 30_000 },
    async () => {
      const { bed, vault } = await setup(6);
      const logins: string[] = [];
      vault.on('login', ({ reason }) => logins.push(reason));
      const pool = createRotatingPool({
        vault,
        role: 'app',
        pool: { ...bed.pgSettings, max: 8 },
        rotationLeadMs: 2_500,
        // Room for a query starved by a busy machine (capped by the token's expiry minus the margin anyway).
        drainTimeoutMs: 1_500,
        warmupTimeoutMs: 500,
        safetyMarginMs: 200,
        registry: null,
      });
      cleanups.push(() => pool.close());
      await pool.start();
      const result = await runLoad(pool, 10, delay(11_000));
      const generation = pool.state().generation;
      await pool.close();

      expect(result.failed, [...result.errors.keys()].join('\n')).toBe(0);
      expect(logins.filter((reason) => reason === 'max-ttl').length).toBeGreaterThanOrEqual(2);
      expect(generation).toBeGreaterThanOrEqual(3);
      // Every lease was revoked by the pool while its token was still alive: none died with its token.
      for (const lease of bed.vault.leases()) {
        const token = bed.vault.tokenState(lease.tokenAccessor!)!;
        expect(lease.revoked).toBe(true);
        expect(lease.revokedAt!).toBeLessThanOrEqual(token.expireTime!);
      }
    },
  );

  it('token expiry cascades to its leases and the pool recovers by re-login', { timeout: 30_000 }, async () => {
    const { bed, vault } = await setup(3);
    const logger = captureLogger();
    const pool = createRotatingPool({
      vault,
      role: 'app',
      pool: { ...bed.pgSettings, max: 4 },
      readinessLeadMs: 1_000,
      rotationLeadMs: 2_000,
      drainTimeoutMs: 400,
      warmupTimeoutMs: 500,
      safetyMarginMs: 200,
      registry: null,
      logger,
    });
    cleanups.push(() => pool.close());
    await pool.start();
    const first = pool.state();
    const tokenExpiresAt = vault.token()!.expiresAt!;
    expect(first.effectiveExpiresAt).toBe(tokenExpiresAt); // the 60 s lease is bounded by the 3 s token
    bed.vault.seal(); // no renewal, no re-login: the token will expire
    const readiness = pool.check();
    await until(
      async () => (await readiness.run(AbortSignal.timeout(1_000))).status === 'DOWN',
      5_000,
      'readiness DOWN',
    );
    expect(Date.now()).toBeLessThan(tokenExpiresAt);
    const serverExpiry = bed.vault.tokenState(vault.token()!.accessor!)!.expireTime!;
    expect(tokenExpiresAt).toBeLessThanOrEqual(serverExpiry); // the client's view is the conservative one
    await delay(Math.max(0, serverExpiry - Date.now()) + 300);
    const user = first.username!;
    expect(await liveRoles(bed.admin)).toContain(user); // sealed: nothing revoked yet

    await bed.vault.unseal(); // the expiration manager revokes the token, and its lease with it
    const lease = bed.vault.leases().find((item) => item.username === user)!;
    expect(lease.revoked).toBe(true);
    expect(lease.revokedAt!).toBeLessThan(lease.expireTime); // revoked with the token, long before its own TTL
    expect(await liveRoles(bed.admin)).not.toContain(user);

    await until(() => pool.state().generation >= 2, 10_000, 'recovery by re-login');
    const { rows } = await pool.query<{ user: string }>('SELECT current_user AS user, count(*) FROM items');
    expect(rows[0]!.user).not.toBe(user);
    expect(vault.token()!.generation).toBeGreaterThanOrEqual(2);
    expect((await readiness.run(AbortSignal.timeout(1_000))).status).toBe('UP');
  });

  it('retries a 429 no sooner than its Retry-After', { timeout: 30_000 }, async () => {
    const bed = await createTestBed({ defaultTtlSeconds: 600 });
    cleanups.push(() => bed.close());
    const clock = createManualClock();
    const vault = createVault({
      endpoint: bed.vault.address,
      auth: { method: 'token', token: bed.vault.rootToken },
      retryInitialDelayMs: 100,
      retryMaxDelayMs: 200,
      clock,
      registry: null,
    });
    cleanups.push(() => vault.close());
    const pool = createRotatingPool({ vault, role: 'app', pool: bed.pgSettings, clock, registry: null });
    cleanups.push(() => pool.close());
    bed.vault.inject({ kind: 'rate-limit', path: 'database/creds/', times: 1, retryAfterSeconds: 3 });
    const credsRequests = () => bed.vault.requests.filter((request) => request.path === 'database/creds/app');
    const started = pool.start();
    await until(() => credsRequests().length === 1, 5_000, 'the first credentials request');
    expect(credsRequests()[0]!.status).toBe(429);
    await clock.advance(2_900); // backoff alone would have retried within 200 ms
    await delay(200);
    expect(credsRequests().length).toBe(1);
    await clock.advance(200);
    await started;
    expect(credsRequests().length).toBe(2);
    expect(credsRequests()[1]!.status).toBe(200);
  });
});
