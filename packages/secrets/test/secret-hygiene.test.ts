// Secrets never reach a log line, an error message, a metric, a check result or the dev server's request log:
// planted passwords, secret IDs, JWTs and tokens are grepped for in everything captured while the client logs in,
// rotates, renews, fails and recovers.
import { inspect } from 'node:util';
import { server as harnessServer } from '@gantry/test-harness/vitest';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createRotatingPool, createVault } from '../src/index.ts';
import { createVaultDevServer, postgresRoleHooks } from '../src/testing.ts';
import { captureLogger, createTestBed, delay, until } from './helpers.ts';

const PLANTED = {
  password: 'PLANTEDpw',
  secretId: 'PLANTED-secret-id-4f1c',
  wrongSecretId: 'PLANTED-wrong-secret-9a2b',
  jwt: 'PLANTED.jwt.7d3e',
  wrongJwt: 'PLANTED.bad-jwt.1b5c',
  token: 'PLANTED-token-2e8f',
  kvValue: 'PLANTED-kv-value-6c0d',
};

function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth += 1) {
    if (current instanceof Error) parts.push(current.message, current.stack ?? '');
    parts.push(inspect(current, { depth: 6 }));
    current = (current as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

describe('secret hygiene', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it(
    'keeps planted passwords, secret IDs, JWTs and tokens out of every log line, error, metric and check',
    { timeout: 60_000 },
    async () => {
      let counter = 0;
      const bed = await createTestBed(
        { defaultTtlSeconds: 3, maxTtlSeconds: 6 },
        { generatePassword: () => `${PLANTED.password}${String(++counter).padStart(4, '0')}` },
      );
      cleanups.push(() => bed.close());
      const logger = captureLogger();
      const errors: unknown[] = [];
      const registry = new Registry();
      const { roleId } = bed.vault.addAppRole('svc', { secretId: PLANTED.secretId, tokenTtlSeconds: 60 });
      bed.vault.addKubernetesRole('orders', { jwts: [PLANTED.jwt] });
      bed.vault.createToken({ id: PLANTED.token, tokenTtlSeconds: 600 });
      bed.vault.kvPut('app/config', { apiKey: PLANTED.kvValue });

      // 1. AppRole client with a rotating pool: rotations, renewals, an outage, a 429, a revoked token.
      const vault = createVault({
        endpoint: bed.vault.address,
        auth: { method: 'approle', roleId, secretId: PLANTED.secretId },
        requestTimeoutMs: 300,
        retryInitialDelayMs: 50,
        retryMaxDelayMs: 200,
        logger,
        registry,
      });
      cleanups.push(() => vault.close());
      vault.on('auth-failed', ({ error }) => errors.push(error));
      const pool = createRotatingPool({
        vault,
        role: 'app',
        pool: { ...bed.pgSettings, max: 3 },
        rotationLeadMs: 1_000,
        drainTimeoutMs: 300,
        warmupTimeoutMs: 300,
        safetyMarginMs: 100,
        logger,
        registry,
      });
      cleanups.push(() => pool.close());
      pool.on('rotation-failed', ({ error }) => errors.push(error));
      await pool.start();
      await pool.query('SELECT count(*) FROM items');
      bed.vault.seal();
      await delay(2_000);
      await bed.vault.unseal();
      bed.vault.inject({ kind: 'rate-limit', path: 'database/creds/', times: 2 });
      await bed.vault.revokeToken(vault.token()!.accessor!);
      await until(() => pool.state().generation >= 3, 15_000, 'rotations after the outage');
      await pool.query('SELECT count(*) FROM items');
      const kv = vault.kv({ refreshIntervalMs: 200 });
      await kv.get('app/config');
      bed.vault.kvPut('app/config', { apiKey: `${PLANTED.kvValue}-2` });
      await delay(400);
      const checks = [
        await pool.check().run(AbortSignal.timeout(1_000)),
        await vault.check().run(AbortSignal.timeout(1_000)),
      ];
      const metrics = await registry.metrics();
      const state = JSON.stringify([pool.state(), vault.token()]);
      await pool.close();

      // 2. Wrong AppRole secret, wrong and right Kubernetes JWTs, a static token.
      const wrong = createVault({
        endpoint: bed.vault.address,
        auth: { method: 'approle', roleId, secretId: PLANTED.wrongSecretId },
        logger,
        registry: null,
      });
      errors.push(await wrong.start().catch((error: unknown) => error));
      const k8sWrong = createVault({
        endpoint: bed.vault.address,
        auth: { method: 'kubernetes', role: 'orders', jwt: PLANTED.wrongJwt },
        logger,
        registry: null,
      });
      errors.push(await k8sWrong.start().catch((error: unknown) => error));
      const k8s = createVault({
        endpoint: bed.vault.address,
        auth: { method: 'kubernetes', role: 'orders', jwt: () => PLANTED.jwt },
        logger,
        registry: null,
      });
      await k8s.start();
      await k8s.close();
      const staticToken = createVault({
        endpoint: bed.vault.address,
        auth: { method: 'token', token: PLANTED.token },
        logger,
        registry: null,
      });
      await staticToken.start();
      await staticToken.close();

      // 3. Credentials the database rejects (the role is created with another password).
      const admin = harnessServer('postgres');
      const hooks = postgresRoleHooks({ ...bed.pgSettings, user: admin.user, password: admin.password });
      cleanups.push(() => hooks.close());
      const liar = await createVaultDevServer({
        generatePassword: () => `${PLANTED.password}liar`,
        database: {
          onCreate: (user) => hooks.onCreate(user, 'something-else'),
          onRevoke: (user) => hooks.onRevoke(user),
        },
      });
      cleanups.push(() => liar.close());
      liar.addDatabaseRole('app');
      const liarVault = createVault({
        endpoint: liar.address,
        auth: { method: 'token', token: liar.rootToken },
        startupTimeoutMs: 1_500,
        retryInitialDelayMs: 100,
        logger,
        registry: null,
      });
      cleanups.push(() => liarVault.close());
      const rejected = createRotatingPool({
        vault: liarVault,
        role: 'app',
        pool: bed.pgSettings,
        warmupTimeoutMs: 200,
        logger,
        registry: null,
      });
      const rejection = await rejected.start().catch((error: unknown) => error);
      errors.push(rejection);
      await rejected.close();

      const captured = [
        ...logger.lines.map((line) => JSON.stringify(line)),
        ...errors.map(describeError),
        metrics,
        JSON.stringify(checks),
        state,
        JSON.stringify(bed.vault.requests),
        JSON.stringify(liar.requests),
      ].join('\n');
      expect(errors.length).toBeGreaterThanOrEqual(4);
      expect(logger.lines.length).toBeGreaterThan(20);
      expect(describeError(rejection)).toContain('password authentication failed');
      for (const [name, secret] of Object.entries(PLANTED)) {
        expect(captured.includes(secret), `${name} leaked`).toBe(false);
      }
      expect(captured).not.toMatch(/hvs\.[A-Za-z0-9]{24}/); // no issued token either
    },
  );
});
