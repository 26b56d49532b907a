// createVault() against the dev server: renewal timing, re-login before max TTL, error classification for every
// fault, re-login on a revoked token, explicit mounts, fresh Kubernetes JWTs and no stale token on login.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import {
  SYSTEM_CLOCK,
  createManualClock,
  createVault,
  isSecretsError,
  type SecretsError,
  type Vault,
  type Clock,
} from '../src/index.ts';
import { createVaultDevServer, type VaultDevServer } from '../src/testing.ts';
import { captureLogger, delay, events, until } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function devServer(options: Parameters<typeof createVaultDevServer>[0] = {}): Promise<VaultDevServer> {
  const server = await createVaultDevServer(options);
  cleanups.push(() => server.close());
  server.addDatabaseRole('app', { defaultTtlSeconds: 300, maxTtlSeconds: 600 });
  return server;
}

function client(server: VaultDevServer, options: Partial<Parameters<typeof createVault>[0]> = {}): Vault {
  const vault = createVault({
    endpoint: server.address,
    auth: { method: 'token', token: server.rootToken },
    // Generous: a loaded machine must not turn an ordinary request into a timeout (the hung case sets its own).
    requestTimeoutMs: 2_000,
    registry: null,
    ...options,
  });
  cleanups.push(() => vault.close());
  return vault;
}

async function failure(promise: Promise<unknown>): Promise<SecretsError> {
  try {
    await promise;
  } catch (error) {
    if (isSecretsError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('token lifecycle', () => {
  it('renews the token at 2/3 of its TTL (60–70 %), not before', async () => {
    const clock = createManualClock();
    const server = await devServer({ clock });
    const { roleId, secretId } = server.addAppRole('svc', { tokenTtlSeconds: 300, tokenMaxTtlSeconds: 3_000 });
    const vault = client(server, { auth: { method: 'approle', roleId, secretId }, clock });
    await vault.start();
    const renewals = () => server.requests.filter((request) => request.path === 'auth/token/renew-self');
    await clock.advance(179_000);
    expect(renewals()).toHaveLength(0);
    await clock.advance(32_000);
    await until(() => renewals().length === 1, 2_000, 'a renewal');
    const loginAt = server.requests[0]!.at;
    const at = renewals()[0]!.at - loginAt;
    expect(at).toBeGreaterThanOrEqual(180_000);
    expect(at).toBeLessThanOrEqual(210_000);
    expect(renewals()[0]!.body).toEqual({ increment: 300 });
    expect(vault.token()!.expiresAt).toBe(renewals()[0]!.at + 300_000);
  });

  it('regression: the dev server reported a login TTL one second short, so clients expired tokens early', async () => {
    // A clock that moves 1 ms on every read: time passes between issuing the token and answering.
    let ticks = 0;
    const base = Date.now();
    const ticking: Clock = {
      now: () => base + ticks++,
      setTimeout: (callback, ms) => SYSTEM_CLOCK.setTimeout(callback, ms),
      clearTimeout: (timer) => SYSTEM_CLOCK.clearTimeout(timer),
    };
    const server = await devServer({ clock: ticking });
    const { roleId, secretId } = server.addAppRole('svc', { tokenTtlSeconds: 3, tokenMaxTtlSeconds: 3 });
    const response = await fetch(`${server.address}/v1/auth/approle/login`, {
      method: 'POST',
      body: JSON.stringify({ role_id: roleId, secret_id: secretId }),
    });
    const body = (await response.json()) as { auth: { lease_duration: number } };
    expect(body.auth.lease_duration).toBe(3);
  });

  it('logs in again before the max TTL once Vault caps a renewal, leaving the old token alive', async () => {
    const clock = createManualClock();
    const server = await devServer({ clock });
    const { roleId, secretId } = server.addAppRole('svc', { tokenTtlSeconds: 300, tokenMaxTtlSeconds: 400 });
    const logger = captureLogger();
    const vault = client(server, { auth: { method: 'approle', roleId, secretId }, clock, logger });
    const logins: string[] = [];
    vault.on('login', ({ reason }) => logins.push(reason));
    await vault.start();
    const firstAccessor = vault.token()!.accessor!;
    await clock.advance(215_000); // renewal at ~200 s: capped to the 400 s max TTL
    await until(() => vault.token()!.capped, 2_000, 'a capped renewal');
    const maxExpireTime = server.tokenState(firstAccessor)!.maxExpireTime!;
    expect(vault.token()!.expiresAt).toBeLessThanOrEqual(maxExpireTime);
    expect(vault.token()!.expiresAt).toBeGreaterThan(maxExpireTime - 1_000);
    await clock.advance(130_000); // 345 s: past expiry − min(60 s, TTL/3)
    await until(() => logins.length === 2, 2_000, 'a second login');
    expect(logins).toEqual(['startup', 'max-ttl']);
    expect(vault.token()!.generation).toBe(2);
    expect(server.tokenState(firstAccessor)!.revoked).toBe(false);
    expect(events(logger.lines, 'secrets.vault.login')).toHaveLength(2);
  });

  it('keeps retrying renewal through an outage and re-logs in once the token expired', async () => {
    const clock = createManualClock();
    const server = await devServer({ clock });
    const { roleId, secretId } = server.addAppRole('svc', { tokenTtlSeconds: 60, tokenMaxTtlSeconds: 6_000 });
    const vault = client(server, {
      auth: { method: 'approle', roleId, secretId },
      clock,
      retryInitialDelayMs: 1_000,
      retryMaxDelayMs: 5_000,
    });
    const expired: number[] = [];
    vault.on('token-expired', ({ generation }) => expired.push(generation));
    await vault.start();
    server.seal();
    for (let second = 0; second < 70; second += 5) await clock.advance(5_000);
    const attempts = server.requests.filter((request) => request.path === 'auth/token/renew-self').length;
    expect(attempts).toBeGreaterThan(3); // node-vault's helper gives up after the first error
    expect(expired).toEqual([1]);
    await server.unseal();
    await clock.advance(6_000);
    await until(() => vault.token()?.generation === 2, 2_000, 're-login');
    const check = await vault.check().run(AbortSignal.timeout(1_000));
    expect(check.status).toBe('UP');
  });

  it('re-logs in and retries once when Vault rejects a revoked token', async () => {
    const server = await devServer();
    const { roleId, secretId } = server.addAppRole('svc');
    const vault = client(server, { auth: { method: 'approle', roleId, secretId } });
    server.kvPut('app/config', { color: 'blue' });
    await vault.start();
    await server.revokeToken(vault.token()!.accessor!);
    const response = await vault.read<{ data: { color: string } }>('secret/data/app/config');
    expect(response.data.data.color).toBe('blue');
    expect(vault.token()!.generation).toBe(2);
  });

  it('fails start() at once, without retries, for a static token Vault does not know', async () => {
    const server = await devServer();
    const vault = client(server, { auth: { method: 'token', token: 'not-a-token' }, startupTimeoutMs: 30_000 });
    const started = Date.now();
    const error = await failure(vault.start());
    expect(error.code).toBe('GANTRY_SECRETS_STARTUP_FAILED');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((error.cause as SecretsError).code).toBe('GANTRY_SECRETS_AUTH_FAILED');
  });

  it('retries start() through a sealed Vault until it is unsealed', async () => {
    const server = await devServer();
    server.seal();
    const vault = client(server, { retryInitialDelayMs: 50, retryMaxDelayMs: 100 });
    const started = vault.start();
    await delay(300);
    await server.unseal();
    await started;
    expect(vault.token()!.expiresAt).toBeNull(); // the root token never expires: nothing to renew
  });
});

describe('error classification', () => {
  const cases: [string, (server: VaultDevServer) => void, Partial<SecretsError>][] = [
    ['sealed', (s) => s.seal(), { code: 'GANTRY_SECRETS_VAULT_UNAVAILABLE', kind: 'retryable', status: 503 }],
    [
      'rate limited',
      (s) => s.inject({ kind: 'rate-limit', retryAfterSeconds: 7 }),
      { kind: 'retryable', status: 429, retryAfterMs: 7_000 },
    ],
    [
      '500',
      (s) => s.inject({ kind: 'internal-error' }),
      { code: 'GANTRY_SECRETS_VAULT_UNAVAILABLE', kind: 'retryable', status: 500 },
    ],
    ['412', (s) => s.inject({ kind: 'precondition-failed' }), { kind: 'retryable', status: 412 }],
    ['hung', (s) => s.inject({ kind: 'hang' }), { code: 'GANTRY_SECRETS_VAULT_TIMEOUT', kind: 'retryable' }],
    ['reset', (s) => s.inject({ kind: 'reset' }), { code: 'GANTRY_SECRETS_VAULT_UNAVAILABLE', kind: 'retryable' }],
    [
      'policy denial',
      (s) => s.deny('database/'),
      { code: 'GANTRY_SECRETS_PERMISSION_DENIED', kind: 'fatal', status: 403 },
    ],
  ];
  for (const [name, arrange, expected] of cases) {
    it(`classifies ${name}`, async () => {
      const server = await devServer();
      const token = server.createToken({ tokenTtlSeconds: 600 }).token;
      const vault = client(server, {
        auth: { method: 'token', token },
        ...(name === 'hung' && { requestTimeoutMs: 300 }),
      });
      await vault.start();
      arrange(server);
      const error = await failure(vault.databaseCredentials({ role: 'app' }));
      expect(error).toMatchObject(expected);
    });
  }

  it('classifies refused connections as retryable', async () => {
    const server = await devServer();
    const vault = client(server);
    await vault.start();
    await server.refuse();
    expect(await failure(vault.read('secret/data/x'))).toMatchObject({
      code: 'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      kind: 'retryable',
    });
  });

  it('classifies a gone lease as lease-terminal, an unknown role and a missing secret as fatal', async () => {
    const server = await devServer();
    const vault = client(server);
    expect(await failure(vault.renewLease('database/creds/app/nope', 60))).toMatchObject({
      code: 'GANTRY_SECRETS_LEASE_INVALID',
      kind: 'lease-terminal',
      status: 400,
    });
    expect(await failure(vault.databaseCredentials({ role: 'nope' }))).toMatchObject({
      code: 'GANTRY_SECRETS_VAULT_REQUEST_FAILED',
      kind: 'fatal',
      status: 400,
    });
    expect(await failure(vault.read('secret/data/missing'))).toMatchObject({
      code: 'GANTRY_SECRETS_NOT_FOUND',
      status: 404,
    });
    await vault.revokeLease('database/creds/app/unknown'); // idempotent: 204
  });

  it('counts requests by operation and outcome', async () => {
    const server = await devServer();
    const registry = new Registry();
    const vault = client(server, { registry });
    await vault.databaseCredentials({ role: 'app' });
    server.seal();
    await failure(vault.databaseCredentials({ role: 'app' }));
    const text = await registry.metrics();
    expect(text).toContain('gantry_secrets_vault_requests_total{operation="database_credentials",outcome="ok"} 1');
    expect(text).toContain(
      'gantry_secrets_vault_requests_total{operation="database_credentials",outcome="retryable"} 1',
    );
  });
});

describe('node-vault pitfalls guarded', () => {
  it('uses explicit auth mounts and never sends a token on login, even with VAULT_TOKEN set', async () => {
    const server = await devServer({ approleMount: 'approle-prod' });
    const { roleId, secretId } = server.addAppRole('svc');
    const previous = process.env['VAULT_TOKEN'];
    process.env['VAULT_TOKEN'] = 'from-the-environment';
    try {
      const vault = client(server, { auth: { method: 'approle', roleId, secretId, mount: 'approle-prod' } });
      await vault.login();
      await vault.login();
    } finally {
      if (previous === undefined) delete process.env['VAULT_TOKEN'];
      else process.env['VAULT_TOKEN'] = previous;
    }
    const logins = server.requests.filter((request) => request.path.endsWith('/login'));
    expect(logins.map((request) => request.path)).toEqual(['auth/approle-prod/login', 'auth/approle-prod/login']);
    for (const login of logins) expect(login.headers['x-vault-token']).toBeUndefined();
  });

  it('reads the Kubernetes service-account JWT fresh at every login', async () => {
    const server = await devServer({ kubernetesMount: 'k8s-east' });
    server.addKubernetesRole('orders', { jwts: ['jwt-one', 'jwt-two'] });
    const file = join(mkdtempSync(join(tmpdir(), 'gantry-secrets-')), 'token');
    writeFileSync(file, 'jwt-one\n');
    const vault = client(server, { auth: { method: 'kubernetes', role: 'orders', jwtFile: file, mount: 'k8s-east' } });
    await vault.start();
    writeFileSync(file, 'jwt-two');
    await vault.login();
    server.addKubernetesRole('orders', { jwts: ['jwt-two'] }); // the old JWT is no longer accepted
    await vault.login();
    expect(vault.token()!.generation).toBe(3);
    expect(server.requests.filter((request) => request.path === 'auth/k8s-east/login')).toHaveLength(3);
  });

  it('sends the namespace and encodes path segments', async () => {
    const server = await devServer();
    server.addDatabaseRole('app ro', { defaultTtlSeconds: 60 });
    const vault = client(server, { namespace: 'team-a/' });
    const credentials = await vault.databaseCredentials({ role: 'app ro' });
    expect(credentials.leaseId).toMatch(/^database\/creds\/app ro\/[A-Za-z0-9]{24}\.[A-Za-z0-9]{5}$/);
    expect(server.requests.at(-1)!.namespace).toBe('team-a/');
    expect(Object.keys(credentials)).not.toContain('password');
    expect(JSON.stringify(credentials)).not.toContain(credentials.password);
  });

  it('reports sys/health with its status code', async () => {
    const server = await devServer();
    const vault = client(server);
    expect(await vault.health()).toMatchObject({ statusCode: 200, sealed: false, initialized: true });
    server.seal();
    expect(await vault.health()).toMatchObject({ statusCode: 503, sealed: true });
  });
});
